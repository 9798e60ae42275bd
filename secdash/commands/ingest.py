"""``python -m secdash ingest [PATH...]``: incremental ingest into the event store.

Without paths, the configured sources (``[sources] paths``, journald, the dashboard's audit
log). A live path means its whole rotated set; a directory means per-host logs. Each run reads
only what was added since the last one; safe to run from cron while the dashboard runs.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="log files (each with its rotations) or directories; default: the configured sources")
    parser.add_argument("--json", action="store_true", help="print the per-source report as JSON lines")
    parser.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="how long to wait for a busy store or another running ingest "
                             "(default: store.busy_timeout_seconds)")


def run(args: argparse.Namespace) -> int:
    import time

    from secdash import config
    from secdash.ingest import ingest_config
    from secdash.store import Store

    cfg = config.load()
    store = Store.from_config(cfg)
    if args.wait is not None:
        if args.wait < 0:
            print("secdash ingest: error: --wait must be 0 or more", file=sys.stderr)
            return 2
        store.timeout = max(args.wait, 0.05)
    t0 = time.perf_counter()
    reports = ingest_config(cfg, args.paths or None, store=store)
    total = time.perf_counter() - t0
    failed = False
    ok = [r for r in reports if not r.error]
    for r in reports:
        if args.json:
            print(json.dumps(r.to_dict(), default=str))
            continue
        if r.error:
            # A configured default source that does not exist on this system (e.g. /var/log/secure on
            # Debian) is only a note when another source was read.
            note = r.missing and not args.paths and ok
            print(f"secdash ingest: {'note' if note else 'error'}: {r.error}", file=sys.stderr)
            failed = failed or not note
            continue
        top = ", ".join(f"{ev} {n}" for ev, n in r.by_event.most_common(5))
        more = len(r.by_event) - 5
        if more > 0:
            top += f", +{more} more types"
        print(f"{r.source}: {r.files} file(s), {r.new_lines} new line(s), {r.events} event(s)"
              f"{' (' + top + ')' if top else ''}, {r.unknown} unknown, {r.seconds:.2f} s")
    if not args.json:
        print(f"total: {sum(r.new_lines for r in reports)} new line(s) in {total:.2f} s -> {store.path}")
    if not ok and reports:
        failed = True
        if all(r.missing for r in reports) and not args.paths:
            print("secdash ingest: hint: no auth log on this machine? set [sources] paths in "
                  f"{cfg.home / 'config.toml'}, or try 'python -m secdash demo'", file=sys.stderr)
    return 1 if failed else 0
