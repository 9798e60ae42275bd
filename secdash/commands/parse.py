"""python -m secdash parse PATH... [--format jsonl|csv] [--tz ZONE] [--now ISO]"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from secdash.errors import SecdashError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="log files (plain or .gz)")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--tz", metavar="ZONE", help="IANA zone of classic timestamps (default: config time.zone, else the machine's)")
    p.add_argument("--now", metavar="ISO", help="reference time for year inference (default: each file's mtime)")


def resolve_tz_now(args) -> tuple[str, dt.datetime | None]:
    from zoneinfo import ZoneInfo

    from secdash import config

    tz = args.tz or config.load().zone
    if not config.valid_zone(tz):
        raise SecdashError(f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)")
    now = None
    if args.now:
        try:
            now = dt.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise SecdashError(f"--now: not an ISO 8601 time: {args.now!r}") from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=ZoneInfo(tz))
    return tz, now


def for_output(df):
    import polars as pl

    return df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"))


def run(args) -> int:
    from secdash.sources import parse_file

    tz, now = resolve_tz_now(args)
    out = sys.stdout.buffer
    failed = 0
    header = True
    for path in args.paths:
        try:
            for df in parse_file(path, tz=tz, now=now):
                df = for_output(df)
                if args.format == "jsonl":
                    df.write_ndjson(out)
                else:
                    df.write_csv(out, include_header=header)
                    header = False
                out.flush()
        except SecdashError as exc:
            print(f"secdash parse: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
