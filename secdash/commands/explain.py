"""python -m secdash explain PATH...: what matched, what did not (like fail2ban-regex)."""
from __future__ import annotations

import argparse
import sys
import time

from secdash.commands.parse import resolve_tz_now
from secdash.errors import SecdashError

SAMPLE_UNKNOWN = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="log files (plain or .gz)")
    p.add_argument("--tz", metavar="ZONE", help="IANA zone of classic timestamps")
    p.add_argument("--now", metavar="ISO", help="reference time for year inference")
    p.add_argument("--samples", type=int, default=SAMPLE_UNKNOWN, help="unknown lines to show (default 10)")


def run(args) -> int:
    import polars as pl

    from secdash.patterns import all_patterns
    from secdash.sources import parse_file

    tz, now = resolve_tz_now(args)
    failed = 0
    for path in args.paths:
        t0 = time.perf_counter()
        per_pattern: dict[str, int] = {}
        per_event: dict[str, int] = {}
        flags: dict[str, int] = {}
        unknown_samples: list[tuple[int, str]] = []
        lines = unknown = 0
        try:
            for df in parse_file(path, tz=tz, now=now):
                lines += df.height
                for pid, n in df.group_by("pattern").len().iter_rows():
                    if pid is not None:
                        per_pattern[pid] = per_pattern.get(pid, 0) + n
                for ev, n in df.group_by("event").len().iter_rows():
                    per_event[ev] = per_event.get(ev, 0) + n
                for f, n in df.select(pl.col("flags").str.split(",")).explode("flags").drop_nulls().group_by("flags").len().iter_rows():
                    flags[f] = flags.get(f, 0) + n
                unk = df.filter(pl.col("pattern").is_null())
                unknown += unk.height
                need = args.samples - len(unknown_samples)
                if need > 0 and unk.height:
                    for row in unk.head(need).iter_rows(named=True):
                        unknown_samples.append((row["line"], f"{row['program'] or '-'}: {row['message']}"))
        except SecdashError as exc:
            print(f"secdash explain: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        secs = time.perf_counter() - t0
        matched = lines - unknown
        print(f"{path}")
        print(f"  lines:    {lines:,} (non-blank)")
        share = f" ({matched / lines:.1%})" if lines else ""
        print(f"  matched:  {matched:,}{share}")
        print(f"  unknown:  {unknown:,}")
        print(f"  time:     {secs:.2f} s ({lines / secs if secs else 0:,.0f} lines/s)")
        print("  per pattern:")
        known_ids = {p.id for p in all_patterns()}
        for pid in sorted(known_ids, key=lambda k: (-per_pattern.get(k, 0), k)):
            if per_pattern.get(pid):
                print(f"    {per_pattern[pid]:>10,}  {pid}")
        print("  per event:")
        for ev, n in sorted(per_event.items(), key=lambda kv: -kv[1]):
            print(f"    {n:>10,}  {ev}")
        if flags:
            print("  flags:")
            for f, n in sorted(flags.items(), key=lambda kv: -kv[1]):
                print(f"    {n:>10,}  {f}")
        if unknown_samples:
            print(f"  unknown lines (first {len(unknown_samples)}):")
            for line_no, text in unknown_samples:
                shown = text if len(text) <= 200 else text[:200] + "..."
                print(f"    line {line_no}: {shown!r}")
    return 1 if failed else 0
