"""Live page: AppTest of the page body with a fake psutil, the login re-check, escaping."""

from __future__ import annotations

import socket
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_metrics import T0, FakeProc, FakePs, conn, make

from secdash import metrics
from secdash.ui import live

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gate(monkeypatch):
    """Stand-in for secdash.ui.auth (the real gate is tested with the auth issue)."""
    state = {"alive": True, "require_login_calls": 0}
    fake = types.ModuleType("secdash.ui.auth")

    def session_alive():
        state["alive_calls"] += 1
        return state["alive"]

    state["alive_calls"] = 0
    fake.session_alive = session_alive

    def require_login(role=None):
        state["require_login_calls"] += 1

    fake.require_login = require_login
    monkeypatch.setitem(sys.modules, "secdash.ui.auth", fake)
    return state


@pytest.fixture
def fake_sampler(monkeypatch, home):
    ps, clock, sampler = make()
    sampler.prime()
    clock.advance(2)
    sampler.sample()
    clock.advance(2)
    sampler.sample()
    monkeypatch.setattr(live, "get_sampler", lambda: sampler)
    monkeypatch.setattr(
        live, "recent_ssh_logins", lambda *a, **k: (pd.DataFrame(columns=metrics.LOGIN_COLUMNS), False)
    )
    return ps, clock, sampler


def body_script():
    from secdash.ui.live import render_live

    render_live()


def _app() -> AppTest:
    at = AppTest.from_function(body_script, default_timeout=30)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _markdown_texts(at: AppTest) -> list[str]:
    return [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title")
        for e in at.get(kind)
    ]


def test_body_shows_metrics_charts_and_tables(gate, fake_sampler):
    at = _app()
    labels = [m.label for m in at.metric]
    assert labels == [
        "CPU",
        "Load (1 min)",
        "Memory",
        "Swap",
        "Fullest disk",
        "Processes",
        "Sessions",
        "Uptime",
        "Disk read",
        "Disk write",
        "Network in",
        "Network out",
    ]
    values = {m.label: m.value for m in at.metric}
    assert values["CPU"] == "20.0 %" and values["Memory"] == "60.0 %" and values["Processes"] == "3"
    assert values["Load (1 min)"] == "1.00" and values["Sessions"] == "1"
    assert values["Uptime"] == "1 h 0 m"
    cpu = next(m for m in at.metric if m.label == "CPU")
    assert cpu.delta == "+10.0 pp"
    assert len(at.get("plotly_chart")) == 5
    frames = [d.value for d in at.dataframe]
    assert len(frames) == 5  # disks, interfaces, processes, listeners, users
    disks = next(v for v in frames if "mount" in v.columns)
    assert list(disks["mount"]) == ["/", "/home"]
    procs = next(v for v in frames if "command" in v.columns)
    assert list(procs["pid"])[:3] == [200, 300, 1]
    listeners = next(v for v in frames if "port" in v.columns)
    assert set(listeners["port"]) == {22, 53}
    users = next(v for v in frames if "login source IP" in v.columns)
    assert list(users["user"]) == ["alice"]
    assert live.NO_AUTH_EVENTS in _markdown_texts(at)
    # threshold levels as badges with fixed text: swap 25 % careful, fullest disk 91 % warning
    assert [m.value for m in at.markdown] == [":blue-badge[careful]", ":orange-badge[warning]"]


def test_session_ended_shows_no_data(gate, fake_sampler):
    gate["alive"] = False
    at = _app()
    assert [w.value for w in at.warning] == [live.SESSION_ENDED]
    assert len(at.metric) == 0 and len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0


def test_login_rechecked_on_every_run(gate, fake_sampler):
    at = _app()
    assert len(at.metric) > 0 and gate["alive_calls"] == 1
    gate["alive"] = False
    at.run()
    # one full rerun (so the app's gate can show the login form), then the notice; no data
    assert gate["alive_calls"] == 3
    assert len(at.metric) == 0 and [w.value for w in at.warning] == [live.SESSION_ENDED]
    at.run()
    assert gate["alive_calls"] == 4  # no rerun loop
    gate["alive"] = True  # logged in again
    at.run()
    assert len(at.metric) == 12 and not at.warning
    gate["alive"] = False
    at.run()
    assert gate["alive_calls"] == 7 and len(at.metric) == 0


def test_filter_and_top_by_memory(gate, fake_sampler):
    at = _app()
    at.text_input(key="live_proc_filter").input("postgres").run()
    procs = next(d.value for d in at.dataframe if "command" in d.value.columns)
    assert list(procs["pid"]) == [300]
    at.text_input(key="live_proc_filter").input("").run()
    at.button_group(key="live_proc_by").set_value("memory").run()
    procs = next(d.value for d in at.dataframe if "command" in d.value.columns)
    assert list(procs["pid"])[0] == 300


def test_filter_without_match_says_so(gate, fake_sampler):
    at = _app()
    at.text_input(key="live_proc_filter").input("nobody-at-all").run()
    assert "No process matches the filter." in [i.value for i in at.info]


def test_pause_toggle_keeps_the_page(gate, fake_sampler):
    at = _app()
    at.toggle(key="live_paused").set_value(True).run()
    assert not at.exception
    assert len(at.metric) == 12
    at.select_slider(key="live_interval").set_value(30).run()
    assert not at.exception


def test_fragment_run_every_follows_interval_and_pause(gate, fake_sampler, monkeypatch):
    seen = []
    real = live.st.fragment

    def spy(func=None, *, run_every=None, **kw):
        seen.append(run_every)
        return real(func, run_every=run_every, **kw)

    monkeypatch.setattr(live.st, "fragment", spy)
    at = _app()
    at.select_slider(key="live_interval").set_value(10).run()
    at.toggle(key="live_paused").set_value(True).run()
    assert seen == [5.0, 10.0, None]


def test_new_listener_is_highlighted(gate, fake_sampler):
    ps, clock, sampler = fake_sampler
    ps.conns.append(conn("tcp", "0.0.0.0", 4444, pid=300))
    clock.advance(2)
    sampler.sample()
    at = _app()
    assert any("appeared since the dashboard started" in w.value for w in at.warning)
    listeners = next(d.value for d in at.dataframe if "port" in d.value.columns)
    assert [bool(x) for x in listeners["new"]] == [True, False, False]
    assert list(listeners["port"])[0] == 4444


def test_denied_calls_show_a_note_and_still_render(gate, home, monkeypatch):
    ps = FakePs()
    ps.deny |= {"net_connections", "users", "disk_io_counters", "process_iter"}
    _, clock, sampler = make(ps, euid=1000)
    sampler.prime()
    clock.advance(2)
    sampler.sample()
    monkeypatch.setattr(live, "get_sampler", lambda: sampler)
    monkeypatch.setattr(
        live, "recent_ssh_logins", lambda *a, **k: (pd.DataFrame(columns=metrics.LOGIN_COLUMNS), False)
    )
    at = _app()
    assert at.expander and "not available here" in at.expander[0].label
    notes = "\n".join(t.value for t in at.text)
    assert "permission denied" in notes and "privilege" in notes
    infos = [i.value for i in at.info]
    assert "The process list is not readable here." in infos
    assert "Logged-in users are not readable here (see the notes above)." in infos
    assert next(m.value for m in at.metric if m.label == "Disk read") == "—"


def test_hostile_process_and_interface_names_never_reach_markdown(gate, fake_sampler):
    ps, clock, sampler = fake_sampler
    evil = "<b>x</b><a href='javascript:alert(1)'>**bold**</a>"
    ps.procs.append(FakeProc(666, evil, user=evil, cmdline=[evil, "<br>"], cpu=[50.0, 50.0], create_time=T0))
    ps.nics[evil] = ps.nics["eth0"]
    clock.advance(2)
    sampler.sample()
    clock.advance(2)
    sampler.sample()
    at = _app()
    assert not any(evil in t or "<b>" in t for t in _markdown_texts(at))
    procs = next(d.value for d in at.dataframe if "command" in d.value.columns)
    assert evil in list(procs["name"])  # shown verbatim, as data
    fig = live.net_figure(sampler.net_history(), "UTC")
    assert all("<b>" not in tr.name and "<a " not in tr.name for tr in fig.data)
    fig = live.processes_figure(sampler.top_processes("cpu"), "cpu")
    text = str(list(fig.data[0].y)) + str(list(fig.data[0].customdata))
    assert "<b>" not in text and "&lt;b&gt;" in text


def test_users_joined_with_ssh_logins(gate, fake_sampler, monkeypatch):
    started = datetime.fromtimestamp(T0 - 60, tz=UTC)
    logins = pd.DataFrame(
        {
            "ts": [pd.Timestamp(started - timedelta(seconds=1))],
            "host": [socket.gethostname()],
            "program": ["sshd"],
            "pid": [4242],
            "user": ["alice"],
            "src_ip": ["203.0.113.5"],
            "method": ["publickey"],
        }
    )
    monkeypatch.setattr(live, "recent_ssh_logins", lambda *a, **k: (logins, True))
    at = _app()
    users = next(d.value for d in at.dataframe if "login source IP" in d.value.columns)
    assert list(users["login source IP"]) == ["203.0.113.5"] and list(users["method"]) == ["publickey"]
    assert live.NO_AUTH_EVENTS not in _markdown_texts(at)


def test_page_file_gates_first_then_renders(gate, fake_sampler):
    at = AppTest.from_file(str(ROOT / "pages" / "live.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert gate["require_login_calls"] == 1
    assert len(at.metric) == 12
    src = (ROOT / "pages" / "live.py").read_text()
    assert src.index("require_login()") < src.index("render_live()")


SINCE = datetime(2027, 1, 15, 7, 0, tzinfo=UTC)


def test_recent_ssh_logins_without_store_module(monkeypatch, home):
    live.recent_ssh_logins.clear()
    monkeypatch.setitem(sys.modules, "secdash.store", None)  # import fails
    df, available = live.recent_ssh_logins(SINCE, ("alice",))
    assert not available and list(df.columns) == metrics.LOGIN_COLUMNS and len(df) == 0
    live.recent_ssh_logins.clear()


def test_recent_ssh_logins_without_database_file(home):
    pytest.importorskip("secdash.store")
    live.recent_ssh_logins.clear()
    df, available = live.recent_ssh_logins(SINCE, ("alice",))
    assert not available and len(df) == 0
    live.recent_ssh_logins.clear()


def test_recent_ssh_logins_from_the_event_store_joined_with_sessions(home):
    store = pytest.importorskip("secdash.store")
    parse = pytest.importorskip("secdash.parse")
    from secdash import config

    lines = [
        "2027-01-15T07:58:59Z web1 sshd[4242]: Accepted publickey for alice from 203.0.113.5 port 50000 ssh2",
        "2027-01-15T07:58:30Z web1 sshd[4100]: Failed password for alice from 198.51.100.9 port 40000 ssh2",
        "2027-01-15T07:50:00Z web1 sshd[4000]: Accepted password for bob from 192.0.2.7 port 40001 ssh2",
        "2027-01-10T07:50:00Z web1 sshd[3000]: Accepted password for alice from 192.0.2.99 port 40001 ssh2",
    ]
    events = store.default_store(config.load())
    events.ensure()
    with events.write() as con:
        store.insert_events(
            con, parse.parse_lines(lines, tz="UTC", source="t", year_state=parse.YearState(2027))
        )
    live.recent_ssh_logins.clear()
    sessions = [
        metrics.UserSession("alice", "pts/0", "203.0.113.5", datetime(2027, 1, 15, 7, 59, tzinfo=UTC), 4242)
    ]
    since, users = live.login_lookup(sessions)
    assert since == datetime(2027, 1, 15, 7, 49, tzinfo=UTC) and users == ("alice",)
    df, available = live.recent_ssh_logins(since, users)
    assert available
    assert list(df["src_ip"]) == ["203.0.113.5"]  # only ssh_login, only alice, only since
    m = metrics.match_logins(sessions, df, hostname="web1")
    assert (m.iloc[0].src_ip, m.iloc[0].method, m.iloc[0].matched_by) == ("203.0.113.5", "publickey", "pid")
    live.recent_ssh_logins.clear()


def test_recent_ssh_logins_prefers_a_store_helper(monkeypatch, home):
    live.recent_ssh_logins.clear()
    fake = types.ModuleType("secdash.store")
    calls = []

    def ssh_logins(since, users):
        calls.append((since, users))
        return pd.DataFrame(
            {
                "ts": [pd.Timestamp("2027-01-15T07:30", tz="UTC")],
                "host": ["h"],
                "program": ["sshd"],
                "pid": [1],
                "user": ["a"],
                "src_ip": ["192.0.2.1"],
                "method": ["password"],
            }
        )

    fake.ssh_logins = ssh_logins
    monkeypatch.setitem(sys.modules, "secdash.store", fake)
    df, available = live.recent_ssh_logins(SINCE, ("a",))
    assert available and len(df) == 1 and calls == [(SINCE, ("a",))]
    live.recent_ssh_logins.clear()


def test_login_lookup_without_start_times():
    now = datetime(2027, 1, 15, 8, 0, 30, tzinfo=UTC)
    since, users = live.login_lookup([metrics.UserSession("z", None, None, None, None)], now)
    assert since == datetime(2027, 1, 14, 7, 50, tzinfo=UTC) and users == ("z",)


def test_get_sampler_is_one_per_process(monkeypatch, home):
    created = []

    def from_config(cfg, **kw):
        _, _, s = make()
        s.interval = 60.0
        created.append(s)
        return s

    monkeypatch.setattr(live.Sampler, "from_config", staticmethod(from_config))
    live._shared_sampler.clear()
    try:
        a = live.get_sampler()
        b = live.get_sampler()
        assert a is b and len(created) == 1 and a.running
    finally:
        for s in created:
            s.stop()
        live._shared_sampler.clear()


def test_figures_with_empty_history():
    _, _, s = make()
    h = s.history()
    for fig in (
        live.usage_figure(h, "UTC"),
        live.load_figure(h, "UTC"),
        live.io_figure(h, "UTC"),
        live.net_figure(s.net_history(), "UTC"),
    ):
        assert fig.layout.title.text


def test_formatting_helpers():
    assert live.fmt_bytes(None) == "—"
    assert live.fmt_bytes(512) == "512 B"
    assert live.fmt_bytes(2048, per_s=True) == "2.0 KiB/s"
    assert live.fmt_pct(12.345) == "12.3 %"
    assert live.fmt_duration(90061) == "1 d 1 h"
    assert live.fmt_duration(3660) == "1 h 1 m"
    assert live.fmt_bytes(630.5 * 1024, per_s=True) == "630 KiB/s"
    assert live.fmt_duration(59 * 60) == "59 min"


def test_real_gate_without_login_shows_no_live_data(home, monkeypatch):
    """With the real secdash.ui.auth: a visitor without a session gets the login form only."""
    pytest.importorskip("secdash.ui.auth")
    sampler_calls = []
    monkeypatch.setattr(live, "get_sampler", lambda: sampler_calls.append(1))
    at = AppTest.from_file(str(ROOT / "pages" / "live.py"), default_timeout=30)
    at.run()
    assert len(at.metric) == 0 and len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0
    assert not sampler_calls


BROWSER_SCRIPT = """
import os, sys, types
sys.path.insert(0, {root!r})
fake = types.ModuleType("secdash.ui.auth")
fake.session_alive = lambda: not os.path.exists({flag!r})
fake.require_login = lambda role=None: None
sys.modules["secdash.ui.auth"] = fake
import streamlit as st
from secdash.ui.live import render_live
render_live()
"""


@pytest.mark.browser
def test_browser_fragment_refreshes_and_rechecks_the_login(tmp_path, home):
    """Real server + chromium: timed fragment reruns update the numbers, and once the session is
    gone the next timed run replaces the data with the 'Session ended' notice."""
    import os
    import re
    import subprocess
    import threading
    import time
    import urllib.request

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("needs /usr/bin/chromium")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    flag = tmp_path / "session-ended"
    script = tmp_path / "live_demo.py"
    script.write_text(BROWSER_SCRIPT.format(root=str(ROOT), flag=str(flag)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (home / "config.toml").write_text("[ui]\nrefresh_seconds = 1\n")
    env = dict(os.environ, SECDASH_HOME=str(home))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        # In its own thread: the Sync API refuses to start where another test module's session
        # fixture already runs Playwright (its event loop) in the main thread.
        def drive():
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("text=Listening sockets", timeout=60_000)
                stamps: set[str] = set()
                for _ in range(90):  # refresh every 1 s (config), sampler every 2 s
                    stamps.update(re.findall(r"Last sample (\d\d:\d\d:\d\d)", page.inner_text("body")))
                    if len(stamps) >= 2:
                        break
                    page.wait_for_timeout(500)
                assert len(stamps) >= 2, f"the fragment did not refresh: {stamps}"
                flag.touch()
                page.wait_for_selector(f"text={live.SESSION_ENDED}", timeout=40_000)
                # the elements of the previous run are removed when the rerun finishes
                page.wait_for_selector("text=Listening sockets", state="detached", timeout=40_000)
                body = page.inner_text("body")
                assert "Listening sockets" not in body and "Fullest disk" not in body
                browser.close()

        errors: list[BaseException] = []

        def guarded():
            try:
                drive()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

        worker = threading.Thread(target=guarded)
        worker.start()
        worker.join(timeout=240)
        assert not worker.is_alive(), "browser check hung"
        if errors:
            raise errors[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
