"""Cost of the live metrics: sampler CPU time per sample and the live page's render time.

    .venv/bin/python bench/metrics_bench.py [--samples 100] [--extra-procs 300] [--renders 10]

Targets: sampler < 1 % of one core at a 2 s interval; page render < 300 ms.

* Sampler: real psutil on this machine, ``--samples`` samples back to back, CPU time measured
  with ``time.process_time``.  The sampler's clock is advanced by the configured interval per
  sample so listening sockets/users are refreshed at their real cadence (every
  ``sockets_interval_seconds``).  ``--extra-procs`` sleeping child processes are started first so
  the process table looks like a busy server (they are ended at the end, by pid).
* Page: ``AppTest`` runs of the live page body (with the login gate bypassed) against the real
  sampler whose history is filled to the full window (history_seconds / interval rows); wall time
  per run, median and worst of ``--renders`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_sampler(samples: int, interval: float, sockets_interval: float) -> dict:
    from secdash.metrics import Sampler

    fake_now = [time.monotonic()]

    def mono() -> float:
        return fake_now[0]

    s = Sampler(interval=interval, sockets_interval=sockets_interval, monotonic=mono)
    s.prime()
    fake_now[0] += interval
    s.sample()  # warm caches (pwd lookups, first sockets pass) outside the measurement
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    for _ in range(samples):
        fake_now[0] += interval
        s.sample()
    cpu = (time.process_time() - t_cpu) / samples
    wall = (time.perf_counter() - t_wall) / samples
    # the sockets pass alone (walks every process's fds)
    t = time.process_time()
    for _ in range(5):
        s._sample_listeners([])
    sockets_cpu = (time.process_time() - t) / 5
    snap = s.latest()
    return {
        "cpu_per_sample_ms": cpu * 1000,
        "wall_per_sample_ms": wall * 1000,
        "sockets_pass_ms": sockets_cpu * 1000,
        "percent_of_core": 100 * cpu / interval,
        "processes": snap.process_count,
        "listeners": len(snap.listeners or []),
    }


def bench_page(renders: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from secdash import metrics
    from secdash.ui import live

    fake = types.ModuleType("secdash.ui.auth")
    fake.session_alive = lambda: True
    fake.require_login = lambda role=None: None
    sys.modules["secdash.ui.auth"] = fake

    sampler = metrics.Sampler(interval=2.0, history_seconds=3600.0)
    sampler.prime()
    time.sleep(0.2)
    sampler.sample()
    # fill the window: one hour at 2 s, shifted copies of the real rows
    last = sampler._history[-1]
    net_last = sampler._net_history[-1] if sampler._net_history else None
    import datetime as dt

    for i in range(sampler.history_maxlen, 0, -1):
        ts = last[0] - dt.timedelta(seconds=2 * i)
        sampler._history.appendleft((ts,) + last[1:])
        if net_last is not None:
            sampler._net_history.appendleft((ts, net_last[1]))
    live.get_sampler = lambda: sampler

    def script():
        from secdash.ui.live import render_live

        render_live()

    at = AppTest.from_function(script, default_timeout=60)
    at.run()  # warm-up: imports, first figure templates
    if at.exception:
        raise SystemExit(f"page raised: {at.exception[0].message}")
    times = []
    for _ in range(renders):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
    # the body alone, without AppTest's script start-up: figure building + serialisation
    h = sampler.history()
    t = time.perf_counter()
    for _ in range(renders):
        figs = [
            live.usage_figure(h, "UTC"),
            live.load_figure(h, "UTC"),
            live.io_figure(h, "UTC"),
            live.net_figure(sampler.net_history(), "UTC"),
            live.cores_figure(sampler.latest()),
        ]
        for f in figs:
            f.to_json()
    figs_ms = (time.perf_counter() - t) / renders * 1000
    return {
        "history_rows": len(h),
        "render_median_ms": statistics.median(times) * 1000,
        "render_max_ms": max(times) * 1000,
        "figures_ms": figs_ms,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--sockets-interval", type=float, default=10.0)
    ap.add_argument("--extra-procs", type=int, default=300, help="sleeping child processes to start first")
    ap.add_argument("--renders", type=int, default=10)
    args = ap.parse_args()
    os.environ.setdefault("SECDASH_HOME", str(Path("/tmp") / f"secdash-bench-{os.getpid()}"))

    children: list[subprocess.Popen] = []
    try:
        for _ in range(args.extra_procs):
            children.append(subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL))
        r = bench_sampler(args.samples, args.interval, args.sockets_interval)
    finally:
        for c in children:
            c.kill()
        for c in children:
            c.wait()
    ok = r["percent_of_core"] < 1.0
    print(f"sampler: {r['processes']} processes, {r['listeners']} listeners, {args.samples} samples")
    print(
        f"  CPU per sample      {r['cpu_per_sample_ms']:.2f} ms (wall {r['wall_per_sample_ms']:.2f} ms; "
        f"sockets pass {r['sockets_pass_ms']:.2f} ms, every {args.sockets_interval:g} s)"
    )
    print(
        f"  cost at {args.interval:g} s        {r['percent_of_core']:.3f} % of one core  "
        f"(target < 1 %: {'OK' if ok else 'OVER'})"
    )

    p = bench_page(args.renders)
    ok_page = p["render_median_ms"] < 300
    print(f"page: history of {p['history_rows']} rows, {args.renders} AppTest runs")
    print(
        f"  render median       {p['render_median_ms']:.0f} ms (max {p['render_max_ms']:.0f} ms; "
        f"figures alone {p['figures_ms']:.0f} ms)  (target < 300 ms: {'OK' if ok_page else 'OVER'})"
    )
    return 0 if ok and ok_page else 1


if __name__ == "__main__":
    sys.exit(main())
