"""Real browser against a real server with demo data: the Events explorer.

Open a filtered link before logging in, log in, filter by an address from the demo data, check
the table count and a chart (hostile user names drawn as text), download the CSV and check its
rows and that the hostile ``=cmd|...`` user name is neutralised.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from secdash import audit, demo
from secdash import store as core

pytestmark = pytest.mark.browser
HOSTILE = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def demo_server(server):
    """The shared live-server fixture, filled with demo data before anyone opens a page."""
    demo.create(server.home, seed=7)
    return server


def settle(page, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + 20
    time.sleep(0.3)
    while time.monotonic() < deadline and page.locator("[data-testid='stStatusWidget']").count():
        time.sleep(0.1)
    time.sleep(seconds)


def count_heading(page) -> str:
    return page.locator("h3").filter(has_text=" event").first.inner_text().strip()


def test_filter_by_ip_table_chart_and_safe_csv_download(demo_server, page, artifacts):
    s = core.Store(demo_server.home / core.DB_NAME)
    with s.read() as con:
        ip = con.execute('SELECT src_ip FROM events WHERE "user" = ? LIMIT 1', [HOSTILE]).fetchone()[0]
    expected = s.count_events(core.Filters(ips=[ip]))
    assert expected >= 1

    # A link opened before logging in keeps its filters through the login.
    demo_server.login(page, "ann", path="/events?range=all")
    page.get_by_text("Filters: All time").wait_for()
    settle(page)
    assert "range=all" in page.url

    box = page.get_by_role("textbox", name="IPs or CIDR ranges")
    box.fill(ip)
    box.press("Enter")
    page.get_by_text(f"Filters: All time | ip: {ip}").wait_for()
    settle(page, 1.0)
    assert parse_qs(urlparse(page.url).query) == {"range": ["all"], "ip": [ip]}
    assert count_heading(page) == f"{expected:,} event{'s' if expected != 1 else ''}"
    assert page.locator("[data-testid='stDataFrame']").count() >= 1

    # Charts follow the filter; the hostile name is drawn as text (escaped), nothing injected.
    charts = page.locator(".js-plotly-plot")
    assert charts.count() >= 4
    users_chart = charts.filter(has_text="Top targeted user names")
    users_chart.wait_for()
    ticks = users_chart.locator(".ytick text").evaluate_all("els => els.map(e => e.textContent)")
    assert any(t.startswith("=cmd|") for t in ticks), ticks
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot script, .js-plotly-plot a').length") == 0
    page.screenshot(path=str(artifacts / "events-ip-filter.png"), full_page=True)

    with page.expect_download() as dl:
        page.get_by_role("button", name="Export CSV").click()
    download = dl.value
    name = download.suggested_filename
    assert name.startswith("secdash-all-") and name.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == expected
    assert {r["src_ip"] for r in rows} == {ip}
    users = [r["user"] for r in rows]
    assert "'" + HOSTILE in users and HOSTILE not in users
    assert all(r["src_port"].isdigit() for r in rows if r["src_port"])
    rec = [e for e in audit.read(demo_server.home) if e["action"] == "export"][-1]
    assert rec["user"] == "ann" and rec["ips"] == [ip] and rec["rows"] == expected

    # Clicking a bar filters by it (here: a user of the top-users chart); the URL follows.
    users_chart.scroll_into_view_if_needed()
    users_chart.locator(".trace.bars").first.locator("path").last.click(force=True)
    page.get_by_text(re.compile(r"Filters: All time \| user: ")).wait_for()
    deadline = time.monotonic() + 10
    while "user=" not in page.url and time.monotonic() < deadline:
        time.sleep(0.2)
    query = parse_qs(urlparse(page.url).query)
    assert query["ip"] == [ip] and len(query["user"]) == 1

    # A heatmap cell filters by its hour and weekday (drawn as square markers: Streamlit returns
    # no selection for plotly heatmap traces).
    heat = page.locator(".js-plotly-plot").filter(has_text="Hour of day x weekday")
    applied = page.get_by_text(re.compile(r"\| hour: 12 \| weekday: thu"))
    for _ in range(4):  # the charts are redrawn after the click above: a click may hit the old one
        try:
            heat.scroll_into_view_if_needed(timeout=3000)
            time.sleep(0.5)
            box = heat.locator(".nsewdrag").first.bounding_box(timeout=3000)
            x = box["x"] + (12 + 0.6) / 24.2 * box["width"]  # hour 12 on the axis range [-0.6, 23.6]
            y = box["y"] + (3 + 0.5) / 7 * box["height"]  # Thursday: the 4th of 7 weekday rows
            page.mouse.click(x, y)
            applied.wait_for(timeout=8000)
            break
        except Exception:  # noqa: BLE001 - detached or not applied yet: try again
            continue
    applied.wait_for(timeout=5000)
    deadline = time.monotonic() + 10
    while "hour=" not in page.evaluate("location.href") and time.monotonic() < deadline:
        time.sleep(0.2)
    query = parse_qs(urlparse(page.evaluate("location.href")).query)
    assert query["hour"] == ["12"] and query["weekday"] == ["thu"]
