"""``python -m secdash users ...`` and ``python -m secdash setup``."""
from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secdash import audit, auth
from secdash.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(argv, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_add_list_passwd_remove(home, monkeypatch, capsys):
    assert run(["users", "add", "alice", "--role", "admin", "--password-stdin"], "correct horse 42\n", monkeypatch) == 0
    assert run(["users", "add", "bob", "--role", "analyst", "--password-stdin"], " spaced password \n", monkeypatch) == 0
    out = capsys.readouterr().out
    assert "added admin alice" in out and "added analyst bob" in out
    # Only the line break is removed: the spaces are part of the password.
    assert auth.authenticate(home, "bob", " spaced password ")
    assert not auth.authenticate(home, "bob", "spaced password")
    assert run(["users", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "PASSWORD", "CHANGED", "(UTC)"]
    assert [ln.split()[:2] for ln in lines[1:]] == [["alice", "admin"], ["bob", "analyst"]]

    sid = auth.SessionStore(home).create(auth.load_users(home)["bob"], time.time())
    assert run(["users", "passwd", "bob", "--password-stdin"], "new password 1234\r\n", monkeypatch) == 0
    assert auth.authenticate(home, "bob", "new password 1234")
    assert not auth.SessionStore(home).check(sid, time.time(), touch=False).ok  # sessions ended
    assert run(["users", "remove", "bob"]) == 0
    assert set(auth.load_users(home)) == {"alice"}
    actions = [(e["action"], e["target"]) for e in audit.read(home)]
    assert actions == [("user_remove", "bob"), ("password_change", "bob"), ("user_add", "bob"), ("user_add", "alice")]
    assert all(e["user"].startswith("cli") for e in audit.read(home))


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "short\n", "at least 12 characters"),
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "password1234\n", "most commonly used"),
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "é" * 40 + "\n", "bcrypt"),
        (["users", "add", "Alice", "--role", "admin", "--password-stdin"], "correct horse 42\n", "invalid username"),
        (["users", "passwd", "nobody", "--password-stdin"], "correct horse 42\n", "no such user"),
        (["users", "remove", "nobody"], None, "no such user"),
        (["users", "add", "alice", "--role", "admin"], "", "use --password-stdin"),
    ],
)
def test_errors_are_one_clear_line(home, monkeypatch, capsys, argv, stdin, message):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("secdash users: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_last_admin_cannot_be_removed(home, monkeypatch, capsys):
    run(["users", "add", "alice", "--role", "admin", "--password-stdin"], "correct horse 42\n", monkeypatch)
    assert main(["users", "remove", "alice"]) == 1
    assert "last admin" in capsys.readouterr().err


def test_bad_role_is_rejected_by_the_parser(home, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["users", "add", "alice", "--role", "root"])
    assert exc.value.code == 2


def test_setup_creates_private_dir_secrets_and_a_first_admin_once(tmp_path, monkeypatch):
    home = tmp_path / "fresh" / "secdash"
    env = {"SECDASH_HOME": str(home), "PATH": "/usr/bin:/bin", "TZ": "UTC"}
    first = subprocess.run([sys.executable, "-m", "secdash", "setup"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("users.json", "secrets.json", "audit.jsonl"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    password_lines = [ln.strip() for ln in first.stdout.splitlines() if ln.startswith("      ") and " " not in ln.strip()]
    assert len(password_lines) == 1
    password = password_lines[0]
    assert auth.check_password(password, "admin") == []
    assert password not in (home / "users.json").read_text()  # only the hash is stored
    assert auth.authenticate(home, "admin", password).role == "admin"
    key = json.loads((home / "secrets.json").read_text())["cookie_key"]

    second = subprocess.run([sys.executable, "-m", "secdash", "setup"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0
    assert "admin" not in second.stdout  # no new account, no password printed again
    assert json.loads((home / "secrets.json").read_text())["cookie_key"] == key
    assert len(auth.load_users(home)) == 1


def test_setup_refuses_a_weak_existing_key(home, capsys):
    auth.atomic_write(home / "secrets.json", b'{"cookie_key": "some_key"}')
    assert main(["setup"]) == 1
    assert "public default" in capsys.readouterr().err


def test_setup_steps_are_a_list_for_later_data_steps():
    from secdash.commands import setup

    assert [s.__name__ for s in setup.STEPS][:3] == ["_step_home", "_step_secrets", "_step_first_admin"]


def test_role_change_ends_sessions_and_keeps_an_admin(home, monkeypatch, capsys):
    run(["users", "add", "alice", "--role", "admin", "--password-stdin"], "correct horse 42\n", monkeypatch)
    run(["users", "add", "bob", "--role", "analyst", "--password-stdin"], "correct horse 43\n", monkeypatch)
    sid = auth.SessionStore(home).create(auth.load_users(home)["bob"], time.time())
    assert main(["users", "role", "bob", "admin"]) == 0
    assert auth.load_users(home)["bob"].role == "admin"
    assert not auth.SessionStore(home).check(sid, time.time(), touch=False).ok
    assert main(["users", "role", "alice", "analyst"]) == 0
    assert main(["users", "role", "bob", "analyst"]) == 1  # the last admin
    assert "last admin" in capsys.readouterr().err
    assert audit.read(home)[0]["action"] == "user_role"
