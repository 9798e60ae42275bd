"""Golden files: tests/fixtures/NAME.log is parsed and compared with NAME-expected.jsonl.

Regenerate after a deliberate change with ``./test.sh tests/test_golden.py --regen`` and review
the diff of the -expected files before committing.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from secdash.sources import parse_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LOGS = sorted(FIXTURES.glob("*.log"))
NOW = dt.datetime(2027, 1, 2, 12, 0, tzinfo=dt.timezone.utc)
TZ = "Europe/Berlin"
LONG = 500  # longer text values are stored as their length and head


def _records(path: Path) -> list[dict]:
    df = pl.concat(list(parse_file(path, tz=TZ, now=NOW)))
    out = []
    for row in df.drop("source").to_dicts():
        row["ts"] = row["ts"].isoformat() if row["ts"] else None
        for k, v in list(row.items()):
            if isinstance(v, str) and len(v) > LONG:
                row[k] = {"len": len(v), "head": v[:80]}
        out.append({k: v for k, v in row.items() if v is not None})
    return out


def test_there_are_golden_fixtures():
    assert len(LOGS) >= 3


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_golden(log, regen):
    expected_path = log.with_name(log.stem + "-expected.jsonl")
    got = _records(log)
    if regen or not expected_path.exists():
        expected_path.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in got))
        if not regen:
            pytest.fail(f"{expected_path.name} did not exist; written now: review it and commit")
    expected = [json.loads(line) for line in expected_path.read_text().splitlines()]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g == e
