"""Export: spreadsheet-safe RFC 4180 CSV, JSON lines round trip, streaming, CLI and audit."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from secdash import export as ex
from secdash import store as st
from secdash.parse import YearState, parse_lines

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@import",
    "\tindent",
    "<script>alert(1)</script>",
    'quote"inside,comma',
]
LINES = [
    f"2026-03-01T10:00:{i:02d}+00:00 web-01 sshd[{100 + i}]: Failed password for invalid user {u} from "
    f"203.0.113.{i} port {4000 + i} ssh2"
    for i, u in enumerate(["alice", "bob", "x"])
] + [
    "2026-03-01T11:00:00+00:00 web-01 kernel: multi, comma \"quoted\" text",
]


@pytest.fixture
def store(tmp_path) -> st.Store:
    s = st.Store(tmp_path / "events.duckdb")
    df = parse_lines(LINES, tz="UTC", source="/var/log/auth.log", year_state=YearState(2026))
    import polars as pl

    # hostile usernames as an attacker would choose them (parsed lines cannot carry tabs/quotes in user)
    extra = pl.concat([df.head(1)] * len(HOSTILE)).with_columns(
        pl.Series("user", HOSTILE), pl.Series("line", range(100, 100 + len(HOSTILE)), dtype=pl.Int64),
        pl.Series("message", [f"hostile {h}" for h in HOSTILE]))
    with s.write() as con:
        st.insert_events(con, pl.concat([df, extra]))
    return s


@pytest.mark.parametrize(("value", "expected"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("\nx", "'\nx"),
    ("alice", "alice"), ("a=b", "a=b"), ("", ""), (None, None), (42, 42), (-3, -3), (1.5, 1.5),
])
def test_sanitize_cell(value, expected):
    assert ex.sanitize_cell(value) == expected


def test_csv_is_rfc4180_and_spreadsheet_safe(store):
    buf = io.BytesIO()
    n = ex.write_csv(store, buf, filters=st.Filters(sort="line", descending=False, limit=None))
    data = buf.getvalue()
    assert n == len(LINES) + len(HOSTILE)
    assert data.count(b"\r\n") >= n + 1  # CRLF records
    text = data.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == n
    users = [r["user"] for r in rows]
    for h in HOSTILE:
        want = ex.sanitize_cell(h)
        assert want in users, h
    assert "'=cmd|' /C calc'!A0" in users and "=cmd|' /C calc'!A0" not in users
    assert '"quote""inside,comma"' in text  # quotes doubled, field quoted
    kernel = next(r for r in rows if r["program"] == "kernel")
    assert kernel["message"] == 'multi, comma "quoted" text'
    # numbers stay numbers (no quote, no prefix), times ISO UTC
    first = rows[0]
    assert first["pid"] == "100" and first["src_port"] == "4000" and first["line"] == "1"
    assert first["ts"] == "2026-03-01T10:00:00Z"
    assert ",100," in text.splitlines()[1]
    # no cell starts with a formula character
    for r in rows:
        for v in r.values():
            assert not v or v[0] not in "=+-@\t\r\n", v


def test_csv_newline_in_cell_is_quoted(tmp_path):
    import polars as pl

    df = pl.DataFrame({"message": ["line1\nline2", "a\rb", "plain"], "n": [1, 2, 3]})
    buf = io.BytesIO()
    ex.write_csv(df, buf)
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode(), newline="")))
    assert rows == [["message", "n"], ["line1\nline2", "1"], ["a\rb", "2"], ["plain", "3"]]


def test_jsonl_round_trip(store):
    buf = io.BytesIO()
    n = ex.write_jsonl(store, buf, filters=st.Filters(sort="line", descending=False, limit=None))
    lines = buf.getvalue().decode().splitlines()
    assert n == len(lines) == len(LINES) + len(HOSTILE)
    objs = [json.loads(x) for x in lines]
    df, _ = store.query_events(st.Filters(sort="line", descending=False, limit=None))
    for obj, (_, row) in zip(objs, df.iterrows(), strict=True):
        assert obj["user"] == (None if row["user"] is None or row["user"] != row["user"] else row["user"])
        assert obj["pid"] == (None if row.isna()["pid"] else int(row["pid"]))
        assert dt.datetime.fromisoformat(obj["ts"].replace("Z", "+00:00")) == row["ts"].to_pydatetime()
    assert objs[-1]["user"] == HOSTILE[-1]  # JSON keeps values as they are


def test_filters_apply_and_streaming_batches(store):
    buf = io.BytesIO()
    n = ex.write_csv(store, buf, filters=st.Filters(ips=["203.0.113.0/30"], limit=None), batch_rows=2)
    assert n == 3 + len(HOSTILE)  # .0, .1, .2 and the hostile copies of .0
    assert buf.getvalue().count(b"\r\nid,") == 0  # one header only


def test_text_stream_and_empty_result(store):
    out = io.StringIO()
    n = ex.write_csv(store, out, filters=st.Filters(users=["nobody"], limit=None))
    assert n == 0 and out.getvalue().startswith("id,ts,host")


def test_export_records_audit(store, tmp_path):
    from secdash import audit

    home = tmp_path / "home"
    target = tmp_path / "out.csv"
    n = ex.export(store, st.Filters(users=["alice"], limit=None), target, fmt="csv", home=home, user="carol")
    assert n == 1 and target.exists() and (target.stat().st_mode & 0o777) == 0o600
    (entry,) = audit.read(home)
    assert entry["action"] == "export" and entry["user"] == "carol" and entry["users"] == ["alice"]
    assert entry["rows"] == 1 and entry["format"] == "csv"


def test_cli_export(home, capsys, tmp_path):
    from secdash.cli import main

    s = st.Store(home / "events.duckdb")
    with s.write() as con:
        st.insert_events(con, parse_lines(LINES, tz="UTC", source="x", year_state=YearState(2026)))
    assert main(["export", "--since", "2026-03-01T10:00:01Z", "--until", "2026-03-01T10:30:00+00:00",
                 "--ip", "203.0.113.0/24", "--format", "jsonl"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["user"] for x in out] == ["bob", "x"]
    target = tmp_path / "o.csv"
    assert main(["export", "--user", "alice", "-o", str(target)]) == 0
    assert "1 event(s) written" in capsys.readouterr().err
    assert "alice" in target.read_text()
    assert main(["export", "--ip", "300.1.1.1"]) == 1
    err = capsys.readouterr().err
    assert "not an IP address" in err and len(err.strip().splitlines()) == 1
    assert main(["export", "--since", "yesterday"]) == 1
    assert "not an ISO date" in capsys.readouterr().err
    from secdash import audit

    assert [e["action"] for e in audit.read(home)] == ["export", "export"]


def test_cli_export_without_store(home, capsys):
    from secdash.cli import main

    assert main(["export"]) == 1
    assert "no event store" in capsys.readouterr().err
