"""Detections page: alerts by severity and rule, a timeline, each alert with its raw lines and a
link to the Events page filtered to them, and a "what if" threshold control.

Log-derived text (user names, addresses, messages) is only drawn by ``st.dataframe``,
``st.text``/``st.code`` or html-escaped plotly labels; expander labels, metric labels and
captions are fixed text made from our own rule titles and times.
"""
from __future__ import annotations

import datetime as dt
import html

import pandas as pd
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from secdash import audit, detect
from secdash.ui import data
from secdash.ui.figures import label

SEVERITY_COLORS = {"critical": "#8b0000", "high": "#d64545", "medium": "#e59a2f", "low": "#7a8ca3"}
RANGES = {"24h": ("24 h", dt.timedelta(hours=24)), "7d": ("7 days", dt.timedelta(days=7)),
          "30d": ("30 days", dt.timedelta(days=30)), "all": ("All", None)}
MAX_EXPANDERS = 25
MAX_LINES = 300


# -- cached data ---------------------------------------------------------------------------------

def _fingerprint(cfg) -> str:
    return detect.config_fingerprint(cfg.detect, cfg.display_zone)


@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def _alerts(path: str, timeout: float, version: int, fp: str, _cfg) -> pl.DataFrame:
    from secdash.errors import StoreBusyError
    from secdash.store import Store

    store = Store(path, timeout=timeout)
    try:
        return detect.alerts_for(store, _cfg)
    except StoreBusyError:  # another process writes the store: show the alerts as last evaluated
        return detect.read_alerts(store)


def alerts(cfg) -> pl.DataFrame:
    """All alerts of the store, brought up to date (incremental), cached for 30 s per data version."""
    store = data.get_store(cfg)
    if not store.exists():
        return detect.empty_alerts()
    return _alerts(str(store.path), float(store.timeout), data.data_version(cfg), _fingerprint(cfg), cfg)


@st.cache_data(ttl=60, max_entries=2, show_spinner=False)
def _rule_events(path: str, timeout: float, version: int) -> pl.DataFrame:
    from secdash.store import Store

    with Store(path, timeout=timeout).read() as con:
        return detect.load_events(con)


@st.cache_data(ttl=120, max_entries=64, show_spinner=False)
def _what_if(path: str, timeout: float, version: int, fp: str, rule: str, n: int, w: float, _cfg) -> int:
    ev = _rule_events(path, timeout, version)
    return detect.what_if(ev, _cfg, rule, n, w, zone=_cfg.display_zone)


@st.cache_data(ttl=60, max_entries=256, show_spinner=False)
def _lines(path: str, timeout: float, ids: tuple[int, ...]):
    from secdash.store import Store

    return detect.event_rows(Store(path, timeout=timeout), ids, limit=MAX_LINES)


def raw_lines(cfg, ids) -> pd.DataFrame:
    store = data.get_store(cfg)
    return _lines(str(store.path), float(store.timeout), tuple(int(i) for i in ids))


# -- pure helpers (tested) -----------------------------------------------------------------------

def in_range(a: pl.DataFrame, since: dt.datetime | None, until: dt.datetime | None = None) -> pl.DataFrame:
    if since is not None:
        a = a.filter(pl.col("last_seen") >= since)
    if until is not None:
        a = a.filter(pl.col("first_seen") < until)
    return a


def table_frame(a: pl.DataFrame, zone: str) -> pd.DataFrame:
    """The alert table as shown (local times, rule titles)."""
    df = a.select(
        "alert_id", "severity", "title", "technique", "ip", "user", "host",
        pl.col("first_seen").dt.convert_time_zone(zone), pl.col("last_seen").dt.convert_time_zone(zone),
        "count", pl.col("event_ids").list.len().alias("lines"), "detail", "rule").to_pandas()
    return df


def expander_label(row: dict, zone: str) -> str:
    """Fixed text only: severity, our rule title, time and count (never log-derived values)."""
    when = row["last_seen"].astimezone(_zone(zone)).strftime("%Y-%m-%d %H:%M")
    return f"{row['severity'].upper()} · {detect.RULES[row['rule']].title} · {when} · {int(row['count'])}×"


def _zone(zone: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(zone)


def timeline_figure(a: pl.DataFrame, zone: str) -> go.Figure | None:
    """Alerts over time (last seen), one marker trace per severity; hover text escaped."""
    if a.height == 0:
        return None
    fig = go.Figure()
    for sev in detect.SEVERITIES:
        part = a.filter(pl.col("severity") == sev)
        if part.height == 0:
            continue
        ts = part.get_column("last_seen").dt.convert_time_zone(zone).to_list()
        hover = [f"{html.escape(detect.RULES[r].title)}<br>{label(ip or user or host)} · {int(c)}×"
                 for r, ip, user, host, c in part.select("rule", "ip", "user", "host", "count").iter_rows()]
        fig.add_trace(go.Scatter(x=ts, y=[sev] * part.height, mode="markers", name=sev,
                                 marker={"color": SEVERITY_COLORS[sev], "size": 11, "opacity": 0.75},
                                 text=hover, hovertemplate="%{x}<br>%{text}<extra></extra>"))
    fig.update_layout(height=230, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      title={"text": "Alerts over time (last seen)", "font": {"size": 14}},
                      yaxis={"categoryorder": "array", "categoryarray": list(reversed(detect.SEVERITIES))},
                      dragmode=False)
    return fig


# -- rendering -----------------------------------------------------------------------------------

def page_link(page: str, params: dict[str, list[str]], text: str, icon: str = ":material/open_in_new:") -> None:
    """A link to another page with query parameters; a plain URL button when the page runs outside
    the app's navigation (single-page runs in tests)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(f"pages/{page}.py", label=text, icon=icon, query_params=params)
    except StreamlitAPIException:
        from urllib.parse import urlencode

        qs = urlencode([(k, v) for k, vals in params.items() for v in vals])
        st.link_button(text, f"/{page}?{qs}", icon=icon)


def events_link(params: dict[str, list[str]], text: str) -> None:
    """A link to the Events page filtered by ``params`` (its URL contract)."""
    page_link("events", params, text)


def render_detections(user) -> None:
    st.set_page_config(layout="wide")
    cfg = data.get_config()
    data.ensure_background_ingest(cfg)
    zone = cfg.display_zone
    st.title("Detections")
    info = data.overview(cfg)
    if info.demo:
        st.info("Demo data: these alerts come from generated events (`python -m secdash demo`).",
                icon=":material/science:")
    if info.events == 0:
        st.info("No events stored yet, so there is nothing to detect. Alerts appear here once log lines "
                "are ingested.", icon=":material/hourglass_empty:")
        return
    all_alerts = alerts(cfg)
    c = st.columns([3, 3, 3], vertical_alignment="bottom")
    rng = c[0].segmented_control("Range", list(RANGES), format_func=lambda k: RANGES[k][0], default="30d",
                                 key="det_range") or "30d"
    sevs = c[1].multiselect("Severity", list(detect.SEVERITIES), default=list(detect.SEVERITIES), key="det_sev")
    rules = c[2].multiselect("Rule", list(detect.RULES), format_func=lambda r: detect.RULES[r].title,
                             key="det_rules", placeholder="All rules")
    delta = RANGES[rng][1]
    now = dt.datetime.now(dt.timezone.utc)
    a = in_range(all_alerts, now - delta if delta else None)
    a = a.filter(pl.col("severity").is_in(sevs or list(detect.SEVERITIES)))
    if rules:
        a = a.filter(pl.col("rule").is_in(rules))
    cols = st.columns(4)
    for col, sev in zip(cols, detect.SEVERITIES, strict=True):
        col.metric(sev.capitalize(), int((a.get_column("severity") == sev).sum()), border=True)
    st.text(f"{a.height} alert(s) in the selection; times in {zone}.")
    if a.height == 0:
        st.info("No alerts match. Widen the range or the severity filter.", icon=":material/check_circle:")
    else:
        fig = timeline_figure(a, zone)
        if fig is not None:
            st.plotly_chart(fig, key="det_timeline", config={"displayModeBar": False})
        render_by_rule(a)
        render_table(cfg, a, zone)
        render_alert_list(cfg, a, zone)
    st.divider()
    render_what_if(cfg, user, all_alerts)


def render_by_rule(a: pl.DataFrame) -> None:
    counts = (a.group_by("rule", "severity").agg(pl.len().alias("alerts"), pl.col("count").sum().alias("events"))
              .with_columns(pl.col("rule").replace_strict({k: r.title for k, r in detect.RULES.items()})
                            .alias("title"),
                            pl.col("severity").replace_strict(detect.SEVERITY_RANK).alias("_s"))
              .sort("_s", "alerts", descending=[False, True]))
    st.subheader("By rule")
    st.dataframe(counts.select("severity", "title", "rule", "alerts", "events").to_pandas(), hide_index=True,
                 column_config={"title": "rule", "rule": "rule id", "events": "attempts/events"})


def render_table(cfg, a: pl.DataFrame, zone: str) -> None:
    st.subheader("Alerts")
    st.text("Select an alert to see the raw lines behind it.")
    df = table_frame(a, zone)
    sel = st.dataframe(df.drop(columns=["alert_id", "rule"]), hide_index=True, key="det_table", height=320,
                       on_select="rerun", selection_mode="single-row",
                       column_config={
                           "title": st.column_config.TextColumn("rule", width="medium"),
                           "first_seen": st.column_config.DatetimeColumn("first seen", format="YYYY-MM-DD HH:mm:ss"),
                           "last_seen": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD HH:mm:ss"),
                           "ip": st.column_config.TextColumn("address"),
                           "host": st.column_config.TextColumn("hosts"),
                       })
    rows = list(getattr(getattr(sel, "selection", None), "rows", []) or [])
    if rows and rows[0] < a.height:
        row = a.row(rows[0], named=True)
        with st.container(border=True):
            st.text("Selected: " + expander_label(row, zone))
            render_alert(cfg, row, zone)


def render_alert_list(cfg, a: pl.DataFrame, zone: str) -> None:
    st.subheader("Alert details")
    st.text(f"The {min(a.height, MAX_EXPANDERS)} most severe, most recent alerts; open one for its raw lines.")
    for row in a.head(MAX_EXPANDERS).iter_rows(named=True):
        with st.expander(expander_label(row, zone), icon=":material/crisis_alert:"):
            render_alert(cfg, row, zone)


def render_alert(cfg, row: dict, zone: str) -> None:
    rule = detect.RULES[row["rule"]]
    entity = []
    for name, key in (("address", "ip"), ("user", "user"), ("hosts", "host")):
        if row.get(key):
            entity.append(f"{name}: {row[key]}")
    st.text("\n".join([
        f"rule: {rule.id} ({rule.title}), severity {row['severity']}, MITRE ATT&CK {rule.technique}",
        *entity,
        (f"first seen: {row['first_seen'].astimezone(_zone(zone)):%Y-%m-%d %H:%M:%S}, "
         f"last seen: {row['last_seen'].astimezone(_zone(zone)):%Y-%m-%d %H:%M:%S} ({zone})"),
        f"count: {row['count']}" + (f" ({row['detail']})" if row.get("detail") else ""),
        f"why: {rule.description}",
    ]))
    lines = raw_lines(cfg, row["event_ids"])
    n = len(row["event_ids"])
    if len(lines):
        show = lines.copy()
        show["ts"] = show["ts"].dt.tz_convert(zone)
        st.dataframe(show, hide_index=True, height=min(40 + 35 * len(show), 300),
                     column_config={"ts": st.column_config.DatetimeColumn(f"time ({zone})",
                                                                         format="YYYY-MM-DD HH:mm:ss"),
                                    "message": st.column_config.TextColumn("message", width="large")})
        if n > len(lines):
            st.text(f"First {len(lines)} of {n} lines shown.")
        events_link(detect.link_params(lines), "Open these lines in Events")
        c = st.columns(2)
        with c[0]:
            if row.get("ip"):
                page_link("entities", {"ip": [row["ip"]]}, "Address view", ":material/lan:")
        with c[1]:
            if row.get("user"):
                page_link("entities", {"user": [row["user"]]}, "User view", ":material/person_search:")
    else:
        st.text("The events behind this alert are no longer stored (retention).")


def render_what_if(cfg, user, all_alerts: pl.DataFrame) -> None:
    st.subheader("What if")
    st.text("Try another threshold or window on the whole loaded history (nothing is changed until saved).")
    c = st.columns([3, 2, 2, 3], vertical_alignment="bottom")
    rule = c[0].selectbox("Rule", list(detect.TUNABLE), format_func=lambda r: detect.RULES[r].title, key="det_wi_rule")
    n_key, w_key = detect.TUNABLE[rule]
    cur_n, cur_w = getattr(cfg.detect, n_key), getattr(cfg.detect, w_key)
    n = c[1].number_input("Threshold", min_value=1, max_value=100_000, value=int(cur_n), step=1,
                          key=f"det_wi_n_{rule}")
    w = c[2].number_input("Window (seconds)", min_value=1, max_value=7 * 86400, value=int(cur_w), step=30,
                          key=f"det_wi_w_{rule}")
    store = data.get_store(cfg)
    now_count = int((all_alerts.get_column("rule") == rule).sum())
    with st.spinner("Evaluating..."):
        count = _what_if(str(store.path), float(store.timeout), data.data_version(cfg), _fingerprint(cfg), rule,
                         int(n), float(w), cfg)
    c[3].metric("Alerts with this setting", count, delta=count - now_count, delta_color="off",
                help="Compared with the current setting on the same history.")
    st.text(f"Current setting: {cur_n} within {cur_w:g} s -> {now_count} alert(s).")
    if (int(n), float(w)) == (int(cur_n), float(cur_w)):
        return
    if not getattr(user, "is_admin", False):
        st.text("Only an admin can save a new threshold.")
        return
    if st.button("Save this threshold", key="det_wi_save", icon=":material/save:"):
        try:
            detect.save_settings(cfg.home, {n_key: int(n), w_key: float(w)})
        except Exception as exc:  # noqa: BLE001 - shown, nothing written
            st.error("Could not save the setting:", icon=":material/error:")
            st.code(str(exc), language=None)
            return
        audit.record(cfg.home, "detect_threshold", user=user.username, rule=rule, **{n_key: int(n), w_key: float(w)})
        _alerts.clear()
        _what_if.clear()
        st.toast("Saved to config.toml; alerts are recomputed with the new threshold.", icon=":material/check:")
        st.rerun()
