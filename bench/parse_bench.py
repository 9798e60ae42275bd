"""Parser benchmark: 1M generated auth.log lines (classic and RFC 3339) -> one typed DataFrame.

    .venv/bin/python bench/parse_bench.py [--lines 1000000] [--keep]

Each measurement runs in a fresh subprocess so peak RSS is its own. Prints wall time, CPU time,
lines/s and peak RSS. Also a streaming run (batches discarded) to show memory does not grow with
file size. Needs ../shared/tools/gen_authlog.py (the generator) beside the checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "tools" / "gen_authlog.py"

CHILD = r"""
import json, os, resource, sys, time, datetime as dt
sys.path.insert(0, sys.argv[1])
import polars as pl
from secdash.sources import parse_file
path, mode = sys.argv[2], sys.argv[3]
t0 = time.perf_counter(); c0 = os.times()
now = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)
if mode == "frame":
    df = pl.concat(list(parse_file(path, tz="UTC", now=now)), rechunk=False)
    rows, unknown = df.height, df.filter(pl.col("pattern").is_null()).height
else:
    rows = unknown = 0
    for b in parse_file(path, tz="UTC", now=now):
        rows += b.height; unknown += b.filter(pl.col("pattern").is_null()).height
wall = time.perf_counter() - t0; c1 = os.times()
print(json.dumps({"rows": rows, "unknown": unknown, "wall": wall, "cpu": (c1.user - c0.user) + (c1.system - c0.system),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, lines: int, fmt: str) -> None:
    if not GEN.exists():
        sys.exit(f"generator not found: {GEN}")
    with open(path, "wb") as out:
        subprocess.run([sys.executable, str(GEN), "--lines", str(lines), "--seed", "42", "--format", fmt,
                        "--start", "2026-01-01", "--hosts", "8"], stdout=out, check=True)


def measure(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(path), mode],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="secdash-parse-bench-"))
    print(f"cores: {os.cpu_count()}  lines: {args.lines:,}")
    for fmt in ("syslog", "rfc3339"):
        path = tmp / f"auth-{fmt}.log"
        generate(path, args.lines, fmt)
        size = path.stat().st_size
        for mode in ("frame", "stream"):
            r = measure(path, mode)
            print(f"{fmt:8s} {mode:6s} {size / 1e6:6.0f} MB  rows {r['rows']:,}  unknown {r['unknown']:,}  "
                  f"wall {r['wall']:.2f} s  cpu {r['cpu']:.2f} s  {r['rows'] / r['wall']:,.0f} lines/s  "
                  f"peak RSS {r['rss_mb']:.0f} MB")
    # memory must not grow with file size when streaming: 3x the lines
    big = tmp / "auth-big.log"
    generate(big, args.lines * 3, "syslog")
    r = measure(big, "stream")
    print(f"syslog   stream {big.stat().st_size / 1e6:6.0f} MB  rows {r['rows']:,}  wall {r['wall']:.2f} s  "
          f"{r['rows'] / r['wall']:,.0f} lines/s  peak RSS {r['rss_mb']:.0f} MB (3x lines)")
    if not args.keep:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    else:
        print(f"files kept in {tmp}")


if __name__ == "__main__":
    main()
