"""Real-browser fixtures: a freshly started secdash server and Debian's chromium via Playwright.

``start_server(home, port)`` / the ``server`` (per module) and ``fresh_server`` (per test)
fixtures start ``python -m streamlit run app.py`` on a free port with a private SECDASH_HOME
holding a test admin and a test analyst, wait until it answers, and stop it afterwards.  Other
browser tests can reuse them (``server.url``, ``server.home``, ``server.login(page, who)``).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secdash import auth

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# name -> (password, role)
USERS = {
    "boss": ("chief-secret-123", "admin"),
    "ann": ("lovely-weather-77", "analyst"),
    "tom": ("green-curry-1999", "analyst"),  # the throttle test's victim: blocked afterwards
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    home: Path
    proc: subprocess.Popen
    log: Path
    users: dict = field(default_factory=lambda: dict(USERS))

    def login(self, page, who: str, path: str = "/") -> None:
        """Open ``path`` and sign in as ``who`` through the login form."""
        page.goto(self.url + path)
        fill_login(page, who, self.users[who][0])

    @staticmethod
    def fill_login(page, username: str, password: str) -> None:
        fill_login(page, username, password)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def fill_login(page, username: str, password: str) -> None:
    page.get_by_role("button", name="Login").wait_for(timeout=20_000)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Login").click()


def prepare_home(home: Path, users: dict | None = None) -> Path:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, (password, role) in (users or USERS).items():
        auth.add_user(home, name, password, role, now=time.time())
    auth.load_secrets(home, create=True)
    return home


def start_server(home: Path, port: int | None = None, timeout: float = 40.0) -> Server:
    port = port or free_port()
    log = home.parent / f"streamlit-{port}.log"
    env = dict(os.environ, SECDASH_HOME=str(home))
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
    ]
    fh = open(log, "wb")  # noqa: SIM115 - kept open for the server's lifetime
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = Server(url, home, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"streamlit did not answer within {timeout} s:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(prepare_home(tmp_path_factory.mktemp("browser") / "home"))
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server nobody has talked to yet (no session has run st.navigation)."""
    srv = start_server(prepare_home(tmp_path / "home"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "browser tests need Debian's chromium at /usr/bin/chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
