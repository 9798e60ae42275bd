"""Entity views (one address, one user) and the SSH sessions page.

- Address view: events, usernames tried, outcomes, first/last seen, alerts, sessions from it,
  reverse DNS only when ``[detect] reverse_dns`` is on.
- User view: logins and their sources, failures, sudo commands, sessions, alerts.
- SSH sessions: reconstructed sessions (``secdash.sessions``) with duration, source, commands,
  a timeline chart, and the raw lines of one session.

Log-derived values are shown with st.dataframe / st.text / st.code or escaped plotly labels only.
"""
from __future__ import annotations

import datetime as dt
import ipaddress

import pandas as pd
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from secdash import detect, sessions
from secdash.store import Filters
from secdash.ui import data
from secdash.ui.detections import alerts as load_alerts
from secdash.ui.detections import events_link, raw_lines
from secdash.ui.figures import label

RANGES = {"24h": ("Last 24 hours", dt.timedelta(hours=24)), "7d": ("Last 7 days", dt.timedelta(days=7)),
          "30d": ("Last 30 days", dt.timedelta(days=30)), "all": ("All time", None)}


def _iso(value: dt.datetime) -> str:
    return detect.iso_z(value)


def _minute(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


SESSION_COLS = {"start": st.column_config.DatetimeColumn("start", format="YYYY-MM-DD HH:mm:ss"),
                "end": st.column_config.DatetimeColumn("end", format="YYYY-MM-DD HH:mm:ss"),
                "src_ip": "source", "n_commands": "cmds"}


# -- sessions ------------------------------------------------------------------------------------

@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def _sessions(path: str, timeout: float, version: int, since: dt.datetime | None) -> pl.DataFrame:
    from secdash.store import Store

    return sessions.load(Store(path, timeout=timeout), since=since)


def load_sessions(cfg, since: dt.datetime | None) -> pl.DataFrame:
    store = data.get_store(cfg)
    if not store.exists():
        return sessions.empty()
    return _sessions(str(store.path), float(store.timeout), data.data_version(cfg), since)


def alert_cols() -> dict:
    return {"title": "rule", "ip": "address", "host": "hosts",
            "first_seen": st.column_config.DatetimeColumn("first seen", format="YYYY-MM-DD HH:mm:ss"),
            "last_seen": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD HH:mm:ss")}


def sessions_table(s: pl.DataFrame, zone: str) -> pd.DataFrame:
    return s.select(
        pl.col("start").dt.convert_time_zone(zone), pl.col("end").dt.convert_time_zone(zone),
        (pl.col("duration_s") / 60).round(1).alias("minutes"), "user", "host", "src_ip", "method", "status",
        "n_commands", pl.col("commands").list.join(" ; ").alias("commands"), "tty", "pid").to_pandas()


def sessions_figure(s: pl.DataFrame, zone: str, now: dt.datetime) -> go.Figure | None:
    """One bar per session (start to end; open sessions to now), one row per user@host."""
    if s.height == 0:
        return None
    s = s.head(300)
    end = s.select(pl.coalesce("end", pl.lit(now, dtype=pl.Datetime("us", "UTC")))).to_series()
    starts = s.get_column("start").dt.convert_time_zone(zone).to_list()
    dur_ms = [(e - b).total_seconds() * 1000 for b, e in zip(s.get_column("start").to_list(), end.to_list(),
                                                             strict=True)]
    rows = [f"{label(u, 24)} @ {label(h, 20)}" for u, h in s.select("user", "host").iter_rows()]
    hover = [f"{label(u)} from {label(ip)}<br>{n} command(s), {st_}"
             for u, ip, n, st_ in s.select("user", "src_ip", "n_commands", "status").iter_rows()]
    colors = ["#d64545" if n else "#4a7fb5" for n in s.get_column("n_commands").to_list()]
    fig = go.Figure(go.Bar(base=starts, x=[max(d, 30_000) for d in dur_ms], y=rows, orientation="h",
                           marker_color=colors, text=hover, textposition="none",
                           hovertemplate="%{base|%Y-%m-%d %H:%M}<br>%{text}<extra></extra>"))
    fig.update_layout(height=max(260, 18 * len(set(rows)) + 90), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      title={"text": "Sessions over time (red: ran sudo/su)", "font": {"size": 14}},
                      xaxis={"type": "date"}, yaxis={"type": "category", "automargin": True}, dragmode=False,
                      showlegend=False)
    return fig


def render_sessions(user) -> None:
    st.set_page_config(layout="wide")
    cfg = data.get_config()
    data.ensure_background_ingest(cfg)
    zone = cfg.display_zone
    st.title("SSH sessions")
    st.text("Each session: sshd's accepted login, PAM session open/close of the same process, and the sudo/su "
            "commands its user ran meanwhile.")
    info = data.overview(cfg)
    if info.events == 0:
        st.info("No events stored yet.", icon=":material/hourglass_empty:")
        return
    c = st.columns([3, 3, 3], vertical_alignment="bottom")
    rng = c[0].segmented_control("Range", list(RANGES), format_func=lambda k: RANGES[k][0], default="7d",
                                 key="ses_range") or "7d"
    now = dt.datetime.now(dt.timezone.utc)
    delta = RANGES[rng][1]
    since = _minute(now - delta) if delta else None
    s = load_sessions(cfg, since)
    users = c[1].multiselect("Users", sorted(x for x in s.get_column("user").unique().to_list() if x),
                             key="ses_users", placeholder="All users")
    only_cmd = c[2].toggle("Only sessions that ran sudo/su", key="ses_cmd")
    if users:
        s = s.filter(pl.col("user").is_in(users))
    if only_cmd:
        s = s.filter(pl.col("n_commands") > 0)
    m = st.columns(4)
    m[0].metric("Sessions", s.height, border=True)
    m[1].metric("Users", s.get_column("user").n_unique() if s.height else 0, border=True)
    m[2].metric("Source addresses", s.get_column("src_ip").n_unique() if s.height else 0, border=True)
    m[3].metric("Open now", int((s.get_column("status") == "open").sum()) if s.height else 0, border=True)
    if s.height == 0:
        st.info("No SSH sessions in this selection.", icon=":material/search_off:")
        return
    fig = sessions_figure(s, zone, now)
    if fig is not None:
        st.plotly_chart(fig, key="ses_chart", config={"displayModeBar": False})
    table = sessions_table(s, zone)
    st.text(f"{s.height} session(s), newest first; times in {zone}. Select one for its lines.")
    sel = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row", key="ses_table",
                       height=360, column_config={
                           "start": st.column_config.DatetimeColumn("start", format="YYYY-MM-DD HH:mm:ss"),
                           "end": st.column_config.DatetimeColumn("end", format="YYYY-MM-DD HH:mm:ss"),
                           "src_ip": "source", "n_commands": "cmds",
                           "commands": st.column_config.TextColumn("commands", width="large")})
    rows = list(getattr(getattr(sel, "selection", None), "rows", []) or [])
    if rows and rows[0] < s.height:
        render_session(cfg, s.row(rows[0], named=True), zone, now)


def render_session(cfg, row: dict, zone: str, now: dt.datetime) -> None:
    st.subheader("Session")
    end = row["end"]
    st.text("\n".join([
        f"user: {row['user']}   host: {row['host']}   source: {row['src_ip']}   method: {row['method']}",
        f"start: {row['start'].astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC   "
        + (f"end: {end.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({row['duration_s'] / 60:.1f} min)"
           if end else "still open (no close line yet)"),
    ]))
    if row["commands"]:
        st.code("\n".join(row["commands"]), language=None)
    lines = raw_lines(cfg, row["event_ids"])
    if len(lines):
        show = lines.copy()
        show["ts"] = show["ts"].dt.tz_convert(zone)
        st.dataframe(show, hide_index=True, column_config={
            "ts": st.column_config.DatetimeColumn(f"time ({zone})", format="YYYY-MM-DD HH:mm:ss"),
            "message": st.column_config.TextColumn("message", width="large")})
    until = _minute(end or now) + dt.timedelta(minutes=1)
    params = {"since": [_iso(_minute(row["start"]))], "until": [_iso(until)]}
    if row["host"]:
        params["host"] = [row["host"]]
    if row["user"]:
        params["user"] = [row["user"]]
    events_link(params, "All events of this user on this host during the session")


# -- entities ------------------------------------------------------------------------------------

@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def reverse_dns(ip: str) -> str | None:
    """PTR name of an address (2 s budget), None when there is none. Only called when enabled."""
    import concurrent.futures
    import socket

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        fut = ex.submit(socket.gethostbyaddr, ip)
        try:
            return fut.result(timeout=2.0)[0]
        except Exception:  # noqa: BLE001 - no name, timeout, resolver error
            return None


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def render_entities(user) -> None:
    st.set_page_config(layout="wide")
    cfg = data.get_config()
    data.ensure_background_ingest(cfg)
    zone = cfg.display_zone
    st.title("Entities")
    info = data.overview(cfg)
    if info.events == 0:
        st.info("No events stored yet.", icon=":material/hourglass_empty:")
        return
    qp = {"ip": st.query_params.get("ip", ""), "user": st.query_params.get("user", "")}
    ss = st.session_state
    if "ent_kind" not in ss or (any(qp.values()) and qp != ss.get("_ent_qp")):
        # a link (or a fresh visit) decides; later the widgets do
        ss["ent_kind"] = "User" if qp["user"] and not qp["ip"] else "Address"
        ss["ent_ip"] = qp["ip"]
        ss["ent_user"] = qp["user"]
    ss["_ent_qp"] = qp
    kind = st.segmented_control("View", ["Address", "User"], key="ent_kind") or "Address"
    if kind == "Address":
        top = data.count_by("src_ip", Filters(outcomes=["failure"]), 15, cfg)
        options = [v for v in top["value"].tolist() if isinstance(v, str)] if len(top) else []
        c = st.columns([2, 3], vertical_alignment="bottom")
        pick = c[0].selectbox("Top attacking addresses", ["", *options], key="ent_ip_pick")
        text = c[1].text_input("Address", key="ent_ip", placeholder="e.g. 203.0.113.7")
        ip = _valid_ip(text) if text else (pick or None)
        if text and ip is None:
            st.error("Not an IP address:", icon=":material/error:")
            st.code(text, language=None)
            return
        if ip:
            st.query_params.from_dict({"ip": ip})
            ss["_ent_qp"] = {"ip": ip, "user": ""}
            render_ip(cfg, ip, zone)
        else:
            st.text("Pick or type an address.")
    else:
        top = data.count_by("user", Filters(events=["ssh_login"]), 30, cfg)
        options = [v for v in top["value"].tolist() if isinstance(v, str)] if len(top) else []
        c = st.columns([2, 3], vertical_alignment="bottom")
        pick = c[0].selectbox("Users with logins", ["", *options], key="ent_user_pick")
        text = c[1].text_input("User name", key="ent_user")
        name = text or pick or None
        if name:
            st.query_params.from_dict({"user": name})
            ss["_ent_qp"] = {"ip": "", "user": name}
            render_user(cfg, name, zone)
        else:
            st.text("Pick or type a user name.")


def _period(df: pd.DataFrame, col: str = "ts") -> tuple:
    if df is None or df.empty:
        return None, None
    return df[col].min(), df[col].max()


def render_ip(cfg, ip: str, zone: str) -> None:
    f = Filters(ips=[ip], limit=None)
    roll = data.count_by("outcome", f, None, cfg)
    total = int(roll["events"].sum()) if len(roll) else 0
    by = dict(zip(roll["value"], roll["events"], strict=True)) if len(roll) else {}
    tried = data.pairs(Filters(ips=[ip], events=["ssh_failed_auth", "ssh_invalid_user", "ssh_login"]), "user",
                       "event", 500, cfg).rename(columns={"a": "user", "b": "event"})
    first_last = data.query_events(Filters(ips=[ip], limit=1, sort="ts", descending=False), cfg)[0]
    last = data.query_events(Filters(ips=[ip], limit=1, sort="ts", descending=True), cfg)[0]
    st.subheader("Address")
    st.code(ip, language=None)
    if cfg.detect.reverse_dns:
        name = reverse_dns(ip)
        st.text(f"reverse DNS: {name or '(no name)'}")
    m = st.columns(5)
    m[0].metric("Events", f"{total:,}", border=True)
    m[1].metric("Failure lines", f"{int(by.get('failure', 0)):,}", border=True,
                help="Log lines with outcome failure (one SSH attempt writes 2-4 of them)")
    m[2].metric("Successes", f"{int(by.get('success', 0)):,}", border=True)
    users = tried["user"].nunique() if len(tried) and "user" in tried else 0
    m[3].metric("Usernames tried", users, border=True)
    a = load_alerts(cfg)
    mine = a.filter(pl.col("ip") == ip)
    m[4].metric("Alerts", mine.height, border=True)
    if len(first_last) and len(last):
        st.text(f"first seen {first_last['ts'].iloc[0].tz_convert(zone):%Y-%m-%d %H:%M:%S}, last seen "
                f"{last['ts'].iloc[-1].tz_convert(zone):%Y-%m-%d %H:%M:%S} ({zone})")
    left, right = st.columns(2)
    with left:
        st.subheader("Usernames tried")
        if len(tried):
            piv = tried.pivot_table(index="user", columns="event", values="events", aggfunc="sum",
                                    fill_value=0).reset_index()
            piv["total"] = piv.drop(columns=["user"]).sum(axis=1)
            st.dataframe(piv.sort_values("total", ascending=False), hide_index=True, height=300)
        else:
            st.text("No SSH logins or login attempts from this address.")
    with right:
        st.subheader("Outcomes by event")
        ev = data.pairs(f, "event", "outcome", 50, cfg).rename(columns={"a": "event", "b": "outcome"})
        st.dataframe(ev, hide_index=True, height=300)
    st.subheader("Alerts")
    if mine.height:
        st.dataframe(mine.select("severity", "title", "user", "host", pl.col("first_seen").dt.convert_time_zone(zone),
                                 pl.col("last_seen").dt.convert_time_zone(zone), "count").to_pandas(),
                     hide_index=True, column_config=alert_cols())
    else:
        st.text("No alerts for this address.")
    s = load_sessions(cfg, None).filter(pl.col("src_ip") == ip)
    st.subheader("SSH sessions from this address")
    if s.height:
        st.dataframe(sessions_table(s, zone), hide_index=True, column_config=SESSION_COLS)
    else:
        st.text("None.")
    events_link({"ip": [ip], "range": ["all"]}, "All events of this address")


def render_user(cfg, name: str, zone: str) -> None:
    st.subheader("User")
    st.code(name, language=None)
    logins = data.pairs(Filters(users=[name], events=["ssh_login"]), "src_ip", "method", 200, cfg).rename(
        columns={"a": "src_ip", "b": "method"})
    fails = data.count_by("src_ip", Filters(users=[name], outcomes=["failure"]), 200, cfg)
    sudo, sudo_total = data.query_events(Filters(users=[name], events=["sudo_command", "sudo_denied",
                                                                       "sudo_auth_failure", "su_success",
                                                                       "su_failure"], limit=500), cfg)
    s = load_sessions(cfg, None).filter(pl.col("user") == name)
    a = load_alerts(cfg).filter(pl.col("user") == name)
    m = st.columns(5)
    m[0].metric("Logins", int(logins["events"].sum()) if len(logins) else 0, border=True)
    m[1].metric("Login sources", logins["src_ip"].nunique() if len(logins) else 0, border=True)
    m[2].metric("Failure lines", int(fails["events"].sum()) if len(fails) else 0, border=True)
    m[3].metric("sudo/su lines", int(sudo_total or 0), border=True)
    m[4].metric("Alerts", a.height, border=True)
    left, right = st.columns(2)
    with left:
        st.subheader("Login sources")
        if len(logins):
            st.dataframe(logins.rename(columns={"src_ip": "source", "events": "logins"}), hide_index=True)
        else:
            st.text("No SSH logins.")
    with right:
        st.subheader("Failures by source")
        if len(fails):
            st.dataframe(fails.rename(columns={"value": "source"}), hide_index=True)
        else:
            st.text("No failures.")
    st.subheader("sudo and su")
    if len(sudo):
        show = sudo[["ts", "host", "event", "target_user", "tty", "command", "message"]].copy()
        show["ts"] = show["ts"].dt.tz_convert(zone)
        st.dataframe(show, hide_index=True, column_config={
            "ts": st.column_config.DatetimeColumn(f"time ({zone})", format="YYYY-MM-DD HH:mm:ss")})
    else:
        st.text("None.")
    st.subheader("SSH sessions")
    if s.height:
        st.dataframe(sessions_table(s, zone), hide_index=True, column_config=SESSION_COLS)
    else:
        st.text("None.")
    st.subheader("Alerts")
    if a.height:
        st.dataframe(a.select("severity", "title", "ip", "host", pl.col("first_seen").dt.convert_time_zone(zone),
                              pl.col("last_seen").dt.convert_time_zone(zone), "count").to_pandas(),
                     hide_index=True, column_config=alert_cols())
    else:
        st.text("No alerts for this user.")
    events_link({"user": [name], "range": ["all"]}, "All events of this user")
