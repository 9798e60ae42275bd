"""Demo data: deterministic, realistic scenarios, rotated files, config and store marked as demo."""
from __future__ import annotations

import datetime as dt
import gzip

import pytest

from secdash import config, demo
from secdash import store as st
from secdash.errors import SecdashError

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)


def test_generate_is_deterministic_and_in_range():
    a = demo.generate(NOW, tz="America/New_York", seed=3)
    b = demo.generate(NOW, tz="America/New_York", seed=3)
    assert a == b
    assert set(a) == set(demo.HOSTS)
    times = [t for items in a.values() for t, _ in items]
    assert min(times) >= NOW - dt.timedelta(days=31) and max(times) <= NOW
    for items in a.values():
        assert [t for t, _ in items] == sorted(t for t, _ in items)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo-home")
    (home / "config.toml").write_text('[time]\nzone = "America/New_York"\n\n[ui]\nrefresh_seconds = 7.0\n')
    result = demo.create(home, now=NOW)
    return home, result


def test_create_writes_rotated_files_config_and_marks_demo(made):
    home, result = made
    assert result.hosts == sorted(demo.HOSTS) and result.events == result.lines > 20000
    for host in demo.HOSTS:
        d = home / "demo" / host
        assert (d / "auth.log").stat().st_size > 0 and (d / "auth.log.1").stat().st_size > 0
        with gzip.open(d / "auth.log.2.gz", "rt") as f:
            assert f.readline()
    assert demo.is_demo(home)
    cfg = config.load(home)
    assert cfg.sources.paths == [str(home / "demo")]
    assert cfg.ui.refresh_seconds == 7.0 and cfg.time.zone == "America/New_York"  # rest kept
    s = st.Store.from_config(cfg)
    assert s.is_demo() and s.summary()["demo"]


def test_demo_contains_the_scenarios(made):
    home, _ = made
    s = st.Store.from_config(config.load(home))
    assert s.unknown_share() == 0.0
    assert set(s.distinct_values("host")) == set(demo.HOSTS)
    f = st.Filters
    # brute force: one address with hundreds of failures
    top = s.top_ips(f(outcomes=["failure"]), n=3)
    assert top["failures"].iloc[0] > 250
    # compromise: >= 5 failures then success for dave from the same address, then a backdoor in sudo
    dave, _ = s.query_events(f(users=["dave"], ips=["198.51.100.23"], sort="ts", descending=False, limit=None))
    events = dave["event"].tolist()
    first_ok = events.index("ssh_login")
    assert events[:first_ok].count("ssh_failed_auth") >= 5
    _, n = s.query_events(f(events=["group_member_added"], users=[demo.BACKDOOR]))
    assert n >= 1
    _, n = s.query_events(f(events=["user_created"]))
    assert n >= 3
    # password spraying: one address, every real account
    spray = s.ip_rollup(f(ips=["203.0.113.66"]))
    assert spray["users"].iloc[0] == len(demo.USERS)
    # botnet: many addresses
    assert s.ip_rollup(f(outcomes=["failure"]))["key"].nunique() > 500
    # sudo abuse
    _, n = s.query_events(f(events=["sudo_denied", "sudo_auth_failure"], users=["erin"]))
    assert n >= 6
    # hostile usernames survive as text
    for name in demo.HOSTILE_USERS:
        _, n = s.query_events(f(users=[name]))
        assert n >= 1, name


def test_demo_refuses_to_replace_real_events(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    s = st.Store(home / "events.duckdb")
    from secdash.parse import YearState, parse_lines

    with s.write() as con:
        st.insert_events(con, parse_lines(["2026-03-01T00:00:00Z h sshd[1]: x"], tz="UTC", year_state=YearState(2026)))
    with pytest.raises(SecdashError, match="--force"):
        demo.create(home, now=NOW, days=2)
    r = demo.create(home, now=NOW, days=2, force=True)
    assert r.events > 0 and st.Store(home / "events.duckdb").is_demo()
    # running it again on demo data is fine and does not double
    r2 = demo.create(home, now=NOW, days=2)
    assert st.Store(home / "events.duckdb").count_events() == r2.events == r.events


def test_configure_replaces_existing_sources(tmp_path):
    (tmp_path / "config.toml").write_text('[sources]\npaths = [\n  "/var/log/auth.log",\n]\njournald = false\n'
                                          '[store]\nretention_days = 10\n')
    demo.configure(tmp_path, ["/x/demo"])
    cfg = config.load(tmp_path)
    assert cfg.sources.paths == ["/x/demo"] and cfg.store.retention_days == 10 and cfg.sources.journald is False


def test_cli_demo(home, capsys):
    from secdash.cli import main

    assert main(["demo", "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "demo data" in out and "DEMO DATA" in out
    assert demo.is_demo(home)


def test_needed_when_no_source_is_readable(tmp_path):
    cfg = config.parse('[sources]\npaths = ["/nonexistent/auth.log"]\n', home=tmp_path)
    assert demo.needed(cfg)
    log = tmp_path / "auth.log"
    log.write_text("x\n")
    cfg = config.parse(f'[sources]\npaths = ["/nonexistent/auth.log", "{log}"]\n', home=tmp_path)
    assert not demo.needed(cfg)
