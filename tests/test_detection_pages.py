"""AppTest of the Detections, Overview, SSH sessions and Entities pages on demo data."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from secdash import audit, auth, config, demo

ROOT = Path(__file__).resolve().parent.parent
ADMIN, ADMIN_PW = "boss", "chief-secret-123"
ANALYST, ANALYST_PW = "ann", "lovely weather 77"
HOSTILE = [u for u in demo.HOSTILE_USERS]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("pages-demo")
    (home / "config.toml").write_text('[ingest]\nbackground = false\n\n[ui]\ndisplay_zone = "UTC"\n')
    demo.create(home, now=dt.datetime.now(dt.timezone.utc))
    text = (home / "config.toml").read_text()
    if "background = false" not in text:  # demo rewrites the config: keep the test quiet and offline
        (home / "config.toml").write_text(text + "\n[ingest]\nbackground = false\n")
    auth.add_user(home, ADMIN, ADMIN_PW, "admin", now=time.time())
    auth.add_user(home, ANALYST, ANALYST_PW, "analyst", now=time.time())
    return home


@pytest.fixture
def demo_env(demo_home, monkeypatch):
    monkeypatch.setenv("SECDASH_HOME", str(demo_home))
    return demo_home


def _login(script: str, who: str = ANALYST) -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=90).run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(who)
    inputs["Password"].input(ADMIN_PW if who == ADMIN else ANALYST_PW)
    next(b for b in at.button if b.label == "Login").click()
    return at.run()


def _markdown_texts(at: AppTest) -> list[str]:
    """Everything drawn through a Markdown-interpreting element."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader", "header"):
        out += [str(e.value) for e in getattr(at, kind)]
    out += [e.label for e in at.expander]
    out += [m.label for m in at.metric]
    return out


def _no_log_text_in_markdown(at: AppTest) -> None:
    for text in _markdown_texts(at):
        for bad in ("<script>", "=cmd|", "**bold**", "a" * 50, "198.51.100.23", "sysupd"):
            assert bad not in text, (bad, text)


# ---------------------------------------------------------------------------------------------
# Detections


def test_detections_page_shows_the_compromise_alert_with_its_lines(demo_env):
    at = _login("pages/detections.py")
    assert not at.exception, at.exception
    labels = [e.label for e in at.expander]
    assert any(lbl.startswith("CRITICAL · Successful login after failures") for lbl in labels), labels
    assert any(lbl.startswith("CRITICAL · User added to a privileged group") for lbl in labels)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Critical"]) >= 2 and int(metrics["High"]) >= 3
    # the expander holds the raw lines (a dataframe with the Accepted line) and the Events link
    exp = next(e for e in at.expander if e.label.startswith("CRITICAL · Successful login after failures"))
    frames = [d.value for d in exp.dataframe]
    assert frames and any(frames[0]["message"].str.startswith("Accepted password for dave").fillna(False))
    links = [b for b in exp.get("link_button")]
    assert links
    url = links[0].proto.url
    assert url.startswith("/events?") and "ip=198.51.100.23" in url and "event=ssh_login" in url
    _no_log_text_in_markdown(at)


def test_detections_filters_by_severity(demo_env):
    at = _login("pages/detections.py")
    at.multiselect(key="det_sev").set_value(["low"]).run()
    assert not at.exception
    assert all(e.label.startswith("LOW") for e in at.expander)
    assert int({m.label: m.value for m in at.metric}["Critical"]) == 0


def test_what_if_counts_and_only_admins_may_save(demo_env):
    at = _login("pages/detections.py")
    at.number_input(key="det_wi_n_ssh.brute_force").set_value(100_000).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Alerts with this setting"] == "0"
    assert not [b for b in at.button if b.label == "Save this threshold"]
    at.number_input(key="det_wi_n_ssh.brute_force").set_value(4).run()
    more = int({m.label: m.value for m in at.metric}["Alerts with this setting"])
    assert more >= 3

    adm = _login("pages/detections.py", ADMIN)
    adm.number_input(key="det_wi_n_ssh.brute_force").set_value(9).run()
    save = [b for b in adm.button if b.label == "Save this threshold"]
    assert save
    save[0].click().run()
    assert not adm.exception
    assert config.load(demo_env).detect.brute_force_attempts == 9
    assert any(e["action"] == "detect_threshold" and e["user"] == ADMIN for e in audit.read(demo_env))
    cfg_text = (demo_env / "config.toml").read_text()
    (demo_env / "config.toml").write_text(cfg_text.replace("brute_force_attempts = 9", "brute_force_attempts = 8"))


# ---------------------------------------------------------------------------------------------
# Overview


def test_overview_kpis_with_deltas_alerts_freshness(demo_env):
    at = _login("pages/overview.py")
    assert not at.exception, at.exception
    metrics = {m.label: m for m in at.metric}
    for name in ("Events", "Failures", "Successes", "Attacking IPs", "Unknown lines", "Critical alerts",
                 "High alerts", "Medium alerts", "Low alerts"):
        assert name in metrics
    assert int(metrics["Events"].value.replace(",", "")) > 0
    assert metrics["Events"].delta is not None
    assert [s.value for s in at.subheader][:2] == ["Top alerts", "Data freshness"]
    fresh = at.dataframe[-1].value
    assert list(fresh.columns)[:3] == ["source", "last run", "minutes ago"] and len(fresh) == 4
    at.segmented_control(key="ov_range").set_value("30d").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Critical alerts"]) >= 2
    top = at.dataframe[0].value
    assert "critical" in set(top["severity"])
    _no_log_text_in_markdown(at)


def test_overview_kpis_count_one_period(tmp_path):
    from secdash import store as st
    from secdash.parse import parse_lines
    from secdash.ui import overview

    s = st.Store(tmp_path / "e.duckdb")
    lines = ["Mar  2 10:00:00 h sshd[1]: Failed password for root from 1.2.3.4 port 1 ssh2",
             "Mar  2 10:00:05 h sshd[2]: Failed password for root from 1.2.3.5 port 1 ssh2",
             "Mar  2 10:01:00 h sshd[3]: Accepted publickey for bob from 10.0.0.1 port 2 ssh2",
             "Mar  2 10:02:00 h foo[4]: something nobody parses",
             "Mar  3 10:02:00 h sshd[5]: Failed password for root from 1.2.3.6 port 1 ssh2"]
    with s.write() as con:
        con.begin()
        st.insert_events(con, parse_lines(lines, tz="UTC", now=dt.datetime(2026, 3, 9, tzinfo=dt.timezone.utc)))
        con.commit()
    with s.read() as con:
        k = overview.kpis(con, dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc),
                          dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc))
    assert (k.events, k.failures, k.successes, k.attacking_ips, k.unknown) == (4, 2, 1, 2, 1)
    assert k.unknown_share == 0.25


# ---------------------------------------------------------------------------------------------
# SSH sessions and entities


def test_sessions_page_lists_the_compromise_session_with_its_commands(demo_env):
    at = _login("pages/sessions.py")
    assert not at.exception, at.exception
    at.segmented_control(key="ses_range").set_value("30d").run()
    at.toggle(key="ses_cmd").set_value(True).run()
    assert not at.exception
    table = at.dataframe[0].value
    dave = table[(table["user"] == "dave") & (table["src_ip"] == "198.51.100.23")]
    assert len(dave) == 1
    assert dave["commands"].iloc[0] == "sudo /usr/bin/su - ; su root" and dave["status"].iloc[0] == "closed"
    assert 24 < dave["minutes"].iloc[0] < 26
    assert (table["n_commands"] > 0).all()
    _no_log_text_in_markdown(at)


def test_entity_views_for_an_address_and_a_user(demo_env):
    at = _login("pages/entities.py")
    assert not at.exception, at.exception
    at.text_input(key="ent_ip").input("198.51.100.23").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Alerts"]) >= 1 and int(metrics["Successes"].replace(",", "")) >= 1 and "Failure lines" in metrics
    tried = at.dataframe[0].value
    assert "dave" in set(tried["user"])
    assert next(c.value for c in at.code) == "198.51.100.23"
    at.text_input(key="ent_ip").input("not an ip").run()
    assert at.error and not at.exception
    at.segmented_control(key="ent_kind").set_value("User").run()
    at.text_input(key="ent_user").input("dave").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Logins"]) >= 1 and int(metrics["Alerts"]) >= 1
    subheads = [s.value for s in at.subheader]
    assert {"Login sources", "Failures by source", "sudo and su", "SSH sessions", "Alerts"} <= set(subheads)
    _no_log_text_in_markdown(at)


def test_hostile_user_names_render_as_text(demo_env):
    at = _login("pages/entities.py")
    at.segmented_control(key="ent_kind").set_value("User").run()
    for name in HOSTILE:
        at.text_input(key="ent_user").input(name).run()
        assert not at.exception, at.exception
        assert next(c.value for c in at.code) == name
        for text in _markdown_texts(at):
            assert name not in text


def test_selecting_an_alert_row_shows_its_lines(demo_env):
    at = _login("pages/detections.py")
    # the second row (alerts are most severe, newest first) is the compromise
    at.session_state["det_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    texts = [t.value for t in at.text]
    assert any(t.startswith("Selected: CRITICAL · Successful login after failures") for t in texts), texts[:8]
    assert any("address: 198.51.100.23" in t for t in texts)


def test_entities_opened_by_link(demo_env):
    at = AppTest.from_file(str(ROOT / "pages/entities.py"), default_timeout=90)
    at.query_params["user"] = "dave"
    at.run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(ANALYST)
    inputs["Password"].input(ANALYST_PW)
    next(b for b in at.button if b.label == "Login").click()
    at.run()
    assert not at.exception, at.exception
    assert at.segmented_control(key="ent_kind").value == "User"
    assert next(c.value for c in at.code) == "dave"
