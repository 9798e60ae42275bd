"""Events explorer: URL <-> filter state, query building, escaping in figures, the audited
spreadsheet-safe export with hostile values, and AppTest wiring of the page (filters in the URL,
after login, across pages, clear, errors, empty states)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from secdash import audit, auth
from secdash import store as core
from secdash.parse import YearState, parse_lines
from secdash.ui import data, figures
from secdash.ui import filters as flt
from secdash.ui.filters import FilterState

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
ADMIN, ADMIN_PW = "boss", "chief-secret-123"
ANALYST, ANALYST_PW = "ann", "lovely weather 77"

HOSTILE = ["=cmd|' /C calc'!A0", "<script>alert(1)</script>", "**bold**", "+1+1", "-2+3", "@SUM(A1)"]
LINES = [
    "Mar  1 10:00:00 web-01 sshd[100]: Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2",
    "Mar  1 10:00:01 web-01 sshd[100]: Failed password for root from 203.0.113.5 port 4001 ssh2",
    "Mar  1 10:00:02 web-01 sshd[101]: Failed password for alice from 198.51.100.7 port 4002 ssh2",
    "Mar  1 10:05:00 web-01 sshd[102]: Accepted password for alice from 198.51.100.7 port 4003 ssh2",
    "Mar  2 11:00:01 db-01 sshd[201]: Accepted publickey for bob from 2001:db8:1::9 port 5001 ssh2: ED25519 SHA256:abc",
    "Mar  3 12:00:00 db-01 sudo:      bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/ls",
    *[
        f"Mar  4 0{i}:00:00 web-02 sshd[{300 + i}]: Failed password for invalid user {u} from 203.0.113.9 port "
        f"{6000 + i} ssh2"
        for i, u in enumerate(HOSTILE)
    ],
]
SINCE = "2026-03-01T00:00:00Z"


def _frame(lines=LINES):
    return parse_lines(lines, tz="UTC", source="/var/log/auth.log", year_state=YearState(2026))


@pytest.fixture
def home(home):
    (home / "config.toml").write_text('[ingest]\nbackground = false\n\n[ui]\ndisplay_zone = "UTC"\n')
    auth.add_user(home, ADMIN, ADMIN_PW, "admin", now=time.time())
    auth.add_user(home, ANALYST, ANALYST_PW, "analyst", now=time.time())
    data.clear_caches()
    yield home
    data.clear_caches()


@pytest.fixture
def filled(home):
    s = core.Store(home / core.DB_NAME)
    with s.write() as con:
        core.insert_events(con, _frame())
    return home


# -- URL contract ------------------------------------------------------------------------------------


def test_issue_example_url_parses():
    p = flt.parse_params(
        {"ip": ["203.0.113.0/24"], "event": ["ssh_failed_auth"], "since": ["2026-03-01T00:00:00Z"]}
    )
    assert p.errors == []
    assert p.state == FilterState(
        range="custom",
        since=dt.datetime(2026, 3, 1, tzinfo=UTC),
        ips=("203.0.113.0/24",),
        events=("ssh_failed_auth",),
    )
    f = flt.to_filters(p.state)
    assert f.since == dt.datetime(2026, 3, 1, tzinfo=UTC) and f.until is None
    assert list(f.ips) == ["203.0.113.0/24"] and list(f.events) == ["ssh_failed_auth"]


def test_lists_are_repeated_and_ips_may_be_comma_lists():
    p = flt.parse_params(
        {
            "user": ["root", "=cmd|' /C calc'!A0", "root"],
            "ip": ["10.0.0.1, 2001:db8::/32", "10.0.0.1"],
            "host": ["web-01", "db-01"],
            "program": ["sshd"],
            "outcome": ["failure", "success"],
            "pid": ["42"],
            "q": ["Failed pass"],
        }
    )
    assert p.errors == []
    s = p.state
    assert s.users == ("root", "=cmd|' /C calc'!A0")
    assert s.ips == ("10.0.0.1", "2001:db8::/32")
    assert s.hosts == ("web-01", "db-01") and s.programs == ("sshd",) and s.outcomes == ("failure", "success")
    assert s.pids == (42,) and s.q == "Failed pass" and s.range == flt.DEFAULT_RANGE


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ip": ["10.0.0.300"]}, "not an IP address or CIDR range: 10.0.0.300"),
        ({"ip": ["evil.example.com"]}, "not an IP address or CIDR range: evil.example.com"),
        ({"ip": ["10.0.0.0/33"]}, "not an IP address or CIDR range: 10.0.0.0/33"),
        ({"since": ["yesterday"]}, "since is not an ISO 8601 date/time"),
        ({"since": ["2026-03-02"], "until": ["2026-03-01"]}, "since must be before until"),
        ({"range": ["2w"]}, "unknown range 2w"),
        ({"outcome": ["maybe"]}, "unknown outcome: maybe"),
        ({"pid": ["12a"]}, "pid must be a number: 12a"),
        ({"tz": ["Mars/Base"]}, "unknown time zone in tz: Mars/Base"),
    ],
)
def test_bad_parameters_give_clear_errors(params, message):
    p = flt.parse_params(params)
    assert any(message in e for e in p.errors), p.errors


def test_times_without_offset_are_in_the_display_zone_and_dates_mean_midnight():
    p = flt.parse_params({"since": ["2026-03-01"], "until": ["2026-03-02T06:30"]}, zone="America/New_York")
    assert p.state.since == dt.datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert p.state.until == dt.datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
    p = flt.parse_params({"since": ["2026-03-01T00:00:00+02:00"], "tz": ["Asia/Tokyo"]}, zone="UTC")
    assert p.state.since == dt.datetime(2026, 2, 28, 22, tzinfo=UTC) and p.state.tz == "Asia/Tokyo"


@pytest.mark.parametrize(
    "state",
    [
        FilterState(),
        FilterState(range="7d", users=("root", "**bold**"), ips=("203.0.113.0/24",), q="a&b=c"),
        FilterState(
            range="custom",
            since=dt.datetime(2026, 3, 1, tzinfo=UTC),
            until=dt.datetime(2026, 3, 2, 12, tzinfo=UTC),
            events=("ssh_failed_auth", "sudo_command"),
            outcomes=("failure",),
            hosts=("web-01",),
            programs=("sshd",),
            pids=(4242,),
            tz="Europe/Berlin",
        ),
        FilterState(range="custom"),
        FilterState(range="all"),
    ],
)
def test_state_round_trips_through_the_url(state):
    params = flt.to_params(state)
    back = flt.parse_params(params).state
    if state.range == "custom" and not state.since and not state.until:
        assert back.range == "all"  # an open custom range is "all time"
    else:
        assert back == state
    assert all(isinstance(v, list) for v in params.values())


def test_query_string_for_links_from_other_pages():
    s = FilterState(
        range="custom",
        since=dt.datetime(2026, 3, 1, tzinfo=UTC),
        ips=("203.0.113.0/24",),
        events=("ssh_failed_auth",),
    )
    assert flt.query_string(s) == "since=2026-03-01T00%3A00%3A00Z&ip=203.0.113.0%2F24&event=ssh_failed_auth"
    assert flt.query_string(FilterState()) == ""


def test_presets_resolve_to_whole_minutes_and_stay_open_ended():
    now = dt.datetime(2026, 3, 5, 12, 34, 56, 789, tzinfo=UTC)
    f = flt.to_filters(FilterState(range="1h"), now)
    assert f.since == dt.datetime(2026, 3, 5, 11, 34, tzinfo=UTC) and f.until is None
    assert flt.to_filters(FilterState(range="7d"), now).since == dt.datetime(2026, 2, 26, 12, 34, tzinfo=UTC)
    assert flt.to_filters(FilterState(range="all"), now).since is None
    f = flt.to_filters(FilterState(q="", pids=(7,)), now, limit=50, offset=100)
    assert f.text is None and list(f.pids) == [7] and f.limit == 50 and f.offset == 100


def test_summary_is_plain_text_naming_every_filter():
    s = FilterState(
        range="custom",
        since=dt.datetime(2026, 3, 1, tzinfo=UTC),
        users=("**bold**", "<b>x</b>"),
        ips=("10.0.0.0/8",),
        pids=(9,),
        q="x",
    )
    text = flt.summary_text(s, "America/New_York")
    assert text == (
        "2026-02-28 19:00 to now (America/New_York) | user: **bold**, <b>x</b> | ip: 10.0.0.0/8 | "
        'pid: 9 | text: "x"'
    )
    assert flt.summary_text(FilterState(), "UTC") == "Last 24 hours"


def test_export_file_label_names_host_and_range():
    f = core.Filters(since=dt.datetime(2026, 3, 1, tzinfo=UTC), until=dt.datetime(2026, 3, 2, tzinfo=UTC))
    assert flt.file_label(FilterState(hosts=("web-01",)), f) == "web-01-20260301T0000Z_20260302T0000Z"
    assert flt.file_label(FilterState(hosts=("../../etc",)), f).startswith("etc-")
    now = dt.datetime(2026, 3, 3, tzinfo=UTC)
    assert (
        flt.file_label(FilterState(), core.Filters(since=None, until=None), now) == "all-start_20260303T0000Z"
    )


# -- query building (store + data layer) ---------------------------------------------------------------


def test_filters_key_round_trip_and_query_building(filled):
    f = flt.to_filters(
        flt.parse_params({"ip": ["203.0.113.0/24"], "since": [SINCE], "outcome": ["failure"]}).state
    )
    key = data.filters_key(f)
    assert data.filters_key(data.filters_from_key(key)) == key
    s = core.Store(filled / core.DB_NAME)
    df, total = s.query_events(f)
    assert total == 2 + len(HOSTILE)
    assert set(df["src_ip"]) == {"203.0.113.5", "203.0.113.9"}
    assert list(df["ts"]) == sorted(df["ts"], reverse=True)  # newest first
    # the session filter: host + pid
    f2 = flt.to_filters(FilterState(range="all", hosts=("web-01",), pids=(100,)))
    assert s.count_events(f2) == 2
    where, params = core.where_clause(f2)
    assert "pid IN (?)" in where and 100 in params


# -- figures: escaping ----------------------------------------------------------------------------------


def _texts(fig) -> list[str]:
    out = []
    d = fig.to_plotly_json()
    for tr in d["data"]:
        for k in ("x", "y", "text", "name", "hovertemplate"):
            v = tr.get(k)
            if v is None:
                continue
            out.extend(str(x) for x in (v if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else [v]))
    out.append(str(d["layout"].get("title")))
    return out


def test_label_escapes_and_caps():
    assert figures.label("<a href='x'>y</a>") == "&lt;a href=&#x27;x&#x27;&gt;y&lt;/a&gt;"
    assert figures.label("a" * 300).endswith("…") and len(figures.label("a" * 300)) == figures.MAX_LABEL
    assert figures.label("a\x1bb") == "a\\x1bb"
    assert figures.label(None) == "(none)"


def test_figures_never_carry_raw_log_html(filled):
    s = core.Store(filled / core.DB_NAME)
    f = flt.to_filters(FilterState(range="all"), limit=None)
    figs = [
        figures.top_users(s.user_rollup(f, 20)),
        figures.top_ips(s.count_by("src_ip", f, 10)),
        figures.bar_h(HOSTILE + ["<br>", "a" * 300], list(range(8)), "t"),
    ]
    sudo = __import__("pandas").DataFrame(
        {"a": ["<b>bob</b>", "bob"], "b": ["<a href=x>ls</a>", "/bin/ls"], "events": [1, 2]}
    )
    figs.append(figures.sudo_by_user(sudo))
    figs.append(
        figures.by_method(
            __import__("pandas").DataFrame({"a": ["<i>pw</i>"], "b": ["failure"], "events": [3]})
        )
    )
    for fig in figs:
        assert fig is not None
        for text in _texts(fig):
            for tag in ("<script", "<a ", "<a>", "<b>", "<i>", "<br>h", '<br>"', "</"):
                if tag == "</" and text.endswith("<extra></extra>"):
                    text = text[: -len("<extra></extra>")]
                assert tag not in text.replace("<br>%{", "").replace("<br>", "\n"), (tag, text)
    # the raw values travel only in customdata, for click-to-filter
    users = {c[0] for tr in figs[0].data for c in tr.customdata}
    assert "<script>alert(1)</script>" in users and "=cmd|' /C calc'!A0" in users
    ticks = [str(y) for tr in figs[0].data for y in tr.y]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ticks


def test_timeline_and_heatmap_builders(filled):
    s = core.Store(filled / core.DB_NAME)
    f = flt.to_filters(FilterState(range="all"), limit=None)
    tl = s.timeline(f)
    fig = figures.timeline(tl, tl.attrs["bucket_seconds"], "America/New_York")
    assert {tr.name for tr in fig.data} <= {"failure", "success", "unknown"}
    assert all(c[0].endswith("Z") for tr in fig.data for c in tr.customdata)
    assert figures.heatmap(s.hour_weekday(f, tz="UTC"), "UTC") is not None
    assert figures.timeline(tl.iloc[:0], 3600, "UTC") is None
    assert figures.selected_custom({"selection": {"points": [{"customdata": ["x"]}, {"x": 1}]}}) == [["x"]]


# -- export: spreadsheet-safe CSV with hostile values, JSON lines, audit ------------------------------------


def _export(home, fmt: str, state: FilterState) -> bytes:
    from secdash.config import load
    from secdash.ui import events

    cfg = load(home)
    f = flt.to_filters(state, limit=None)
    return events._exporter(cfg, f, fmt, ADMIN, "192.0.2.1")()


def test_csv_export_neutralises_hostile_cells_and_keeps_numbers(filled):
    raw = _export(filled, "csv", FilterState(range="all", ips=("203.0.113.9",)))
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(HOSTILE)
    users = {r["user"] for r in rows}
    assert users == {"'" + u if u[0] in "=+-@" else u for u in HOSTILE}
    assert "'=cmd|' /C calc'!A0" in users and "<script>alert(1)</script>" in users
    for r in rows:
        assert not r["user"].startswith(("=", "+", "-", "@"))
        assert r["src_port"].isdigit() and r["pid"].isdigit() and r["id"].isdigit()  # numbers stay numbers
        assert r["message"].startswith("Failed password")
    # every export is audited with the user and the filter summary; nothing left in tmp
    rec = [e for e in audit.read(filled) if e["action"] == "export"][-1]
    assert rec["user"] == ADMIN and rec["ip"] == "192.0.2.1" and rec["rows"] == len(HOSTILE)
    assert rec["ips"] == ["203.0.113.9"] and rec["format"] == "csv"
    assert list((filled / "tmp").iterdir()) == []


def test_jsonl_export_is_the_whole_result_unchanged(filled):
    raw = _export(filled, "jsonl", FilterState(range="all"))
    objs = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(objs) == len(LINES)
    assert {o["user"] for o in objs} >= set(HOSTILE)
    assert objs[0]["ts"] > objs[-1]["ts"]  # newest first, like the table


# -- AppTest: the page ----------------------------------------------------------------------------------


def _app(script: str = "pages/events.py") -> AppTest:
    return AppTest.from_file(str(ROOT / script), default_timeout=60)


def _login(at: AppTest, username: str = ADMIN, password: str = ADMIN_PW) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    next(b for b in at.button if b.label == "Login").click()
    return at.run()


def _widgets(at: AppTest) -> dict:
    out = {w.label: w.value for w in [*at.multiselect, *at.text_input, *at.selectbox]}
    out.update({w.label: w.value for w in at.get("button_group")})
    return out


def _count(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.endswith(("event", "events")))


def _qp(at: AppTest) -> dict:
    out = {}
    for k, v in dict(at.query_params).items():
        out[k] = list(v) if isinstance(v, (list, tuple)) else [v]
    return out


def test_link_opened_before_login_applies_after_login(filled):
    at = _app()
    at.query_params["ip"] = "203.0.113.0/24"
    at.query_params["event"] = "ssh_failed_auth"
    at.query_params["since"] = SINCE
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]  # only the gate
    assert not at.dataframe and not at.get("plotly_chart")
    at = _login(at)
    assert not at.exception
    w = _widgets(at)
    assert w["IPs or CIDR ranges"] == "203.0.113.0/24" and w["Event types"] == ["ssh_failed_auth"]
    assert w["Time range"] == "custom"
    assert _count(at) == f"{2 + len(HOSTILE)} events"
    assert (
        at.text[0].value
        == "Filters: 2026-03-01 00:00 to now (UTC) | ip: 203.0.113.0/24 | event: ssh_failed_auth"
    )
    table = at.dataframe[0].value
    assert len(table) == 2 + len(HOSTILE)
    assert set(table["user"]) == {"admin", "root", *HOSTILE}  # the table shows values as they are
    assert len(at.get("plotly_chart")) >= 4
    assert _qp(at) == {"ip": ["203.0.113.0/24"], "event": ["ssh_failed_auth"], "since": [SINCE]}


def test_widget_changes_write_the_url_and_clear_resets(filled):
    at = _login(_app().run())
    at.get("button_group")[0].set_value("all").run()
    assert _count(at) == f"{len(LINES)} events"
    next(t for t in at.text_input if t.label == "IPs or CIDR ranges").input(
        "198.51.100.0/24, 2001:db8:1::9"
    ).run()
    next(m for m in at.multiselect if m.label == "Users").set_value(["alice", "bob"]).run()
    assert not at.exception
    assert _count(at) == "3 events"
    assert _qp(at) == {"range": ["all"], "user": ["alice", "bob"], "ip": ["198.51.100.0/24", "2001:db8:1::9"]}
    next(b for b in at.button if b.label == "Clear filters").click().run()
    assert not at.exception
    assert _qp(at) == {}
    w = _widgets(at)
    assert w["Users"] == [] and w["IPs or CIDR ranges"] == "" and w["Time range"] == flt.DEFAULT_RANGE


def test_bad_ip_input_shows_a_clear_message_and_no_results(filled):
    at = _login(_app().run())
    next(t for t in at.text_input if t.label == "IPs or CIDR ranges").input("10.0.0.1, 300.1.1.1, <b>x").run()
    assert not at.exception
    assert at.error[0].value == "Fix the filters to see events:"
    assert "Not an IP address or CIDR range: 300.1.1.1, <b>x." in at.code[0].value
    assert not at.dataframe and not at.get("plotly_chart")
    assert not any(h.value.endswith("events") for h in at.subheader)


def test_bad_url_parameters_are_reported(filled):
    at = _app()
    at.query_params["ip"] = "not-an-ip"
    at = _login(at.run())
    assert at.error and "not an IP address or CIDR range: not-an-ip" in at.code[0].value


def test_no_match_and_empty_store_and_demo_messages(home, filled):
    at = _app()
    at.query_params["user"] = "nobody-at-all"
    at.query_params["range"] = "all"
    at = _login(at.run())
    assert _count(at) == "0 events"
    assert "No events match these filters" in at.info[0].value
    assert not at.dataframe


def test_empty_store_says_what_to_do(home):
    at = _login(_app().run())
    assert not at.exception
    assert any("No events stored yet" in i.value and "python -m secdash demo" in i.value for i in at.info)
    assert not at.dataframe


def test_demo_data_is_announced(filled):
    s = core.Store(filled / core.DB_NAME)
    s.set_meta("demo", "true")
    data.clear_caches()
    at = _login(_app().run())
    assert any(i.value.startswith("Demo data:") for i in at.info)


def test_filters_persist_across_pages_and_come_back_into_the_url(filled):
    at = _login(_app("app.py").run())
    assert not at.exception
    at.switch_page(str(ROOT / "pages/events.py")).run()
    assert not at.exception
    next(m for m in at.multiselect if m.label == "Users").set_value(["root"]).run()
    at.get("button_group")[0].set_value("all").run()
    assert _count(at) == "2 events"  # user or target_user (sudo to root)
    at.switch_page(str(ROOT / "pages/overview.py")).run()
    for k in list(dict(at.query_params)):  # a sidebar link carries no query string
        del at.query_params[k]
    at.switch_page(str(ROOT / "pages/events.py")).run()
    assert not at.exception
    assert _widgets(at)["Users"] == ["root"]
    assert _count(at) == "2 events"  # user or target_user (sudo to root)
    assert _qp(at) == {"range": ["all"], "user": ["root"]}


def _chart_click_app():
    import streamlit as st

    from secdash.config import load
    from secdash.ui import events, filters

    cfg = load()
    zone = filters.begin(cfg)
    state, display, _errors = filters.render(cfg, zone, {})
    st.text(filters.summary_text(state, display))

    def click(kind, cd, secs=3600):
        st.session_state["fake_chart"] = {"selection": {"points": [{"customdata": cd}]}}
        events._on_chart("fake_chart", kind, secs)

    st.button("ip", on_click=click, args=("ip", ["203.0.113.9"]))
    st.button("user", on_click=click, args=("user", ["<script>alert(1)</script>"]))
    st.button("timeline", on_click=click, args=("timeline", ["2026-03-01T10:00:00Z", "failure"], 3600))
    st.button("sudo", on_click=click, args=("sudo", ["bob"]))
    st.button("session", on_click=filters.set_filters, kwargs={"hosts": ("web-01",), "pids": (100,)})


def test_chart_clicks_and_one_click_filters_set_filters_and_url(home):
    at = AppTest.from_function(_chart_click_app, default_timeout=30).run()
    assert not at.exception

    def click(label):
        next(b for b in at.button if b.label == label).click().run()
        assert not at.exception
        return _qp(at)

    assert click("ip") == {"ip": ["203.0.113.9"]}
    assert _widgets(at)["IPs or CIDR ranges"] == "203.0.113.9"
    assert click("user") == {"ip": ["203.0.113.9"], "user": ["<script>alert(1)</script>"]}
    assert _widgets(at)["Users"] == ["<script>alert(1)</script>"]
    assert click("timeline") == {
        "since": ["2026-03-01T10:00:00Z"],
        "until": ["2026-03-01T11:00:00Z"],
        "ip": ["203.0.113.9"],
        "user": ["<script>alert(1)</script>"],
    }
    assert _widgets(at)["Time range"] == "custom"
    assert click("sudo")["event"] == ["sudo_command"] and _qp(at)["user"] == ["bob"]
    q = click("session")
    assert q["host"] == ["web-01"] and q["pid"] == ["100"]
    assert _widgets(at)["Process ids"] == "100"
    assert at.text[0].value.endswith("host: web-01 | pid: 100")


def test_fast_page_query_equals_the_store_query(filled):
    s = core.Store(filled / core.DB_NAME)
    cases = [
        core.Filters(limit=3),
        core.Filters(limit=4, offset=5),
        core.Filters(limit=100),
        core.Filters(limit=2, sort="user", descending=False),
        core.Filters(limit=5, ips=["203.0.113.0/24"]),
        core.Filters(limit=5, users=["nobody"]),
    ]
    with s.read() as con:
        for f in cases:
            a, ta = data.page_of_events(con, f)
            b, tb = core.query_events(con, f)
            assert ta == tb
            assert a.reset_index(drop=True).equals(b.reset_index(drop=True)), f


@pytest.mark.parametrize(
    "f",
    [
        core.Filters(limit=None),
        core.Filters(limit=None, text="password"),
        core.Filters(limit=None, outcomes=["success"]),
        core.Filters(limit=None, ips=["203.0.113.0/24"], text="invalid"),
    ],
)
@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kathmandu"])
def test_chart_frames_match_the_store_aggregates(filled, f, tz):
    s = core.Store(filled / core.DB_NAME)
    with s.read() as con:
        c = data.chart_frames(con, f, tz)
        tl = core.timeline(con, f)
        assert c["bucket_seconds"] == tl.attrs["bucket_seconds"]
        assert c["timeline"].equals(tl)
        assert c["heat"].equals(core.hour_weekday(con, f, tz=tz))
        users = core.rollup(con, f, "user", limit=10)
        assert c["top_users"][["key", "events", "failures", "successes"]].equals(
            users[["key", "events", "failures", "successes"]]
        )
        if f.outcomes:
            assert c["top_ips"] is None
        else:
            from dataclasses import replace

            assert list(c["top_ips"]["value"]) == list(
                core.count_by(con, "src_ip", replace(f, outcomes=["failure"]), limit=10)["value"].dropna()
            )
        assert int(c["method"]["events"].sum()) == int(
            core.count_by(con, "method", f)["events"][core.count_by(con, "method", f)["value"].notna()].sum()
        )
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0


def test_paged_export_batches_equal_the_store_order(filled):
    import pyarrow as pa

    s = core.Store(filled / core.DB_NAME)
    with s.write() as con:  # rows without a usable time, and two rows with the same time
        core.insert_events(con, _frame(["no syslog header here", "another bare line", LINES[0], LINES[0]]))
    for f in (
        core.Filters(limit=None),
        core.Filters(limit=None, hosts=["web-01"]),
        core.Filters(limit=None, users=["nobody"]),
    ):
        with s.read() as con:
            want = [i for b in core.iter_arrow(con, f) for i in b.column("id").to_pylist()]
            nulls = con.execute("SELECT count(*) FROM events WHERE ts IS NULL").fetchone()[0]
        for page in (1, 3, 1000):
            got = list(data.iter_export_batches(s, f, page=page))
            assert [i for b in got for i in b.column("id").to_pylist()] == want, (f, page)
    assert nulls >= 2
    assert pa


def test_chart_pass_counts_the_matches(filled):
    s = core.Store(filled / core.DB_NAME)
    with s.read() as con:
        for f in (
            core.Filters(limit=None),
            core.Filters(limit=None, text="invalid"),
            core.Filters(users=["x"]),
        ):
            assert data.chart_frames(con, f)["total"] == core.count_events(con, f)
        df, total = data.page_of_events(con, core.Filters(limit=2), with_total=False)
        assert total is None and len(df) == 2


def test_unreadable_source_is_reported_with_what_to_do(filled):
    s = core.Store(filled / core.DB_NAME)
    with s.write() as con:
        con.execute(
            "INSERT INTO ingest_state (file_id, source, path, line, updated) VALUES (1, '/var/log/auth.log', "
            "'/var/log/auth.log', 1, now())"
        )
        con.execute(
            "INSERT INTO ingest_runs VALUES (now(), '/var/log/auth.log', 1, 0, 0, 0, 0.1, "
            "'permission denied: /var/log/auth.log')"
        )
    data.clear_caches()
    at = _app()
    at.query_params["range"] = "all"
    at = _login(at.run())
    assert not at.exception
    assert any("cannot be read" in w.value and "adm" in w.value for w in at.warning)
    assert "/var/log/auth.log: permission denied: /var/log/auth.log" in at.code[0].value
    assert at.dataframe  # the stored events are still shown


def test_raw_line_rebuilds_the_syslog_header():
    from secdash.ui.events import raw_line

    ev = {
        "ts": dt.datetime(2026, 3, 1, 15, 0, 1, tzinfo=UTC),
        "host": "web-01",
        "program": "sshd",
        "pid": 100,
        "message": "Failed password for <b>root</b> from 203.0.113.5 port 4001 ssh2",
    }
    assert raw_line(ev, "America/New_York") == (
        "Mar 01 10:00:01 web-01 sshd[100]: Failed password for <b>root</b> from 203.0.113.5 port 4001 ssh2"
    )
    assert raw_line({"message": "bare"}, "UTC") == "- bare"


def test_hour_and_weekday_filters_from_the_url_to_sql(tmp_path):
    """Heatmap cells filter by hour of day and weekday in the display zone."""
    import datetime as dt

    import polars as pl

    from secdash.events import SCHEMA
    from secdash.store import Filters, FilterError, Store, insert_events
    from secdash.ui.filters import parse_params, to_filters, to_params

    parsed = parse_params({"hour": ["3", "25"], "weekday": ["Tue", "xyz"], "range": ["all"]}, "UTC")
    assert parsed.state.hours == (3,) and parsed.state.weekdays == (1,)
    assert any("hour" in e for e in parsed.errors) and any("weekday" in e for e in parsed.errors)
    assert to_params(parsed.state) == {"range": ["all"], "hour": ["3"], "weekday": ["tue"]}

    store = Store(tmp_path / "e.duckdb")
    store.ensure()
    # Tuesday 2026-03-03 02:30 UTC = 03:30 in Berlin; Wednesday 02:30 UTC
    times = [dt.datetime(2026, 3, 3, 2, 30, tzinfo=dt.timezone.utc), dt.datetime(2026, 3, 4, 2, 30, tzinfo=dt.timezone.utc)]
    df = pl.DataFrame({"ts": times, "event": ["unknown", "unknown"], "outcome": ["unknown", "unknown"],
                       "message": ["a", "b"], "count": [1, 1], "line": [1, 2]})
    df = df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items()])
    with store.write() as con:
        insert_events(con, df)
    f = to_filters(parsed.state, limit=None, zone="Europe/Berlin")
    rows, total = store.query_events(f)
    assert total == 1 and rows["message"].tolist() == ["a"]
    assert store.count_events(Filters(hours=[2], zone="UTC")) == 2
    assert store.count_events(Filters(weekdays=[2], zone="UTC")) == 1
    with pytest.raises(FilterError):
        store.count_events(Filters(hours=[24]))
    with pytest.raises(FilterError):
        store.count_events(Filters(hours=[1], zone="Mars/Base"))
