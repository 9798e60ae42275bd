"""Property: arbitrary bytes never make the parser raise, and give one record per non-blank line."""
from __future__ import annotations

import datetime as dt
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secdash.parse import parse_lines
from secdash.sources import iter_batches

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
PIECES = [b"Jan  5 03:04:05 ", b"2026-01-05T03:04:05.5+01:00 ", b"host ", b"sshd[12]: ", b"sudo: ", b"Failed password for ",
          b"invalid user ", b" from ", b"192.0.2.1", b" port 22", b" ssh2", b"\n", b"\r\n", b"\x00", b"\xff", b"[",
          b"]", b":", b"message repeated 2 times: [ ", b"pam_unix(sshd:auth): ", b"rhost=", b"user=", b"\xe2\x82"]
chunks = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=40).map(b"".join)


def expected_records(data: bytes) -> int:
    text = data.decode("utf-8", "replace")
    parts = text.split("\n")
    return sum(1 for p in parts if p.strip(" \t\r\n"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks)
def test_random_bytes_never_raise_and_give_one_record_per_nonblank_line(data):
    lines = [ln for b in iter_batches(io.BytesIO(data), batch_bytes=7) for ln in b.lines]
    df = parse_lines(lines, tz="Europe/Berlin", now=NOW)
    assert df.height == expected_records(data)
    assert df.get_column("event").null_count() == 0
    assert set(df.get_column("outcome").unique()) <= {"success", "failure", "unknown"}
    for ip in df.get_column("src_ip").drop_nulls():
        import ipaddress

        ipaddress.ip_address(ip)
