"""The event store: one DuckDB file in the data directory, schema migrations, and the query API.

Concurrency. DuckDB lets one process hold a database file open for writing and then refuses
every other process, even read-only ones. So nothing here keeps a connection open across calls:
:meth:`Store.read` and :meth:`Store.write` open a short-lived connection (about 25 ms), retrying
with backoff while another process holds the file, and raise :class:`StoreBusyError` (one clear
line) after ``timeout`` seconds. Inside one process, connections share one DuckDB instance
(DuckDB requires the same configuration for all of them): a reader that finds a writer open in
its own process joins it read-write; a writer waits until the process's read-only readers close.

Queries. Every user value is a bound parameter; column names come only from whitelists.
Query functions return pandas DataFrames (timestamps tz-aware UTC, nullable integers).

Sizes. Events are inserted sorted by time so per-column compression (dictionary/FSST for
strings, bitpacking for integers, zonemaps on ``ts``) keeps the file small and time-range
filters skip whole row groups. CIDR filters use the ``ips`` table (address -> 128-bit number,
IPv4 mapped into ``::ffff:0:0/96``), filled on insert for each new address.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from secdash.errors import SecdashError, StoreBusyError

DB_NAME = "events.duckdb"
DEFAULT_TIMEOUT = 5.0

# Event columns in SCHEMA order with their SQL types (compact where the range allows).
EVENT_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMPTZ",
    "host": "VARCHAR",
    "program": "VARCHAR",
    "pid": "INTEGER",
    "event": "VARCHAR",
    "outcome": "VARCHAR",
    "user": "VARCHAR",
    "target_user": "VARCHAR",
    "src_ip": "VARCHAR",
    "src_host": "VARCHAR",
    "src_port": "INTEGER",
    "method": "VARCHAR",
    "command": "VARCHAR",
    "tty": "VARCHAR",
    "cwd": "VARCHAR",
    "uid": "BIGINT",
    "session_id": "VARCHAR",
    "group_name": "VARCHAR",
    "detail": "VARCHAR",
    "count": "INTEGER",
    "message": "VARCHAR",
    "pattern": "VARCHAR",
    "flags": "VARCHAR",
    "source": "VARCHAR",
    "line": "BIGINT",
}
# Columns the UI may sort by, group by or list distinct values of.
SORTABLE = ("ts", "host", "program", "pid", "event", "outcome", "user", "target_user", "src_ip", "src_port",
            "method", "line", "source", "id")
GROUPABLE = ("host", "program", "event", "outcome", "user", "target_user", "src_ip", "src_host", "method",
             "command", "tty", "group_name", "pattern", "source", "flags")


def q(name: str) -> str:
    """Quote a column name from our own whitelist (``user`` is a keyword)."""
    if name not in EVENT_COLUMNS and name != "id":
        raise ValueError(f"not an event column: {name!r}")
    return f'"{name}"'


# ---------------------------------------------------------------------------------------------
# Migrations: numbered, each run once in a transaction; schema_version in table meta.

_EVENTS_V1 = ", ".join(f"{q(c)} {t}" for c, t in EVENT_COLUMNS.items())

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "events, ingest state, meta", [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        f"CREATE TABLE events (id BIGINT, {_EVENTS_V1})",
        """CREATE TABLE ingest_state (
            file_id INTEGER, source VARCHAR, path VARCHAR, dev UBIGINT, inode UBIGINT,
            fingerprint VARCHAR, fp_len INTEGER, "offset" BIGINT, line BIGINT, year INTEGER, month INTEGER,
            size BIGINT, mtime DOUBLE, first_seen TIMESTAMPTZ, updated TIMESTAMPTZ)""",
    ]),
    (2, "per-run ingest statistics", [
        """CREATE TABLE ingest_runs (
            started TIMESTAMPTZ, source VARCHAR, files INTEGER, lines BIGINT, events BIGINT,
            unknown BIGINT, seconds DOUBLE, error VARCHAR)""",
        "ALTER TABLE ingest_state ADD COLUMN cursor VARCHAR",
    ]),
    (3, "address lookup for CIDR filters", [
        "CREATE TABLE ips (ip VARCHAR PRIMARY KEY, num UHUGEINT)",
        # backfill happens in _post_migration(3)
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def ip_number(value: str) -> int | None:
    """128-bit number of an address (IPv4 mapped into ::ffff:0:0/96), None if not an address."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return (0xFFFF << 32) | int(ip)
    if ip.ipv4_mapped is not None:
        return (0xFFFF << 32) | int(ip.ipv4_mapped)
    return int(ip)


def ip_range(value: str) -> tuple[str | None, tuple[int, int] | None]:
    """A filter value -> (exact address, None) or (None, (low, high)) for a CIDR range.

    Raises :class:`FilterError` for anything else.
    """
    v = value.strip()
    if "/" not in v:
        try:
            ip = ipaddress.ip_address(v.strip("[]"))
        except ValueError:
            raise FilterError(f"not an IP address or CIDR range: {value!r}") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return str(ip), None
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise FilterError(f"not an IP address or CIDR range: {value!r}") from None
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if isinstance(net, ipaddress.IPv4Network):
        lo, hi = (0xFFFF << 32) | lo, (0xFFFF << 32) | hi
    return None, (lo, hi)


class FilterError(SecdashError):
    """A filter value that cannot be used (bad IP/CIDR, unknown column, bad time range)."""


# ---------------------------------------------------------------------------------------------
# Connections


def _is_busy(exc: Exception) -> bool:
    text = str(exc).lower()
    return ("lock" in text and ("conflict" in text or "could not set" in text)) or "different configuration" in text \
        or "resource temporarily unavailable" in text


class _Registry:
    """Per-process bookkeeping of open connections per database file (DuckDB shares one instance)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, list] = {}  # path -> [read_only, count]
        self.writers_waiting: dict[str, int] = {}  # path -> writers of this process waiting for readers


_REG = _Registry()
_HELD = threading.local()  # per thread: path -> connections this thread has open
_MIGRATE_LOCK = threading.Lock()


class Store:
    """The event store at ``path`` (default ``<data dir>/events.duckdb``)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ready = False

    @classmethod
    def from_config(cls, cfg) -> Store:
        path = Path(cfg.store.path).expanduser() if getattr(cfg.store, "path", "") else Path(cfg.home) / DB_NAME
        return cls(path, timeout=getattr(cfg.store, "busy_timeout_seconds", DEFAULT_TIMEOUT))

    # -- connections ------------------------------------------------------------------------

    def _busy(self) -> StoreBusyError:
        return StoreBusyError(
            f"the event store {self.path} is in use by another process (the dashboard's ingester?); try again")

    def _connect(self, read_only: bool):
        key = str(self.path.resolve())
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        waiting = False
        try:
            while True:
                con = self._try_connect(key, read_only)
                if con is not None:
                    return con, key
                if not read_only and not waiting:
                    with _REG.lock:  # new readers of this process now wait, so the writer gets in
                        _REG.writers_waiting[key] = _REG.writers_waiting.get(key, 0) + 1
                    waiting = True
                if time.monotonic() >= deadline:
                    raise self._busy()
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.2)
        finally:
            if waiting:
                with _REG.lock:
                    _REG.writers_waiting[key] -= 1
                    if _REG.writers_waiting[key] <= 0:
                        del _REG.writers_waiting[key]

    def _try_connect(self, key: str, read_only: bool):
        import duckdb

        mine = _HELD.__dict__.setdefault("keys", {})
        with _REG.lock:
            entry = _REG.open.get(key)
            mode = read_only
            can_try = True
            if entry and entry[1] > 0:
                if entry[0] and not read_only:
                    can_try = False  # readers of this process must close first
                elif entry[0] and read_only and _REG.writers_waiting.get(key) and not mine.get(key):
                    # a writer of this process waits for the readers (a thread that already
                    # reads may open more: it would otherwise wait for itself)
                    can_try = False
                else:
                    mode = entry[0]  # join the open instance (rw if a writer is open)
            if can_try:
                try:
                    con = duckdb.connect(key, read_only=mode)
                except (duckdb.IOException, duckdb.ConnectionException, duckdb.InvalidInputException) as exc:
                    if not _is_busy(exc):
                        raise SecdashError(f"cannot open the event store {self.path}: {exc}") from None
                except duckdb.Error as exc:
                    raise SecdashError(f"cannot open the event store {self.path}: {exc}") from None
                else:
                    if entry and entry[1] > 0:
                        entry[1] += 1
                    else:
                        _REG.open[key] = [mode, 1]
                    mine[key] = mine.get(key, 0) + 1
                    return con
        return None

    @staticmethod
    def _release(con, key: str) -> None:
        mine = _HELD.__dict__.setdefault("keys", {})
        mine[key] = mine.get(key, 1) - 1
        with _REG.lock:
            try:
                con.close()
            finally:
                entry = _REG.open.get(key)
                if entry:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del _REG.open[key]

    @contextlib.contextmanager
    def _connection(self, read_only: bool) -> Iterator[Any]:
        con, key = self._connect(read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            self._release(con, key)

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """A short-lived read connection (creates and migrates the store when needed)."""
        if not self._ready and self.path.exists():
            with self._connection(read_only=True) as con:
                current = schema_version(con) == SCHEMA_VERSION  # checked on the same connection
                if current:
                    self._ready = True
                    yield con
            if current:
                return
        self.ensure()  # create or migrate first
        with self._connection(read_only=True) as con:
            yield con

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """A short-lived read-write connection; use ``con.begin()/commit()`` for transactions."""
        created = self._prepare()
        with self._connection(read_only=False) as con:
            if not self._ready:
                with _MIGRATE_LOCK:
                    migrate(con)
                self._ready = True
            self._restrict(created)
            yield con

    def _prepare(self) -> bool:
        """Create the directory (private) when missing; True when the database file is new."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return not self.path.exists()

    def _restrict(self, created: bool) -> None:
        if created and self.path.exists():
            try:  # security events: readable by the owner only
                os.chmod(self.path, 0o600)
            except OSError:
                pass

    # -- schema -----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def ensure(self) -> None:
        """Create the file and run pending migrations (once per Store object)."""
        if self._ready:
            return
        if self.path.exists():
            with self._connection(read_only=True) as con:
                if schema_version(con) == SCHEMA_VERSION:
                    self._ready = True
                    return
        created = self._prepare()
        with _MIGRATE_LOCK, self._connection(read_only=False) as con:
            migrate(con)  # re-reads the version: another thread may have done it meanwhile
            self._restrict(created)
        self._ready = True

    # -- writing ----------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.read() as con:
            return get_meta(con, key, default)

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as con:
            set_meta(con, key, value)

    def delete_older_than(self, cutoff: dt.datetime) -> int:
        with self.write() as con:
            return delete_older_than(con, cutoff)

    def checkpoint(self) -> None:
        with self.write() as con:
            con.execute("CHECKPOINT")

    # -- queries (thin wrappers over the module functions, one connection each) ---------------

    def query_events(self, filters: Filters | None = None, *, with_total: bool = True):
        with self.read() as con:
            return query_events(con, filters or Filters(), with_total=with_total)

    def count_events(self, filters: Filters | None = None) -> int:
        with self.read() as con:
            return count_events(con, filters or Filters())

    def get_event(self, event_id: int) -> dict | None:
        with self.read() as con:
            return get_event(con, event_id)

    def timeline(self, filters: Filters | None = None, *, bucket: str | None = "auto", by: str = "outcome"):
        with self.read() as con:
            return timeline(con, filters or Filters(), bucket=bucket, by=by)

    def top_ips(self, filters: Filters | None = None, n: int = 10):
        with self.read() as con:
            return rollup(con, filters or Filters(), "src_ip", limit=n)

    def top_users(self, filters: Filters | None = None, n: int = 10):
        with self.read() as con:
            return rollup(con, filters or Filters(), "user", limit=n)

    def user_rollup(self, filters: Filters | None = None, limit: int | None = None):
        with self.read() as con:
            return rollup(con, filters or Filters(), "user", limit=limit)

    def ip_rollup(self, filters: Filters | None = None, limit: int | None = None):
        with self.read() as con:
            return rollup(con, filters or Filters(), "src_ip", limit=limit)

    def hour_weekday(self, filters: Filters | None = None, *, tz: str = "UTC"):
        with self.read() as con:
            return hour_weekday(con, filters or Filters(), tz=tz)

    def count_by(self, column: str, filters: Filters | None = None, n: int | None = None):
        with self.read() as con:
            return count_by(con, column, filters or Filters(), limit=n)

    def distinct_values(self, column: str, filters: Filters | None = None, limit: int = 1000) -> list[str]:
        with self.read() as con:
            return distinct_values(con, column, filters, limit=limit)

    def unknown_share(self, filters: Filters | None = None) -> float:
        with self.read() as con:
            return unknown_share(con, filters or Filters())

    def summary(self) -> dict:
        with self.read() as con:
            return summary(con)

    def source_status(self):
        with self.read() as con:
            return source_status(con)

    def ingest_runs(self, limit: int = 100):
        with self.read() as con:
            return ingest_runs(con, limit=limit)

    def is_demo(self) -> bool:
        if not self.exists():
            return False
        return self.get_meta("demo", "false") == "true"


def default_store(cfg=None) -> Store:
    if cfg is None:
        from secdash import config

        cfg = config.load()
    return Store.from_config(cfg)


# ---------------------------------------------------------------------------------------------
# Schema helpers (take an open connection)


def schema_version(con) -> int:
    try:
        row = _one(con, "SELECT value FROM meta WHERE key = 'schema_version'")
    except Exception:  # noqa: BLE001 - no meta table yet
        return 0
    return int(row[0]) if row else 0


def migrate(con, target: int | None = None) -> int:
    """Run the pending migrations up to ``target`` (default: latest), each in a transaction."""
    target = SCHEMA_VERSION if target is None else target
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise SecdashError(f"the event store has schema version {current}, newer than this secdash "
                           f"({SCHEMA_VERSION}); upgrade secdash")
    for number, _title, statements in MIGRATIONS:
        if number <= current or number > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for sql in statements:
                con.execute(sql)
            _post_migration(con, number)
            set_meta(con, "schema_version", str(number))
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        current = number
    return current


def _post_migration(con, number: int) -> None:
    if number == 3:
        rows = con.execute("SELECT DISTINCT src_ip FROM events WHERE src_ip IS NOT NULL").fetchall()
        _insert_ips(con, [r[0] for r in rows])


def _one(con, sql: str, params: Sequence[Any] = ()):
    """First row of a query, or None (fetches everything so the connection is free again)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def get_meta(con, key: str, default: str | None = None) -> str | None:
    row = _one(con, "SELECT value FROM meta WHERE key = ?", [key])
    return row[0] if row else default


def set_meta(con, key: str, value: str) -> None:
    con.execute("DELETE FROM meta WHERE key = ?", [key])
    con.execute("INSERT INTO meta VALUES (?, ?)", [key, value])


def _insert_ips(con, ips: Sequence[str]) -> None:
    rows = [(ip, str(n)) for ip in ips if (n := ip_number(ip)) is not None]
    if not rows:
        return
    import pyarrow as pa

    tbl = pa.table({"ip": [r[0] for r in rows], "num": [r[1] for r in rows]})
    con.register("_new_ips", tbl)
    try:
        con.execute("INSERT INTO ips SELECT ip, CAST(num AS UHUGEINT) FROM _new_ips "
                    "WHERE ip NOT IN (SELECT ip FROM ips)")
    finally:
        con.unregister("_new_ips")


def insert_events(con, df) -> int:
    """Insert a polars frame in the event SCHEMA (sorted by time, ids assigned). Returns rows.

    Call inside the caller's transaction.
    """
    import polars as pl

    if df.height == 0:
        return 0
    next_id = int(get_meta(con, "next_id", "1"))
    df = df.with_row_index("id", offset=next_id).with_columns(pl.col("id").cast(pl.Int64))
    if not df.get_column("ts").drop_nulls().is_sorted():  # logs are mostly in time order already
        df = df.sort("ts", nulls_last=True, maintain_order=True)
    ips = df.get_column("src_ip").drop_nulls().unique().to_list()
    if ips:
        known = set()
        con.register("_batch_ips", __import__("pyarrow").table({"ip": ips}))
        try:
            known = {r[0] for r in con.execute("SELECT ip FROM ips WHERE ip IN (SELECT ip FROM _batch_ips)").fetchall()}
        finally:
            con.unregister("_batch_ips")
        _insert_ips(con, [ip for ip in ips if ip not in known])
    # string views: no copy of the text columns on the way to DuckDB
    tbl = df.select(["id", *EVENT_COLUMNS]).to_arrow(compat_level=pl.CompatLevel.newest())
    con.register("_batch", tbl)
    try:
        cols = ", ".join(["id", *(q(c) for c in EVENT_COLUMNS)])
        con.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM _batch")
    finally:
        con.unregister("_batch")
    set_meta(con, "next_id", str(next_id + df.height))
    return df.height


def delete_older_than(con, cutoff: dt.datetime) -> int:
    row = _one(con, "SELECT count(*) FROM events WHERE ts < ?", [cutoff])
    if row and row[0]:
        con.execute("DELETE FROM events WHERE ts < ?", [cutoff])
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------------------------
# Filters -> SQL


@dataclass
class Filters:
    """What the explorer, the charts and ``export`` select. Empty lists mean "any"."""

    since: dt.datetime | None = None  # inclusive; naive values are taken as UTC
    until: dt.datetime | None = None  # exclusive
    users: Sequence[str] = ()  # matches user or target_user, exactly
    ips: Sequence[str] = ()  # addresses or CIDR ranges (IPv4 and IPv6)
    events: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    hosts: Sequence[str] = ()
    programs: Sequence[str] = ()
    text: str | None = None  # case-insensitive substring of the message (no wildcards)
    hours: Sequence[int] = ()  # hour of day 0-23 in ``zone`` (the explorer's heatmap cells)
    weekdays: Sequence[int] = ()  # 0 = Monday .. 6 = Sunday in ``zone``
    zone: str = "UTC"  # zone of hours/weekdays
    pids: Sequence[int] = ()  # process ids (with hosts: one session)
    sort: str = "ts"
    descending: bool = True
    limit: int | None = 1000
    offset: int = 0

    def summary(self) -> dict:
        """A JSON-friendly description (for the audit log)."""
        out: dict[str, Any] = {}
        for key in ("since", "until"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v.isoformat()
        for key in ("users", "ips", "events", "outcomes", "hosts", "programs", "pids"):
            v = list(getattr(self, key))
            if v:
                out[key] = v
        if self.text:
            out["text"] = self.text
        for key in ("hours", "weekdays"):
            v = [int(x) for x in getattr(self, key)]
            if v:
                out[key] = v
                out["zone"] = self.zone
        return out


def _utc(value: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        if isinstance(value, dt.date):
            value = dt.datetime(value.year, value.month, value.day)
        else:
            raise FilterError(f"not a date/time: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def where_clause(f: Filters) -> tuple[str, list[Any]]:
    """SQL WHERE text (placeholders only) and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if f.since is not None:
        parts.append("ts >= ?")
        params.append(_utc(f.since))
    if f.until is not None:
        parts.append("ts < ?")
        params.append(_utc(f.until))

    def members(col: str, values: Sequence[str]) -> str:
        params.extend(str(v) for v in values)
        return f"{q(col)} IN ({', '.join('?' for _ in values)})"

    users = [u for u in f.users if u is not None]
    if users:
        a = members("user", users)
        b = members("target_user", users)
        parts.append(f"({a} OR {b})")
    if f.ips:
        exact: list[str] = []
        ranges: list[tuple[int, int]] = []
        for v in f.ips:
            ip, rng = ip_range(str(v))
            if ip is not None:
                exact.append(ip)
            else:
                ranges.append(rng)
        ors = []
        if exact:
            ors.append(members("src_ip", exact))
        if ranges:
            conds = []
            for lo, hi in ranges:
                conds.append("num BETWEEN CAST(? AS UHUGEINT) AND CAST(? AS UHUGEINT)")
                params.extend([str(lo), str(hi)])
            ors.append(f"src_ip IN (SELECT ip FROM ips WHERE {' OR '.join(conds)})")
        parts.append("(" + " OR ".join(ors) + ")")
    for col, values in (("event", f.events), ("outcome", f.outcomes), ("host", f.hosts), ("program", f.programs)):
        values = [v for v in values if v is not None]
        if values:
            parts.append(members(col, values))
    if f.pids:
        try:
            pids = [int(p) for p in f.pids]
        except (TypeError, ValueError):
            raise FilterError(f"process ids must be whole numbers: {list(f.pids)!r}") from None
        parts.append(f"pid IN ({', '.join('?' for _ in pids)})")
        params.extend(pids)
    if f.text:
        # a literal, case-insensitive substring: contains(lower(..)) is evaluated per distinct
        # (dictionary-compressed) value and is ~40x faster than ILIKE on 10M events
        parts.append("contains(lower(message), lower(?))")
        params.append(f.text)
    if f.hours or f.weekdays:
        from secdash.config import valid_zone

        if not valid_zone(f.zone):
            raise FilterError(f"unknown time zone {f.zone!r}")
        for name, values, lo, hi, expr in (("hours", f.hours, 0, 23, "hour(timezone(?, ts))"),
                                            ("weekdays", f.weekdays, 0, 6, "(isodow(timezone(?, ts)) - 1)")):
            if not values:
                continue
            try:
                ints = sorted({int(v) for v in values})
            except (TypeError, ValueError):
                raise FilterError(f"{name} must be whole numbers") from None
            if ints[0] < lo or ints[-1] > hi:
                raise FilterError(f"{name} must be between {lo} and {hi}")
            params.append(f.zone)
            parts.append(f"{expr} IN ({', '.join('?' for _ in ints)})")
            params.extend(ints)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _frame(con, sql: str, params: Sequence[Any] = ()):
    """Run a query and return a pandas DataFrame (nullable integers, tz-aware UTC times)."""
    import pandas as pd
    import pyarrow as pa

    tbl = con.sql(sql, params=list(params)).to_arrow_table()
    ints = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()}
    mapping = {t: pd.Int64Dtype() for t in ints}
    return tbl.to_pandas(types_mapper=mapping.get)


def _order(f: Filters) -> str:
    if f.sort not in SORTABLE:
        raise FilterError(f"cannot sort by {f.sort!r} (choose from {', '.join(SORTABLE)})")
    direction = "DESC" if f.descending else "ASC"
    col = q(f.sort)
    tail = f", id {direction}" if f.sort != "id" else ""
    return f" ORDER BY {col} {direction} NULLS LAST{tail}"


def query_events(con, f: Filters, *, with_total: bool = True, columns: Sequence[str] | None = None):
    """(rows as a pandas DataFrame with ``id`` + the event columns, total count of the filter)."""
    where, params = where_clause(f)
    cols = ", ".join(["id", *(q(c) for c in (columns or EVENT_COLUMNS))])
    sql = f"SELECT {cols} FROM events{where}{_order(f)}"
    page_params = list(params)
    if f.limit is not None:
        sql += " LIMIT ?"
        page_params.append(max(0, int(f.limit)))
    if f.offset:
        sql += " OFFSET ?"
        page_params.append(max(0, int(f.offset)))
    df = _frame(con, sql, page_params)
    total = None
    if with_total:
        if f.limit is not None and not f.offset and len(df) < f.limit:
            total = len(df)
        else:
            total = _one(con, f"SELECT count(*) FROM events{where}", params)[0]
    return df, total


EXPORT_PAGE = 25_000


def export_slices(con, where: str, params: list, page: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """Time slices [lo, hi) (UTC), newest first, each holding about ``page`` rows (a minute with
    more rows is one slice): one aggregation pass over the filtered rows' times."""
    cond = f"{where} AND ts IS NOT NULL" if where else " WHERE ts IS NOT NULL"
    minutes = con.execute(
        f"SELECT epoch_us(ts) // 60000000 AS m, count(*) FROM events{cond} GROUP BY 1 ORDER BY 1 DESC", params
    ).fetchall()
    slices: list[tuple] = []
    hi = n = None
    for m, c in minutes:
        if hi is None:
            hi, n = m + 1, 0
        n += c
        if n >= page:
            slices.append((m, hi))
            hi = None
    if hi is not None:
        slices.append((minutes[-1][0], hi))
    to_ts = dt.datetime.fromtimestamp
    return [(to_ts(lo * 60, dt.timezone.utc), to_ts(h * 60, dt.timezone.utc)) for lo, h in slices]


def iter_arrow(con, f: Filters, *, batch_rows: int = EXPORT_PAGE):
    """Arrow record batches of the whole filtered result (no limit/offset) for streaming export.

    Sorted by time (the default), ``ORDER BY`` over the whole result would make DuckDB sort every
    row with all columns in memory (about 1 GB of RSS for 1M events). Instead one pass counts the
    filtered rows per minute, the minutes are grouped into slices of about ``batch_rows`` rows,
    and each slice is fetched (zonemaps skip the other row groups) and sorted on its own: memory
    stays at one slice. Rows without a time come last, by id, as in :func:`query_events`.
    """
    f = replace(f, limit=None, offset=0)
    where, params = where_clause(f)
    cols = ", ".join(["id", *(q(c) for c in EVENT_COLUMNS)])
    if f.sort != "ts":
        yield from con.sql(f"SELECT {cols} FROM events{where}{_order(f)}", params=params).to_arrow_reader(batch_rows)
        return
    direction = "DESC" if f.descending else "ASC"

    def cond(extra: str) -> str:
        return f"{where} AND {extra}" if where else f" WHERE {extra}"

    slices = export_slices(con, where, params, batch_rows)
    for lo, hi in (slices if f.descending else reversed(slices)):
        tbl = con.sql(f"SELECT {cols} FROM events{cond('ts >= ? AND ts < ?')} ORDER BY ts {direction}, id {direction}",
                      params=[*params, lo, hi]).to_arrow_table()
        yield from tbl.to_batches()
    last_id = None
    while True:  # events without a time, by id
        cmp = "<" if f.descending else ">"
        extra = "ts IS NULL" + (f" AND id {cmp} ?" if last_id is not None else "")
        tbl = con.sql(f"SELECT {cols} FROM events{cond(extra)} ORDER BY id {direction} LIMIT ?",
                      params=[*params, *([last_id] if last_id is not None else []), batch_rows]).to_arrow_table()
        if tbl.num_rows == 0:
            break
        yield from tbl.to_batches()
        last_id = tbl.column("id")[-1].as_py()
        if tbl.num_rows < batch_rows:
            break


def read_events(con, events: Sequence[str], columns: Sequence[str], *, since: dt.datetime | None = None,
                until: dt.datetime | None = None, min_id: int | None = None):
    """Events of the given types with a time in [since, until) (and id > ``min_id``), only
    ``columns``, as a polars DataFrame (for the detection rules and session reconstruction)."""
    import polars as pl

    cols = ", ".join(q(c) for c in columns)
    where = [f"event IN ({', '.join('?' for _ in events)})", "ts IS NOT NULL"]
    params: list = list(events)
    for cond, value in (("ts >= ?", since), ("ts < ?", until), ("id > ?", min_id)):
        if value is not None:
            where.append(cond)
            params.append(value)
    return pl.from_arrow(con.sql(f"SELECT {cols} FROM events WHERE {' AND '.join(where)}", params=params).to_arrow_table())


def count_events(con, f: Filters) -> int:
    where, params = where_clause(f)
    return int(_one(con, f"SELECT count(*) FROM events{where}", params)[0])


def get_event(con, event_id: int) -> dict | None:
    cols = ", ".join(["id", *(q(c) for c in EVENT_COLUMNS)])
    row = _one(con, f"SELECT {cols} FROM events WHERE id = ?", [int(event_id)])
    if row is None:
        return None
    return dict(zip(["id", *EVENT_COLUMNS], row, strict=True))


_ORIGIN_US = 946_857_600_000_000  # 2000-01-03T00:00:00Z, a Monday
BUCKETS = [(60, "1 minute"), (300, "5 minutes"), (900, "15 minutes"), (3600, "1 hour"), (6 * 3600, "6 hours"),
           (86400, "1 day"), (7 * 86400, "7 days")]


def auto_bucket(start: dt.datetime | None, end: dt.datetime | None, target: int = 200) -> int:
    """Bucket width in seconds giving at most about ``target`` buckets."""
    if start is None or end is None:
        return 3600
    span = max((end - start).total_seconds(), 1)
    for secs, _ in BUCKETS:
        if span / secs <= target:
            return secs
    return BUCKETS[-1][0]


def timeline(con, f: Filters, *, bucket: str | int | None = "auto", by: str | None = "outcome"):
    """Events per time bucket (and per ``by`` value): columns bucket (UTC), key, events.

    ``bucket``: "auto" (at most ~200 buckets over the filter's range), seconds, or an interval
    text such as "1 hour" / "15 minutes".
    """
    where, params = where_clause(f)
    if by is not None and by not in GROUPABLE:
        raise FilterError(f"cannot group by {by!r}")
    if bucket in (None, "auto"):
        start, end = f.since, f.until
        if start is None or end is None:
            lo, hi = _one(con, f"SELECT min(ts), max(ts) FROM events{where}", params)
            start = _utc(start) if start is not None else lo
            end = _utc(end) if end is not None else hi
        secs = auto_bucket(start, end)
    elif isinstance(bucket, (int, float)):
        secs = int(bucket)
    else:
        secs = {label: s for s, label in BUCKETS}.get(str(bucket))
        if secs is None:
            raise FilterError(f"unknown bucket {bucket!r} (choose from {', '.join(lab for _, lab in BUCKETS)})")
    key = q(by) if by else "NULL"
    # Integer bucketing on microseconds is much faster than time_bucket(); buckets start at
    # 2000-01-03 00:00 UTC (a Monday, like time_bucket's origin) so weeks start on Mondays.
    width = secs * 1_000_000
    sql = (f"WITH b AS (SELECT (epoch_us(ts) - {_ORIGIN_US}) // ? AS b, {key} AS key, sum(count)::BIGINT AS events "
           f"FROM events{where}{' AND' if where else ' WHERE'} ts IS NOT NULL GROUP BY ALL) "
           f"SELECT make_timestamptz(b * ? + {_ORIGIN_US}) AS bucket, key, events FROM b ORDER BY bucket, key")
    df = _frame(con, sql, [width, *params, width])
    df.attrs["bucket_seconds"] = secs
    return df


def rollup(con, f: Filters, kind: str, *, limit: int | None = None):
    """Per-user (``kind="user"``) or per-address (``"src_ip"``) rollup, most events first.

    Columns: key, events, failures, successes, distinct (IPs for users, users for IPs), hosts,
    first_seen, last_seen.
    """
    if kind not in ("user", "src_ip"):
        raise FilterError(f"no rollup for {kind!r}")
    other = "src_ip" if kind == "user" else "user"
    where, params = where_clause(f)
    sql = (f"SELECT {q(kind)} AS key, sum(count)::BIGINT AS events, "
           f"sum(CASE WHEN outcome = 'failure' THEN count ELSE 0 END)::BIGINT AS failures, "
           f"sum(CASE WHEN outcome = 'success' THEN count ELSE 0 END)::BIGINT AS successes, "
           f"count(DISTINCT {q(other)}) AS {'ips' if kind == 'user' else 'users'}, "
           f"count(DISTINCT host) AS hosts, min(ts) AS first_seen, max(ts) AS last_seen "
           f"FROM events{where}{' AND' if where else ' WHERE'} {q(kind)} IS NOT NULL "
           f"GROUP BY 1 ORDER BY events DESC, key")
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, int(limit)]
    return _frame(con, sql, params)


def hour_weekday(con, f: Filters, *, tz: str = "UTC"):
    """Events per (weekday 0=Monday..6, hour 0-23) in zone ``tz``."""
    from secdash.config import valid_zone

    if not valid_zone(tz):
        raise FilterError(f"unknown time zone {tz!r}")
    where, params = where_clause(f)
    # Count per quarter hour in UTC first (every zone offset is a multiple of 15 minutes), then
    # convert only those few thousand buckets to local time: the zone conversion per row is slow.
    sql = ("WITH b AS (SELECT epoch_us(ts) // 900000000 AS q, sum(count) AS n "
           f"FROM events{where}{' AND' if where else ' WHERE'} ts IS NOT NULL GROUP BY 1), "
           "l AS (SELECT make_timestamptz(q * 900000000) AT TIME ZONE ? AS t, n FROM b) "
           "SELECT (isodow(t) - 1)::INTEGER AS weekday, hour(t)::INTEGER AS hour, sum(n)::BIGINT AS events "
           "FROM l GROUP BY ALL ORDER BY weekday, hour")
    return _frame(con, sql, [*params, tz])


def count_by(con, column: str, f: Filters, *, limit: int | None = None):
    """Rows and events per value of a column: columns value, rows, events (most first)."""
    if column not in GROUPABLE:
        raise FilterError(f"cannot group by {column!r}")
    where, params = where_clause(f)
    sql = (f"SELECT {q(column)} AS value, count(*) AS rows, sum(count)::BIGINT AS events FROM events{where} "
           "GROUP BY 1 ORDER BY events DESC, value NULLS LAST")
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, int(limit)]
    return _frame(con, sql, params)


def distinct_values(con, column: str, f: Filters | None = None, *, limit: int = 1000) -> list[str]:
    """Non-null values of a column, most frequent first (for filter widgets)."""
    if column not in GROUPABLE:
        raise FilterError(f"no value list for {column!r}")
    where, params = where_clause(f or Filters())
    sql = (f"SELECT {q(column)} FROM events{where}{' AND' if where else ' WHERE'} {q(column)} IS NOT NULL "
           "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?")
    return [r[0] for r in con.execute(sql, [*params, int(limit)]).fetchall()]


def unknown_share(con, f: Filters) -> float:
    where, params = where_clause(f)
    total, unknown = _one(con, f"SELECT count(*), count(*) FILTER (WHERE event = 'unknown') FROM events{where}",
                          params)
    return (unknown / total) if total else 0.0


def summary(con) -> dict:
    """Totals for the Overview: events, first/last event time, last ingest, demo flag."""
    rows, first, last = _one(con, "SELECT count(*), min(ts), max(ts) FROM events")
    last_run = _one(con, "SELECT max(started) FROM ingest_runs")[0]
    return {
        "events": int(rows),
        "first_ts": first,
        "last_ts": last,
        "last_ingest": last_run,
        "last_check": get_meta(con, "last_ingest_check"),
        "demo": get_meta(con, "demo", "false") == "true",
        "schema_version": schema_version(con),
    }


def source_status(con):
    """One row per known file: source, path, offset, line, size, updated, last run of its source."""
    sql = """
        WITH last AS (
            SELECT source, max(started) AS last_run, arg_max(lines, started) AS last_lines,
                   arg_max(error, started) AS last_error
            FROM ingest_runs GROUP BY source)
        SELECT s.source, s.path, s."offset", s.line - 1 AS lines_read, s.size, s.updated,
               last.last_run, last.last_lines, last.last_error
        FROM ingest_state s LEFT JOIN last USING (source)
        ORDER BY s.source, s.updated DESC"""
    return _frame(con, sql)


def ingest_runs(con, *, limit: int = 100):
    return _frame(con, "SELECT * FROM ingest_runs ORDER BY started DESC LIMIT ?", [int(limit)])


__all__ = [
    "Filters", "FilterError", "Store", "default_store", "migrate", "insert_events", "query_events", "timeline",
    "rollup", "hour_weekday", "count_by", "distinct_values", "unknown_share", "summary", "source_status",
    "iter_arrow",
]
