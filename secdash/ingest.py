"""Incremental, rotation-safe ingestion of log sources into the event store.

Each run reads only the bytes added since the last run. Files are known by a record in
``ingest_state``: device + inode, a fingerprint (hash of the first bytes, decompressed for gzip,
and how many bytes it covers), the byte offset and line number read up to, and the year state of
classic timestamps. Every file of a rotated set (oldest first) is matched to a record:

1. same device+inode and the fingerprint still matches: the same file, perhaps renamed
   (``create`` rotation: auth.log -> auth.log.1 keeps its inode);
2. else the same fingerprint under another inode: the same content, copied or compressed
   (auth.log.1 -> auth.log.2.gz; ``copytruncate`` copies auth.log to auth.log.1);
3. else a new file, read from its start (a new auth.log, a truncated or rewritten file, a reused
   inode). A known file that is now shorter than its offset was truncated: read from its start.

A record is claimed by at most one file per run, and a file (device+inode) is read at most once
per run, so the same file named twice is not doubled. The live file's unterminated last line is
held back until it is complete. Events and the new state of their file are written in ONE
transaction, so a crash or a busy store can neither lose nor double a line.

Runs are serialised between processes by an advisory lock file next to the store; database
connections are short-lived (one per batch), so readers (the dashboard, ``export``) get in
between batches.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from secdash.errors import SecdashError, SourceError, StoreBusyError
from secdash.store import Store, delete_older_than, insert_events

FINGERPRINT_BYTES = 1024
# A rotated (no longer live) plain file may still get the rest of its last line from a writer that
# has not reopened yet; its unterminated last line is taken as complete only this long after its
# last change.
HOLD_SECONDS = 60.0
AUDIT_SOURCE = "secdash-audit"
RUNS_KEEP_DAYS = 30  # rows of ingest_runs older than this are dropped
# Parsed rows collected before one write transaction. DuckDB compresses best (and with the least
# CPU) when a transaction appends several full row groups (122,880 rows) at once: measured on 1M
# generated events, 140k-row transactions cost 4.5 s CPU and 63 bytes/event, 400-500k-row ones
# 1.9-2.4 s and 46-57 bytes/event. Costs ~100 MB of memory per 500k rows during a bulk ingest.
FLUSH_ROWS = 450_000
HOLD_CONNECTION_SECONDS = 1.0
BULK_BYTES = 1 << 20  # more new bytes than this in a file: no connection is held while reading it
FLUSH_ROWS_BACKGROUND = 150_000  # the dashboard process: less memory (~0.8 GB instead of ~1.3 GB peak)


@dataclass
class SourceReport:
    """What one ingest run did for one source."""

    source: str
    kind: str = "file"
    files: int = 0  # files looked at
    files_read: int = 0  # files that had new data
    new_lines: int = 0
    events: int = 0  # rows stored
    by_event: collections.Counter = field(default_factory=collections.Counter)
    unknown: int = 0
    seconds: float = 0.0
    error: str | None = None
    missing: bool = False  # the error is "no such file"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["by_event"] = dict(self.by_event)
        return d


@dataclass
class FileState:
    file_id: int
    source: str
    path: str
    dev: int = 0
    inode: int = 0
    fingerprint: str = ""
    fp_len: int = 0
    offset: int = 0
    line: int = 1
    year: int | None = None
    month: int = 0
    size: int = 0
    mtime: float = 0.0
    first_seen: dt.datetime | None = None
    updated: dt.datetime | None = None
    cursor: str | None = None


STATE_COLUMNS = ["file_id", "source", "path", "dev", "inode", "fingerprint", "fp_len", "offset", "line", "year",
                 "month", "size", "mtime", "first_seen", "updated", "cursor"]


def load_states(con) -> list[FileState]:
    cols = ", ".join(f'"{c}"' for c in STATE_COLUMNS)
    rows = con.execute(f"SELECT {cols} FROM ingest_state ORDER BY file_id DESC").fetchall()
    return [FileState(**dict(zip(STATE_COLUMNS, r, strict=True))) for r in rows]


def save_state(con, s: FileState) -> None:
    con.execute("DELETE FROM ingest_state WHERE file_id = ?", [s.file_id])
    cols = ", ".join(f'"{c}"' for c in STATE_COLUMNS)
    con.execute(f"INSERT INTO ingest_state ({cols}) VALUES ({', '.join('?' for _ in STATE_COLUMNS)})",
                [getattr(s, c) for c in STATE_COLUMNS])


# ---------------------------------------------------------------------------------------------
# Inter-process lock (one ingest at a time per store)


class IngestLock:
    def __init__(self, store: Store) -> None:
        self.path = Path(str(store.path) + ".ingest.lock")
        self.fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


# ---------------------------------------------------------------------------------------------
# Helpers


def _head(path: Path) -> bytes:
    from secdash.sources import open_binary

    with open_binary(path) as f:
        return f.read(FINGERPRINT_BYTES)


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class _Limited:
    """A binary file that ends at ``limit`` bytes."""

    def __init__(self, f, limit: int) -> None:
        self.f = f
        self.limit = limit

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.limit - self.f.tell()
        if left <= 0:
            return b""
        return self.f.read(left if n is None or n < 0 else min(n, left))


def _fp_matches(rec: FileState, head: bytes) -> bool:
    return len(head) >= rec.fp_len and _hash(head[: rec.fp_len]) == rec.fingerprint


class _Run:
    """State of one ingest run."""

    def __init__(self, store: Store, states: list[FileState], *, tz: str, now: dt.datetime, batch_bytes: int,
                 hold_seconds: float, flush_rows: int = FLUSH_ROWS) -> None:
        self.store = store
        self.states = states  # newest first
        self.claimed: set[int] = set()
        self.done: set[tuple[int, int]] = set()
        self.next_id = max((s.file_id for s in states), default=0) + 1
        self.tz = tz
        self.now = now
        self.batch_bytes = batch_bytes
        self.hold_seconds = hold_seconds
        self.inserted = 0
        self.flush_rows = flush_rows
        self.pending: list[tuple[object, FileState]] = []
        self.pending_rows = 0
        self.writer: _Writer | None = None
        self.held: contextlib.ExitStack | None = None
        self.held_con = None
        self.held_until = 0.0
        self.owner = threading.current_thread()

    def match(self, dev: int, inode: int, head: bytes) -> FileState | None:
        for s in self.states:  # 1. same inode, fingerprint still matches (newest record first)
            if s.file_id not in self.claimed and s.cursor is None and (s.dev, s.inode) == (dev, inode) \
                    and _fp_matches(s, head):
                return s
        if head:
            for s in self.states:  # 2. same content under another inode (compressed, copied)
                if s.file_id not in self.claimed and s.cursor is None and s.fp_len > 0 and _fp_matches(s, head):
                    return s
        return None

    def is_second_copy(self, head: bytes) -> bool:
        """The content of a file already read in this run (auth.log.1 next to auth.log.1.gz while
        logrotate compresses, or a copy of a log given as another source)."""
        return bool(head) and any(s.file_id in self.claimed and s.cursor is None and s.fp_len > 0
                                  and _fp_matches(s, head) for s in self.states)

    def new_state(self, source: str, path: Path) -> FileState:
        s = FileState(file_id=self.next_id, source=source, path=str(path), first_seen=self.now)
        self.next_id += 1
        self.states.insert(0, s)
        return s

    def release_held(self) -> None:
        if self.held is not None:
            held, self.held, self.held_con = self.held, None, None
            held.close()

    def commit(self, df, state: FileState) -> None:
        """Queue events + the new state of their file; written together by :meth:`flush`.

        A full queue is handed to a writer thread, so the next batch is parsed while this one is
        stored (one writer, in order; after a failed write nothing later is written).
        """
        state.updated = self.now
        if self.held is not None and time.monotonic() > self.held_until:
            self.release_held()
        self.pending.append((df, dataclasses.replace(state)))
        self.pending_rows += df.height if df is not None else 0
        if self.pending_rows >= self.flush_rows:
            self._raise_writer_error()
            items, self.pending, self.pending_rows = self.pending, [], 0
            self.release_held()  # a bulk ingest: short connections from here on
            if self.writer is None:
                self.writer = _Writer(self)
            self.writer.submit(items)

    def _raise_writer_error(self) -> None:
        if self.writer is not None and self.writer.error is not None:
            raise self.writer.error

    def flush(self, runs: Sequence[SourceReport] = (), retention_cutoff: dt.datetime | None = None) -> None:
        """Wait for the writer, then write what is queued, the run statistics and retention."""
        if self.writer is not None:
            self.writer.close()
            self._raise_writer_error()
        self._write(self.pending, runs, retention_cutoff)
        self.pending, self.pending_rows = [], 0

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _write(self, items, runs: Sequence[SourceReport] = (), retention_cutoff: dt.datetime | None = None) -> None:
        """One transaction: events, file states, run statistics, retention."""
        if not items and not runs and retention_cutoff is None:
            return
        import polars as pl

        frames = [df for df, _ in items if df is not None and df.height]
        states = {s.file_id: s for _, s in items}  # the last state of each file wins
        use_held = self.held_con is not None and threading.current_thread() is self.owner
        with (contextlib.nullcontext(self.held_con) if use_held else self.store.write()) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if frames:
                    self.inserted += insert_events(con, frames[0] if len(frames) == 1 else pl.concat(frames))
                for s in states.values():
                    save_state(con, s)
                for r in runs:
                    con.execute("INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                [self.now, r.source, r.files, r.new_lines, r.events, r.unknown, r.seconds, r.error])
                if runs:  # run statistics are kept for RUNS_KEEP_DAYS
                    con.execute("DELETE FROM ingest_runs WHERE started < ?",
                                [self.now - dt.timedelta(days=RUNS_KEEP_DAYS)])
                if retention_cutoff is not None:
                    delete_older_than(con, retention_cutoff)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


class _Writer:
    """One background thread writing queued batches in order (parse and store overlap)."""

    def __init__(self, run: _Run) -> None:
        import queue

        self.run = run
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="secdash-ingest-writer", daemon=True)
        self.thread.start()

    def submit(self, items) -> None:
        # wait until the previous write is done: at most one set being written, one being parsed
        self.queue.join()
        self.queue.put(items)

    def _loop(self) -> None:
        while True:
            items = self.queue.get()
            try:
                if items is None:
                    return
                if self.error is None:  # after a failure nothing later may be written
                    try:
                        self.run._write(items)
                    except BaseException as exc:  # noqa: BLE001 - handed to the ingesting thread
                        self.error = exc
            finally:
                self.queue.task_done()

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


def _count(report: SourceReport, df) -> None:
    if df is None or not df.height:
        return
    report.events += df.height
    counts = df.get_column("event").value_counts()
    for ev, n in counts.iter_rows():
        report.by_event[ev] += n
    report.unknown += int((df.get_column("event") == "unknown").sum())


Parser = Callable[[list[str], int, Path, object], object]


def _parse_log(run: _Run):
    """The parser of auth logs: batches are parsed by :func:`secdash.sources.parse_batches`
    (its expensive half on two threads); this callable is its sequential equivalent."""
    from secdash.parse import parse_lines

    def parse(lines: list[str], first_line: int, path: Path, ys) -> object:
        return parse_lines(lines, tz=run.tz, source=str(path), first_line=first_line, year_state=ys)

    parse.pipelined = True  # type: ignore[attr-defined]
    return parse


def _parsed(batches, parse: Callable, run: _Run, path: Path, ys):
    """(batch, events, year state after it) for each batch, in order."""
    from secdash.sources import parse_batches

    if getattr(parse, "pipelined", False):
        yield from parse_batches(batches, tz=run.tz, source=str(path), year_state=ys)
        return
    for b in batches:
        df = parse(b.lines, b.first_line, path, ys)
        yield b, df, (ys.year, ys.month)


def _ingest_file(run: _Run, report: SourceReport, source: str, path: Path, *, live: bool,
                 parse: Callable, classic: bool = True) -> None:
    from secdash.parse import YearState
    from secdash.sources import classic_start_year, iter_batches, open_binary

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # rotated away between listing and reading
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    key = (st.st_dev, st.st_ino)
    if key in run.done:
        return  # the same file named twice
    run.done.add(key)
    report.files += 1
    head = _head(path)
    if not head:
        # Nothing to read and nothing to remember: a record for an empty file would match any
        # later file that reuses its inode (an empty fingerprint matches everything).
        return
    gz = _is_gzip(path)
    state = run.match(st.st_dev, st.st_ino, head)
    if state is None and run.is_second_copy(head):
        return
    if state is not None:
        run.claimed.add(state.file_id)
        same_identity = (state.dev, state.inode) == key
        if not gz and st.st_size < state.offset:
            # truncated in place: everything in it is new
            state.offset, state.line, state.year, state.month = 0, 1, None, 0
        elif same_identity and state.size == st.st_size and state.mtime == st.st_mtime and state.path == str(path) \
                and (gz or live or state.offset >= st.st_size):
            return  # unchanged since the last run
    else:
        state = run.new_state(source, path)
        run.claimed.add(state.file_id)
    changed = (state.dev, state.inode, state.path, state.size, state.mtime) != (
        st.st_dev, st.st_ino, str(path), st.st_size, st.st_mtime)
    state.source = source
    state.path, state.dev, state.inode, state.size, state.mtime = str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime
    if len(head) > state.fp_len or state.fp_len == 0:
        state.fp_len, state.fingerprint = len(head), _hash(head)
    if gz or st.st_size - state.offset > BULK_BYTES:
        run.release_held()  # much to read: do not keep other processes out meanwhile
    if state.year is None:
        if classic:
            mtime = dt.datetime.fromtimestamp(st.st_mtime, ZoneInfo(run.tz))
            ys = classic_start_year(path, mtime)
        else:
            ys = YearState(year=run.now.year)
    else:
        ys = YearState(year=state.year, month=state.month)
    final = gz or (not live and time.time() - st.st_mtime > run.hold_seconds)
    read_any = False
    with open_binary(path) as raw:
        # A plain file is read up to its size at the start of the run: a file written faster than
        # it is read must not keep one run going forever (the rest is the next run's).
        f = raw if gz else _Limited(raw, st.st_size)
        batches = iter_batches(f, start_offset=state.offset, first_line=state.line, batch_bytes=run.batch_bytes,
                               final=final)
        parsed = _parsed(batches, parse, run, path, ys)
        current = next(parsed, None)
        while current is not None:
            batch, df, (year, month) = current
            following = next(parsed, None)
            # The file's size is recorded (it lets the next run skip an unchanged file) only with
            # its last batch: a run interrupted in between must read the rest next time.
            state.size = st.st_size if following is None else -1
            state.offset = batch.end_offset
            state.line = batch.first_line + len(batch.lines)
            state.year, state.month = year, month
            run.commit(df, state)
            read_any = True
            report.new_lines += len(batch.lines)
            _count(report, df)
            current = following
    if read_any:
        report.files_read += 1
    elif changed or state.year is None:
        state.year, state.month = ys.year, ys.month
        run.commit(None, state)


# ---------------------------------------------------------------------------------------------
# The dashboard's audit log as a source

_AUDIT_EVENTS = {
    # action -> (event, outcome, text)
    "login_failure": ("auth_failure", "failure", "dashboard login failed"),
    "login": ("session_open", "success", "dashboard login"),
    "login_success": ("session_open", "success", "dashboard login"),
    "session_resume": ("session_open", "success", "dashboard session resumed"),
    "login_throttled": ("account_locked", "failure", "dashboard login throttled"),
    "throttled": ("account_locked", "failure", "dashboard login throttled"),
    "logout": ("session_close", "unknown", "dashboard logout"),
    "session_timeout": ("session_close", "unknown", "dashboard session timed out"),
    "session_revoked": ("session_close", "unknown", "dashboard session revoked"),
    "password_change": ("password_changed", "success", "dashboard password changed"),
    "user_add": ("user_created", "success", "dashboard account created"),
    "user_remove": ("user_deleted", "success", "dashboard account removed"),
}
_CONTROL = {c: 0x2400 + c for c in range(0x20) if c != 0x09}
_CONTROL[0x7F] = 0x2421


def _clean(value) -> str | None:
    if value is None:
        return None
    return str(value).translate(_CONTROL)[:1024] or None


def _address(value: str | None) -> tuple[str | None, str | None]:
    """(ip, host) of a client address as the audit log gives it (IPv4-mapped IPv6 as IPv4)."""
    if not value:
        return None, None
    import ipaddress

    try:
        ip = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None, value
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), None
    return str(ip), None


def audit_frame(lines: list[str], first_line: int, source: str, host: str | None = None):
    """Audit-log JSON lines -> events (program "secdash")."""
    import polars as pl

    from secdash.events import SCHEMA

    host = host or socket.gethostname()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        flags = None
        try:
            e = json.loads(line)
            if not isinstance(e, dict):
                raise ValueError
        except ValueError:
            e, flags = {}, "no_header"
        action = str(e.get("action") or "")
        event, outcome, text = _AUDIT_EVENTS.get(action, ("service_event", "unknown", f"dashboard {action}"))
        if flags:
            event, outcome, text = "unknown", "unknown", line
        ts = None
        if e.get("ts"):
            try:
                ts = dt.datetime.fromisoformat(str(e["ts"]).replace("Z", "+00:00"))
                ts = ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts.astimezone(dt.timezone.utc)
            except ValueError:
                flags = "bad_ts"
        user, ip = _clean(e.get("user")), _clean(e.get("ip"))
        target = _clean(e.get("target"))
        extra = {k: v for k, v in e.items() if k not in ("ts", "action", "user", "ip", "outcome", "target")}
        if not flags:
            msg = f"{text}" + (f" for user {user!r}" if user else "") + (f" from {ip}" if ip else "")
            if target:
                msg += f" (account {target!r})"
        else:
            msg = _clean(line)
        detail = ", ".join(f"{k}={v}" for k, v in extra.items()) or None
        src_ip, src_host = _address(ip)
        rows.append({
            "ts": ts, "host": host, "program": "secdash", "pid": None, "event": event, "outcome": outcome,
            "user": user, "target_user": target, "src_ip": src_ip, "src_host": src_host, "src_port": None,
            "method": "password" if action.startswith("login") else None, "command": None, "tty": None,
            "cwd": None, "uid": None, "session_id": None, "group_name": None, "detail": _clean(detail),
            "count": 1, "message": _clean(msg), "pattern": f"secdash.audit.{action}" if action else None,
            "flags": flags, "source": source, "line": first_line + i,
        })
    return pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)


# ---------------------------------------------------------------------------------------------
# journald


def _ingest_journal(run: _Run, report: SourceReport) -> None:
    from secdash.sources import read_journal

    state = next((s for s in run.states if s.source == "journald" and s.cursor is not None), None)
    df, cursor = read_journal(after_cursor=state.cursor if state else None)
    if state is None:
        state = run.new_state("journald", Path("journal"))
    report.files += 1
    if cursor and cursor != state.cursor:
        state.cursor = cursor
        run.commit(df, state)
        report.files_read += 1
        report.new_lines += df.height
        _count(report, df)


# ---------------------------------------------------------------------------------------------
# Entry points


def audit_path(home: str | os.PathLike) -> Path:
    return Path(home) / "audit.jsonl"


def ingest(store: Store, sources: Sequence[str], *, tz: str, now: dt.datetime | None = None,
           audit_log: str | os.PathLike | None = None, retention_days: int = 0, lock_timeout: float | None = None,
           batch_bytes: int = 16 << 20, hold_seconds: float = HOLD_SECONDS,
           flush_rows: int = FLUSH_ROWS) -> list[SourceReport]:
    """Ingest ``sources`` (paths as in the config: live files, directories, "journald").

    Returns one report per source; a source that cannot be read gets its ``error`` set and does
    not stop the others. Raises :class:`StoreBusyError` when the store (or another ingest run)
    stays busy for longer than ``lock_timeout`` (default: the store's timeout).
    """
    from secdash.sources import expand_sources

    now = now or dt.datetime.now(dt.timezone.utc)
    lock = IngestLock(store)
    wait = store.timeout if lock_timeout is None else lock_timeout
    if not lock.acquire(wait):
        raise StoreBusyError(f"another ingest into {store.path} is running (the dashboard's background "
                             "ingester or a cron job?); try again")
    run = None
    held = None
    try:
        # One read-write connection for a short run (the usual few new lines: state, events and
        # statistics in one open/close); given up at the first commit after HOLD_CONNECTION_SECONDS
        # so a long initial ingest does not keep other processes out.
        held = contextlib.ExitStack()
        con = held.enter_context(store.write())
        states = load_states(con)
        run = _Run(store, states, tz=tz, now=now, batch_bytes=batch_bytes, hold_seconds=hold_seconds,
                   flush_rows=flush_rows)
        run.held, run.held_con = held, con
        run.held_until = time.monotonic() + HOLD_CONNECTION_SECONDS
        reports: list[SourceReport] = []
        for raw in sources:
            try:
                specs = expand_sources([str(raw)])
            except SourceError as exc:
                reports.append(SourceReport(source=str(raw), error=str(exc), missing="no such file" in str(exc)))
                continue
            for spec in specs:
                report = SourceReport(source=spec.name, kind=spec.kind)
                t1 = time.perf_counter()
                try:
                    if spec.kind == "journal":
                        _ingest_journal(run, report)
                    else:
                        parse = _parse_log(run)
                        for path in spec.files:
                            is_live = spec.live is not None and Path(path) == Path(spec.live)
                            _ingest_file(run, report, spec.name, Path(path), live=is_live, parse=parse)
                except SourceError as exc:
                    report.error = str(exc)
                report.seconds = time.perf_counter() - t1
                reports.append(report)
        if audit_log is not None and Path(audit_log).exists():
            report = SourceReport(source=str(audit_log), kind="audit")
            t1 = time.perf_counter()
            host = socket.gethostname()

            def parse_audit(lines, first_line, path, ys):
                return audit_frame(lines, first_line, str(path), host)

            try:
                _ingest_file(run, report, AUDIT_SOURCE, Path(audit_log), live=True, parse=parse_audit, classic=False)
            except SourceError as exc:
                report.error = str(exc)
            report.seconds = time.perf_counter() - t1
            reports.append(report)
        _finish(store, run, reports, retention_days)
        return reports
    finally:
        if run is not None:
            run.abort()
            run.release_held()
        elif held is not None:
            held.close()
        lock.release()


def _finish(store: Store, run: _Run, reports: list[SourceReport], retention_days: int) -> None:
    worth = [r for r in reports if r.new_lines or r.error]
    cutoff = None
    if retention_days and (run.inserted or run.pending_rows):
        cutoff = run.now - dt.timedelta(days=retention_days)
    run.flush(runs=worth, retention_cutoff=cutoff)


def ingest_config(cfg, paths: Sequence[str] | None = None, *, now: dt.datetime | None = None,
                  store: Store | None = None, lock_timeout: float | None = None,
                  flush_rows: int = FLUSH_ROWS) -> list[SourceReport]:
    """Ingest the configured sources (or ``paths``) with the settings of ``cfg``."""
    store = store or Store.from_config(cfg)
    if paths:
        sources = list(paths)
    else:
        sources = list(cfg.sources.paths)
        if cfg.sources.journald and "journald" not in sources:
            sources.append("journald")
    audit = audit_path(cfg.home) if (cfg.ingest.audit_log and not paths) else None
    return ingest(store, sources, tz=cfg.zone, now=now, audit_log=audit, retention_days=cfg.store.retention_days,
                  lock_timeout=lock_timeout, flush_rows=flush_rows)


# ---------------------------------------------------------------------------------------------
# Background ingest for the dashboard process


class BackgroundIngester(threading.Thread):
    """Runs the incremental ingest every ``interval`` seconds until :meth:`stop`.

    Never raises: the last error (a busy store, an unreadable source) is kept in
    ``last_error`` / ``last_reports`` for the UI. When another process is ingesting, the tick is
    skipped.
    """

    def __init__(self, cfg, *, interval: float | None = None, store: Store | None = None) -> None:
        super().__init__(name="secdash-ingest", daemon=True)
        self.cfg = cfg
        self.store = store or Store.from_config(cfg)
        self.interval = float(interval if interval is not None else cfg.ingest.interval_seconds)
        self._stop_event = threading.Event()
        self.lock = threading.Lock()
        self.runs = 0
        self.last_run: dt.datetime | None = None
        self.last_seconds: float | None = None
        self.last_reports: list[SourceReport] = []
        self.last_error: str | None = None
        self.new_events = 0  # events stored since start

    def _current_config(self):
        """The config file is read again each tick, so new sources (e.g. ``demo``) are followed."""
        from secdash import config

        try:
            fresh = config.load(self.cfg.home)
        except config.ConfigError:
            return self.cfg  # keep going with the last good configuration
        if Store.from_config(fresh).path == self.store.path:
            self.cfg = fresh
        return self.cfg

    def run_once(self) -> list[SourceReport]:
        t0 = time.perf_counter()
        try:
            reports = ingest_config(self._current_config(), store=self.store, lock_timeout=0.0,
                                    flush_rows=FLUSH_ROWS_BACKGROUND)
            error = "; ".join(r.error for r in reports if r.error and not r.missing) or None
        except StoreBusyError as exc:
            reports, error = [], str(exc)
        except SecdashError as exc:
            reports, error = [], str(exc)
        except Exception as exc:  # noqa: BLE001 - a background thread must survive anything
            reports, error = [], f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.runs += 1
            self.last_run = dt.datetime.now(dt.timezone.utc)
            self.last_seconds = time.perf_counter() - t0
            self.last_reports = reports
            self.last_error = error
            self.new_events += sum(r.events for r in reports)
        return reports

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.run_once()
            self._stop_event.wait(self.interval)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def status(self) -> dict:
        with self.lock:
            return {
                "running": self.is_alive(), "runs": self.runs, "last_run": self.last_run,
                "last_seconds": self.last_seconds, "last_error": self.last_error, "new_events": self.new_events,
                "interval": self.interval,
            }


_BACKGROUND: dict[str, BackgroundIngester] = {}
_BG_LOCK = threading.Lock()


def start_background_ingest(cfg) -> BackgroundIngester | None:
    """The process's background ingester for this store (started once; later calls return it).

    None when ``[ingest] background = false`` (cron runs ``python -m secdash ingest`` instead).
    """
    if not cfg.ingest.background:
        return None
    store = Store.from_config(cfg)
    key = str(store.path.resolve())
    with _BG_LOCK:
        bg = _BACKGROUND.get(key)
        if bg is None or not bg.is_alive():
            bg = BackgroundIngester(cfg, store=store)
            bg.start()
            _BACKGROUND[key] = bg
        return bg


def stop_background_ingest() -> None:
    with _BG_LOCK:
        for bg in _BACKGROUND.values():
            bg.stop()
        _BACKGROUND.clear()


__all__ = ["ingest", "ingest_config", "SourceReport", "BackgroundIngester", "start_background_ingest",
           "stop_background_ingest", "audit_frame", "FileState", "Parser"]
