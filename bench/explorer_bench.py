"""Explorer benchmark: first load, filter change and export at 1M / 10M events.

    python bench/explorer_bench.py build --rows 1000000 --home /tmp/explorer-helper/bench-1m
    python bench/explorer_bench.py run --home /tmp/explorer-helper/bench-1m
    python bench/explorer_bench.py export --home /tmp/explorer-helper/bench-1m     # peak RSS

``build`` makes a data directory from the demo month (``secdash demo``) and multiplies its events
with shifted copies (each copy one minute earlier), sorted by time like a real ingest, until
``--rows``; it also adds a bench user and turns the background ingester off.

``run`` measures the page's server-side work with cold caches:
  - data: the data-layer calls the page makes (counts, table page, six charts, value lists),
  - page: AppTest of pages/events.py: first load after login, then filter changes (IP, CIDR,
    user, event+outcome, text) each with a cold cache for the new filter.
``export`` streams the whole result (all rows) through the page's export callable into a
temporary file and reports time and peak RSS (run it in its own process).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
USER, PASSWORD = "bench", "quiet harbour lantern 42"


def build(home: Path, rows: int) -> None:
    from secdash import auth, demo
    from secdash import store as core

    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    demo.create(home, force=True)
    (home / "config.toml").write_text((home / "config.toml").read_text() + "\n[ingest]\nbackground = false\n")
    s = core.Store(home / core.DB_NAME)
    with s.write() as con:
        base = con.execute("SELECT count(*) FROM events").fetchone()[0]
        copies = -(-rows // base)
        cols = ", ".join(core.q(c) for c in core.EVENT_COLUMNS if c != "ts")
        con.execute("CREATE TEMP TABLE base AS SELECT * FROM events")
        con.execute("DELETE FROM events")
        con.execute(
            f"INSERT INTO events (id, ts, {cols}) "
            f"SELECT row_number() OVER (ORDER BY ts - to_minutes(k), k) AS id, ts - to_minutes(k) AS ts, {cols} "
            f"FROM base, range(?) AS r(k) ORDER BY ts LIMIT ?",
            [copies, rows],
        )
        n = con.execute("SELECT count(*) FROM events").fetchone()[0]
        core.set_meta(con, "next_id", str(n + 1))
        con.execute("CHECKPOINT")
    if USER not in auth.load_users(home):
        auth.add_user(home, USER, PASSWORD, "analyst", now=time.time())
    size = (home / core.DB_NAME).stat().st_size
    print(
        f"built {n:,} events ({copies} copies of {base:,}) in {time.perf_counter() - t0:.1f} s, "
        f"store {size / 1e6:.0f} MB"
    )


def _data_pass(state, zone: str = "UTC", first: bool = False) -> tuple[float, float, float]:
    """The data calls of one page render: (total, table page + count, charts) in seconds.

    ``first``: everything cold (first load); else only the filter-keyed results are cold (the
    store totals and the widgets' value lists stay cached across filter changes, as in the app).
    """
    from dataclasses import replace

    from secdash.ui import data
    from secdash.ui import filters as flt

    if first:
        data.clear_caches()
    else:
        data._query_events.clear()
        data._chart_data.clear()
    t0 = time.perf_counter()
    data.overview()
    for c in ("user", "host", "program"):
        data.distinct_values(c, 500)
    f = flt.to_filters(state)
    full = replace(f, limit=None, offset=0)
    t1 = time.perf_counter()
    data.chart_data(full, zone)  # also counts the matches
    t2 = time.perf_counter()
    data.query_events(f, with_total=False)
    t3 = time.perf_counter()
    return t3 - t0, t3 - t2, t2 - t1


FILTERS = {
    "default (24 h)": {},
    "all time": {"range": "all"},
    "one IP, all time": {"range": "all", "ips": "IP"},
    "CIDR /8, 30 d": {"range": "30d", "ips": "CIDR"},
    "user root, 7 d": {"range": "7d", "users": ("root",)},
    "failed ssh, 30 d": {"range": "30d", "events": ("ssh_failed_auth",), "outcomes": ("failure",)},
    "text 'invalid', all": {"range": "all", "q": "invalid"},
}


def _states(home: Path):
    from secdash import store as core
    from secdash.ui.filters import FilterState

    s = core.Store(home / core.DB_NAME)
    with s.read() as con:
        ip = con.execute(
            "SELECT src_ip FROM events WHERE outcome = 'failure' AND src_ip LIKE '%.%' "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    cidr = ip.split(".")[0] + ".0.0.0/8"
    out = {}
    for name, kw in FILTERS.items():
        kw = dict(kw)
        if kw.get("ips") == "IP":
            kw["ips"] = (ip,)
        elif kw.get("ips") == "CIDR":
            kw["ips"] = (cidr,)
        out[name] = FilterState(**kw)
    return out


def run(home: Path, repeat: int) -> None:
    os.environ["SECDASH_HOME"] = str(home)
    from secdash import store as core

    n = core.Store(home / core.DB_NAME).count_events()
    print(f"store: {n:,} events")
    states = _states(home)
    print("\n# data layer (s): first load = all cold; filter change = filter-keyed results cold")
    firsts = [_data_pass(next(iter(states.values())), first=True)[0] for _ in range(repeat)]
    print(f"{'first load (24 h)':24s} median {statistics.median(firsts):.3f}  min {min(firsts):.3f}")
    for name, state in states.items():
        runs = [_data_pass(state) for _ in range(repeat)]
        med = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(
            f"{name:24s} median {med[0]:.3f} (table {med[1]:.3f}, charts {med[2]:.3f})  "
            f"min {min(r[0] for r in runs):.3f}"
        )
    print("\n# page (AppTest of pages/events.py), server time (s)")
    _page(home, states)


def _page(home: Path, states) -> None:
    from streamlit.testing.v1 import AppTest

    from secdash.ui import data
    from secdash.ui import filters as flt

    data.clear_caches()
    at = AppTest.from_file(str(ROOT / "pages/events.py"), default_timeout=120)
    at.run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(USER)
    inputs["Password"].input(PASSWORD)
    next(b for b in at.button if b.label == "Login").click()
    t0 = time.perf_counter()
    at.run()
    assert not at.exception, at.exception
    print(f"{'first load (login run)':34s} {time.perf_counter() - t0:.3f}")
    for name, state in states.items():
        if name.startswith("default"):
            continue
        data.clear_caches()
        # a programmatic filter change, as a chart click or one-click filter does
        at.session_state[flt.SEED] = state
        at.session_state[flt.STATE] = state
        at.session_state[flt.GEN] = at.session_state[flt.GEN] + 1
        t0 = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t0
        assert not at.exception, at.exception
        count = next((h.value for h in at.subheader if h.value.endswith(("event", "events"))), "?")
        t0 = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t0
        print(f"change to {name:24s} cold {cold:.3f}  cached rerun {warm:.3f}  ({count})")


def export(home: Path, fmt: str) -> None:
    os.environ["SECDASH_HOME"] = str(home)
    from secdash.config import load
    from secdash.ui import events
    from secdash.ui import filters as flt
    from secdash.ui.filters import FilterState

    cfg = load(home)
    f = flt.to_filters(FilterState(range="all"), limit=None)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    payload = events._exporter(cfg, f, fmt, USER, "bench")()
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = payload.count(b"\n")
    print(
        f"export {fmt}: {lines:,} lines, {len(payload) / 1e6:.0f} MB in {secs:.2f} s; "
        f"peak RSS {rss:.0f} MB (before {rss0:.0f} MB; the finished file is returned as bytes)"
    )


def export_to_file(home: Path, fmt: str) -> None:
    """Generation only (what streams): store -> temp file, no bytes kept."""
    os.environ["SECDASH_HOME"] = str(home)
    from secdash import export as ex
    from secdash import store as core
    from secdash.ui import filters as flt
    from secdash.ui.filters import FilterState

    s = core.Store(home / core.DB_NAME)
    f = flt.to_filters(FilterState(range="all"), limit=None)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = Path("/tmp/explorer-helper") / f"bench-export.{fmt}"
    from secdash.ui import data

    page = int(os.environ.get("EXPORT_PAGE", data.EXPORT_PAGE))
    with open(out, "wb") as fh:
        rows = ex.export(data.iter_export_batches(s, f, page), f, fh, fmt=fmt, home=None, user=USER)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"stream {fmt} to file: {rows:,} rows, {out.stat().st_size / 1e6:.0f} MB in {secs:.2f} s; "
        f"peak RSS {rss:.0f} MB (before {rss0:.0f} MB)"
    )
    out.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("build", "run", "export", "stream"))
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--format", default="csv", choices=("csv", "jsonl"))
    a = ap.parse_args()
    if a.what == "build":
        build(a.home, a.rows)
    elif a.what == "run":
        run(a.home, a.repeat)
    elif a.what == "export":
        export(a.home, a.format)
    else:
        export_to_file(a.home, a.format)


if __name__ == "__main__":
    main()
