"""Admin page sections: accounts, audit log, data sources, parser health.

Log-derived and user-supplied text is only ever shown through st.dataframe / st.text (never
markdown or HTML), so a crafted username or log line cannot inject markup.
"""
from __future__ import annotations

import json
import os
import time

import pandas as pd
import streamlit as st

from secdash import audit
from secdash import auth as core
from secdash.config import Config
from secdash.errors import SecdashError
from secdash.ui.auth import CurrentUser, client_ip

_CORE_FIELDS = ("ts", "action", "outcome", "user", "ip")


def _fmt_ts(ts: float) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts))


def users_table(cfg: Config) -> pd.DataFrame:
    users = core.load_users(cfg.home)
    active: dict[str, int] = {}
    for s in core.SessionStore.from_config(cfg.home, cfg.auth).active(time.time()):
        active[s.get("user")] = active.get(s.get("user"), 0) + 1
    rows = [
        {
            "username": u.username,
            "name": u.name,
            "role": u.role,
            "created (UTC)": _fmt_ts(u.created),
            "password changed (UTC)": _fmt_ts(u.password_changed),
            "active sessions": active.get(u.username, 0),
        }
        for u in sorted(users.values(), key=lambda u: u.username)
    ]
    return pd.DataFrame(rows, columns=["username", "name", "role", "created (UTC)", "password changed (UTC)",
                                       "active sessions"])


def audit_table(cfg: Config, limit: int = 1000) -> pd.DataFrame:
    rows = []
    for e in audit.read(cfg.home, limit=limit):
        extra = {k: v for k, v in e.items() if k not in _CORE_FIELDS}
        rows.append(
            {
                "time (UTC)": e.get("ts"),
                "action": e.get("action"),
                "outcome": e.get("outcome"),
                "user": e.get("user"),
                "address": e.get("ip"),
                "details": json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else "",
            }
        )
    return pd.DataFrame(rows, columns=["time (UTC)", "action", "outcome", "user", "address", "details"])


def _done(message: str) -> None:
    st.session_state["_secdash_admin_msg"] = message
    st.rerun()


def render_users(cfg: Config, me: CurrentUser) -> None:
    msg = st.session_state.pop("_secdash_admin_msg", None)
    if msg:
        st.success(msg)
    st.dataframe(users_table(cfg), hide_index=True, width="stretch")
    names = sorted(core.load_users(cfg.home))
    ip = client_ip(cfg)
    add, reset, remove = st.columns(3)
    with add, st.form("secdash-add-user", clear_on_submit=True):
        st.subheader("Add user")
        username = st.text_input("New username", max_chars=32)
        name = st.text_input("Display name (optional)", max_chars=64)
        role = st.selectbox("Role", core.ROLES, index=1)
        pw1 = st.text_input("Initial password", type="password", max_chars=256)
        pw2 = st.text_input("Repeat password", type="password", max_chars=256)
        if st.form_submit_button("Add user"):
            if pw1 != pw2:
                st.error("The two passwords differ.")
            else:
                try:
                    core.add_user(cfg.home, username.strip(), pw1, role, name=name.strip(), now=time.time())
                except SecdashError as exc:
                    st.error(str(exc))
                else:
                    audit.record(cfg.home, "user_add", user=me.username, ip=ip, target=username.strip(), role=role)
                    _done(f"Added {role} {username.strip()}.")
    with reset, st.form("secdash-reset-password", clear_on_submit=True):
        st.subheader("Reset password")
        target = st.selectbox("User", names, key="secdash-reset-user")
        pw1 = st.text_input("New password", type="password", max_chars=256)
        pw2 = st.text_input("Repeat new password", type="password", max_chars=256)
        st.caption("Signs the user out everywhere.")
        if st.form_submit_button("Reset password"):
            if pw1 != pw2:
                st.error("The two passwords differ.")
            elif target:
                try:
                    core.set_password(cfg.home, target, pw1, now=time.time())
                except SecdashError as exc:
                    st.error(str(exc))
                else:
                    audit.record(cfg.home, "password_change", user=me.username, ip=ip, target=target)
                    if target == me.username:
                        st.rerun()  # our own session was revoked too: back to the login form
                    _done(f"Password of {target} changed; their sessions were ended.")
    with remove, st.form("secdash-remove-user"):
        st.subheader("Remove user")
        others = [n for n in names if n != me.username]
        target = st.selectbox("User", others, key="secdash-remove-user")
        sure = st.checkbox("Yes, remove this account")
        if st.form_submit_button("Remove user"):
            if not target:
                st.error("Choose a user.")
            elif not sure:
                st.error("Tick the confirmation box first.")
            else:
                try:
                    core.remove_user(cfg.home, target)
                except SecdashError as exc:
                    st.error(str(exc))
                else:
                    audit.record(cfg.home, "user_remove", user=me.username, ip=ip, target=target)
                    _done(f"Removed {target}.")


def render_audit(cfg: Config) -> None:
    st.caption("Newest first; the last 1000 entries. The full log is audit.jsonl in the data directory.")
    st.dataframe(audit_table(cfg), hide_index=True, width="stretch")


def _store(cfg: Config):
    """The event store when it exists (None otherwise); never raises into the page."""
    try:
        from secdash.ui.data import get_store

        store = get_store(cfg)
        return store if store.exists() else None
    except (SecdashError, OSError, ImportError):
        return None


def render_sources(cfg: Config) -> None:
    st.caption("Configured log sources, and what the ingester has read from each file.")
    rows = []
    for p in cfg.sources.paths:
        rows.append({"source": p, "exists": os.path.exists(p), "readable": os.access(p, os.R_OK)})
    if cfg.sources.journald:
        rows.append({"source": "systemd journal (journalctl)", "exists": True, "readable": True})
    st.dataframe(pd.DataFrame(rows, columns=["source", "exists", "readable"]), hide_index=True, width="stretch")
    store = _store(cfg)
    if store is None:
        st.info("No event store yet: run python -m secdash ingest (or setup).")
        return
    try:
        status = store.source_status()
        runs = store.ingest_runs(limit=50)
    except SecdashError as exc:
        st.warning(f"Ingest status unavailable: {exc}")
        return
    st.subheader("Files read")
    st.dataframe(status, hide_index=True, width="stretch")
    st.subheader("Recent ingest runs")
    st.dataframe(runs, hide_index=True, width="stretch")


def parser_health_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per source: lines parsed and the share the parser did not recognise (from ingest runs)."""
    cols = ["source", "runs", "lines", "unknown", "unknown share %"]
    if runs is None or len(runs) == 0:
        return pd.DataFrame(columns=cols)
    g = runs.groupby("source", dropna=False).agg(runs=("source", "size"), lines=("lines", "sum"),
                                                 unknown=("unknown", "sum")).reset_index()
    g["unknown share %"] = (100.0 * g["unknown"] / g["lines"].where(g["lines"] > 0)).round(2)
    return g[cols]


def render_parser_health(cfg: Config) -> None:
    st.caption("Lines no pattern recognised, per source (python -m secdash explain FILE shows samples).")
    store = _store(cfg)
    if store is None:
        st.info("No event store yet: run python -m secdash ingest (or setup).")
        return
    try:
        runs = store.ingest_runs(limit=1000)
        share = store.unknown_share()
    except SecdashError as exc:
        st.warning(f"Parser health unavailable: {exc}")
        return
    st.metric("Unknown lines among stored events", f"{100.0 * share:.2f} %")
    st.dataframe(parser_health_table(runs), hide_index=True, width="stretch")
