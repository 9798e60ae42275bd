"""Real browser (Playwright + Debian chromium) against a real server: the login gate."""
from __future__ import annotations

import re
import time

import pytest

from secdash import audit
from secdash.ui.shell import page_titles

pytestmark = pytest.mark.browser

PAGE_PATHS = ["/", "/overview", "/events", "/detections", "/live", "/admin"]
# Text the login screen may show (the password field's eye icon is named "visibility").
LOGIN_ONLY = "Login Username Password visibility Login"
# Text that only ever appears behind the gate.
GATED = ["Overview", "Events", "Detections", "Live", "Admin", "not built yet", "Logout", "boss", "ann", "tom"]


# Icon names Streamlit renders as text: the sidebar's collapse control may stay for a moment
# after a page with a sidebar (it holds no content).
CHROME = ("Skip to main content", "keyboard_double_arrow_left", "keyboard_double_arrow_right")


def visible_text(page) -> str:
    text = page.inner_text("body")
    for word in CHROME:
        text = text.replace(word, "")
    return " ".join(text.split())


def settle(page, seconds: float = 0.6) -> None:
    """Let the script run finish: wait until Streamlit's running indicator is gone, then a bit."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and page.locator("[data-testid='stStatusWidget']").count():
        time.sleep(0.1)
    time.sleep(seconds)


def assert_login_only(page) -> None:
    page.get_by_role("button", name="Login").wait_for()
    settle(page)
    text = visible_text(page)
    assert text == LOGIN_ONLY, text
    for word in GATED:
        assert word not in text
    sidebar = page.locator("[data-testid='stSidebarUserContent']")
    assert sidebar.count() == 0 or not sidebar.inner_text().strip()
    assert page.locator("[data-testid='stDataFrame'], [data-testid='stTable']").count() == 0


def wait_signed_in(page, who: str, role: str) -> None:
    """The sidebar shows who is signed in (independent of what the page itself renders)."""
    page.get_by_text(f"{who} ({role})", exact=True).wait_for()


def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def wait_for_cookie(context, name: str = "secdash_session", present: bool = True) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cookies = context.cookies()
        if any(c["name"] == name for c in cookies) == present:
            return cookies
        time.sleep(0.1)
    raise AssertionError(f"cookie {name} {'never set' if present else 'still there'}: {context.cookies()}")


def test_first_requests_to_every_page_url_show_only_the_login_form(fresh_server, page, artifacts):
    # The very first requests to a freshly started server go straight to the page URLs: before
    # any session has run app.py's st.navigation, Streamlit serves pages/*.py directly.
    for path in PAGE_PATHS:
        response = page.goto(fresh_server.url + path)
        assert response.ok
        assert_login_only(page)
        if path == "/admin":
            page.screenshot(path=str(artifacts / "login-page.png"), full_page=True)
    # The analyst signing in on the Admin URL gets a refusal, not admin data.
    fresh_server.fill_login(page, "ann", fresh_server.users["ann"][0])
    page.get_by_text("This page is only for administrators.").wait_for()
    settle(page)
    assert "Audit log" not in visible_text(page)
    # Signing in on another page URL of that fresh server works and shows that page.
    wait_for_cookie(page.context)
    page.goto(fresh_server.url + "/events")
    wait_signed_in(page, "ann", "analyst")
    assert page.url.endswith("/events")


def test_wrong_password_gets_throttled(server, page):
    page.goto(server.url + "/events")
    invalid = page.get_by_text("Invalid username or password.", exact=True)
    for i in range(5):
        server.fill_login(page, "tom", "not-the-password")
        # The audit log says when the server has handled this attempt.
        wait_until(lambda: sum(e["action"] == "login_failure" and e["user"] == "tom"
                               for e in audit.read(server.home)) == i + 1)
        if i < 4:
            invalid.wait_for()
    # The 5th failure within the window blocks the (user, address) pair.
    page.get_by_text(re.compile(r"^Too many failed login attempts\. Try again in \d+ seconds\.$")).wait_for()
    # Even the right password is refused while blocked; nothing behind the gate is shown.
    server.fill_login(page, "tom", server.users["tom"][0])
    wait_until(lambda: [e["action"] for e in audit.read(server.home, limit=1)] == ["login_throttled"]
               and len([e for e in audit.read(server.home) if e["action"] == "login_throttled"]) == 2)
    settle(page, 0.4)
    assert "Too many failed login attempts" in page.get_by_role("alert").first.inner_text()
    assert page.get_by_text("tom (analyst)").count() == 0
    assert visible_text(page).startswith(LOGIN_ONLY)
    actions = [e["action"] for e in audit.read(server.home, limit=20) if e.get("user") == "tom"]
    assert actions[:3] == ["login_throttled", "login_throttled", "login_failure"]
    # Only the (tom, this address) pair is blocked: another account from this address still
    # logs in (and tom from another address would too; see the unit tests).
    server.fill_login(page, "boss", server.users["boss"][0])
    wait_signed_in(page, "boss", "admin")


def test_login_logout_back_reload_and_old_cookie(server, browser, context, page, artifacts):
    server.login(page, "boss")
    wait_signed_in(page, "boss", "admin")
    saved = wait_for_cookie(context)
    settle(page, 2.0)
    page.screenshot(path=str(artifacts / "logged-in-overview.png"), full_page=True)
    # Role-based navigation: the admin sees the Admin page link.
    page.get_by_role("link", name="Admin").first.click()
    page.get_by_role("tab", name="Audit log").wait_for()
    settle(page, 1.0)
    page.screenshot(path=str(artifacts / "logged-in-admin.png"), full_page=True)
    page.get_by_role("link", name="Events").first.click()
    page.wait_for_url("**/events")
    wait_signed_in(page, "boss", "admin")

    # Positive control: the saved cookie does re-authenticate another browser while valid.
    other = browser.new_context()
    other.add_cookies(saved)
    p2 = other.new_page()
    p2.goto(server.url + "/detections")
    wait_signed_in(p2, "boss", "admin")
    other.close()

    page.get_by_role("button", name="Logout").click()
    assert_login_only(page)
    assert audit.read(server.home)[0]["action"] == "logout"
    wait_for_cookie(context, present=False)
    page.go_back()
    assert_login_only(page)
    page.reload()
    assert_login_only(page)

    # The cookie saved before logout no longer logs in: its server-side session is gone.
    stale = browser.new_context()
    stale.add_cookies(saved)
    p3 = stale.new_page()
    for path in ("/", "/events", "/admin"):
        p3.goto(server.url + path)
        assert_login_only(p3)
    stale.close()


def test_analyst_sees_no_admin_page(server, page):
    server.login(page, "ann")
    wait_signed_in(page, "ann", "analyst")
    settle(page)
    nav = page.locator("[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']")
    titles = [re.sub(r"^\S+\s+", "", t.strip()) for t in nav.all_inner_texts()]
    assert "Admin" not in titles
    assert set(page_titles("analyst")) <= set(titles)
    assert {"Overview", "Events", "Detections", "Live"} <= set(titles)
    page.goto(server.url + "/admin")  # typed by hand: not a page of this role
    wait_signed_in(page, "ann", "analyst")  # st.navigation falls back to the default page
    settle(page)
    text = visible_text(page)
    assert "Audit log" not in text and "Add user" not in text
