"""The parse and explain commands (run as a user would: python -m secdash ...)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "secdash", *args], cwd=ROOT, capture_output=True, text=True, **kw)


def nonblank(path: Path) -> int:
    return sum(1 for ln in path.read_bytes().decode("utf-8", "replace").split("\n") if ln.strip(" \t\r\n"))


def test_parse_jsonl_one_record_per_nonblank_line(home):
    log = FIXTURES / "debian-classic.log"
    r = run("parse", str(log), "--tz", "Europe/Berlin", "--now", "2027-01-02T12:00:00Z")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == nonblank(log)
    assert rows[0]["ts"] == "2026-12-31T22:58:01Z" and rows[9]["ts"].startswith("2027-01-01T07:15:42")
    assert rows[0]["source"] == str(log) and rows[0]["line"] == 1


def test_parse_csv(home):
    log = FIXTURES / "ubuntu-rfc3339.log"
    r = run("parse", str(log), "--format", "csv", "--tz", "UTC")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == nonblank(log)
    assert rows[0]["event"] == "ssh_invalid_user" and rows[0]["ts"] == "2026-03-14T08:00:01.120934Z"


def test_parse_errors_are_one_line_and_non_zero(tmp_path, home):
    elf = tmp_path / "x.log"
    elf.write_bytes(b"\x7fELF" + b"\x00" * 5000)
    r = run("parse", str(tmp_path / "missing.log"), str(elf), str(FIXTURES / "ubuntu-rfc3339.log"))
    assert r.returncode == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in r.stderr
    assert "no such file" in errors[0] and "executable" in errors[1]
    assert len(r.stdout.splitlines()) == nonblank(FIXTURES / "ubuntu-rfc3339.log")  # the good file still parsed


def test_parse_bad_options(home):
    r = run("parse", str(FIXTURES / "hostile.log"), "--tz", "Mars/Olympus")
    assert r.returncode == 1 and "unknown time zone" in r.stderr and "Traceback" not in r.stderr
    r = run("parse", str(FIXTURES / "hostile.log"), "--now", "yesterday")
    assert r.returncode == 1 and "--now" in r.stderr


def test_explain_reports_patterns_and_unknown_lines(home):
    r = run("explain", str(FIXTURES / "debian-classic.log"), "--tz", "UTC")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"lines:    {nonblank(FIXTURES / 'debian-classic.log')}" in out
    assert "sshd.invalid_user" in out and "pam.session_opened" in out
    assert "unknown:  1" in out and "polkitd: Registered Authentication Agent" in out
    assert "lines/s" in out
