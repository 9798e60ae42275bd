"""AppTest: the login gate in front of app.py and every page, role-based navigation."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from secdash import audit, auth

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))
SCRIPTS = ["app.py", *PAGES]

ADMIN, ADMIN_PW = "boss", "chief-secret-123"
ANALYST, ANALYST_PW = "ann", "lovely weather 77 "  # trailing space: checked exactly as typed


@pytest.fixture
def accounts(home):
    # The pages behind the gate would start the background ingester (a thread in this process);
    # these tests are about the gate, so keep it off.
    (home / "config.toml").write_text("[ingest]\nbackground = false\n", encoding="utf-8")
    auth.add_user(home, ADMIN, ADMIN_PW, "admin", now=time.time())
    auth.add_user(home, ANALYST, ANALYST_PW, "analyst", now=time.time())
    return home


def _app(script: str = "app.py") -> AppTest:
    return AppTest.from_file(str(ROOT / script), default_timeout=30)


def _leaves(at: AppTest) -> list[tuple[str, str]]:
    """(type, label or value) of every element drawn, containers left out."""
    out = []
    for root in (at.main, at.sidebar):
        for e in root:
            if e.type in ("main", "sidebar", "form", "vertical", "horizontal", "block", "flex_container", "empty"):
                continue
            text = getattr(e, "label", None)
            if text is None:
                text = getattr(e, "value", None)
            out.append((e.type, str(text)))
    return out


def _login(at: AppTest, username: str, password: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    next(b for b in at.button if b.label == "Login").click()
    return at.run()


def _signed_in(at: AppTest) -> str | None:
    """The username the sidebar shows as signed in (None: not signed in)."""
    assert not at.exception, at.exception
    for e in at.sidebar:
        if e.type == "text" and str(e.value).endswith(("(admin)", "(analyst)")):
            return str(e.value).split(" ")[0]
    return None


LOGIN_FORM = [
    ("subheader", "Login"),
    ("text_input", "Username"),
    ("text_input", "Password"),
    ("button", "Login"),
]


def _only_login_form(at: AppTest) -> None:
    assert not at.exception
    leaves = [leaf for leaf in _leaves(at) if leaf[0] != "component_instance"]  # the cookie reader
    assert leaves == LOGIN_FORM
    assert all(t.value == "" for t in at.text_input)
    assert not at.sidebar.children or all(e.type == "sidebar" for e in at.sidebar)


def _only_login_form_after_notice(at: AppTest) -> None:
    leaves = [leaf for leaf in _leaves(at) if leaf[0] not in ("component_instance", "info")]
    assert leaves == LOGIN_FORM


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_page_shows_only_the_login_form_when_not_logged_in(accounts, script):
    at = _app(script).run()
    _only_login_form(at)
    components = [leaf for leaf in _leaves(at) if leaf[0] == "component_instance"]
    assert len(components) <= 1


def test_all_gated_pages_are_tested():
    assert {"pages/overview.py", "pages/events.py", "pages/detections.py", "pages/live.py", "pages/admin.py"} <= set(
        PAGES
    )


def test_every_page_script_calls_the_gate_first():
    for script in SCRIPTS:
        src = (ROOT / script).read_text(encoding="utf-8")
        body = [ln for ln in src.splitlines() if ln.strip() and not ln.startswith(("import", "from", "#", '"""'))]
        code = [ln for ln in body if not ln.startswith((" ", ")"))]
        first_call = next(ln for ln in code if "(" in ln and not ln.startswith(("st.set_page_config",)))
        assert "require_login(" in first_call, f"{script}: first statement is {first_call!r}"


def test_login_with_admin_shows_overview_and_admin_navigation(accounts):
    at = _login(_app().run(), ADMIN, ADMIN_PW)
    assert not at.exception
    assert _signed_in(at) == ADMIN
    assert ("text", f"{ADMIN} (admin)") in _leaves(at)
    at.switch_page(str(ROOT / "pages/admin.py")).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Admin"]
    assert [t.label for t in at.tabs] == ["Users", "Audit log", "Data sources", "Parser health"]
    users = at.dataframe[0].value
    assert sorted(users["username"]) == [ANALYST, ADMIN]
    assert not users.astype(str).apply(lambda col: col.str.startswith("$2b$")).any().any()  # no hashes
    logins = [e for e in audit.read(accounts) if e["action"] == "login"]
    assert logins and logins[0]["user"] == ADMIN


def test_analyst_gets_no_admin_page(accounts):
    at = _login(_app().run(), ANALYST, ANALYST_PW)
    assert not at.exception
    assert _signed_in(at) == ANALYST
    with pytest.raises(ValueError, match="Could not find a navigation page") as err:
        at.switch_page(str(ROOT / "pages/admin.py"))
    for page in ("overview", "events", "detections", "live"):
        assert f"pages/{page}.py" in str(err.value)
    assert "pages/admin.py'" not in str(err.value).split("Known pages")[1]


def test_admin_page_run_directly_as_analyst_shows_no_admin_data(accounts):
    at = _login(_app("pages/admin.py").run(), ANALYST, ANALYST_PW)
    assert not at.exception
    assert [e.value for e in at.error] == ["This page is only for administrators."]
    assert not at.dataframe and not at.tabs and not at.title
    denied = [leaf for leaf in _leaves(at) if leaf[0] not in ("component_instance", "markdown")]
    assert denied == [
        ("error", "This page is only for administrators."),
        ("text", f"{ANALYST} (analyst)"),
        ("button", "Logout"),
    ]


def test_password_is_checked_exactly_as_typed(accounts):
    at = _login(_app().run(), ANALYST, ANALYST_PW.strip())
    assert [e.value for e in at.error] == ["Invalid username or password."]
    assert _signed_in(at) is None
    at = _login(at, ANALYST.upper() + " ", ANALYST_PW)  # the username is normalised, never the password
    assert _signed_in(at) == ANALYST


def test_unknown_user_and_wrong_password_get_the_same_message(accounts):
    at = _login(_app().run(), "nobody", "whatever-password")
    unknown = [e.value for e in at.error]
    at = _login(at, ADMIN, "wrong-password-1")
    assert [e.value for e in at.error] == unknown == ["Invalid username or password."]
    entries = audit.read(accounts)
    assert [(e["action"], e["user"], e["outcome"]) for e in entries[:2]] == [
        ("login_failure", ADMIN, "failure"),
        ("login_failure", "nobody", "failure"),
    ]


def test_repeated_failures_are_throttled_even_with_the_right_password(accounts):
    at = _app().run()
    for _ in range(4):
        at = _login(at, ADMIN, "wrong-password-1")
        assert [e.value for e in at.error] == ["Invalid username or password."]
    at = _login(at, ADMIN, "wrong-password-1")
    assert "Too many failed login attempts" in at.error[0].value
    at = _login(at, ADMIN, ADMIN_PW)
    assert "Too many failed login attempts" in at.error[0].value
    assert _signed_in(at) is None
    actions = [e["action"] for e in audit.read(accounts)]
    assert actions[:2] == ["login_throttled", "login_throttled"]
    # Another user from the same address is not blocked by this pair.
    at = _login(at, ANALYST, ANALYST_PW)
    assert _signed_in(at) == ANALYST


def test_logout_revokes_the_server_side_session(accounts):
    # (AppTest 1.67 drops clicks on widgets drawn by app.py itself once st.navigation runs, so the
    # sidebar's Logout button is exercised through a page script here and in the real browser test.)
    at = _login(_app("pages/overview.py").run(), ADMIN, ADMIN_PW)
    sid = at.session_state["_secdash_sid"]
    store = auth.SessionStore(accounts)
    assert store.check(sid, time.time(), touch=False).ok
    next(b for b in at.button if b.label == "Logout").click()
    at.run()
    _only_login_form(at)
    assert not store.check(sid, time.time(), touch=False).ok
    assert audit.read(accounts)[0]["action"] == "logout"


def test_password_change_elsewhere_ends_the_session_on_the_next_action(accounts):
    at = _login(_app().run(), ANALYST, ANALYST_PW)
    assert _signed_in(at) == ANALYST
    auth.set_password(accounts, ANALYST, "brand-new-secret-9", now=time.time())
    at.run()
    assert [e.value for e in at.info] == ["Your session is no longer valid. Please log in again."]
    assert _signed_in(at) is None
    _only_login_form_after_notice(at)


def test_idle_timeout_ends_the_session(accounts, monkeypatch):
    import secdash.ui.auth as gate

    at = _login(_app().run(), ANALYST, ANALYST_PW)
    assert _signed_in(at) == ANALYST
    later = time.time() + 31 * 60
    monkeypatch.setattr(gate, "_now", lambda: later)
    at.run()
    assert "without activity" in at.info[0].value
    assert _signed_in(at) is None
    _only_login_form_after_notice(at)
    entry = audit.read(accounts)[0]
    assert (entry["action"], entry["user"], entry["reason"]) == ("session_timeout", ANALYST, "idle")


def test_admin_adds_resets_and_removes_a_user(accounts):
    at = _login(_app().run(), ADMIN, ADMIN_PW)
    at.switch_page(str(ROOT / "pages/admin.py")).run()
    form = {t.label: t for t in at.text_input}
    form["New username"].input("carol")
    form["Initial password"].input("carol-is-short")
    form["Repeat password"].input("carol-is-short")
    next(b for b in at.button if b.label == "Add user").click()
    at.run()
    assert not at.exception
    assert "must not contain the username" in at.error[0].value
    form = {t.label: t for t in at.text_input}
    form["New username"].input("carol")
    form["Initial password"].input("pink-elephant-42")
    form["Repeat password"].input("pink-elephant-42")
    next(b for b in at.button if b.label == "Add user").click()
    at.run()
    assert not at.exception, at.exception
    assert "carol" in auth.load_users(accounts)
    assert [e.value for e in at.success] == ["Added analyst carol."]
    at.selectbox(key="secdash-remove-user").select("carol")
    at.checkbox[0].check()
    next(b for b in at.button if b.label == "Remove user").click()
    at.run()
    assert "carol" not in auth.load_users(accounts)
    actions = [(e["action"], e.get("target")) for e in audit.read(accounts)[:2]]
    assert actions == [("user_remove", "carol"), ("user_add", "carol")]
    # The audit log tab shows them, as data (never rendered as markdown).
    log = at.dataframe[1].value
    assert list(log["action"][:2]) == ["user_remove", "user_add"]
    assert json.loads(log["details"][0]) == {"target": "carol"}


def _alive_script():
    import streamlit as st

    from secdash.ui.auth import session_alive

    st.text(f"alive={session_alive()}")


def test_session_alive_for_fragments_rechecks_without_counting_as_activity(accounts, monkeypatch):
    import secdash.ui.auth as gate

    store = auth.SessionStore(accounts)
    t0 = time.time()
    sid = store.create(auth.load_users(accounts)[ANALYST], t0)
    at = AppTest.from_function(_alive_script)
    at.session_state["_secdash_sid"] = sid
    # 29 minutes of auto-refresh: still alive, but it does not extend the idle time...
    monkeypatch.setattr(gate, "_now", lambda: t0 + 29 * 60)
    assert at.run().text[0].value == "alive=True"
    # ...so at 30 minutes the session has ended, as if nobody had been looking.
    monkeypatch.setattr(gate, "_now", lambda: t0 + 30 * 60)
    assert at.run().text[0].value == "alive=False"
    assert audit.read(accounts)[0]["action"] == "session_timeout"
    assert at.run().text[0].value == "alive=False"
    at.session_state["_secdash_sid"] = "forged"
    assert at.run().text[0].value == "alive=False"


def test_client_address_from_proxy_header_only_when_configured(monkeypatch):
    import secdash.ui.auth as gate
    from secdash.config import parse

    class FakeContext:
        headers = {"X-Forwarded-For": "203.0.113.7, 198.51.100.2"}
        ip_address = "10.0.0.5"

    monkeypatch.setattr(gate.st, "context", FakeContext())
    assert gate.client_ip(parse("")) == "10.0.0.5"  # a client-supplied header is ignored by default
    # Behind the proxy, the last hop it appended is the address it saw.
    assert gate.client_ip(parse('[auth]\nproxy_header = "X-Forwarded-For"')) == "198.51.100.2"
    FakeContext.ip_address = None  # localhost
    assert gate.client_ip(parse("")) == "local"


def test_parser_health_table_shares_per_source():
    import pandas as pd

    from secdash.ui.admin import parser_health_table

    runs = pd.DataFrame(
        {"source": ["/var/log/auth.log", "/var/log/auth.log", "journal"], "lines": [100, 300, 0], "unknown": [4, 0, 0]}
    )
    t = parser_health_table(runs)
    assert t.to_dict("records")[0] == {
        "source": "/var/log/auth.log", "runs": 2, "lines": 400, "unknown": 4, "unknown share %": 1.0,
    }
    assert pd.isna(t["unknown share %"][1])  # no lines: no share, not a division by zero
    assert list(parser_health_table(runs.iloc[0:0]).columns)[-1] == "unknown share %"


def test_weak_signing_key_stops_the_app_without_details_for_visitors(accounts, caplog):
    auth.atomic_write(accounts / "secrets.json", b'{"cookie_key": "some_key"}')
    at = _app().run()
    assert [e.value for e in at.error] == [
        "secdash cannot start: the server's configuration needs attention (see the server log)."
    ]
    assert not at.text_input  # no login form either
    assert "public default" in caplog.text


def test_library_never_writes_the_users_file_and_risky_widgets_are_never_used(accounts):
    before = (accounts / "users.json").read_bytes()
    at = _login(_app().run(), "nobody", "whatever-password")
    at = _login(at, ADMIN, "wrong-password-1")
    at = _login(at, ADMIN, ADMIN_PW)
    assert _signed_in(at) == ADMIN
    # streamlit-authenticator gets a dict: no 'logged_in' / 'failed_login_attempts' rewrites.
    assert (accounts / "users.json").read_bytes() == before
    sources = [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "secdash").rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for widget in (".register_user(", ".forgot_password(", ".forgot_username(", ".reset_password(",
                       ".update_user_details(", ".experimental_guest_login("):
            assert widget not in text, f"{path.name} uses {widget}"
