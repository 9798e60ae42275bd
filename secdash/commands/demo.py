"""``python -m secdash demo [--force]``: fill the data directory with a generated month of demo events.

Writes ``<data dir>/demo/<host>/auth.log`` (+ rotated ``auth.log.1`` and ``auth.log.2.gz``) for
several hosts, points ``[sources] paths`` in config.toml at them, and ingests them into a fresh
event store marked as demo data. No root and no real logs needed.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an event store that holds real (non-demo) events")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7; same seed, same data)")
    parser.add_argument("--days", type=int, default=30, help="days of history up to now (default 30)")


def run(args: argparse.Namespace) -> int:
    from secdash import config, demo
    from secdash.errors import SecdashError

    if not 1 <= args.days <= 366:
        raise SecdashError("--days must be between 1 and 366")
    cfg = config.load()
    result = demo.create(cfg.home, force=args.force, seed=args.seed, days=args.days)
    print(f"demo data: {result.lines} lines for {len(result.hosts)} hosts ({', '.join(result.hosts)}) "
          f"in {result.directory}")
    print(f"ingested {result.events} events into the event store; config.toml now reads the demo sources")
    print("the dashboard marks this as DEMO DATA; point [sources] paths at your real logs to replace it")
    return 0
