"""Accounts, passwords, secrets, login throttling and server-side sessions (no streamlit here).

Files in the data directory (all mode 0600, written atomically: temp file, fsync, rename, under
an ``flock`` so the CLI and the dashboard's threads never lose each other's writes):

- ``users.json``     accounts: bcrypt hash, role, per-user ``session_version``
- ``secrets.json``   the cookie signing key (>= 32 random bytes, generated at first use)
- ``sessions.json``  server-side sessions, keyed by the SHA-256 of the session id in the cookie
- ``throttle.json``  failed-login windows and blocks per (username, address) and per address

Every time-dependent function takes ``now`` (epoch seconds): there is no hidden clock.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import bcrypt

from secdash.errors import SecdashError

USERS_NAME = "users.json"
SECRETS_NAME = "secrets.json"
SESSIONS_NAME = "sessions.json"
THROTTLE_NAME = "throttle.json"
LOCK_NAME = ".auth.lock"

ROLES = ("admin", "analyst")
MIN_PASSWORD = 12
MAX_PASSWORD = 128
BCRYPT_MAX_BYTES = 72
BCRYPT_ROUNDS = 12
# The library default of streamlit-authenticator: never acceptable as a signing key.
LIBRARY_DEFAULT_KEY = "some_key"
MIN_KEY_CHARS = 43  # secrets.token_urlsafe(32): 32 random bytes
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")


class AuthError(SecdashError):
    """An account, password or secrets problem, worded for the person who can fix it."""


# --------------------------------------------------------------------------------------------
# Files: locking and atomic writes

_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
_lock_depth: dict[str, int] = {}  # guarded by the per-home RLock


def ensure_home(home: Path | str) -> Path:
    """Create the data directory (0700) when missing."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


@contextlib.contextmanager
def locked(home: Path | str) -> Iterator[None]:
    """Exclusive lock over the auth files of ``home``: threads (RLock) and processes (flock)."""
    home = ensure_home(home)
    key = str(home.resolve())
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.RLock())
    with tlock:
        depth = _lock_depth.get(key, 0)
        if depth:  # re-entered by the same thread: it already holds the flock
            _lock_depth[key] = depth + 1
            try:
                yield
            finally:
                _lock_depth[key] -= 1
            return
        fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _lock_depth[key] = 1
            try:
                yield
            finally:
                _lock_depth[key] = 0
        finally:
            os.close(fd)  # releases the flock


def atomic_write(path: Path | str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same directory, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _read_json(path: Path, default):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise AuthError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise AuthError(f"{path}: not valid JSON (fix or remove the file)") from None


def _write_json(path: Path, data) -> None:
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Password policy (OWASP ASVS 5: length only, no composition rules, common passwords refused)

_common: frozenset[str] | None = None


def common_passwords() -> frozenset[str]:
    global _common
    if _common is None:
        p = Path(__file__).with_name("data") / "common-passwords.txt"
        words = set()
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.add(line.lower())
        _common = frozenset(words)
    return _common


def check_password(password: str, username: str | None = None) -> list[str]:
    """Problems with ``password`` as typed (never stripped or normalised); empty list: fine."""
    problems: list[str] = []
    n = len(password)
    if n < MIN_PASSWORD:
        problems.append(f"must be at least {MIN_PASSWORD} characters long (got {n})")
    if n > MAX_PASSWORD:
        problems.append(f"must be at most {MAX_PASSWORD} characters long (got {n})")
    nbytes = len(password.encode("utf-8"))
    if nbytes > BCRYPT_MAX_BYTES and n <= MAX_PASSWORD:
        problems.append(
            f"is {nbytes} bytes in UTF-8; bcrypt uses only the first {BCRYPT_MAX_BYTES}, "
            "so use a shorter one (or fewer non-ASCII characters)"
        )
    low = password.lower()
    if low in common_passwords():
        problems.append("is one of the most commonly used passwords; choose another")
    if username and len(username) >= 3 and username.lower() in low:
        problems.append("must not contain the username")
    elif "secdash" in low:
        problems.append("must not contain the name of this application")
    return problems


def check_username(username: str) -> None:
    if not USERNAME_RE.match(username or ""):
        raise AuthError(
            f"invalid username {username!r}: use 1-32 characters: lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter"
        )


def check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    pw = password.encode("utf-8")
    if len(pw) > BCRYPT_MAX_BYTES:
        raise AuthError(f"password is longer than {BCRYPT_MAX_BYTES} bytes (bcrypt limit)")
    return bcrypt.hashpw(pw, bcrypt.gensalt(rounds)).decode("ascii")


# bcrypt hash (same cost) of a random, discarded string: checked for unknown users so that an
# unknown name and a wrong password take the same time. It can never log anyone in.
_DUMMY_HASH = b"$2b$12$QreZyygD1tbn91Zxvb59x.axGNc2PmRWEwStR2iQYesK19xC8G9I2"


def _dummy() -> bytes:
    return _DUMMY_HASH


def verify_password(password: str, hashed: str | None) -> bool:
    """bcrypt check; an unknown user (``hashed`` None) still costs one bcrypt check."""
    pw = password.encode("utf-8")
    too_long = len(pw) > BCRYPT_MAX_BYTES
    if too_long:
        pw = pw[:BCRYPT_MAX_BYTES]  # only to spend comparable time; never accepted
    target = hashed.encode("ascii") if hashed else _dummy()
    try:
        ok = bcrypt.checkpw(pw, target)
    except ValueError:  # malformed hash in the users file
        bcrypt.checkpw(pw, _dummy())
        ok = False
    return ok and hashed is not None and not too_long


# --------------------------------------------------------------------------------------------
# Users file


@dataclass
class User:
    username: str
    role: str
    password_hash: str
    name: str = ""
    session_version: int = 1
    created: float = 0.0
    password_changed: float = 0.0

    @property
    def display_name(self) -> str:
        return self.name or self.username


def users_path(home: Path | str) -> Path:
    return Path(home) / USERS_NAME


def load_users(home: Path | str) -> dict[str, User]:
    data = _read_json(users_path(home), {"users": {}})
    out: dict[str, User] = {}
    try:
        for username, rec in (data.get("users") or {}).items():
            out[username] = User(username=username, **{k: v for k, v in rec.items() if k != "username"})
    except (TypeError, AttributeError):
        raise AuthError(f"{users_path(home)}: unexpected structure (fix or remove the file)") from None
    return out


def save_users(home: Path | str, users: dict[str, User]) -> None:
    """Write the users file atomically (0600). Callers hold :func:`locked`."""
    data = {
        "version": 1,
        "users": {u: {k: v for k, v in asdict(rec).items() if k != "username"} for u, rec in users.items()},
    }
    _write_json(users_path(ensure_home(home)), data)


def _policy_error(problems: list[str]) -> AuthError:
    return AuthError("password " + "; ".join(problems))


def add_user(home, username: str, password: str, role: str, *, name: str = "", now: float) -> User:
    check_username(username)
    check_role(role)
    problems = check_password(password, username)
    if problems:
        raise _policy_error(problems)
    hashed = hash_password(password)
    with locked(home):
        users = load_users(home)
        if username in users:
            raise AuthError(f"user {username!r} already exists (use 'passwd' to change the password)")
        user = User(username, role, hashed, name=name, created=now, password_changed=now)
        users[username] = user
        save_users(home, users)
    return user


def set_password(home, username: str, password: str, *, now: float) -> User:
    """Change the password; every existing session (cookie) of the user stops working."""
    problems = check_password(password, username)
    if problems:
        raise _policy_error(problems)
    hashed = hash_password(password)
    with locked(home):
        users = load_users(home)
        if username not in users:
            raise AuthError(f"no such user {username!r}")
        user = users[username]
        user.password_hash = hashed
        user.password_changed = now
        user.session_version += 1
        save_users(home, users)
        SessionStore(home).revoke_user(username)
    return user


def set_role(home, username: str, role: str) -> User:
    check_role(role)
    with locked(home):
        users = load_users(home)
        if username not in users:
            raise AuthError(f"no such user {username!r}")
        if users[username].role == "admin" and role != "admin" and _admins(users) == 1:
            raise AuthError(f"{username!r} is the last admin; add another admin first")
        users[username].role = role
        users[username].session_version += 1
        save_users(home, users)
        SessionStore(home).revoke_user(username)
        return users[username]


def _admins(users: dict[str, User]) -> int:
    return sum(1 for u in users.values() if u.role == "admin")


def remove_user(home, username: str) -> None:
    with locked(home):
        users = load_users(home)
        if username not in users:
            raise AuthError(f"no such user {username!r}")
        if users[username].role == "admin" and _admins(users) == 1:
            raise AuthError(f"{username!r} is the last admin; add another admin first")
        del users[username]
        save_users(home, users)
        SessionStore(home).revoke_user(username)


def normalize_username(raw: str) -> str:
    """Login form input -> account name (usernames are lowercase; passwords are never touched)."""
    return (raw or "").strip().lower()


def authenticate(home, username: str, password: str) -> User | None:
    """The user when ``password`` is right; None otherwise (same cost for unknown users)."""
    user = load_users(home).get(username)
    ok = verify_password(password, user.password_hash if user else None)
    return user if (ok and user is not None) else None


def random_password() -> str:
    while True:
        pw = secrets.token_urlsafe(18)  # 24 characters, 144 bits
        if not check_password(pw, "admin"):
            return pw


def credentials_for_library(users: dict[str, User]) -> dict:
    """The dict streamlit-authenticator wants (a fresh copy: the library mutates it)."""
    return {
        "usernames": {
            u.username: {
                "name": u.display_name,
                "password": u.password_hash,
                "email": "",
                "roles": [u.role],
            }
            for u in users.values()
        }
    }


# --------------------------------------------------------------------------------------------
# Secrets


def secrets_path(home: Path | str) -> Path:
    return Path(home) / SECRETS_NAME


def check_cookie_key(key: object, origin: str = SECRETS_NAME) -> str:
    if not isinstance(key, str) or not key:
        raise AuthError(f"{origin}: cookie_key is missing (delete the file to generate a new one)")
    if key == LIBRARY_DEFAULT_KEY:
        raise AuthError(
            f"{origin}: cookie_key is streamlit-authenticator's public default {LIBRARY_DEFAULT_KEY!r}; "
            "delete the file to generate a random key"
        )
    if len(key) < MIN_KEY_CHARS:
        raise AuthError(
            f"{origin}: cookie_key is too short ({len(key)} characters; need at least {MIN_KEY_CHARS}, "
            "i.e. 32 random bytes); delete the file to generate a random key"
        )
    return key


def load_secrets(home: Path | str, *, create: bool = True) -> dict:
    """The secrets (``cookie_key``), generated on first use; refuses weak or exposed keys."""
    p = secrets_path(home)
    with locked(home):
        if not p.exists():
            if not create:
                raise AuthError(f"{p}: missing (run 'python -m secdash setup')")
            _write_json(p, {"cookie_key": secrets.token_urlsafe(32)})
        st = p.stat()
        if st.st_mode & 0o077:
            raise AuthError(
                f"{p}: readable by other users (mode {oct(st.st_mode & 0o777)}); run: chmod 600 {p}"
            )
        data = _read_json(p, {})
    if not isinstance(data, dict):
        raise AuthError(f"{p}: unexpected structure (delete the file to regenerate it)")
    check_cookie_key(data.get("cookie_key"), str(p))
    return data


# --------------------------------------------------------------------------------------------
# Throttle


@dataclass
class ThrottleState:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    level: int = 0  # blocks so far; the next block lasts block * 2**level
    last: float = 0.0


class Throttle:
    """Sliding-window login throttle per (username, address), plus a looser one per address.

    ``failures`` failed attempts within ``window`` seconds block the pair for ``block`` seconds;
    each further block of the same pair doubles, up to ``max_block``.  A success clears the
    pair.  State older than a day without activity is forgotten, so no lockout is permanent, and
    an attacker can only ever block their own (username, address) pairs, never the real user's
    login from another address.  The per-address limit (``address_factor`` times looser) stops
    one address from spraying many usernames.
    """

    RESET_AFTER = 86400.0

    def __init__(
        self,
        home: Path | str,
        failures: int = 5,
        window: float = 300.0,
        block: float = 60.0,
        max_block: float = 900.0,
        address_factor: int = 4,
    ):
        self.home = Path(home)
        self.failures = failures
        self.window = window
        self.block = block
        self.max_block = max(max_block, block)
        self.address_factor = address_factor

    @classmethod
    def from_config(cls, home, cfg) -> "Throttle":
        return cls(
            home,
            failures=cfg.throttle_failures,
            window=cfg.throttle_window_seconds,
            block=cfg.throttle_block_seconds,
            max_block=cfg.throttle_max_block_seconds,
        )

    @staticmethod
    def _keys(username: str, ip: str | None) -> tuple[str, str]:
        ip = ip or "unknown"
        return f"pair\x00{username}\x00{ip}", f"addr\x00{ip}"

    def _load(self) -> dict[str, ThrottleState]:
        raw = _read_json(self.home / THROTTLE_NAME, {})
        out = {}
        for k, v in raw.items() if isinstance(raw, dict) else ():
            with contextlib.suppress(TypeError):
                out[k] = ThrottleState(**v)
        return out

    def _save(self, states: dict[str, ThrottleState], now: float) -> None:
        keep = {
            k: asdict(s)
            for k, s in states.items()
            if s.blocked_until > now or now - s.last < max(self.RESET_AFTER, self.window)
        }
        _write_json(self.home / THROTTLE_NAME, keep)

    def _remaining(self, s: ThrottleState | None, now: float) -> float:
        return max(0.0, s.blocked_until - now) if s else 0.0

    def check(self, username: str, ip: str | None, now: float) -> float:
        """Seconds the (username, address) must still wait; 0.0 when an attempt is allowed."""
        pair, addr = self._keys(username, ip)
        with locked(self.home):
            states = self._load()
        return max(self._remaining(states.get(pair), now), self._remaining(states.get(addr), now))

    def _fail(self, s: ThrottleState, limit: int, now: float) -> float:
        if now - s.last > self.RESET_AFTER:
            s.level = 0
        s.failures = [t for t in s.failures if now - t < self.window] + [now]
        s.last = now
        if len(s.failures) >= limit and s.blocked_until <= now:
            length = min(self.block * (2 ** s.level), self.max_block)
            s.level += 1
            s.blocked_until = now + length
            return length
        return 0.0

    def failure(self, username: str, ip: str | None, now: float) -> float:
        """Record a failed attempt; returns the length of a block it started (0.0: none)."""
        pair, addr = self._keys(username, ip)
        with locked(self.home):
            states = self._load()
            p = states.setdefault(pair, ThrottleState())
            a = states.setdefault(addr, ThrottleState())
            started = max(self._fail(p, self.failures, now), self._fail(a, self.failures * self.address_factor, now))
            self._save(states, now)
        return started

    def success(self, username: str, ip: str | None, now: float) -> None:
        pair, _ = self._keys(username, ip)
        with locked(self.home):
            states = self._load()
            if states.pop(pair, None) is not None:
                self._save(states, now)


def wait_message(seconds: float) -> str:
    s = max(1, math.ceil(seconds))
    when = f"{s} seconds" if s < 120 else f"{math.ceil(s / 60)} minutes"
    return f"Too many failed login attempts. Try again in {when}."


# --------------------------------------------------------------------------------------------
# Server-side sessions


@dataclass
class SessionCheck:
    ok: bool
    reason: str  # "ok", "missing", "unknown", "idle", "absolute", "revoked"
    user: User | None = None


def _sid_key(sid: str) -> str:
    # The file stores a hash of the session id: reading it does not give out working cookies.
    return hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    """Server-side sessions: the signed cookie only names a session; this table decides.

    A session is valid while it exists, its user exists with the same ``session_version``
    (bumped on password or role change), it was used within ``idle`` seconds (user actions
    only: :meth:`check` with ``touch=False`` for auto-refresh) and is younger than ``absolute``.
    """

    # A touch is written to disk at most this often (the idle timeout is counted in minutes).
    TOUCH_GRANULARITY = 10.0

    def __init__(self, home: Path | str, idle: float = 1800.0, absolute: float = 43200.0):
        self.home = Path(home)
        self.idle = idle
        self.absolute = absolute

    @classmethod
    def from_config(cls, home, cfg) -> "SessionStore":
        return cls(home, idle=cfg.idle_timeout_minutes * 60.0, absolute=cfg.absolute_timeout_hours * 3600.0)

    def _path(self) -> Path:
        return self.home / SESSIONS_NAME

    def _load(self) -> dict[str, dict]:
        data = _read_json(self._path(), {})
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict], now: float) -> None:
        keep = {
            k: v
            for k, v in data.items()
            if now - v.get("created", 0) < self.absolute and now - v.get("last_action", 0) < self.idle
        }
        _write_json(self._path(), keep)

    def create(self, user: User, now: float, ip: str | None = None) -> str:
        sid = secrets.token_urlsafe(32)
        with locked(self.home):
            data = self._load()
            data[_sid_key(sid)] = {
                "user": user.username,
                "version": user.session_version,
                "created": now,
                "last_action": now,
                "ip": ip,
            }
            self._save(data, now)
        return sid

    def check(self, sid: str | None, now: float, *, touch: bool) -> SessionCheck:
        if not sid:
            return SessionCheck(False, "missing")
        key = _sid_key(sid)
        with locked(self.home):
            data = self._load()
            rec = data.get(key)
            if rec is None:
                return SessionCheck(False, "unknown")
            user = load_users(self.home).get(rec.get("user"))
            reason = "ok"
            if user is None or user.session_version != rec.get("version"):
                reason = "revoked"
            elif now - rec.get("created", 0) >= self.absolute:
                reason = "absolute"
            elif now - rec.get("last_action", 0) >= self.idle:
                reason = "idle"
            if reason != "ok":
                del data[key]
                self._save(data, now)
                return SessionCheck(False, reason, user)
            # Written at most every TOUCH_GRANULARITY seconds: no file rewrite on every rerun.
            if touch and now - rec.get("last_action", 0) >= self.TOUCH_GRANULARITY:
                rec["last_action"] = now
                self._save(data, now)
        return SessionCheck(True, "ok", user)

    def revoke(self, sid: str | None) -> bool:
        if not sid:
            return False
        with locked(self.home):
            data = self._load()
            found = data.pop(_sid_key(sid), None) is not None
            if found:
                _write_json(self._path(), data)
        return found

    def revoke_user(self, username: str) -> int:
        with locked(self.home):
            data = self._load()
            gone = [k for k, v in data.items() if v.get("user") == username]
            for k in gone:
                del data[k]
            if gone:
                _write_json(self._path(), data)
        return len(gone)

    def active(self, now: float) -> list[dict]:
        """Sessions still valid by time (for the Admin page)."""
        with locked(self.home):
            data = self._load()
        return [
            {k: v for k, v in rec.items()}
            for rec in data.values()
            if now - rec.get("created", 0) < self.absolute and now - rec.get("last_action", 0) < self.idle
        ]
