"""Log sources: files (plain or gzip), rotated sets, per-host directories, and the systemd journal.

Everything here reads bytes and hands complete lines to :mod:`secdash.parse`; it never guesses
the time (callers pass ``now``/``mtime``). Problems with a source are a :class:`SourceError` whose
message is one line a person can act on.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from secdash.errors import SourceError
from secdash.parse import MONTHS, YearState, end_year, finish, parse_records, prepare, year_offsets

BATCH_BYTES = 8 << 20  # bytes read per batch (~75k lines): bounds memory whatever the file size
MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is cut here (the parser then flags it truncated)
FINGERPRINT_BYTES = 1024

_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<n>[0-9]+)|-(?P<date>[0-9]{8}))(?P<gz>\.gz)?$")
_MAGIC = {
    b"LPKSHHRH": "a binary systemd journal file (use a journald source instead)",
    b"\x7fELF": "an executable, not a log",
    b"\x28\xb5\x2f\xfd": "zstd-compressed (only gzip is read; decompress it first)",
    b"\xfd7zXZ": "xz-compressed (only gzip is read; decompress it first)",
    b"BZh": "bzip2-compressed (only gzip is read; decompress it first)",
    b"SQLite format": "an SQLite database, not a log",
}
PERMISSION_HINT = (
    "add this account to group 'adm' (sudo usermod -aG adm $USER, then log in again) or run as root"
)


@dataclass
class Batch:
    lines: list[str]
    first_line: int  # line number of lines[0]
    start_offset: int  # byte offset (in the decompressed stream) of lines[0]
    end_offset: int  # byte offset just after the last complete line consumed


@dataclass
class SourceSpec:
    """One logical source: a rotated set of files (oldest first) or the journal."""

    name: str
    files: list[Path] = field(default_factory=list)
    live: Path | None = None  # the file still being written (its partial last line is held)
    kind: str = "file"  # "file" or "journal"


# ---------------------------------------------------------------------------------------------
# Opening and reading


def _describe_os_error(path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied; {PERMISSION_HINT}"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory, not a log file"
    return f"{path}: cannot read: {exc.strerror or exc}"


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a log file for reading bytes; gzip is decompressed transparently."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        f = open(path, "rb")  # noqa: SIM115 - returned to the caller
        head = f.read(4096)
        f.seek(0)
    except OSError as exc:
        raise SourceError(_describe_os_error(path, exc)) from None
    if head[:2] == b"\x1f\x8b":
        g = gzip.GzipFile(fileobj=f)
        try:
            head = g.read(4096)
            g.seek(0)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            f.close()
            raise SourceError(f"{path}: damaged gzip file ({exc})") from None
        _check_text(path, head)
        return g
    _check_text(path, head)
    return f


def _check_text(path: Path, head: bytes) -> None:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise SourceError(f"{path}: {what}")
    if head and b"\n" not in head and len(head) >= 4096:
        # NUL runs are tolerated (a crash can leave them in a log); other control bytes are not
        binary = sum(1 for b in head if 0 < b < 9 or 13 < b < 32)
        if binary > len(head) // 4:
            raise SourceError(f"{path}: does not look like a text log (binary data)")


def iter_batches(f: BinaryIO, *, start_offset: int = 0, first_line: int = 1, batch_bytes: int = BATCH_BYTES,
                 final: bool = True) -> Iterator[Batch]:
    """Complete lines from ``start_offset`` on, in batches of about ``batch_bytes``.

    With ``final=False`` (a live file) an unterminated last line is held back: ``end_offset``
    of the last batch stops before it, so the next run reads it again once it is complete.
    Lines longer than MAX_LINE_BYTES are cut there; the rest of such a line is skipped.
    """
    try:
        f.seek(start_offset)
    except (OSError, EOFError) as exc:
        raise SourceError(f"cannot seek to byte {start_offset}: {exc}") from None
    offset = start_offset  # offset of data[0]
    line_no = first_line
    buf = b""
    skipping = False  # inside the tail of an over-long line
    while True:
        try:
            block = f.read(batch_bytes)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise SourceError(f"read error near byte {offset + len(buf)}: {exc}") from None
        eof = not block
        data = buf + block
        pos = 0
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                offset += len(data)
                buf = b""
                if eof:
                    break
                continue
            pos = nl + 1
            skipping = False
        batch_start = offset + pos
        lines: list[str] = []
        cut = data.rfind(b"\n")
        if cut >= pos:
            lines = data[pos:cut].decode("utf-8", "replace").split("\n")
            pos = cut + 1
        rest = data[pos:]
        if len(rest) > MAX_LINE_BYTES:
            lines.append(rest[:MAX_LINE_BYTES].decode("utf-8", "replace"))
            pos = len(data)
            rest = b""
            skipping = True
        elif eof and rest and final:
            lines.append(rest.decode("utf-8", "replace"))
            pos = len(data)
            rest = b""
        if lines:
            yield Batch(lines, line_no, batch_start, offset + pos)
            line_no += len(lines)
        offset += pos
        buf = rest
        if eof:
            break


PARSE_THREADS = max(1, min(2, os.cpu_count() or 1))
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="secdash-parse")
        return _EXECUTOR


def parse_batches(batches: Iterable[Batch], *, tz: str, source: str | None, year_state: YearState,
                  threads: int | None = None) -> Iterator[tuple[Batch, pl.DataFrame, tuple[int, int]]]:
    """Parse consecutive batches of one source, in order.

    The expensive, stateless half (:func:`secdash.parse.prepare`) of up to ``threads`` batches
    runs concurrently (polars releases the GIL); the cheap stateful half (years, zones) runs in
    order here. Yields (batch, events, (year, month) of the year state after this batch).
    """
    threads = PARSE_THREADS if threads is None else threads
    if threads <= 1:
        for b in batches:
            df = finish(prepare(b.lines, b.first_line), tz=tz, now=None, source=source, year_state=year_state)
            yield b, df, (year_state.year, year_state.month)
        return
    ex = _executor()
    pending: deque = deque()
    for b in batches:
        pending.append((b, ex.submit(prepare, b.lines, b.first_line)))
        if len(pending) >= threads:
            b0, fut = pending.popleft()
            df = finish(fut.result(), tz=tz, now=None, source=source, year_state=year_state)
            yield b0, df, (year_state.year, year_state.month)
    while pending:
        b0, fut = pending.popleft()
        df = finish(fut.result(), tz=tz, now=None, source=source, year_state=year_state)
        yield b0, df, (year_state.year, year_state.month)


def fingerprint(path: str | os.PathLike) -> str:
    """Hash of the first bytes (decompressed for gzip): survives rename and later compression."""
    with open_binary(path) as f:
        head = f.read(FINGERPRINT_BYTES)
    return hashlib.sha256(head).hexdigest()[:32]


def file_identity(path: str | os.PathLike) -> tuple[int, int, int, float]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime


# ---------------------------------------------------------------------------------------------
# Year inference for a whole file (classic stamps carry no year)

_MONTH_CODES = {(m.encode()[0] << 16) | (m.encode()[1] << 8) | m.encode()[2]: i + 1 for i, m in enumerate(MONTHS)}


def _block_months(block: bytes) -> tuple[np.ndarray, int]:
    """Months of the classic-stamped lines of a block of complete lines, and the day of the last."""
    arr = np.frombuffer(block, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(arr == 10) + 1))
    starts = starts[starts + 10 < len(arr)]
    if not len(starts):
        return np.zeros(0, dtype=np.int8), 0
    a = arr.astype(np.int32)
    code = (a[starts] << 16) | (a[starts + 1] << 8) | a[starts + 2]
    months = np.zeros(len(starts), dtype=np.int8)
    for c, m in _MONTH_CODES.items():
        months[code == c] = m
    padded = (arr[starts + 3] == 32) & (arr[starts + 6] == 32) & (arr[starts + 9] == 58)
    unpadded = (arr[starts + 3] == 32) & (arr[starts + 5] == 32) & (arr[starts + 8] == 58)
    months[~(padded | unpadded)] = 0
    keep = months > 0
    if not keep.any():
        return np.zeros(0, dtype=np.int8), 0
    last = starts[np.flatnonzero(keep)[-1]]
    day_txt = bytes(arr[last + 4: last + 6]).decode("ascii", "replace").strip()
    return months[keep], int(day_txt) if day_txt.isdigit() else 1


def classic_start_year(path: str | os.PathLike, mtime: dt.datetime) -> YearState:
    """Year state for the first line of a file whose last classic stamp is not after ``mtime``."""
    carry = 0
    total = 0
    last_month, last_day = 0, 1
    with open_binary(path) as f:
        rest = b""
        while True:
            block = f.read(BATCH_BYTES)
            data = rest + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            months, day = _block_months(data[:cut] + (b"" if block else b"\n"))
            rest = data[cut:]
            if len(months):
                _, off, carry = year_offsets(months, carry)
                total += off
                last_month, last_day = int(months[-1]), day
            if not block:
                break
    if last_month == 0:
        return YearState(year=mtime.year)
    return YearState(year=end_year(last_month, last_day, mtime) - total)


# ---------------------------------------------------------------------------------------------
# Parsing whole files


def file_mtime(path: str | os.PathLike, tz: dt.tzinfo | None = None) -> dt.datetime:
    try:
        ts = os.stat(path).st_mtime
    except OSError as exc:
        raise SourceError(_describe_os_error(Path(path), exc)) from None
    return dt.datetime.fromtimestamp(ts, tz or dt.timezone.utc)


def parse_file(path: str | os.PathLike, *, tz: str, now: dt.datetime | None = None,
               batch_bytes: int = BATCH_BYTES) -> Iterator[pl.DataFrame]:
    """Parse a whole file in bounded-memory batches.

    The year of classic stamps is inferred backwards from ``now`` (default: the file's mtime in
    ``tz``), with December->January crossings inside the file giving consecutive years.
    """
    from zoneinfo import ZoneInfo

    path = Path(path)
    ref = now or file_mtime(path, ZoneInfo(tz))
    if ref.tzinfo is not None:
        ref = ref.astimezone(ZoneInfo(tz))
    state = classic_start_year(path, ref)
    with open_binary(path) as f:
        for _, df, _ in parse_batches(iter_batches(f, batch_bytes=batch_bytes), tz=tz, source=str(path),
                                      year_state=state):
            yield df


# ---------------------------------------------------------------------------------------------
# Which files make up a source


def _rotation_key(p: Path) -> tuple:
    m = _ROTATED.match(p.name)
    if m and m.group("n"):
        return (0, -int(m.group("n")))
    if m and m.group("date"):
        return (1, m.group("date"))
    return (2, "")


def rotated_set(live: str | os.PathLike) -> list[Path]:
    """The live file and its rotations (``name.1``, ``name.2.gz``, ``name-20260101``), oldest first."""
    live = Path(live)
    try:
        siblings = list(live.parent.iterdir())
    except OSError as exc:
        raise SourceError(_describe_os_error(live.parent, exc)) from None
    rotated = []
    for p in siblings:
        m = _ROTATED.match(p.name)
        if m and m.group("base") == live.name and p.is_file():
            rotated.append(p)
    files = sorted(rotated, key=_rotation_key)
    if live.exists():
        files.append(live)
    return files


LOG_NAMES = ("auth.log", "secure")


def expand_sources(paths: list[str]) -> list[SourceSpec]:
    """Turn configured or given paths into sources. Raises SourceError when none is readable."""
    specs: list[SourceSpec] = []
    for raw in paths:
        if raw in ("journal", "journald"):
            specs.append(SourceSpec(name="journald", kind="journal"))
            continue
        p = Path(raw).expanduser()
        if p.is_dir():
            found = []
            for sub in sorted(p.iterdir()):
                if sub.is_dir():
                    for name in LOG_NAMES:
                        if (sub / name).exists() or any(sub.glob(name + ".*")) or any(sub.glob(name + "-*")):
                            found.append(sub / name)
                elif sub.suffix == ".log":
                    found.append(sub)
            if not found:
                raise SourceError(f"{p}: directory holds no auth logs (<dir>/<host>/auth.log or <dir>/*.log)")
            for live in found:
                specs.append(SourceSpec(name=str(live), files=rotated_set(live), live=live if live.exists() else None))
            continue
        files = rotated_set(p)
        if not files:
            if not p.parent.exists():
                raise SourceError(f"{p}: no such file or directory")
            raise SourceError(f"{p}: no such file (nor rotated copies beside it)")
        specs.append(SourceSpec(name=str(p), files=files, live=p if p.exists() else None))
    return specs


def check_readable(spec: SourceSpec) -> None:
    for f in spec.files:
        try:
            with open(f, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise SourceError(_describe_os_error(f, exc)) from None


# ---------------------------------------------------------------------------------------------
# journald

# The facilities rsyslog writes to auth.log: auth (4) and authpriv (10).
JOURNAL_MATCHES = ("SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10")


def journal_command(*, file: str | None = None, after_cursor: str | None = None,
                    journalctl: str = "journalctl") -> list[str]:
    cmd = [journalctl, "-o", "json", "--no-pager", "-q"]
    if file:
        cmd += ["--file", file]
    if after_cursor:
        cmd += ["--after-cursor", after_cursor]
    return cmd + list(JOURNAL_MATCHES)


def _message_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # journald gives non-UTF-8 messages as byte arrays
        try:
            return bytes(v & 0xFF for v in value).decode("utf-8", "replace")
        except TypeError:
            return None
    return str(value)


def journal_records(lines, *, source: str = "journal") -> tuple[pl.DataFrame, str | None]:
    """``journalctl -o json`` output lines -> header records (ts, host, program, pid, message, ...)."""
    rows = []
    cursor = None
    bad = 0
    for n, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except ValueError:
            bad += 1
            rows.append((None, None, None, None, line[:4096], "no_header", n))
            continue
        cursor = e.get("__CURSOR", cursor)
        try:
            ts = int(e.get("__REALTIME_TIMESTAMP"))
        except (TypeError, ValueError):
            ts = None
        pid = e.get("SYSLOG_PID") or e.get("_PID")
        try:
            pid = int(pid) if pid is not None else None
        except (TypeError, ValueError):
            pid = None
        msg = _message_text(e.get("MESSAGE"))
        rows.append((ts, e.get("_HOSTNAME"), e.get("SYSLOG_IDENTIFIER") or e.get("_COMM"), pid, msg, None, n))
    df = pl.DataFrame(rows, schema={"_us": pl.Int64, "host": pl.String, "program": pl.String, "pid": pl.Int64,
                                    "message": pl.String, "flags": pl.String, "line": pl.Int64}, orient="row")
    df = df.with_columns(
        pl.from_epoch("_us", time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
        pl.lit(1, pl.Int64).alias("count"),
        pl.lit(source).alias("source"),
    ).drop("_us")
    return df, cursor


def read_journal(*, file: str | None = None, after_cursor: str | None = None,
                 journalctl: str = "journalctl", timeout: float = 120.0) -> tuple[pl.DataFrame, str | None]:
    """Auth events from the systemd journal (``journalctl -o json``), and the last cursor."""
    exe = shutil.which(journalctl)
    if exe is None:
        raise SourceError("journalctl not found: journald sources need systemd's journalctl on this machine")
    cmd = journal_command(file=file, after_cursor=after_cursor, journalctl=exe)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"journalctl failed: {exc}") from None
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        first = err.splitlines()[0] if err else f"exit code {proc.returncode}"
        raise SourceError(f"journalctl failed: {first}")
    if "insufficient permissions" in err or "not seeing messages from other users" in err:
        raise SourceError("the journal is not readable by this account; add it to group 'systemd-journal' or 'adm'")
    text = proc.stdout.decode("utf-8", "replace")
    records, cursor = journal_records(text.splitlines(), source=file or "journal")
    return parse_records(records), cursor
