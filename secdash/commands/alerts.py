"""``python -m secdash alerts``: print the detection alerts for the store in ``$SECDASH_HOME``.

Brings the alerts up to date first (incrementally: only events added since the last run are
evaluated, see docs/detections.md), then prints those overlapping ``--since``/``--until``
(times without an offset are in the configured zone), most severe and newest first.
"""
from __future__ import annotations

import argparse
import sys

FIELDS = ("rule", "severity", "technique", "host", "ip", "user", "first_seen", "last_seen", "count", "detail",
          "alert_id", "event_ids")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="ISO", help="alerts seen at or after this time, e.g. 2026-03-01T08:00Z")
    parser.add_argument("--until", metavar="ISO", help="alerts that started before this time")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default jsonl)")
    parser.add_argument("--severity", action="append", default=[], choices=["critical", "high", "medium", "low"],
                        help="only these severities (repeatable)")
    parser.add_argument("--rule", action="append", default=[], metavar="ID", help="only these rule ids (repeatable)")


def run(args: argparse.Namespace) -> int:
    import csv
    import json

    from secdash import config, detect
    from secdash.commands.export import parse_time
    from secdash.errors import SecdashError
    from secdash.export import sanitize_cell
    from secdash.store import Store

    cfg = config.load()
    since = parse_time(args.since, cfg.zone, "--since") if args.since else None
    until = parse_time(args.until, cfg.zone, "--until") if args.until else None
    if since and until and until <= since:
        raise SecdashError("--until must be after --since")
    unknown = [r for r in args.rule if r not in detect.RULES]
    if unknown:
        raise SecdashError(f"--rule: unknown rule {unknown[0]!r} (known: {', '.join(detect.RULES)})")
    store = Store.from_config(cfg)
    if not store.exists():
        raise SecdashError(f"no event store at {store.path}; run 'python -m secdash ingest' (or 'demo') first")
    alerts = detect.alerts_for(store, cfg, since=since, until=until)
    rows = detect.to_records(alerts)
    if args.severity:
        rows = [r for r in rows if r["severity"] in args.severity]
    if args.rule:
        rows = [r for r in rows if r["rule"] in args.rule]
    out = sys.stdout
    if args.format == "jsonl":
        for r in rows:
            out.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) + "\n")
    else:
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(FIELDS)
        for r in rows:
            cells = [" ".join(map(str, r[k])) if k == "event_ids" else r[k] for k in FIELDS]
            w.writerow([sanitize_cell(c) for c in cells])
    print(f"{len(rows)} alert(s)", file=sys.stderr)
    return 0
