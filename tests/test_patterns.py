"""Patterns are data with samples: every sample matches exactly one pattern, with its fields."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from secdash.events import EVENTS, SCHEMA
from secdash.parse import parse_lines, split_lines
from secdash.patterns import all_patterns, lint, load_families

import polars as pl

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)
PATTERNS = all_patterns()
FAMILIES = load_families()
SAMPLES = [(p, s) for p in PATTERNS for s in p.samples]


def _applicable(program: str | None, message: str):
    """Patterns whose family and prefix admit this (program, message), in dispatch order."""
    for fam in FAMILIES:
        if not fam.any_program and program not in fam.programs:
            continue
        if fam.message_prefix and not message.startswith(fam.message_prefix):
            continue
        for p in fam.patterns:
            if p.prefixes and not any(message.startswith(x) for x in p.prefixes):
                continue
            yield p


def _header(line: str) -> tuple[str | None, str]:
    row = split_lines(pl.Series([line])).row(0, named=True)
    return row["program"], row["message"]


def test_there_are_patterns_for_every_family_file():
    assert len(FAMILIES) >= 8
    assert len(PATTERNS) >= 60


def test_ids_are_unique_and_stable_looking():
    ids = [p.id for p in PATTERNS]
    assert len(ids) == len(set(ids))
    for p in PATTERNS:
        assert re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", p.id), p.id
        assert p.event in EVENTS


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.id)
def test_pattern_is_lint_clean_and_has_samples(pattern):
    assert lint(pattern) == []
    assert pattern.samples, f"{pattern.id} has no sample"


@pytest.mark.parametrize("pattern,sample", SAMPLES, ids=lambda x: x.id if hasattr(x, "id") else "")
def test_sample_matches_exactly_one_pattern_with_expected_fields(pattern, sample):
    program, message = _header(sample["line"])
    hits = [p.id for p in _applicable(program, message) if re.match(p.regex, message)]
    assert hits == [pattern.id], f"{sample['line']!r} matched {hits}"
    row = parse_lines([sample["line"]], tz="UTC", now=NOW).row(0, named=True)
    assert row["pattern"] == pattern.id
    assert row["event"] == pattern.event
    assert row["outcome"] == pattern.outcome
    for key, want in sample.items():
        if key == "line":
            continue
        assert key in SCHEMA, f"sample names unknown column {key!r}"
        assert row[key] == want, f"{key}: got {row[key]!r}, want {want!r} in {sample['line']!r}"


NEGATIVES = [(p, n) for p in PATTERNS for n in p.negatives]


@pytest.mark.parametrize("pattern,line", NEGATIVES, ids=lambda x: x.id if hasattr(x, "id") else "")
def test_negative_sample_does_not_match_its_pattern(pattern, line):
    program, message = _header(line)
    assert not re.match(pattern.regex, message)
    row = parse_lines([line], tz="UTC", now=NOW).row(0, named=True)
    assert row["pattern"] != pattern.id


def test_lint_catches_unanchored_and_injectable_patterns():
    from secdash.patterns import Pattern

    def mk(regex):
        return Pattern(id="t.x", family="t", event="unknown", outcome="unknown", prefixes=(), regex=regex,
                       fields={}, samples=({"line": "x"},), negatives=())

    assert any("anchored" in m for m in lint(mk(r"Failed (?P<user>.*) from (?P<src>[^ ]+)")))
    # lazy user before the address: "x from 6.6.6.6 port 1 ..." would supply the address
    assert any("lazy" in m for m in lint(mk(r"^Failed for (?P<user>.*?) from (?P<src>[^ ]+) port [0-9]+(?:: .*)?$")))
    # free text on both sides of the address
    assert any("both" in m for m in lint(mk(r"^x (?P<user>.*) from (?P<src>[^ ]+) (?P<detail>.*)$")))
    # PAM-style: wildcard before rhost= would take the last (injected) rhost=
    assert any("both" in m or "lazy" in m for m in lint(mk(r"^.* rhost=(?P<src>[^ ]*) user=(?P<user>.*)$")))
    assert any(r"[0-9]" in m for m in lint(mk(r"^port (?P<src_port>\d+)$")))
    assert lint(mk(r"^Accepted (?P<method>[^ ]+) for (?P<user>.*) from (?P<src>[^ ]+) port (?P<src_port>[0-9]+)$")) == []
