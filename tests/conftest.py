"""Test-wide settings: a pinned non-UTC zone, and a throwaway SECDASH_HOME per test."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Tests run in a non-UTC zone so that any hidden use of the machine's clock or zone shows up.
os.environ["TZ"] = "America/New_York"
time.tzset()

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser):
    parser.addoption("--regen", action="store_true", help="rewrite golden *-expected files from current output")


@pytest.fixture
def regen(request) -> bool:
    return bool(request.config.getoption("--regen"))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh data directory, exported as SECDASH_HOME."""
    d = tmp_path / "home"
    d.mkdir()
    monkeypatch.setenv("SECDASH_HOME", str(d))
    return d


@pytest.fixture(autouse=True, scope="session")
def _stop_background_ingesters():
    """Pages rendered by AppTest may start the dashboard's background ingester thread: stop it
    before the interpreter exits (a daemon thread inside DuckDB at exit aborts the process)."""
    yield
    try:
        from secdash.ingest import stop_background_ingest
    except ImportError:  # pragma: no cover
        return
    stop_background_ingest()
