"""Explorer filter state <-> URL query parameters <-> widgets.

URL contract (readable names, lists as repeated parameters; other pages may link to
``/events?...`` with any of them)::

    since, until  ISO 8601 (``2026-03-01T00:00:00Z``; without an offset: the display zone;
                  a date alone means its midnight). ``since`` inclusive, ``until`` exclusive.
                  Either one makes the range "custom".
    range         relative preset instead: 1h, 24h, 7d, 30d, all (default 24h when no time is given)
    user          user name (matches user or target_user exactly), repeated
    ip            address or CIDR range (IPv4/IPv6), repeated; a comma list in one value works too
    event         event type (see docs/events.md), repeated
    outcome       success / failure / unknown, repeated
    host, program syslog host / program, repeated
    pid           process id (with host: one session), repeated
    q             free text: case-insensitive substring of the message
    tz            display time zone (IANA name), when not the default

Example: ``/events?ip=203.0.113.0/24&event=ssh_failed_auth&since=2026-03-01T00:00:00Z``.

The pure part (:class:`FilterState`, :func:`parse_params`, :func:`to_params`,
:func:`to_filters`, :func:`summary_text`) has no Streamlit dependency beyond this module's import
and is unit-tested; :func:`current` / :func:`render` do the session and widget wiring.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo, available_timezones

import streamlit as st

from secdash.config import valid_zone
from secdash.events import EVENTS, OUTCOMES
from secdash.store import FilterError, Filters, ip_range

PRESETS: dict[str, tuple[str, dt.timedelta | None]] = {
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "24h": ("24 hours", dt.timedelta(hours=24)),
    "7d": ("7 days", dt.timedelta(days=7)),
    "30d": ("30 days", dt.timedelta(days=30)),
    "all": ("All time", None),
    "custom": ("Custom", None),
}
DEFAULT_RANGE = "24h"
LIST_PARAMS = {
    "user": "users",
    "ip": "ips",
    "event": "events",
    "outcome": "outcomes",
    "host": "hosts",
    "program": "programs",
    "pid": "pids",
    "hour": "hours",
    "weekday": "weekdays",
}
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PARAMS = ("since", "until", "range", *LIST_PARAMS, "q", "tz")


@dataclass(frozen=True)
class FilterState:
    """What the analyst selected (times are aware UTC; presets stay relative)."""

    range: str = DEFAULT_RANGE
    since: dt.datetime | None = None  # custom range only
    until: dt.datetime | None = None
    users: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    pids: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()  # hour of day 0-23 in the display zone
    weekdays: tuple[int, ...] = ()  # 0 = Monday .. 6 = Sunday in the display zone
    q: str = ""
    tz: str = ""  # display zone chosen for this session ("" = default)

    def is_default(self) -> bool:
        return replace(self, tz="") == FilterState()


@dataclass
class Parsed:
    state: FilterState
    errors: list[str] = field(default_factory=list)


# -- parsing and formatting ---------------------------------------------------------------------


def parse_time(text: str, zone: str = "UTC") -> dt.datetime:
    """ISO 8601 date or date-time -> aware UTC. No offset: ``zone``. Raises ValueError."""
    t = text.strip()
    if not t:
        raise ValueError("empty time")
    if t.endswith(("z", "Z")):
        t = t[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(t)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    """Aware time -> ISO 8601 UTC with Z (the URL form)."""
    v = value.astimezone(dt.UTC)
    text = v.strftime("%Y-%m-%dT%H:%M:%S")
    if v.microsecond:
        text += f".{v.microsecond:06d}".rstrip("0")
    return text + "Z"


def split_list(values: Sequence[str]) -> list[str]:
    """Repeated values, each possibly a comma list -> trimmed, non-empty, de-duplicated."""
    out: list[str] = []
    for v in values:
        for part in str(v).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def check_ips(values: Sequence[str]) -> tuple[list[str], list[str]]:
    """(valid addresses/CIDR ranges, normalised; invalid entries as typed)."""
    good, bad = [], []
    for v in split_list(values):
        try:
            ip_range(v)
        except FilterError:
            bad.append(v)
            continue
        if "/" in v:
            good.append(str(ipaddress.ip_network(v, strict=False)))
        else:
            good.append(str(ipaddress.ip_address(v.strip("[]"))))
    return list(dict.fromkeys(good)), bad


def parse_params(params: Mapping[str, Sequence[str] | str], zone: str = "UTC") -> Parsed:
    """Query parameters (name -> list of values) -> FilterState plus readable errors."""

    def values(name: str) -> list[str]:
        v = params.get(name)
        if v is None:
            return []
        return [v] if isinstance(v, str) else [str(x) for x in v]

    errors: list[str] = []
    kw: dict = {}
    tz = (values("tz") or [""])[-1].strip()
    if tz and not valid_zone(tz):
        errors.append(f"unknown time zone in tz: {tz}")
        tz = ""
    kw["tz"] = tz
    zone = tz or zone
    for name in ("since", "until"):
        raw = (values(name) or [""])[-1]
        if raw.strip():
            try:
                kw[name] = parse_time(raw, zone)
            except ValueError:
                errors.append(f"{name} is not an ISO 8601 date/time (e.g. 2026-03-01T00:00:00Z): {raw}")
    rng = (values("range") or [""])[-1].strip().lower()
    if "since" in kw or "until" in kw:
        kw["range"] = "custom"
    elif rng:
        if rng in PRESETS and rng != "custom":
            kw["range"] = rng
        else:
            errors.append(f"unknown range {rng} (use 1h, 24h, 7d, 30d or all)")
    if kw.get("since") and kw.get("until") and kw["since"] >= kw["until"]:
        errors.append("since must be before until")
    for pname, attr in LIST_PARAMS.items():
        items = (
            split_list(values(pname))
            if pname in ("ip", "pid", "hour", "weekday")
            else list(dict.fromkeys(v for v in values(pname) if v != ""))
        )
        if pname == "ip":
            items, bad = check_ips(items)
            if bad:
                errors.append("not an IP address or CIDR range: " + ", ".join(bad))
        elif pname == "pid":
            good = []
            for v in items:
                if v.isdigit():
                    good.append(int(v))
                else:
                    errors.append(f"pid must be a number: {v}")
            items = good
        elif pname == "hour":
            good = []
            for v in items:
                if v.isdigit() and 0 <= int(v) <= 23:
                    good.append(int(v))
                else:
                    errors.append(f"hour must be 0 to 23: {v}")
            items = sorted(set(good))
        elif pname == "weekday":
            good = []
            for v in items:
                name = v.strip().lower()[:3]
                if name in WEEKDAY_NAMES:
                    good.append(WEEKDAY_NAMES.index(name))
                else:
                    errors.append(f"weekday must be one of {', '.join(WEEKDAY_NAMES)}: {v}")
            items = sorted(set(good))
        elif pname == "outcome":
            bad = [v for v in items if v not in OUTCOMES]
            if bad:
                errors.append("unknown outcome: " + ", ".join(bad) + " (use success, failure, unknown)")
            items = [v for v in items if v in OUTCOMES]
        kw[attr] = tuple(items)
    kw["q"] = (values("q") or [""])[-1]
    return Parsed(FilterState(**kw), errors)


def to_params(state: FilterState) -> dict[str, list[str]]:
    """FilterState -> query parameters (only what is set; lists repeated)."""
    out: dict[str, list[str]] = {}
    if state.range == "custom":
        if state.since:
            out["since"] = [format_time(state.since)]
        if state.until:
            out["until"] = [format_time(state.until)]
        if not state.since and not state.until:
            out["range"] = ["all"]
    elif state.range != DEFAULT_RANGE:
        out["range"] = [state.range]
    for pname, attr in LIST_PARAMS.items():
        vals = getattr(state, attr)
        if vals:
            out[pname] = [WEEKDAY_NAMES[v] if pname == "weekday" else str(v) for v in vals]
    if state.q:
        out["q"] = [state.q]
    if state.tz:
        out["tz"] = [state.tz]
    return out


def query_string(state: FilterState) -> str:
    """``ip=...&event=...`` (URL-encoded) for links to the explorer: ``/events?`` + this."""
    from urllib.parse import urlencode

    return urlencode([(k, v) for k, vals in to_params(state).items() for v in vals])


def _floor_minute(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def to_filters(
    state: FilterState, now: dt.datetime | None = None, *, limit: int | None = 1000, offset: int = 0,
    zone: str = "UTC",
) -> Filters:
    """The store's Filters. Presets end open ("until now") and start on a whole minute (stable
    cache keys within a minute)."""
    now = now or dt.datetime.now(dt.UTC)
    since = until = None
    if state.range == "custom":
        since, until = state.since, state.until
    else:
        delta = PRESETS.get(state.range, PRESETS[DEFAULT_RANGE])[1]
        if delta is not None:
            since = _floor_minute(now) - delta
    return Filters(
        since=since,
        until=until,
        users=state.users,
        ips=state.ips,
        events=state.events,
        outcomes=state.outcomes,
        hosts=state.hosts,
        programs=state.programs,
        pids=state.pids,
        text=state.q or None,
        hours=state.hours,
        weekdays=state.weekdays,
        zone=state.tz or zone,
        limit=limit,
        offset=offset,
    )


def local_text(value: dt.datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def range_text(state: FilterState, zone: str) -> str:
    if state.range != "custom":
        text = PRESETS.get(state.range, PRESETS[DEFAULT_RANGE])[0]
        return f"Last {text}" if text[0].isdigit() else text
    a = local_text(state.since, zone) if state.since else "the beginning"
    b = local_text(state.until, zone) if state.until else "now"
    return f"{a} to {b} ({zone})"


def summary_text(state: FilterState, zone: str) -> str:
    """One plain-text line naming every active filter (render with st.text, never Markdown)."""
    parts = [range_text(state, zone)]
    for label, vals in (
        ("user", state.users),
        ("ip", state.ips),
        ("event", state.events),
        ("outcome", state.outcomes),
        ("host", state.hosts),
        ("program", state.programs),
        ("pid", state.pids),
        ("hour", state.hours),
        ("weekday", tuple(WEEKDAY_NAMES[d] for d in state.weekdays)),
    ):
        if vals:
            parts.append(f"{label}: " + ", ".join(str(v) for v in vals))
    if state.q:
        parts.append(f'text: "{state.q}"')
    return " | ".join(parts)


def active_count(state: FilterState) -> int:
    n = sum(bool(getattr(state, a)) for a in LIST_PARAMS.values()) + bool(state.q)
    return n + (state.range != DEFAULT_RANGE)


def file_label(state: FilterState, f: Filters, now: dt.datetime | None = None) -> str:
    """``<host or all>-<since>_<until>`` for export file names (UTC, compact, filesystem-safe)."""
    import re

    host = state.hosts[0] if len(state.hosts) == 1 else ("all" if not state.hosts else "hosts")
    host = re.sub(r"\.{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "_", host)).strip("._-")[:40] or "host"

    def stamp(v: dt.datetime | None, default: str) -> str:
        return v.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ") if v else default

    now = now or dt.datetime.now(dt.UTC)
    return f"{host}-{stamp(f.since, 'start')}_{stamp(f.until or now, 'now')}"


# -- Streamlit wiring -------------------------------------------------------------------------------
#
# Programmatic changes (a URL, a one-click filter, a chart click, "Clear filters") never write
# into widget keys: they store a new *seed* FilterState and bump a generation number that is
# part of every filter widget's key, so the next run draws fresh widgets whose defaults are the
# seed. A freshly mounted widget always shows its default, so the browser can never show other
# values than the server uses (writing widget keys races with reruns that a component triggers,
# e.g. the login cookie right after sign-in). The analyst's own edits live in the widget keys.

STATE = "_secdash_filters"  # FilterState of the last run, kept across pages
SEED = "_secdash_filters_seed"  # FilterState the current widgets were created with
GEN = "_secdash_filters_gen"  # generation of the filter widgets (bumped on programmatic changes)
LAST_QS = "_secdash_filters_qs"  # the query parameters last applied or written
ERRORS = "_secdash_filter_errors"
ZONE = "_secdash_default_zone"
NAMES = (
    "range",
    "since",
    "until",
    "users",
    "ips",
    "events",
    "outcomes",
    "hosts",
    "programs",
    "pids",
    "hours",
    "weekdays",
    "q",
    "tz",
)


def url_params() -> dict[str, list[str]]:
    """The filter parameters of the current URL (reading only)."""
    qp = st.query_params
    return {k: qp.get_all(k) for k in PARAMS if k in qp}


def _key(name: str) -> str:
    return f"flt_{name}_{st.session_state.get(GEN, 0)}"


def epoch() -> int:
    """Generation of the filter widgets; use it in keys of selections that a filter change resets."""
    return int(st.session_state.get(GEN, 0))


def _naive_local(value: dt.datetime | None, zone: str) -> dt.datetime | None:
    return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None) if value else None


def _apply(state: FilterState) -> None:
    """Make ``state`` the filters: new widgets with it as their defaults on the next draw."""
    ss = st.session_state
    ss[SEED] = state
    ss[STATE] = state
    ss[GEN] = ss.get(GEN, 0) + 1


def default_zone(cfg) -> str:
    """The configured display zone, else the browser's, else the server's."""
    if cfg.ui.display_zone:
        return cfg.ui.display_zone
    try:
        browser = st.context.timezone
    except Exception:  # noqa: BLE001 - no browser context (tests)
        browser = None
    if isinstance(browser, str) and valid_zone(browser):
        return browser
    return cfg.display_zone


def begin(cfg) -> str:
    """Decide where this run's filters come from (URL, the session, defaults).

    A URL that differs from what this session last wrote wins (a pasted or bookmarked link, also
    one opened before logging in: the gate keeps the query string); a URL without filter
    parameters (coming from another page) gets the session's filters. Returns the default display
    zone. Call after the login gate, before :func:`render`.
    """
    ss = st.session_state
    zone = default_zone(cfg)
    ss[ZONE] = zone
    params = url_params()
    if params and params != ss.get(LAST_QS):
        parsed = parse_params(params, zone)
        ss[ERRORS] = parsed.errors
        _apply(parsed.state)
        ss[LAST_QS] = params
    elif SEED not in ss or _key("range") not in ss:
        # first run, or back from another page (its widgets were cleaned up)
        _apply(ss.get(STATE) or FilterState())
    return zone


def _merge(options: Sequence, selected: Sequence) -> list:
    return list(dict.fromkeys([*selected, *options]))


def _value(name: str, seed: FilterState, zone: str):
    """The widget's current value (its key), else the seed's value in widget form."""
    key = _key(name)
    if key in st.session_state:
        return st.session_state[key]
    return _seed_value(name, seed, zone)


def _seed_value(name: str, seed: FilterState, zone: str):
    tz = seed.tz or zone
    if name in ("since", "until"):
        return _naive_local(getattr(seed, name), tz)
    if name == "ips":
        return ", ".join(seed.ips)
    if name == "pids":
        return ", ".join(str(p) for p in seed.pids)
    if name == "weekdays":
        return [WEEKDAY_NAMES[d] for d in seed.weekdays]
    if name == "tz":
        return tz
    v = getattr(seed, name)
    return list(v) if isinstance(v, tuple) else v


def _from_widgets(zone: str) -> tuple[FilterState, list[str]]:
    ss = st.session_state
    seed = ss.get(SEED) or FilterState()
    errors: list[str] = []
    tz = _value("tz", seed, zone) or zone
    if not valid_zone(tz):
        tz = zone
    rng = _value("range", seed, zone) or DEFAULT_RANGE
    since = until = None
    if rng == "custom":
        for name in ("since", "until"):
            v = _value(name, seed, zone)
            if isinstance(v, dt.datetime):
                val = v.replace(tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
                if name == "since":
                    since = val
                else:
                    until = val
        if since and until and since >= until:
            errors.append("The start of the time range must be before its end.")
    ips, bad = check_ips([_value("ips", seed, zone) or ""])
    if bad:
        errors.append(
            "Not an IP address or CIDR range: "
            + ", ".join(bad)
            + ". Use addresses or ranges like 203.0.113.7, 203.0.113.0/24, 2001:db8::/32, "
            "separated by commas."
        )
    pids = []
    for v in split_list([_value("pids", seed, zone) or ""]):
        if v.isdigit():
            pids.append(int(v))
        else:
            errors.append(f"Not a process id (a number): {v}")
    state = FilterState(
        range=rng,
        since=since,
        until=until,
        users=tuple(_value("users", seed, zone) or ()),
        ips=tuple(ips),
        events=tuple(_value("events", seed, zone) or ()),
        outcomes=tuple(_value("outcomes", seed, zone) or ()),
        hosts=tuple(_value("hosts", seed, zone) or ()),
        programs=tuple(_value("programs", seed, zone) or ()),
        pids=tuple(dict.fromkeys(pids)),
        hours=tuple(sorted(int(h) for h in (_value("hours", seed, zone) or ()))),
        weekdays=tuple(sorted(WEEKDAY_NAMES.index(d) for d in (_value("weekdays", seed, zone) or ()))),
        q=(_value("q", seed, zone) or "").strip(),
        tz="" if tz == zone else tz,
    )
    return state, errors


def set_filters(**changes) -> None:
    """Change filters programmatically (one-click filters, chart clicks); works in callbacks."""
    state, _ = _from_widgets(st.session_state.get(ZONE, "UTC"))
    _apply(replace(state, **changes))


def clear() -> None:
    """Callback of "Clear filters": defaults, keeping the chosen display zone."""
    state, _ = _from_widgets(st.session_state.get(ZONE, "UTC"))
    st.session_state[ERRORS] = []
    _apply(FilterState(tz=state.tz))


def _zones(default: str, current: str) -> list[str]:
    common = [default, current, "UTC"]
    return list(dict.fromkeys([*common, *sorted(z for z in available_timezones() if "/" in z)]))


def render(cfg, zone: str, options: Mapping[str, Sequence[str]]) -> tuple[FilterState, str, list[str]]:
    """Draw the filter widgets; returns (state, display zone, errors). Writes the URL.

    ``options``: value lists for users, hosts, programs (from the data).
    """
    ss = st.session_state
    seed = ss.get(SEED) or FilterState()

    def d(name: str):
        return _seed_value(name, seed, zone)

    top = st.columns([5, 2, 1.2], vertical_alignment="bottom")
    with top[0]:
        st.segmented_control(
            "Time range",
            list(PRESETS),
            format_func=lambda k: PRESETS[k][0],
            default=d("range"),
            key=_key("range"),
            required=True,
        )
    tz_now = _value("tz", seed, zone)
    with top[1]:
        zones = _zones(zone, tz_now)
        st.selectbox(
            "Display time zone", zones, index=zones.index(d("tz")) if d("tz") in zones else 0, key=_key("tz")
        )
    with top[2]:
        st.button("Clear filters", on_click=clear, icon=":material/filter_alt_off:", width="stretch")
    if _value("range", seed, zone) == "custom":
        c = st.columns(2)
        with c[0]:
            st.datetime_input(f"From ({tz_now})", value=d("since"), key=_key("since"), format="YYYY-MM-DD")
        with c[1]:
            st.datetime_input(
                f"To ({tz_now}, exclusive)", value=d("until"), key=_key("until"), format="YYYY-MM-DD"
            )
    row = st.columns(4)
    with row[0]:
        st.multiselect(
            "Users",
            _merge(options.get("users", ()), d("users")),
            default=d("users"),
            key=_key("users"),
            accept_new_options=True,
            placeholder="Any user (type to search or add)",
        )
    with row[1]:
        st.text_input(
            "IPs or CIDR ranges", value=d("ips"), key=_key("ips"), placeholder="203.0.113.7, 198.51.100.0/24"
        )
    with row[2]:
        st.multiselect(
            "Event types",
            _merge(EVENTS, d("events")),
            default=d("events"),
            key=_key("events"),
            placeholder="Any event",
        )
    with row[3]:
        st.multiselect(
            "Outcome", list(OUTCOMES), default=d("outcomes"), key=_key("outcomes"), placeholder="Any outcome"
        )
    row = st.columns(4)
    with row[0]:
        st.multiselect(
            "Hosts",
            _merge(options.get("hosts", ()), d("hosts")),
            default=d("hosts"),
            key=_key("hosts"),
            accept_new_options=True,
            placeholder="Any host",
        )
    with row[1]:
        st.multiselect(
            "Programs",
            _merge(options.get("programs", ()), d("programs")),
            default=d("programs"),
            key=_key("programs"),
            accept_new_options=True,
            placeholder="Any program",
        )
    with row[2]:
        st.text_input("Process ids", value=d("pids"), key=_key("pids"), placeholder="e.g. 4242")
        hc = st.columns(2)
        with hc[0]:
            st.multiselect("Hours", list(range(24)), default=d("hours"), key=_key("hours"), placeholder="Any hour")
        with hc[1]:
            st.multiselect(
                "Weekdays", list(WEEKDAY_NAMES), default=d("weekdays"), key=_key("weekdays"),
                format_func=str.capitalize, placeholder="Any day",
            )
    with row[3]:
        st.text_input(
            "Text in message", value=d("q"), key=_key("q"), placeholder="substring, case-insensitive"
        )
    state, errors = _from_widgets(zone)
    url_errors = ss.pop(ERRORS, None) or []
    ss[STATE] = state
    params = to_params(state)
    if params != url_params():
        st.query_params.from_dict(params)
    ss[LAST_QS] = params
    return state, state.tz or zone, [*url_errors, *errors]
