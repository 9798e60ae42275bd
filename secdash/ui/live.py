"""Live system view: the cached sampler, plotly figures and the page body.

Safety: process names, command lines, user names, interface names and mount points come from the
machine (an attacker can choose a process name).  They are shown only through ``st.dataframe`` /
``st.text`` or, in plotly labels and hover text, after ``html.escape`` (plotly renders ``<b>``,
``<br>`` and ``<a>``).  Markdown and ``unsafe_allow_html`` only ever carry fixed text.
"""

from __future__ import annotations

import html
import importlib
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from secdash import config
from secdash.metrics import LOGIN_COLUMNS, Sampler, Snapshot, match_logins

LEVEL_COLORS = {"careful": "blue", "warning": "orange", "critical": "red"}
LINE_COLORS = {"careful": "#3b82f6", "warning": "#f59e0b", "critical": "#dc2626"}
REFRESH_CHOICES = [1, 2, 5, 10, 15, 30, 60]
MAX_CHART_POINTS = 600
SESSION_ENDED = "Session ended — reload to log in"
NO_AUTH_EVENTS = "auth events not available yet"
_ENDED_KEY = "_live_session_ended"


# --------------------------------------------------------------------------------------------
# Cached resources


@st.cache_resource(show_spinner=False)
def _shared_sampler() -> Sampler:
    cfg = config.load()
    return Sampler.from_config(cfg.metrics).start()


def get_sampler() -> Sampler:
    """The one sampler of this server process (not per session, not per rerun), running."""
    sampler = _shared_sampler()
    if not sampler.running:  # e.g. stopped by a test or crashed thread: start it again
        sampler.start()
    return sampler


def _empty_logins() -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in LOGIN_COLUMNS})
    empty["ts"] = pd.Series(dtype="datetime64[us, UTC]")
    return empty


def login_lookup(sessions: list[Any], now: datetime | None = None) -> tuple[datetime, tuple[str, ...]]:
    """What to ask the store for: logins since the oldest session start (minus the matching
    window, rounded down to the minute so the cache is reused) by the logged-in accounts."""
    starts = [s.started for s in sessions if s.started is not None]
    oldest = min(starts) if starts else (now or datetime.now(UTC)) - timedelta(days=1)
    since = (oldest - timedelta(minutes=10)).replace(second=0, microsecond=0)
    return since, tuple(sorted({s.user for s in sessions if s.user}))


@st.cache_data(ttl=30, show_spinner=False)
def recent_ssh_logins(since: datetime, users: tuple[str, ...]) -> tuple[pd.DataFrame, bool]:
    """``ssh_login`` events since ``since`` for ``users`` from the event store, and whether the
    store is available.

    The store is imported lazily: until it exists (ImportError), has no database file yet, or
    fails (busy, corrupt), an empty frame with the right columns and False; the page then says
    "auth events not available yet".
    """
    try:
        store = importlib.import_module("secdash.store")
    except ImportError:
        return _empty_logins(), False
    try:
        fetch = getattr(store, "ssh_logins", None)
        if fetch is not None:  # a dedicated helper, if the store grows one
            df = fetch(since=since, users=users)
        else:
            events = store.default_store(config.load())
            if not events.exists():
                return _empty_logins(), False
            f = store.Filters(since=since, users=list(users), events=["ssh_login"], limit=5000)
            df, _ = events.query_events(f, with_total=False)
    except Exception:  # noqa: BLE001 - the live page must not die because of the store
        return _empty_logins(), False
    if hasattr(df, "to_pandas"):
        df = df.to_pandas()
    if df is None or not len(df):
        return _empty_logins(), True
    return df, True


# --------------------------------------------------------------------------------------------
# Formatting helpers


def fmt_bytes(n: float | None, per_s: bool = False) -> str:
    if n is None or pd.isna(n):
        return "—"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    v, i = float(n), 0
    while abs(v) >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    text = f"{v:.0f} {units[i]}" if i == 0 or abs(v) >= 100 else f"{v:.1f} {units[i]}"
    return text + ("/s" if per_s else "")


def fmt_pct(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1f} %"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, _ = divmod(s, 60)
    if d:
        return f"{d} d {h} h"
    return f"{h} h {m} m" if h else f"{m} min"


def _delta(cur: float | None, prev: dict[str, Any] | None, key: str, scale: str = "pct") -> str | None:
    if cur is None or not prev or prev.get(key) is None or pd.isna(prev.get(key)):
        return None
    d = cur - prev[key]
    if abs(d) < {"pct": 0.05, "num": 0.005}.get(scale, 1e-9):
        return None  # no change: no arrow
    if scale == "pct":
        return f"{d:+.1f} pp"
    if scale == "bytes":
        return ("+" if d >= 0 else "-") + fmt_bytes(abs(d), per_s=True)
    if scale == "count":
        return f"{int(d):+d}"
    return f"{d:+.2f}"


def _local(ts: Any, zone: str) -> Any:
    if ts is None or (not isinstance(ts, datetime) and pd.isna(ts)):
        return None
    return pd.Timestamp(ts).tz_convert(zone)


def _thin(df: pd.DataFrame, limit: int = MAX_CHART_POINTS) -> pd.DataFrame:
    if len(df) <= limit:
        return df
    step = -(-len(df) // limit)
    return df.iloc[::step]


# --------------------------------------------------------------------------------------------
# Figures (all text derived from the machine is html-escaped)


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 260) -> go.Figure:
    fig.update_layout(
        title={"text": html.escape(title)},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    return fig


def _threshold_lines(fig: go.Figure, thresholds: dict[str, Any], metric: str, label: str) -> None:
    t = thresholds.get(metric)
    if t is None:
        return
    for name in ("warning", "critical"):
        fig.add_hline(
            y=getattr(t, name),
            line_dash="dot",
            line_color=LINE_COLORS[name],
            opacity=0.5,
            annotation_text=f"{label} {name}",
            annotation_position="top left",
            annotation_font_color=LINE_COLORS[name],
            annotation_font_size=10,
        )


def _lines(history: pd.DataFrame, zone: str, series: tuple[tuple[str, str], ...], hover: str) -> go.Figure:
    """One line per (column, label) of ``history`` over its window, hover value format ``hover``."""
    h = _thin(history)
    x = h["ts"].dt.tz_convert(zone) if len(h) else []
    fig = go.Figure()
    for col, label in series:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=h[col] if len(h) else [],
                name=label,
                mode="lines",
                hovertemplate=hover + "<extra>" + label + "</extra>",
            )
        )
    return fig


def usage_figure(history: pd.DataFrame, zone: str, thresholds: dict[str, Any] | None = None) -> go.Figure:
    """CPU, memory, swap and fullest disk (%) over the window."""
    fig = _lines(history, zone, (("cpu_percent", "CPU"), ("memory_percent", "memory"), ("swap_percent", "swap"),
                                 ("disk_percent", "fullest disk")), "%{y:.1f} %")
    _threshold_lines(fig, thresholds or {}, "cpu_percent", "CPU")
    fig.update_yaxes(range=[0, 100])
    return _layout(fig, "Usage", "%")


def load_figure(history: pd.DataFrame, zone: str, thresholds: dict[str, Any] | None = None) -> go.Figure:
    """1-minute load average divided by the core count."""
    fig = _lines(history, zone, (("load_per_core", "load / core"),), "%{y:.2f}")
    _threshold_lines(fig, thresholds or {}, "load_per_core", "load")
    return _layout(fig, "Load average (1 min) per core", "load / core")


def io_figure(history: pd.DataFrame, zone: str) -> go.Figure:
    """Disk read/write and network sent/received, bytes per second."""
    fig = _lines(history, zone, (("disk_read_bytes_per_s", "disk read"), ("disk_write_bytes_per_s", "disk write"),
                                 ("net_recv_bytes_per_s", "net received"), ("net_sent_bytes_per_s", "net sent")),
                 "%{y:.3s}B/s")
    return _layout(fig, "Disk and network throughput", "bytes/s")


def net_figure(net_history: pd.DataFrame, zone: str) -> go.Figure:
    """Received + sent bytes per second per interface (names escaped)."""
    fig = go.Figure()
    if len(net_history):
        for name, g in net_history.groupby("interface", sort=True):
            g = _thin(g)
            label = html.escape(str(name))
            fig.add_trace(
                go.Scatter(
                    x=g["ts"].dt.tz_convert(zone),
                    y=g["recv_bytes_per_s"].fillna(0) + g["sent_bytes_per_s"].fillna(0),
                    name=label,
                    mode="lines",
                    hovertemplate="%{y:.3s}B/s<extra>" + label + "</extra>",
                )
            )
    return _layout(fig, "Network per interface (sent + received)", "bytes/s")


def cores_figure(snap: Snapshot) -> go.Figure:
    per = snap.cpu_per_core or []
    fig = go.Figure(
        go.Bar(x=[f"core {i}" for i in range(len(per))], y=per, hovertemplate="%{y:.0f} %<extra></extra>")
    )
    fig.update_yaxes(range=[0, 100])
    return _layout(fig, "CPU per core", "%", height=220)


def processes_figure(procs: list[Any], by: str = "cpu") -> go.Figure:
    """Horizontal bars of the top processes; names and command lines escaped."""
    attr = "cpu_percent" if by == "cpu" else "memory_percent"
    procs = list(reversed(procs))
    labels = [f"{html.escape(p.name or '')} ({p.pid})" for p in procs]
    hover = [html.escape(f"{p.user or ''}: {p.cmdline or ''}") for p in procs]
    fig = go.Figure(
        go.Bar(
            x=[getattr(p, attr) or 0 for p in procs],
            y=labels,
            orientation="h",
            customdata=hover,
            hovertemplate="%{x:.1f} %<br>%{customdata}<extra></extra>",
        )
    )
    return _layout(fig, f"Top processes by {by}", "", height=max(200, 24 * len(procs) + 80))


# --------------------------------------------------------------------------------------------
# Tables


def processes_frame(procs: list[Any], zone: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "pid": p.pid,
                "user": p.user,
                "name": p.name,
                "cpu %": p.cpu_percent,
                "memory %": p.memory_percent,
                "rss": p.rss_bytes,
                "started": _local(p.started, zone),
                "command": p.cmdline,
            }
            for p in procs
        ],
        columns=["pid", "user", "name", "cpu %", "memory %", "rss", "started", "command"],
    )


def listeners_frame(snap: Snapshot) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "new": x.new,
                "proto": x.proto,
                "family": x.family,
                "address": x.address,
                "port": x.port,
                "pid": x.pid,
                "process": x.process,
            }
            for x in snap.listeners or []
        ],
        columns=["new", "proto", "family", "address", "port", "pid", "process"],
    )


def users_frame(snap: Snapshot, logins: pd.DataFrame, zone: str, hostname: str | None = None) -> pd.DataFrame:
    m = match_logins(snap.users or [], logins, hostname=hostname)
    out = pd.DataFrame(
        {
            "user": m["user"],
            "terminal": m["terminal"],
            "from": m["host"],
            "since": [_local(t, zone) for t in m["started"]],
            "pid": m["pid"],
            "login source IP": m["src_ip"],
            "method": m["method"],
            "login time": [_local(t, zone) for t in m["login_ts"]],
            "matched by": m["matched_by"],
        }
    )
    return out


def _highlight_new(row: pd.Series) -> list[str]:
    style = "background-color: rgba(245, 158, 11, 0.25)" if row.get("new") else ""
    return [style] * len(row)


# --------------------------------------------------------------------------------------------
# Page body


def _badge(lv: str | None) -> None:
    if lv:
        st.badge(lv, color=LEVEL_COLORS[lv])


def _session_alive() -> bool:
    from secdash.ui.auth import session_alive

    return bool(session_alive())


def render_live(sampler: Sampler | None = None) -> None:
    """The live page: controls, then the auto-refreshing fragment with metrics, charts and tables."""
    cfg = config.load()
    st.title("Live system")
    c1, c2, _ = st.columns([1, 2, 3])
    paused = c1.toggle("Pause", key="live_paused", help="Stop the automatic refresh")
    default = min(REFRESH_CHOICES, key=lambda v: abs(v - cfg.ui.refresh_seconds))
    interval = c2.select_slider(
        "Refresh every (seconds)", options=REFRESH_CHOICES, value=default, key="live_interval"
    )
    run_every = None if paused else float(interval)
    fragment = st.fragment(_live_body, run_every=run_every)
    fragment(sampler, cfg)


def _live_body(sampler: Sampler | None, cfg: config.Config) -> None:
    # The login is checked on every run, including timed reruns of this fragment.  When the
    # session has ended (logout elsewhere, timeout, account removed) no data is drawn; one full
    # rerun lets the app's gate show the login form, and if we are still here, a notice.
    if not _session_alive():
        if not st.session_state.get(_ENDED_KEY):
            st.session_state[_ENDED_KEY] = True
            st.rerun()
        st.warning(SESSION_ENDED)
        return
    st.session_state.pop(_ENDED_KEY, None)
    sampler = sampler or get_sampler()
    snap = sampler.latest() or sampler.sample()
    prev = sampler.previous()
    zone = cfg.display_zone
    thresholds = cfg.metrics.thresholds
    history = sampler.history()

    st.caption(
        f"Sampled every {sampler.interval:g} s; history of the last {sampler.history_seconds / 60:g} min. "
        f"Last sample {_local(snap.ts, zone):%H:%M:%S %Z}."
    )
    if snap.notes:
        with st.expander(
            "Some data is not available here (container or no privilege)", expanded=False, icon="⚠️"
        ):
            st.text("\n".join(snap.notes))

    # --- headline metrics: three rows of four (readable in the centred layout too)
    spark = history.tail(60)

    def usage(col, label: str, field: str, value: str, *, spark_it: bool = True, hint: str | None = None):
        with col:
            st.metric(
                label,
                value,
                _delta(getattr(snap, field), prev, field, "num" if field == "load_per_core" else "pct"),
                delta_color="inverse",
                chart_data=spark[field].fillna(0).tolist() if spark_it else None,
                border=True,
                help=hint,
            )
            _badge(snap.levels.get(field))

    cores = snap.cpu_count or "?"
    row = st.columns(4)
    usage(row[0], "CPU", "cpu_percent", fmt_pct(snap.cpu_percent), hint=f"all {cores} logical cores together")
    usage(
        row[1],
        "Load (1 min)",
        "load_per_core",
        "—" if snap.load_1 is None else f"{snap.load_1:.2f}",
        hint=f"1-minute load average on {cores} logical cores"
        + (
            ""
            if snap.load_per_core is None
            else f": {snap.load_per_core:.2f} per core (the delta is per core)"
        ),
    )
    usage(
        row[2],
        "Memory",
        "memory_percent",
        fmt_pct(snap.memory_percent),
        hint=f"{fmt_bytes(snap.memory_used_bytes)} used of {fmt_bytes(snap.memory_total_bytes)}",
    )
    usage(
        row[3],
        "Swap",
        "swap_percent",
        fmt_pct(snap.swap_percent),
        spark_it=False,
        hint=f"{fmt_bytes(snap.swap_used_bytes)} used of {fmt_bytes(snap.swap_total_bytes)}",
    )
    row = st.columns(4)
    usage(row[0], "Fullest disk", "disk_percent", fmt_pct(snap.disk_percent), spark_it=False)
    row[1].metric(
        "Processes",
        "—" if snap.process_count is None else str(snap.process_count),
        _delta(snap.process_count, prev, "process_count", "count"),
        delta_color="off",
        border=True,
    )
    row[2].metric(
        "Sessions",
        "—" if snap.users is None else str(len(snap.users)),
        border=True,
        help="logged-in sessions (who); see the table below",
    )
    row[3].metric(
        "Uptime",
        fmt_duration(snap.uptime_seconds),
        border=True,
        help=None if snap.boot_time is None else f"booted {_local(snap.boot_time, zone):%Y-%m-%d %H:%M %Z}",
    )
    row = st.columns(4)
    row[0].metric("Disk read", fmt_bytes(snap.disk_read_bytes_per_s, True), border=True)
    row[1].metric("Disk write", fmt_bytes(snap.disk_write_bytes_per_s, True), border=True)
    row[2].metric(
        "Network in",
        fmt_bytes(snap.net_recv_bytes_per_s, True),
        border=True,
        help="all interfaces but loopback",
    )
    row[3].metric(
        "Network out",
        fmt_bytes(snap.net_sent_bytes_per_s, True),
        border=True,
        help="all interfaces but loopback",
    )

    # --- history charts
    tab_usage, tab_load, tab_io, tab_net, tab_cores = st.tabs(
        ["Usage", "Load", "Throughput", "Interfaces", "Cores"]
    )
    with tab_usage:
        st.plotly_chart(
            usage_figure(history, zone, thresholds), key="live_usage", config={"displayModeBar": False}
        )
    with tab_load:
        st.plotly_chart(
            load_figure(history, zone, thresholds), key="live_load", config={"displayModeBar": False}
        )
    with tab_io:
        st.plotly_chart(io_figure(history, zone), key="live_io", config={"displayModeBar": False})
    with tab_net:
        st.plotly_chart(
            net_figure(sampler.net_history(), zone), key="live_net", config={"displayModeBar": False}
        )
    with tab_cores:
        st.plotly_chart(cores_figure(snap), key="live_cores", config={"displayModeBar": False})

    # --- disks and interfaces
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Disks")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "mount": d.mountpoint,
                        "device": d.device,
                        "type": d.fstype,
                        "used": d.used_bytes,
                        "size": d.total_bytes,
                        "use %": d.percent,
                    }
                    for d in snap.disks or []
                ],
                columns=["mount", "device", "type", "used", "size", "use %"],
            ),
            hide_index=True,
            key="live_disks",
            column_config={
                "use %": st.column_config.ProgressColumn(
                    "use %", min_value=0, max_value=100, format="%.1f %%"
                ),
                "used": st.column_config.NumberColumn("used", format="bytes"),
                "size": st.column_config.NumberColumn("size", format="bytes"),
            },
        )
    with c2:
        st.subheader("Network interfaces")
        st.dataframe(
            pd.DataFrame(
                [
                    {"interface": n.interface, "received/s": n.recv_bytes_per_s, "sent/s": n.sent_bytes_per_s}
                    for n in snap.net or []
                ],
                columns=["interface", "received/s", "sent/s"],
            ),
            hide_index=True,
            key="live_nics",
            column_config={
                "received/s": st.column_config.NumberColumn(format="bytes"),
                "sent/s": st.column_config.NumberColumn(format="bytes"),
            },
        )

    # --- processes
    st.subheader("Processes")
    f1, f2 = st.columns([2, 1])
    query = f1.text_input("Filter by user or name", key="live_proc_filter", placeholder="e.g. root or nginx")
    by = f2.segmented_control("Top by", ["cpu", "memory"], default="cpu", key="live_proc_by") or "cpu"
    procs = sampler.top_processes(by=by, query=query)
    proc_cfg = {
        "cpu %": st.column_config.NumberColumn(format="%.1f"),
        "memory %": st.column_config.NumberColumn(format="%.1f"),
        "rss": st.column_config.NumberColumn(format="bytes"),
        "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "command": st.column_config.TextColumn(width="large"),
    }
    if procs:
        st.dataframe(processes_frame(procs, zone), hide_index=True, key="live_procs", column_config=proc_cfg)
    elif snap.process_count is None:
        st.info("The process list is not readable here.")
    else:
        st.info("No process matches the filter.")

    # --- listening sockets
    st.subheader("Listening sockets")
    lf = listeners_frame(snap)
    if snap.listeners is None:
        st.info("Listening sockets are not readable here (see the notes above).")
    else:
        n_new = int(lf["new"].sum()) if len(lf) else 0
        if n_new:
            st.warning(f"{n_new} listening socket(s) appeared since the dashboard started (highlighted).")
        st.dataframe(
            lf.style.apply(_highlight_new, axis=1),
            hide_index=True,
            key="live_listeners",
            column_config={
                "new": st.column_config.CheckboxColumn("new", help="appeared since the dashboard started"),
                "port": st.column_config.NumberColumn(format="%d"),
                "pid": st.column_config.NumberColumn(format="%d"),
            },
        )

    # --- logged-in users joined with the auth events
    st.subheader("Logged-in users")
    if snap.users:
        logins, available = recent_ssh_logins(*login_lookup(snap.users, snap.ts))
        if not available:
            st.caption(NO_AUTH_EVENTS)
    if snap.users is None:
        st.info("Logged-in users are not readable here (see the notes above).")
    elif not snap.users:
        st.caption("Nobody is logged in.")
    else:
        st.dataframe(
            users_frame(snap, logins, zone, socket.gethostname()),
            hide_index=True,
            key="live_users",
            column_config={
                "since": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "login time": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "pid": st.column_config.NumberColumn(format="%d"),
            },
        )
