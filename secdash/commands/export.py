"""``python -m secdash export``: write filtered events from the store as CSV or JSON lines.

Times without an offset (``--since 2026-03-01``) are in the configured time zone. The CSV is
safe for spreadsheets (formula-like text cells get a leading ``'``). Each export is recorded
in the audit log. Works while the dashboard runs (short read, retried while the store is busy).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="ISO", help="from this time (inclusive), e.g. 2026-03-01 or 2026-03-01T08:00")
    parser.add_argument("--until", metavar="ISO", help="up to this time (exclusive)")
    parser.add_argument("--user", action="append", default=[], metavar="U", help="user or target user (repeatable)")
    parser.add_argument("--ip", action="append", default=[], metavar="IP_OR_CIDR",
                        help="source address or CIDR range, IPv4 or IPv6 (repeatable)")
    parser.add_argument("--event", action="append", default=[], metavar="E", help="event type (repeatable)")
    parser.add_argument("--outcome", action="append", default=[], choices=["success", "failure", "unknown"],
                        help="outcome (repeatable)")
    parser.add_argument("--host", action="append", default=[], metavar="H", help="host (repeatable)")
    parser.add_argument("--program", action="append", default=[], metavar="P", help="program (repeatable)")
    parser.add_argument("--text", metavar="TEXT", help="case-insensitive text in the message")
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="output format (default csv)")
    parser.add_argument("--bom", action="store_true", help="start the CSV with a UTF-8 byte order mark (Excel)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")


def parse_time(text: str, zone: str, flag: str):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from secdash.errors import SecdashError

    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SecdashError(f"{flag}: not an ISO date/time: {text!r} (e.g. 2026-03-01 or 2026-03-01T08:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value


def run(args: argparse.Namespace) -> int:
    from secdash import config
    from secdash.errors import SecdashError
    from secdash.events import EVENTS
    from secdash.export import export
    from secdash.store import Filters, Store

    cfg = config.load()
    zone = cfg.zone
    unknown = [e for e in args.event if e not in EVENTS]
    if unknown:
        raise SecdashError(f"--event: unknown event type {unknown[0]!r} (see secdash/events.py)")
    filters = Filters(
        since=parse_time(args.since, zone, "--since") if args.since else None,
        until=parse_time(args.until, zone, "--until") if args.until else None,
        users=args.user, ips=args.ip, events=args.event, outcomes=args.outcome, hosts=args.host,
        programs=args.program, text=args.text, sort="ts", descending=False, limit=None,
    )
    if filters.since and filters.until and filters.until <= filters.since:
        raise SecdashError("--until must be after --since")
    for ip in args.ip:  # a bad address is a clear error before touching the store
        from secdash.store import ip_range

        ip_range(ip)
    store = Store.from_config(cfg)
    if not store.exists():
        raise SecdashError(f"no event store at {store.path}; run 'python -m secdash ingest' (or 'demo') first")
    out = args.output if args.output else sys.stdout
    rows = export(store, filters, out, fmt=args.format, home=cfg.home, bom=args.bom)
    if args.output:
        print(f"{rows} event(s) written to {args.output}", file=sys.stderr)
    return 0
