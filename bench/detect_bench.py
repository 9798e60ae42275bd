"""Benchmark of the detection rules (targets from the detections issue).

    .venv/bin/python bench/detect_bench.py [--lines 1000000] [--workdir /tmp/secdash-detect-bench] [--keep]

1. full evaluation of N generated events (load the used events from the store + all rules)   target < 3 s
   (also: the rules alone on an in-memory frame)
2. incremental update after 1,000 new events are ingested                                     (tail only)
3. incremental result == full recomputation
4. SSH session reconstruction over the whole store

Lines come from /work/shared/tools/gen_authlog.py (a development tool, not shipped); everything is
written under --workdir.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GEN = Path("/work/shared/tools/gen_authlog.py")


def main() -> int:
    import polars as pl

    from secdash import config, detect
    from secdash import store as st
    from secdash.parse import parse_lines

    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=1_000)
    ap.add_argument("--workdir", default="/tmp/secdash-detect-bench")
    ap.add_argument("--keep", action="store_true", help="reuse the generated log of an earlier run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the full evaluation (best is reported)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"auth-{args.lines}.log"
    total = args.lines + args.new
    if not (args.keep and log.exists()):
        with open(log, "wb") as f:
            subprocess.run([sys.executable, str(GEN), "--lines", str(total), "--seed", "3", "--start",
                            "2026-01-01T00:00:00", "--days", "14", "--hosts", "6"], stdout=f, check=True)
    t0 = time.perf_counter()
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    frame = parse_lines(lines, tz="UTC", now=dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))
    print(f"parsed {frame.height:,} events in {time.perf_counter() - t0:.1f} s")
    old, new = frame[: frame.height - args.new], frame[frame.height - args.new:]
    db = work / "events.duckdb"
    if db.exists():
        db.unlink()
    store = st.Store(db, timeout=30)
    with store.write() as con:
        con.begin()
        st.insert_events(con, old)
        con.commit()
    cfg = config.Config()
    cfg.ui.display_zone = "UTC"

    with store.read() as con:
        t0 = time.perf_counter()
        ev = detect.load_events(con)
        t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    alerts = detect.evaluate(ev, cfg)
    t_rules = time.perf_counter() - t0
    print(f"rules over {old.height:,} events ({ev.height:,} used rows): load {t_load:.2f} s + rules {t_rules:.2f} s"
          f" -> {alerts.height} alerts")
    walls, cpus = [], []
    for _ in range(args.repeat):  # full evaluation: load + rules + write the alerts table
        with store.write() as con:
            st.set_meta(con, detect.META_LAST_ID, "0")
        t0, c0 = time.perf_counter(), time.process_time()
        r = detect.update(store, cfg)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_full = min(walls)
    print(f"1. full evaluation into the alerts table: best {t_full:.2f} s of {args.repeat} (wall: "
          f"{', '.join(f'{w:.2f}' for w in walls)}; CPU: {', '.join(f'{c:.2f}' for c in cpus)}) "
          f"({r.mode}, {r.alerts} alerts)  target < 3 s {'OK' if t_full < 3 else 'MISSED'}")
    with store.write() as con:
        con.begin()
        st.insert_events(con, new)
        con.commit()
    t0 = time.perf_counter()
    r = detect.update(store, cfg)
    t_inc = time.perf_counter() - t0
    print(f"2. incremental update after {new.height:,} new events: {t_inc * 1000:.0f} ms ({r.mode}, {r.alerts} alerts)")
    stored = detect.read_alerts(store)
    with store.read() as con:
        full = detect.evaluate(detect.load_events(con), cfg)

    def key(a: pl.DataFrame):
        return sorted((x["rule"], x["ip"], x["user"], x["first_seen"], x["last_seen"], x["count"]) for x in
                      a.iter_rows(named=True))

    same = key(stored) == key(full)
    print(f"3. incremental == full recomputation: {same}")
    print("alerts by rule:", dict(sorted(detect.count_by_rule(full).items())))
    from secdash import sessions

    t0 = time.perf_counter()
    ses = sessions.load(store)
    print(f"4. SSH sessions reconstructed from the whole store: {ses.height:,} sessions, "
          f"{int(ses['n_commands'].sum()):,} commands in {time.perf_counter() - t0:.2f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
