"""SSH session reconstruction: who logged in from where, for how long, and what they ran.

A session is built from the lines of one sshd process (same host and pid):

1. ``ssh_login`` (``Accepted <method> for <user> from <ip>``) starts it;
2. ``session_open`` of sshd with the same host and pid (within ``OPEN_WINDOW`` seconds) confirms
   it (PAM opened the session); a login without one is kept (``opened`` false);
3. ``session_close`` of sshd with the same host and pid ends it; without one the session is
   ``open`` (still running, or the log ends / rotated away);
4. ``sudo_command`` and ``su_success`` of the session's user on that host while the session was
   open are its commands. When the same user has several sessions open on the host at once, the
   command's tty decides: a session that already ran a command on that tty keeps it, else the
   most recently started session without a known tty takes it (and its tty becomes known).
   sshd itself does not log a tty, so this is a best effort and documented as such.

Pure functions over event frames (polars), like :mod:`secdash.detect`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

OPEN_WINDOW = 60.0
USED_EVENTS = ("ssh_login", "session_open", "session_close", "sudo_command", "su_success", "login_session_new")
USED_COLUMNS = ("id", "ts", "host", "program", "pid", "event", "user", "target_user", "src_ip", "src_port", "method",
                "command", "tty", "session_id")

SESSION_SCHEMA: dict[str, pl.DataType] = {
    "session": pl.String,  # host:pid:start epoch
    "host": pl.String,
    "pid": pl.Int64,
    "user": pl.String,
    "src_ip": pl.String,
    "method": pl.String,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64,
    "status": pl.String,  # closed / open
    "opened": pl.Boolean,
    "tty": pl.String,
    "logind_session": pl.String,
    "n_commands": pl.Int64,
    "commands": pl.List(pl.String),
    "event_ids": pl.List(pl.Int64),
}


@dataclass
class _S:
    host: str | None
    pid: int | None
    user: str | None
    ip: str | None
    method: str | None
    start: dt.datetime
    login_id: int
    end: dt.datetime | None = None
    opened: bool = False
    tty: str | None = None
    logind: str | None = None
    commands: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


def _is_sshd(program) -> bool:
    return isinstance(program, str) and program.startswith("sshd")


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SESSION_SCHEMA)


def reconstruct(events: pl.DataFrame) -> pl.DataFrame:
    """Sessions of ``events`` (event schema with ``id``), newest first."""
    from secdash.events import SCHEMA

    cols = []
    for c in USED_COLUMNS:
        dtype = pl.Int64 if c == "id" else SCHEMA[c]
        cols.append(pl.col(c).cast(dtype) if c in events.columns else pl.lit(None, dtype=dtype).alias(c))
    ev = (events.select(cols).filter(pl.col("event").is_in(USED_EVENTS) & pl.col("ts").is_not_null())
          .sort("ts", "id"))
    sessions: list[_S] = []
    by_conn: dict[tuple, _S] = {}  # (host, pid) -> the latest session of that sshd process
    pending_cmds = []
    for r in ev.iter_rows(named=True):
        e, host, pid, ts = r["event"], r["host"], r["pid"], r["ts"]
        if e == "ssh_login" and _is_sshd(r["program"]):
            s = _S(host, pid, r["user"], r["src_ip"], r["method"], ts, r["id"], ids=[r["id"]])
            sessions.append(s)
            if pid is not None:
                by_conn[(host, pid)] = s
        elif e in ("session_open", "session_close") and _is_sshd(r["program"]) and pid is not None:
            s = by_conn.get((host, pid))
            if s is None or s.end is not None:
                continue
            if e == "session_open":
                if not s.opened and (ts - s.start).total_seconds() <= OPEN_WINDOW:
                    s.opened = True
                    s.ids.append(r["id"])
            else:
                s.end = ts
                s.ids.append(r["id"])
        elif e == "login_session_new":
            for s in reversed(sessions[-50:]):  # logind writes within a second of the login
                if s.host == host and s.user == r["user"] and s.logind is None and \
                        0 <= (ts - s.start).total_seconds() <= 5:
                    s.logind = r["session_id"]
                    s.ids.append(r["id"])
                    break
        elif e in ("sudo_command", "su_success"):
            pending_cmds.append(r)
    # commands: sessions of that user on that host open at the command's time
    by_user: dict[tuple, list[_S]] = {}
    for s in sessions:
        by_user.setdefault((s.host, s.user), []).append(s)
    for r in pending_cmds:
        ts, tty = r["ts"], r["tty"]
        cands = [s for s in by_user.get((r["host"], r["user"]), ()) if s.start <= ts
                 and (s.end is None or ts <= s.end)]
        if not cands:
            continue
        chosen = None
        if tty:
            same = [s for s in cands if s.tty == tty]
            if same:
                chosen = max(same, key=lambda s: s.start)
        if chosen is None:
            free = [s for s in cands if s.tty is None]
            chosen = max(free or cands, key=lambda s: s.start)
        if tty and chosen.tty is None:
            chosen.tty = tty
        text = r["command"] if r["event"] == "sudo_command" else f"su {r['target_user'] or ''}".strip()
        if r["event"] == "sudo_command":
            text = f"sudo -u {r['target_user']} {text}" if r["target_user"] and r["target_user"] != "root" \
                else f"sudo {text}"
        chosen.commands.append(text)
        chosen.ids.append(r["id"])
    if not sessions:
        return empty()
    rows = []
    for s in sessions:
        rows.append({
            "session": f"{s.host}:{s.pid}:{int(s.start.timestamp())}",
            "host": s.host, "pid": s.pid, "user": s.user, "src_ip": s.ip, "method": s.method,
            "start": s.start, "end": s.end,
            "duration_s": (s.end - s.start).total_seconds() if s.end is not None else None,
            "status": "closed" if s.end is not None else "open",
            "opened": s.opened, "tty": s.tty, "logind_session": s.logind,
            "n_commands": len(s.commands), "commands": s.commands, "event_ids": sorted(s.ids),
        })
    out = pl.DataFrame(rows, schema=SESSION_SCHEMA)
    return out.sort("start", descending=True)


def load(store, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
         margin: dt.timedelta = dt.timedelta(hours=12)) -> pl.DataFrame:
    """Sessions that started in [since, until) (events read with ``margin`` after ``until`` so
    their ends and commands are found)."""
    from secdash.store import read_events

    with store.read() as con:
        events = read_events(con, USED_EVENTS, USED_COLUMNS, since=since,
                             until=until + margin if until is not None else None)
    out = reconstruct(events)
    if until is not None:
        out = out.filter(pl.col("start") < until)
    return out
