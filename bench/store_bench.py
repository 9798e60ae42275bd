"""Benchmark of the event store and ingest (targets from the store issue).

    .venv/bin/python bench/store_bench.py [--lines 1000000] [--copies 10] [--workdir /tmp/secdash-store-bench]

1. initial ingest of N generated lines (parse + store), lines/s          target >= 250k lines/s
2. steady state: 1,000 new lines appended, ingested and queryable         target < 200 ms
3. with ~10M events (the N events copied with shifted times):
   filtered query (7-day range + one IP / one user), first 1,000 rows + total   target < 300 ms
   timeline and top-N aggregates over the full range                            target < 500 ms
4. database size per event after CHECKPOINT                               target <= 60 bytes

Lines come from /work/shared/tools/gen_authlog.py (a development tool, not shipped). Everything is
written under --workdir (default under /tmp).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GEN = Path("/work/shared/tools/gen_authlog.py")


def gen(lines: int, seed: int, start: str, days: float, out: Path) -> None:
    with open(out, "wb") as f:
        subprocess.run([sys.executable, str(GEN), "--lines", str(lines), "--seed", str(seed), "--start", start,
                        "--days", str(days), "--hosts", "6"], stdout=f, check=True)


def timed(fn, repeat: int = 5):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def fmt_ms(times) -> str:
    return f"median {statistics.median(times) * 1000:7.1f} ms  (first {times[0] * 1000:.1f}, max {max(times) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--copies", type=int, default=10, help="copies of the ingested events for the big store")
    ap.add_argument("--workdir", default="/tmp/secdash-store-bench")
    ap.add_argument("--keep", action="store_true", help="reuse generated logs from an earlier run")
    args = ap.parse_args()

    from secdash import ingest as ing
    from secdash import store as st

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          "(other processes slow every number down)")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    big = work / f"gen-{args.lines}.log"
    tail = work / "tail.log"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    days = 14
    if not (args.keep and big.exists() and tail.exists()):
        t0 = time.perf_counter()
        gen(args.lines, 1, start.isoformat(), days, big)
        gen(20_000, 2, (start + dt.timedelta(days=days + 1)).isoformat(), 0.5, tail)
        print(f"generated {args.lines} lines in {time.perf_counter() - t0:.1f} s")
    tail_lines = tail.read_bytes().splitlines(keepends=True)

    # -- 1. initial ingest ------------------------------------------------------------------
    db = work / "events.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        if p.exists():
            p.unlink()
    live = logs / "auth.log"
    shutil.copyfile(big, live)
    now = start + dt.timedelta(days=days + 2)
    store = st.Store(db, timeout=30)
    t0 = time.perf_counter()
    (rep,) = ing.ingest(store, [str(live)], tz="UTC", now=now)
    secs = time.perf_counter() - t0
    print(f"\n1. initial ingest: {rep.new_lines} lines, {rep.events} events in {secs:.2f} s "
          f"= {rep.new_lines / secs:,.0f} lines/s  (target >= 250,000)")
    # parse share: the same lines through the parser alone
    from secdash.parse import YearState, parse_lines
    from secdash.sources import iter_batches, open_binary

    t0 = time.perf_counter()
    with open_binary(live) as f:
        for batch in iter_batches(f):
            parse_lines(batch.lines, tz="UTC", first_line=batch.first_line, year_state=YearState(2026))
    parse_secs = time.perf_counter() - t0
    print(f"   of which parsing alone: {parse_secs:.2f} s ({rep.new_lines / parse_secs:,.0f} lines/s); "
          f"store + state: {secs - parse_secs:.2f} s")
    store.checkpoint()
    size = os.path.getsize(db)
    print(f"4. size: {size / 1e6:.1f} MB for {rep.events} events = {size / rep.events:.1f} bytes/event (target <= 60)")

    # -- 2. steady state ----------------------------------------------------------------------
    lat = []
    pos = 0
    for _ in range(10):
        chunk = tail_lines[pos:pos + 1000]
        pos += 1000
        with open(live, "ab") as f:
            f.writelines(chunk)
        t0 = time.perf_counter()
        (r,) = ing.ingest(store, [str(live)], tz="UTC", now=now)
        _, n = store.query_events(st.Filters(since=start + dt.timedelta(days=days + 1), limit=10))
        lat.append(time.perf_counter() - t0)
        assert r.new_lines == 1000, r
    print(f"2. steady state, 1,000 new lines ingested + queryable: {fmt_ms(lat)}  (target < 200 ms); "
          f"{n} tail events visible")

    # -- 3. ~10M events -------------------------------------------------------------------------
    with store.read() as con:
        n0, lo, hi, max_id = con.execute("SELECT count(*), min(ts), max(ts), max(id) FROM events").fetchall()[0]
    span = int((hi - lo).total_seconds()) + 3600
    cols = ", ".join(st.q(c) for c in st.EVENT_COLUMNS if c != "ts")
    t0 = time.perf_counter()
    with store.write() as con:
        for k in range(1, args.copies):
            con.execute(f"INSERT INTO events (id, ts, {cols}) SELECT id + ?, ts + to_seconds(?), {cols} "
                        "FROM events WHERE id <= ? ORDER BY ts", [k * max_id, k * span, max_id])
        st.set_meta(con, "next_id", str(args.copies * max_id + 1))
        con.execute("CHECKPOINT")
    with store.read() as con:
        total, lo, hi = con.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchall()[0]
    size = os.path.getsize(db)
    print(f"\n3. store with {total:,} events ({lo:%Y-%m-%d} .. {hi:%Y-%m-%d}), built in "
          f"{time.perf_counter() - t0:.1f} s, {size / 1e6:.0f} MB = {size / total:.1f} bytes/event")
    top = store.top_ips(st.Filters(outcomes=["failure"]), n=5)
    ip = str(top["key"].iloc[2])
    user = "root"
    mid = lo + (hi - lo) / 2
    week = dict(since=mid, until=mid + dt.timedelta(days=7))

    def q_ip():
        return store.query_events(st.Filters(ips=[ip], limit=1000, **week))

    def q_user():
        return store.query_events(st.Filters(users=[user], limit=1000, **week))

    def q_cidr():
        return store.query_events(st.Filters(ips=[ip.rsplit(".", 1)[0] + ".0/24"], limit=1000, **week))

    def q_text():
        return store.query_events(st.Filters(text="invalid user", limit=1000, **week))

    for label, fn in (("7 days + one IP", q_ip), ("7 days + one user", q_user), ("7 days + CIDR /24", q_cidr),
                      ("7 days + text", q_text)):
        (df, n), times = timed(fn)
        print(f"   query {label:22s}: {len(df):5d} rows of {n:>8,} total  {fmt_ms(times)}  (target < 300 ms)")
    for label, fn in (
        ("timeline (auto, by outcome)", lambda: store.timeline(st.Filters())),
        ("timeline (1 hour, by event)", lambda: store.timeline(st.Filters(), bucket="1 hour", by="event")),
        ("top 10 IPs (count_by)", lambda: store.count_by("src_ip", st.Filters(), n=10)),
        ("top 10 users (count_by)", lambda: store.count_by("user", st.Filters(), n=10)),
        ("top 10 IPs (rollup)", lambda: store.top_ips(st.Filters(), n=10)),
        ("top 10 users (rollup)", lambda: store.top_users(st.Filters(), n=10)),
        ("hour x weekday", lambda: store.hour_weekday(st.Filters(), tz="Europe/Berlin")),
        ("user rollup (all)", lambda: store.user_rollup(st.Filters())),
        ("ip rollup (all)", lambda: store.ip_rollup(st.Filters())),
        ("count by event", lambda: store.count_by("event", st.Filters())),
        ("unfiltered first page+total", lambda: store.query_events(st.Filters(limit=1000))),
    ):
        res, times = timed(fn)
        print(f"   {label:30s}: {len(res[0]) if isinstance(res, tuple) else len(res):6d} rows  {fmt_ms(times)}  "
              "(target < 500 ms)")
    import io

    from secdash.export import write_csv

    t0 = time.perf_counter()
    buf = io.BytesIO()
    rows = write_csv(store, buf, filters=st.Filters(since=lo, until=lo + dt.timedelta(days=14), limit=None,
                                                      descending=False))
    print(f"   export CSV of {rows:,} rows: {time.perf_counter() - t0:.2f} s, {len(buf.getvalue()) / 1e6:.0f} MB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
