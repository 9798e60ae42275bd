"""Unit tests of the auth core: password rules, users file, secrets, throttle, sessions, audit."""
from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import bcrypt
import pytest

from secdash import audit, auth
from secdash.config import ConfigError, parse

T0 = 1_800_000_000.0  # a pinned "now"


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# --------------------------------------------------------------------------------------------
# Password rules


def test_password_length_limits():
    assert auth.check_password("a" * 11 + "Z") == []  # 12 characters, no composition rules
    assert auth.check_password("abcdefghijk") == ["must be at least 12 characters long (got 11)"]
    assert auth.check_password("x" * 72) == []
    assert auth.check_password("x" * 129)[0] == "must be at most 128 characters long (got 129)"


def test_password_beyond_bcrypts_72_bytes_is_refused_with_a_clear_message():
    pw = "é" * 37  # 37 characters, 74 bytes
    problems = auth.check_password(pw)
    assert len(problems) == 1 and "74 bytes" in problems[0] and "bcrypt" in problems[0]
    with pytest.raises(auth.AuthError, match="72 bytes"):
        auth.hash_password(pw)


def test_password_is_checked_exactly_as_typed():
    # Spaces count like any character: 11 letters and one space is 12 characters.
    assert auth.check_password(" abcdefghijk") == []
    assert auth.check_password("abcdefghijk") != []
    h = auth.hash_password("  two spaces first")
    assert auth.verify_password("  two spaces first", h)
    assert not auth.verify_password("two spaces first", h)
    assert not auth.verify_password("  two spaces first ", h)


def test_common_passwords_are_refused_case_insensitively():
    assert len(auth.common_passwords()) >= 100
    for pw in ("password1234", "Qwerty123456", "1q2w3e4r5t6y", "administrator"):
        assert auth.check_password(pw) == ["is one of the most commonly used passwords; choose another"]


def test_password_containing_the_username_is_refused():
    assert auth.check_password("alice-in-chains-42", "alice") == ["must not contain the username"]
    assert auth.check_password("malice-aforethought", "bob") == []


def test_usernames_and_roles_are_validated():
    for bad in ("", "Alice", "9lives", "a b", "x" * 33, "al/ice", "al\nice"):
        with pytest.raises(auth.AuthError, match="invalid username"):
            auth.check_username(bad)
    auth.check_username("alice.b-c_9")
    with pytest.raises(auth.AuthError, match="invalid role"):
        auth.check_role("root")


def test_unknown_user_costs_one_bcrypt_check(monkeypatch):
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(auth.bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    assert auth.verify_password("whatever-password", None) is False
    assert len(calls) == 1 and calls[0].startswith(b"$2b$12$")
    # The dummy hash has the same cost as real hashes.
    assert auth.hash_password("some-long-password").startswith("$2b$12$")


def test_over_long_password_never_matches_its_own_truncation(home):
    h = auth.hash_password("x" * 72)
    assert auth.verify_password("x" * 72, h)
    assert not auth.verify_password("x" * 73, h)  # bcrypt would see the same 72 bytes


# --------------------------------------------------------------------------------------------
# Users file


def test_users_file_is_private_and_holds_only_hashes(home):
    auth.add_user(home, "alice", "correct horse 42", "admin", now=T0)
    p = home / "users.json"
    assert mode(p) == 0o600
    text = p.read_text()
    assert "correct horse" not in text
    data = json.loads(text)
    assert data["users"]["alice"]["password_hash"].startswith("$2b$")
    assert auth.authenticate(home, "alice", "correct horse 42").role == "admin"
    assert auth.authenticate(home, "alice", "correct horse 43") is None
    assert auth.authenticate(home, "mallory", "correct horse 42") is None


def test_duplicate_user_and_policy_errors(home):
    auth.add_user(home, "alice", "correct horse 42", "analyst", now=T0)
    with pytest.raises(auth.AuthError, match="already exists"):
        auth.add_user(home, "alice", "correct horse 42", "analyst", now=T0)
    with pytest.raises(auth.AuthError, match="at least 12"):
        auth.add_user(home, "bob", "short", "analyst", now=T0)
    assert set(auth.load_users(home)) == {"alice"}


def test_last_admin_cannot_be_removed_or_demoted(home):
    auth.add_user(home, "root1", "correct horse 42", "admin", now=T0)
    auth.add_user(home, "ann", "correct horse 43", "analyst", now=T0)
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.remove_user(home, "root1")
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.set_role(home, "root1", "analyst")
    auth.remove_user(home, "ann")
    assert set(auth.load_users(home)) == {"root1"}
    with pytest.raises(auth.AuthError, match="no such user"):
        auth.remove_user(home, "ann")


def test_atomic_write_leaves_old_content_when_interrupted(home, monkeypatch):
    target = home / "users.json"
    auth.atomic_write(target, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(auth.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        auth.atomic_write(target, b"new content")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in home.iterdir()) == ["users.json"]  # no temp file left


def test_atomic_write_sets_mode_0600_even_with_a_permissive_umask(home):
    old = os.umask(0)
    try:
        auth.atomic_write(home / "f.json", b"{}")
    finally:
        os.umask(old)
    assert mode(home / "f.json") == 0o600


def test_concurrent_writers_lose_nothing(home, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)  # speed; the lock is what is tested
    monkeypatch.setattr(auth, "hash_password", lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode())
    errors = []

    def add(i):
        try:
            auth.add_user(home, f"user{i}", f"long-password-{i:04d}", "analyst", now=T0)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(auth.load_users(home)) == 20


def test_concurrent_processes_lose_nothing(home):
    import subprocess
    import sys

    code = (
        "import sys, bcrypt; from secdash import auth;"
        "auth.hash_password = lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode();"
        "[auth.add_user(sys.argv[1], f'p{sys.argv[2]}u{i}', 'long-password-1234', 'analyst', now=1.0) for i in range(5)]"
    )
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home), str(n)], cwd=root) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert len(auth.load_users(home)) == 20


def test_credentials_for_library_is_a_fresh_dict_with_hashes_only(home):
    auth.add_user(home, "alice", "correct horse 42", "admin", name="Alice", now=T0)
    creds = auth.credentials_for_library(auth.load_users(home))
    assert creds == {
        "usernames": {
            "alice": {
                "name": "Alice",
                "password": auth.load_users(home)["alice"].password_hash,
                "email": "",
                "roles": ["admin"],
            }
        }
    }


# --------------------------------------------------------------------------------------------
# Secrets


def test_secrets_generated_once_private_and_long(home):
    key = auth.load_secrets(home)["cookie_key"]
    assert len(key) >= 43 and mode(home / "secrets.json") == 0o600
    assert auth.load_secrets(home)["cookie_key"] == key


@pytest.mark.parametrize(
    "key, message",
    [("some_key", "public default"), ("short-key", "too short"), ("", "missing"), (None, "missing")],
)
def test_weak_cookie_keys_are_refused(home, key, message):
    auth.atomic_write(home / "secrets.json", json.dumps({"cookie_key": key}).encode())
    with pytest.raises(auth.AuthError, match=message):
        auth.load_secrets(home)


def test_secrets_readable_by_others_are_refused(home):
    auth.load_secrets(home)
    os.chmod(home / "secrets.json", 0o644)
    with pytest.raises(auth.AuthError, match="chmod 600"):
        auth.load_secrets(home)


def test_missing_secrets_without_create(home):
    with pytest.raises(auth.AuthError, match="secdash setup"):
        auth.load_secrets(home, create=False)


# --------------------------------------------------------------------------------------------
# Throttle


def _throttle(home, **kw) -> auth.Throttle:
    return auth.Throttle(home, failures=5, window=300, block=60, max_block=900, **kw)


def test_five_failures_in_the_window_block_the_pair(home):
    t = _throttle(home)
    for i in range(4):
        assert t.failure("alice", "10.0.0.1", T0 + i) == 0.0
        assert t.check("alice", "10.0.0.1", T0 + i) == 0.0
    assert t.failure("alice", "10.0.0.1", T0 + 4) == 60.0
    assert t.check("alice", "10.0.0.1", T0 + 4) == 60.0
    assert t.check("alice", "10.0.0.1", T0 + 34) == 30.0
    assert t.check("alice", "10.0.0.1", T0 + 64) == 0.0
    # Other pairs are not affected: the real user from elsewhere, another name from here.
    assert t.check("alice", "10.0.0.2", T0 + 5) == 0.0
    assert t.check("bob", "10.0.0.1", T0 + 5) == 0.0


def test_failures_outside_the_sliding_window_do_not_count(home):
    t = _throttle(home)
    for i in range(4):
        t.failure("alice", "ip", T0 + i * 100)  # 0, 100, 200, 300
    # At T0+301 the first failure has left the 300 s window: 4 in the window, no block.
    assert t.failure("alice", "ip", T0 + 301) == 0.0
    assert t.failure("alice", "ip", T0 + 302) == 60.0


def test_blocks_grow_and_are_capped_but_never_permanent(home):
    t = _throttle(home)
    now = T0
    for _ in range(5):
        t.failure("alice", "ip", now)
    assert t.check("alice", "ip", now) == 60
    lengths = []
    for _ in range(6):
        now += t.check("alice", "ip", now) + 1  # wait out the block, then fail 5 more times
        lengths.append(max(t.failure("alice", "ip", now + i) for i in range(5)))
    # While older failures are still in the window, the first new failure re-blocks at once.
    assert lengths == [120, 240, 480, 900, 900, 900]
    # A day without failures forgets everything.
    now += 86400 + 900
    assert t.check("alice", "ip", now) == 0.0
    assert t.failure("alice", "ip", now) == 0.0


def test_success_clears_the_pair(home):
    t = _throttle(home)
    for i in range(4):
        t.failure("alice", "ip", T0 + i)
    t.success("alice", "ip", T0 + 5)
    for i in range(4):
        assert t.failure("alice", "ip", T0 + 10 + i) == 0.0


def test_one_address_spraying_many_names_is_blocked(home):
    t = _throttle(home)
    blocked = [t.failure(f"user{i}", "6.6.6.6", T0 + i) for i in range(20)]
    assert blocked[:19] == [0.0] * 19 and blocked[19] == 60.0
    assert t.check("anyone", "6.6.6.6", T0 + 20) > 0
    assert t.check("anyone", "7.7.7.7", T0 + 20) == 0.0


def test_throttle_state_survives_restarts_and_is_private(home):
    for i in range(5):
        _throttle(home).failure("alice", "ip", T0 + i)
    assert _throttle(home).check("alice", "ip", T0 + 5) > 0
    assert mode(home / "throttle.json") == 0o600


def test_throttle_is_thread_safe(home):
    t = _throttle(home)
    threads = [threading.Thread(target=t.failure, args=("alice", "ip", T0)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.failure("alice", "ip", T0) == 60.0  # the 5th recorded failure


def test_wait_message():
    assert auth.wait_message(59.2) == "Too many failed login attempts. Try again in 60 seconds."
    assert auth.wait_message(600) == "Too many failed login attempts. Try again in 10 minutes."


# --------------------------------------------------------------------------------------------
# Sessions


@pytest.fixture
def alice(home):
    return auth.add_user(home, "alice", "correct horse 42", "analyst", now=T0)


def test_session_valid_then_idle_timeout(home, alice):
    s = auth.SessionStore(home, idle=1800, absolute=43200)
    sid = s.create(alice, T0)
    assert s.check(sid, T0 + 1799, touch=False).ok
    check = s.check(sid, T0 + 1800, touch=False)
    assert (check.ok, check.reason, check.user.username) == (False, "idle", "alice")
    assert s.check(sid, T0 + 1801, touch=False).reason == "unknown"  # ended for good


def test_auto_refresh_does_not_extend_the_session_but_user_actions_do(home, alice):
    s = auth.SessionStore(home, idle=1800, absolute=43200)
    sid = s.create(alice, T0)
    for m in range(1, 30):
        assert s.check(sid, T0 + m * 60, touch=False).ok  # a fragment refreshing every minute
    assert s.check(sid, T0 + 1800, touch=False).reason == "idle"
    sid = s.create(alice, T0)
    for m in range(1, 60):
        assert s.check(sid, T0 + m * 60, touch=True).ok  # the user clicks every minute
    assert s.check(sid, T0 + 59 * 60 + 1799, touch=False).ok
    assert s.check(sid, T0 + 59 * 60 + 1800, touch=False).reason == "idle"


def test_absolute_timeout_despite_activity(home, alice):
    s = auth.SessionStore(home, idle=1800, absolute=7200)
    sid = s.create(alice, T0)
    now = T0
    while now < T0 + 7200 - 600:
        now += 600
        assert s.check(sid, now, touch=True).ok
    assert s.check(sid, T0 + 7200, touch=True).reason == "absolute"


def test_logout_password_change_role_change_and_removal_revoke(home, alice):
    s = auth.SessionStore(home)
    a, b = s.create(alice, T0), s.create(alice, T0)
    assert s.revoke(a)
    assert s.check(a, T0 + 1, touch=False).reason == "unknown"
    assert s.check(b, T0 + 1, touch=False).ok  # the other browser stays signed in
    auth.set_password(home, "alice", "battery staple 7", now=T0 + 2)
    assert not s.check(b, T0 + 3, touch=False).ok
    # Sessions made before a version bump are refused even if the table still had them.
    user = auth.load_users(home)["alice"]
    c = s.create(user, T0 + 4)
    auth.add_user(home, "root", "correct horse 99", "admin", now=T0)
    auth.set_role(home, "alice", "admin")
    assert not s.check(c, T0 + 5, touch=False).ok
    d = s.create(auth.load_users(home)["alice"], T0 + 6)
    auth.remove_user(home, "alice")
    assert not s.check(d, T0 + 7, touch=False).ok


def test_stale_session_version_is_revoked(home, alice):
    s = auth.SessionStore(home)
    sid = s.create(alice, T0)
    users = auth.load_users(home)
    users["alice"].session_version += 1  # e.g. bumped by another process
    with auth.locked(home):
        auth.save_users(home, users)
    assert s.check(sid, T0 + 1, touch=False).reason == "revoked"


def test_session_file_never_contains_session_ids(home, alice):
    s = auth.SessionStore(home)
    sid = s.create(alice, T0)
    text = (home / "sessions.json").read_text()
    assert sid not in text
    assert mode(home / "sessions.json") == 0o600
    assert s.check(sid, T0 + 1, touch=False).ok
    assert not s.check(sid + "x", T0 + 1, touch=False).ok
    assert s.check(None, T0, touch=False).reason == "missing"


# --------------------------------------------------------------------------------------------
# Audit log


def test_audit_lines_are_utc_escaped_and_newest_first(home):
    audit.record(home, "login_failure", user="eve\n{\"action\":\"login\"}", ip="10.0.0.9", now=T0)
    audit.record(home, "export", user="alice", ip="10.0.0.1", now=T0 + 1, filters={"type": "ssh"})
    lines = (home / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the newline in the name did not forge a line
    assert mode(home / "audit.jsonl") == 0o600
    entries = audit.read(home)
    assert [e["action"] for e in entries] == ["export", "login_failure"]
    assert entries[0] == {
        "ts": "2027-01-15T08:00:01.000Z",
        "action": "export",
        "user": "alice",
        "ip": "10.0.0.1",
        "outcome": "success",
        "filters": {"type": "ssh"},
    }
    assert entries[1]["outcome"] == "failure" and entries[1]["user"].startswith("eve\n")


def test_audit_read_limit_and_garbage(home):
    for i in range(10):
        audit.record(home, "login", user=f"u{i}", now=T0 + i)
    with open(home / "audit.jsonl", "a") as fh:
        fh.write("not json\n")
    assert [e["user"] for e in audit.read(home, limit=3)] == ["u9", "u8"]
    assert audit.read(home / "nowhere") == []


def test_audit_clips_huge_values(home):
    e = audit.record(home, "login_failure", user="x" * 5000, now=T0)
    assert len(e["user"]) < 600


# --------------------------------------------------------------------------------------------
# Config


def test_auth_config_fields():
    cfg = parse('[auth]\ncookie_secure = true\ncookie_name = "sd"\nproxy_header = "X-Forwarded-For"')
    assert (cfg.auth.cookie_secure, cfg.auth.cookie_name, cfg.auth.proxy_header) == (True, "sd", "X-Forwarded-For")
    for bad in ('cookie_name = "a b"', 'proxy_header = "X: y"', "throttle_max_block_seconds = 10"):
        with pytest.raises(ConfigError):
            parse(f"[auth]\n{bad}")
