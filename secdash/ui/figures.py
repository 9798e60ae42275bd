"""Plotly figure builders for the explorer. All log-derived text is escaped.

Plotly renders a subset of HTML in tick labels, legend names, annotations and hover text
(``<a href>``, ``<b>``, ``<br>``, ...), and log values are chosen by attackers (user names of
failed logins, sudo commands). Every such text goes through :func:`label` (``html.escape`` plus
a length cap) before it reaches a figure; the raw value only travels in ``customdata`` (never
rendered: hover templates use the escaped copies) so a click can filter by the exact value.

Builders take the data layer's pandas frames and return ``plotly.graph_objects.Figure``; an
empty frame gives ``None`` (the page shows a plain "no data" text instead).
"""

from __future__ import annotations

import html
import math
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

OUTCOME_COLORS = {"success": "#2e9e5b", "failure": "#d64545", "unknown": "#9aa0a6"}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MAX_LABEL = 40
HEIGHT = 320


def label(value, limit: int = MAX_LABEL) -> str:
    """Safe display text of a log value for plotly: escaped, control characters shown, capped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(none)"
    text = str(value)
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else "?" for ch in text)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    kw.setdefault("legend", {"orientation": "h", "y": -0.2})
    fig.update_layout(
        title={"text": html.escape(title), "font": {"size": 14}},
        height=kw.pop("height", HEIGHT),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        clickmode="event+select",
        dragmode=False,
        **kw,
    )
    return fig


def _unique_labels(values) -> list[str]:
    """Escaped, capped labels made unique (two long names may share their first characters)."""
    out, seen = [], {}
    for v in values:
        text = label(v)
        n = seen.get(text, 0)
        seen[text] = n + 1
        out.append(text if n == 0 else f"{text} ({n + 1})")
    return out


def timeline(df, bucket_seconds: int, zone: str, span=None) -> go.Figure | None:
    """Events over time, stacked by outcome. customdata: (bucket start ISO UTC, outcome)."""
    if df is None or df.empty:
        return None
    tz = ZoneInfo(zone)
    fig = go.Figure()
    keys = [k for k in ("failure", "success", "unknown") if k in set(df["key"])]
    keys += sorted({str(k) for k in df["key"] if k not in keys and k is not None})
    width = (
        f"{bucket_seconds // 86400} d"
        if bucket_seconds >= 86400
        else f"{bucket_seconds // 3600} h"
        if bucket_seconds >= 3600
        else f"{bucket_seconds // 60} min"
    )
    for key in keys:
        part = df[df["key"] == key]
        local = part["bucket"].dt.tz_convert(tz).dt.tz_localize(None)
        fig.add_bar(
            x=local,
            y=part["events"],
            name=label(key),
            marker_color=OUTCOME_COLORS.get(key),
            width=bucket_seconds * 1000 * 0.9,
            customdata=list(
                zip(part["bucket"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), [key] * len(part), strict=True)
            ),
            hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} ({html.escape(zone)}, {width})<br>{label(key)}: "
            "%{y:,}<extra></extra>",
        )
    xaxis = {"title": None}
    if span is not None and span[0] is not None and span[1] is not None:  # the whole filtered range
        xaxis["range"] = [v.astimezone(tz).replace(tzinfo=None) for v in span]
    return _layout(
        fig,
        f"Events over time (per {width}, {zone})",
        barmode="stack",
        xaxis=xaxis,
        yaxis={"title": "events"},
    )


def bar_h(
    values, counts, title: str, *, color: str = "#d64545", what: str = "events", customdata=None
) -> go.Figure | None:
    """Horizontal bars, largest on top. ``values`` are raw log values (escaped here)."""
    values, counts = list(values), list(counts)
    if not values:
        return None
    labels = _unique_labels(values)
    full = [label(v, 200) for v in values]
    fig = go.Figure(
        go.Bar(
            x=counts[::-1],
            y=labels[::-1],
            orientation="h",
            marker_color=color,
            customdata=(customdata or [[v] for v in values])[::-1],
            text=full[::-1],
            hovertemplate=f"%{{text}}<br>{html.escape(what)}: %{{x:,}}<extra></extra>",
            textposition="none",
        )
    )
    return _layout(
        fig,
        title,
        yaxis={"type": "category", "automargin": True},
        xaxis={"title": what},
        height=max(HEIGHT, 26 * len(values) + 80),
    )


def top_ips(df) -> go.Figure | None:
    """Top source addresses by failures (frame value/rows/events of count_by src_ip, failures only)."""
    if df is None or df.empty:
        return None
    df = df[df["value"].notna()]
    return bar_h(df["value"], df["events"], "Top source IPs by failures", what="failures")


def top_users(df) -> go.Figure | None:
    """Top targeted user names (rollup frame): failures and successes stacked."""
    if df is None or df.empty:
        return None
    df = df.iloc[::-1]
    labels = _unique_labels(df["key"])
    full = [label(v, 200) for v in df["key"]]
    custom = [[v] for v in df["key"]]
    fig = go.Figure()
    for col, color in (("failures", OUTCOME_COLORS["failure"]), ("successes", OUTCOME_COLORS["success"])):
        fig.add_bar(
            x=df[col],
            y=labels,
            orientation="h",
            name=col,
            marker_color=color,
            customdata=custom,
            text=full,
            textposition="none",
            hovertemplate=f"%{{text}}<br>{col}: %{{x:,}}<extra></extra>",
        )
    return _layout(
        fig,
        "Top targeted user names",
        barmode="stack",
        yaxis={"type": "category", "automargin": True},
        height=max(HEIGHT, 26 * len(df) + 100),
    )


def by_method(df) -> go.Figure | None:
    """Success vs failure per SSH method (pairs frame a=method, b=outcome, events)."""
    if df is None or df.empty:
        return None
    df = df[df["a"].notna() & df["b"].isin(["success", "failure"])]
    if df.empty:
        return None
    methods = list(df.groupby("a")["events"].sum().sort_values(ascending=False).index)
    fig = go.Figure()
    for outcome in ("failure", "success"):
        part = df[df["b"] == outcome].set_index("a")
        ys = [int(part["events"].get(m, 0)) for m in methods]
        fig.add_bar(
            x=_unique_labels(methods),
            y=ys,
            name=outcome,
            marker_color=OUTCOME_COLORS[outcome],
            customdata=[[m, outcome] for m in methods],
            hovertemplate="%{x}<br>" + outcome + ": %{y:,}<extra></extra>",
        )
    return _layout(fig, "Success vs failure by method", barmode="group", xaxis={"type": "category"})


def heatmap(df, zone: str) -> go.Figure | None:
    """Hour of day x weekday (frame weekday 0=Mon, hour, events).

    Drawn as square scatter markers rather than go.Heatmap: Streamlit's on_select returns no
    points for heatmap traces (streamlit issue #8760), and a clicked cell must filter.
    """
    if df is None or df.empty:
        return None
    cells = {(int(wd), int(hour)): int(n) for wd, hour, n in df[["weekday", "hour", "events"]].itertuples(index=False)}
    xs, ys, zs, cd = [], [], [], []
    for d in range(7):
        for h in range(24):
            xs.append(h)
            ys.append(WEEKDAYS[d])
            zs.append(cells.get((d, h), 0))
            cd.append([d, h])
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={"symbol": "square", "size": 19, "color": zs, "colorscale": "Reds", "showscale": True,
                    "colorbar": {"title": "events"}, "line": {"width": 0}},
            customdata=cd,
            hovertemplate="%{y} %{x}:00<br>events: %{marker.color:,}<extra></extra>",
        )
    )
    return _layout(
        fig,
        f"Hour of day x weekday ({zone})",
        xaxis={"dtick": 2, "title": "hour", "range": [-0.6, 23.6]},
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": list(WEEKDAYS)},
    )


def sudo_by_user(df, top_commands: int = 8) -> go.Figure | None:
    """sudo commands per user (pairs frame a=user, b=command, events), stacked by command."""
    if df is None or df.empty:
        return None
    df = df[df["a"].notna()].copy()
    if df.empty:
        return None
    totals = df.groupby("b", dropna=False)["events"].sum().sort_values(ascending=False)
    keep = list(totals.index[:top_commands])
    df["cmd"] = [c if c in keep else "(other commands)" for c in df["b"]]
    users = list(df.groupby("a")["events"].sum().sort_values(ascending=False).index)
    ulabels = _unique_labels(users)
    fig = go.Figure()
    for cmd in [*keep, "(other commands)"]:
        part = df[df["cmd"] == cmd].groupby("a")["events"].sum()
        if part.empty:
            continue
        name = label(cmd, 50) if cmd != "(other commands)" else cmd
        fig.add_bar(
            x=ulabels,
            y=[int(part.get(u, 0)) for u in users],
            name=name,
            customdata=[[u] for u in users],
            text=[label(cmd, 200)] * len(users),
            textposition="none",
            hovertemplate="%{x}<br>%{text}<br>runs: %{y:,}<extra></extra>",
        )
    return _layout(
        fig,
        "sudo commands by user",
        barmode="stack",
        xaxis={"type": "category"},
        legend={"orientation": "v", "font": {"size": 10}},
        height=HEIGHT + 60,
    )


def selected_custom(selection) -> list:
    """customdata of the selected points of a plotly_chart selection state (or [])."""
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        try:
            points = selection.selection.points
        except AttributeError:
            return []
    out = []
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if cd is not None:
            out.append(cd)
    return out
