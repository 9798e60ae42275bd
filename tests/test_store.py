"""Event store: schema/migrations, inserts, the query API with hostile filters, busy handling."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from secdash import store as st
from secdash.errors import StoreBusyError
from secdash.events import SCHEMA
from secdash.parse import YearState, parse_lines

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc

LINES = [
    "Mar  1 10:00:00 web-01 sshd[100]: Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2",
    "Mar  1 10:00:01 web-01 sshd[100]: Failed password for root from 203.0.113.5 port 4001 ssh2",
    "Mar  1 10:00:02 web-01 sshd[101]: Failed password for alice from 198.51.100.7 port 4002 ssh2",
    "Mar  1 10:05:00 web-01 sshd[102]: Accepted password for alice from 198.51.100.7 port 4003 ssh2",
    "Mar  2 11:00:00 db-01 sshd[200]: Failed password for invalid user 100%_x from 2001:db8::5 port 5000 ssh2",
    "Mar  2 11:00:01 db-01 sshd[201]: Accepted publickey for bob from 2001:db8:1::9 port 5001 ssh2: ED25519 SHA256:abc",
    "Mar  3 12:00:00 db-01 sudo:      bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/ls",
    "Mar  3 12:00:05 db-01 sshd[300]: Failed password for invalid user O'Brien from 10.1.2.3 port 6000 ssh2",
    "Mar  3 12:00:06 db-01 sshd[301]: Failed password for invalid user x;DROP from 10.1.2.4 port 6001 ssh2",
    "Mar  3 12:01:00 db-01 kernel: something unparsed 50% done_",
]


def frame(lines=LINES, source="/var/log/auth.log", first_line=1) -> pl.DataFrame:
    return parse_lines(lines, tz="UTC", source=source, first_line=first_line, year_state=YearState(2026))


@pytest.fixture
def store(tmp_path) -> st.Store:
    s = st.Store(tmp_path / "events.duckdb", timeout=2.0)
    with s.write() as con:
        st.insert_events(con, frame())
    return s


def test_create_migrate_and_insert(store):
    with store.read() as con:
        assert st.schema_version(con) == st.SCHEMA_VERSION
        n = con.execute("SELECT count(*) FROM events").fetchone()[0]
        ids = [r[0] for r in con.execute("SELECT id FROM events ORDER BY id").fetchall()]
        ips = dict(con.execute("SELECT ip, num::VARCHAR FROM ips").fetchall())
    assert n == len(LINES)
    assert ids == list(range(1, len(LINES) + 1))
    assert int(ips["203.0.113.5"]) == (0xFFFF << 32) | int.from_bytes(bytes([203, 0, 113, 5]))
    assert "2001:db8::5" in ips


def test_round_trip_columns(store):
    df, total = store.query_events(st.Filters(sort="line", descending=False))
    assert total == len(LINES)
    assert list(df.columns) == ["id", *SCHEMA]
    assert df["line"].tolist() == list(range(1, len(LINES) + 1))
    assert str(df["ts"].dtype).startswith("datetime64") and str(df["ts"].dt.tz) == "UTC"
    assert df["pid"].dtype.name == "Int64"
    first = df.iloc[0]
    assert first["host"] == "web-01" and first["user"] == "admin" and first["src_port"] == 4000
    assert first["ts"] == pd_ts("2026-03-01 10:00:00")


def pd_ts(text):
    import pandas as pd

    return pd.Timestamp(text, tz="UTC")


def test_migration_from_v1_keeps_data(tmp_path):
    path = tmp_path / "old.duckdb"
    import duckdb

    con = duckdb.connect(str(path))
    st.migrate(con, target=1)
    con.register("_b", frame().with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64)).to_arrow())
    cols = ", ".join(["id", *(st.q(c) for c in st.EVENT_COLUMNS)])
    con.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM _b")
    st.set_meta(con, "next_id", str(len(LINES) + 1))
    assert st.schema_version(con) == 1
    con.close()

    s = st.Store(path)
    df, total = s.query_events(st.Filters(ips=["203.0.113.0/24"]))
    assert total == 2  # CIDR works after the migration backfilled the address table
    with s.read() as con:
        assert st.schema_version(con) == st.SCHEMA_VERSION
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(LINES)
        assert con.execute("SELECT count(*) FROM ingest_runs").fetchone()[0] == 0


def test_newer_schema_is_refused(tmp_path):
    s = st.Store(tmp_path / "x.duckdb")
    s.set_meta("schema_version", str(st.SCHEMA_VERSION + 1))
    s2 = st.Store(tmp_path / "x.duckdb")
    with pytest.raises(st.SecdashError, match="newer"):
        s2.summary()


@pytest.mark.parametrize(("ips", "expected"), [
    (["203.0.113.5"], 2),
    (["203.0.113.0/24"], 2),
    (["203.0.0.0/8", "198.51.100.7"], 4),
    (["10.1.2.2/31"], 1),
    (["10.0.0.0/8"], 2),
    (["2001:db8::/32"], 2),
    (["2001:db8::/48"], 1),
    (["2001:db8::5"], 1),
    (["::ffff:203.0.113.5"], 2),
    (["::ffff:0:0/96"], 6),  # every IPv4 address (mapped)
    (["192.0.2.0/24"], 0),
])
def test_ip_and_cidr_filters(store, ips, expected):
    df, total = store.query_events(st.Filters(ips=ips))
    assert total == expected == len(df)


@pytest.mark.parametrize("bad", ["1.2.3.4' OR 1=1 --", "1.2.3.0/33", "not-an-ip", "%"])
def test_bad_ip_filter_is_a_clear_error(store, bad):
    with pytest.raises(st.FilterError, match="not an IP"):
        store.query_events(st.Filters(ips=[bad]))


@pytest.mark.parametrize(("users", "expected"), [
    (["alice"], 2),
    (["O'Brien"], 1),
    (["x;DROP"], 1),
    (["100%_x"], 1),
    (["%"], 0),
    (["_"], 0),
    (["' OR '1'='1"], 0),
    (["root"], 2),  # user root (failed) + sudo target_user root
])
def test_user_filter_hostile_strings(store, users, expected):
    _, total = store.query_events(st.Filters(users=users))
    assert total == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("failed password", 6),
    ("%", 2),  # literal percent: "100%_x" and "50%" (no widening to everything)
    ("100%", 1),
    ("_", 2),  # literal underscore: "100%_x" and "done_"
    ("O'Brien", 1),
    ("x;DROP", 1),
    ("'; DROP TABLE events; --", 0),
    ("\\", 0),
])
def test_text_filter_is_literal(store, text, expected):
    _, total = store.query_events(st.Filters(text=text))
    assert total == expected
    with store.read() as con:  # still intact
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(LINES)


def test_combined_filters_sort_and_paging(store):
    f = st.Filters(since=dt.datetime(2026, 3, 1, tzinfo=UTC), until=dt.datetime(2026, 3, 2),
                   events=["ssh_failed_auth", "ssh_login"], hosts=["web-01"], sort="ts", descending=False,
                   limit=2, offset=1)
    df, total = store.query_events(f)
    assert total == 4
    assert df["line"].tolist() == [2, 3]
    df, _ = store.query_events(st.Filters(outcomes=["success"], sort="user", descending=True))
    assert df["user"].tolist() == ["bob", "bob", "alice"]
    with pytest.raises(st.FilterError):
        store.query_events(st.Filters(sort="message; DROP TABLE events"))


def test_aggregates(store):
    tl = store.timeline(st.Filters(), bucket="1 day", by="outcome")
    assert set(tl.columns) == {"bucket", "key", "events"}
    assert tl["events"].sum() == len(LINES)
    day1 = tl[tl["bucket"] == pd_ts("2026-03-01")]
    assert dict(zip(day1["key"], day1["events"])) == {"failure": 3, "success": 1}
    auto = store.timeline(st.Filters(), by=None)
    assert auto.attrs["bucket_seconds"] == 3600 and auto["events"].sum() == len(LINES)

    ips = store.top_ips(n=2)
    assert ips["key"].tolist()[0] in ("203.0.113.5", "198.51.100.7")
    assert set(ips.columns) == {"key", "events", "failures", "successes", "users", "hosts", "first_seen", "last_seen"}
    users = store.user_rollup()
    alice = users[users["key"] == "alice"].iloc[0]
    assert (alice["events"], alice["failures"], alice["successes"], alice["ips"]) == (2, 1, 1, 1)

    hw = store.hour_weekday(tz="America/New_York")
    # 2026-03-01 10:00 UTC is a Sunday, 05:00 in New York
    assert ((hw["weekday"] == 6) & (hw["hour"] == 5)).any()
    assert hw["events"].sum() == len(LINES)

    by_event = store.count_by("event")
    assert by_event.iloc[0]["value"] == "ssh_failed_auth"
    assert store.distinct_values("host") == ["db-01", "web-01"]
    assert store.unknown_share() == pytest.approx(1 / len(LINES))
    s = store.summary()
    assert s["events"] == len(LINES) and s["demo"] is False
    with pytest.raises(st.FilterError):
        store.count_by("message")
    with pytest.raises(st.FilterError):
        store.hour_weekday(tz="Mars/Olympus")


def test_get_event_and_retention(store):
    df, _ = store.query_events(st.Filters(limit=1, sort="line", descending=False))
    ev = store.get_event(int(df["id"].iloc[0]))
    assert ev["line"] == 1 and ev["user"] == "admin"
    assert store.get_event(10**9) is None
    assert store.delete_older_than(dt.datetime(2026, 3, 2, tzinfo=UTC)) == 4
    assert store.summary()["events"] == len(LINES) - 4


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def test_busy_store_is_a_clear_error_then_works(store, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        quick = st.Store(store.path, timeout=0.3)
        with pytest.raises(StoreBusyError, match="in use by another process"):
            quick.summary()
        patient = st.Store(store.path, timeout=10)
        assert patient.summary()["events"] == len(LINES)  # waited for the holder to let go
    finally:
        proc.wait(timeout=10)


def test_reader_and_writer_in_one_process(store):
    """A reader joins an open writer of its own process instead of failing."""
    with store.write() as w:
        w.execute("BEGIN TRANSACTION")
        with store.read() as r:
            assert r.execute("SELECT count(*) FROM events").fetchone()[0] == len(LINES)
        w.execute("COMMIT")
    with store.read() as r1, store.read() as r2:
        assert r1.execute("SELECT 1").fetchone() == r2.execute("SELECT 1").fetchone()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"])
def test_hour_weekday_matches_per_row_conversion(store, tz):
    df, _ = store.query_events(st.Filters(limit=None))
    local = df["ts"].dropna().dt.tz_convert(tz)
    want = local.groupby([local.dt.day_of_week, local.dt.hour]).size().to_dict()
    hw = store.hour_weekday(tz=tz)
    got = {(int(w), int(h)): int(n) for w, h, n in zip(hw["weekday"], hw["hour"], hw["events"], strict=True)}
    assert got == want


def test_timeline_buckets_align_like_time_bucket(store):
    with store.read() as con:
        for secs, label in st.BUCKETS:
            tl = st.timeline(con, st.Filters(), bucket=label, by=None)
            want = con.execute("SELECT time_bucket(to_seconds(?), ts) b, sum(count) FROM events "
                               "WHERE ts IS NOT NULL GROUP BY 1 ORDER BY 1", [secs]).fetchall()
            assert [(b.to_pydatetime(), int(n)) for b, n in zip(tl["bucket"], tl["events"], strict=True)] == \
                [(b, int(n)) for b, n in want], label


def test_pid_filter(store):
    df, total = store.query_events(st.Filters(hosts=["web-01"], pids=[100]))
    assert total == 2 and set(df["line"]) == {1, 2}
    with pytest.raises(st.FilterError):
        store.query_events(st.Filters(pids=["1; DROP TABLE events"]))


def test_new_store_is_private(tmp_path):
    s = st.Store(tmp_path / "new" / "events.duckdb")
    s.summary()
    assert (s.path.stat().st_mode & 0o777) == 0o600
    assert (s.path.parent.stat().st_mode & 0o077) == 0


def test_waiting_writer_gets_in_before_new_readers(store):
    """Readers that keep coming do not starve a writer of the same process; a thread that
    already reads may still open another reader (no self-deadlock)."""
    import threading

    stop = threading.Event()
    errors = []

    def reader():
        try:
            while not stop.is_set():
                with store.read() as con:
                    con.execute("SELECT count(*) FROM events").fetchall()
                    with store.read() as inner:  # nested read in the same thread
                        inner.execute("SELECT 1").fetchall()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            with store.write() as con:
                st.set_meta(con, "probe", "x")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors


def test_streamed_export_order_matches_the_query_order_in_small_slices(tmp_path):
    """iter_arrow fetches time slices (flat memory) yet keeps query_events' order, also for rows
    without a time, in both directions."""
    import datetime as dt

    import polars as pl

    from secdash.events import SCHEMA
    from secdash.store import Filters, Store, insert_events, iter_arrow

    store = Store(tmp_path / "e.duckdb")
    store.ensure()
    base = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    times = [base + dt.timedelta(minutes=m // 3, seconds=m % 3) for m in range(40)] + [None, None, None]
    df = pl.DataFrame({"ts": times, "event": ["unknown"] * len(times), "outcome": ["unknown"] * len(times),
                       "message": [f"m{i}" for i in range(len(times))], "count": [1] * len(times),
                       "line": list(range(1, len(times) + 1))}, schema_overrides={"ts": SCHEMA["ts"]})
    df = df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items()])
    with store.write() as con:
        insert_events(con, df)
    for descending in (True, False):
        f = Filters(limit=None, descending=descending)
        want = store.query_events(f)[0]["id"].tolist()
        with store.read() as con:
            got = [i for b in iter_arrow(con, f, batch_rows=4) for i in b.column("id").to_pylist()]
        assert got == want and len(got) == len(times)
