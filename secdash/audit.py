"""Audit log: one JSON object per line in ``<data dir>/audit.jsonl`` (UTC, JSON-escaped).

Every login success and failure, throttle, logout, timeout, password change, user change and
data export is appended here.  Lines are written with a single ``write`` on a file opened with
``O_APPEND`` (mode 0600), so concurrent writers (dashboard threads, the CLI) never interleave
within a line.  ``json.dumps(ensure_ascii=True)`` escapes control characters and newlines, so a
hostile username cannot forge extra lines.

Each line carries at least ``ts`` (ISO 8601, UTC), ``action``, ``user``, ``ip`` and ``outcome``
so the event store can ingest the dashboard's own security events next to the system's.
"""
from __future__ import annotations

import collections
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDIT_NAME = "audit.jsonl"

# Actions whose outcome is not a plain success.
_OUTCOMES = {
    "login_failure": "failure",
    "login_throttled": "blocked",
    "session_timeout": "expired",
    "session_revoked": "revoked",
}
# Longest value kept per field (a very long username must not bloat the log).
_MAX_FIELD = 512


def path(home: Path | str) -> Path:
    return Path(home) / AUDIT_NAME


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_FIELD:
        return value[:_MAX_FIELD] + "..."
    if isinstance(value, dict):
        return {str(k): _clip(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clip(v) for v in value]
    return value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def record(
    home: Path | str,
    action: str,
    *,
    user: str | None = None,
    ip: str | None = None,
    outcome: str | None = None,
    now: float | None = None,
    **details: Any,
) -> dict:
    """Append one audit entry and return it.

    ``now`` (epoch seconds) is for tests; by default the wall clock.  ``details`` must be
    JSON-serialisable (anything else is stored as its ``str``).
    """
    ts = time.time() if now is None else now
    entry: dict[str, Any] = {
        "ts": _iso(ts),
        "action": str(action),
        "user": user,
        "ip": ip,
        "outcome": outcome or _OUTCOMES.get(action, "success"),
    }
    for key, value in details.items():
        if key not in entry:
            entry[key] = value
    entry = _clip(entry)
    line = json.dumps(entry, ensure_ascii=True, default=str, separators=(",", ":")) + "\n"
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path(home), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("ascii"))
    finally:
        os.close(fd)
    return entry


def read(home: Path | str, limit: int | None = 1000) -> list[dict]:
    """The most recent entries, newest first (unparsable lines are skipped)."""
    p = path(home)
    try:
        fh = p.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    with fh:
        lines = collections.deque(fh, maxlen=limit) if limit else list(fh)
    out: list[dict] = []
    for line in reversed(lines):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out
