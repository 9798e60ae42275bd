"""Real browser: on demo data the Detections page shows the compromise-after-failures alert, and its
link opens the Events page filtered to exactly the lines behind it."""
from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from secdash import demo, detect
from secdash import store as st

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_server(server):
    """The shared live-server fixture, filled with demo data (ending now) before a page is opened."""
    demo.create(server.home, now=dt.datetime.now(dt.timezone.utc))
    return server


def test_compromise_alert_opens_events_with_its_lines(demo_server, page, artifacts):
    store = st.Store(demo_server.home / st.DB_NAME)
    alerts = detect.alerts_for(store)
    saf = alerts.filter(alerts["rule"] == "ssh.success_after_failures").row(0, named=True)
    n_lines = len(saf["event_ids"])

    demo_server.login(page, "ann", "/detections")
    label = page.get_by_text(re.compile(r"^CRITICAL · Successful login after failures"))
    label.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "detections-browser.png"), full_page=True)
    label.click()
    link = page.get_by_role("link", name=re.compile("Open these lines in Events"))
    link.first.wait_for()
    # the expanded alert lists its raw lines' entity as plain text
    assert page.get_by_text("address: 198.51.100.23").first.is_visible()
    link.first.click()
    # Streamlit changes pages with history.pushState: Playwright's page.url / wait_for_url can miss
    # it, so read the browser's own location.
    deadline = time.monotonic() + 30
    while "/events?" not in page.evaluate("location.href") and time.monotonic() < deadline:
        time.sleep(0.2)
    url = page.evaluate("location.href")
    assert "/events?" in url, url
    qs = parse_qs(urlparse(url).query)
    assert qs["ip"] == ["198.51.100.23"] and qs["host"] == ["web-02"]
    assert set(qs["event"]) == {"auth_failure", "ssh_failed_auth", "ssh_login"}
    assert qs["since"][0].endswith("Z") and qs["until"][0].endswith("Z")
    try:
        page.get_by_text(f"{n_lines} events", exact=True).wait_for(timeout=30_000)
    finally:
        page.screenshot(path=str(artifacts / "detections-to-events.png"), full_page=True)
