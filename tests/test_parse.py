"""Header parsing, years, time zones, remote addresses, hostile input."""
from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import time

import polars as pl
import pytest

from secdash.events import SCHEMA
from secdash.parse import MAX_LINE, YearState, parse_lines, parse_records
from secdash.sources import classic_start_year, iter_batches, parse_file

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def one(line: str, **kw) -> dict:
    kw.setdefault("tz", "UTC")
    kw.setdefault("now", NOW)
    df = parse_lines([line], **kw)
    assert df.height == 1
    return df.row(0, named=True)


def test_tests_run_in_a_non_utc_zone():
    assert time.localtime().tm_gmtoff != 0 or time.tzname[0] not in ("UTC", "GMT")
    assert os.environ["TZ"] != "UTC"


def test_schema_and_types():
    df = parse_lines(["Jan  5 03:04:05 web-01 sshd[1234]: Accepted password for alice from 192.0.2.1 port 22 ssh2"],
                     tz="UTC", now=NOW)
    assert df.schema == pl.Schema(SCHEMA)
    row = df.row(0, named=True)
    assert row["ts"] == dt.datetime(2026, 1, 5, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert (row["host"], row["program"], row["pid"]) == ("web-01", "sshd", 1234)
    assert (row["event"], row["outcome"], row["user"], row["src_ip"], row["src_port"]) == \
        ("ssh_login", "success", "alice", "192.0.2.1", 22)
    assert row["count"] == 1 and row["line"] == 1 and row["flags"] is None


class TestClassicHeader:
    def test_space_padded_and_unpadded_day(self):
        assert one("Feb  3 10:00:00 h sshd[1]: x")["ts"] == dt.datetime(2026, 2, 3, 10, tzinfo=UTC)
        assert one("Feb 3 10:00:00 h sshd[1]: x")["ts"] == dt.datetime(2026, 2, 3, 10, tzinfo=UTC)

    def test_local_zone_is_converted_to_utc_with_dst(self):
        # Berlin: CET (+1) in January, CEST (+2) in July
        assert one("Jan  5 12:00:00 h sshd[1]: x", tz="Europe/Berlin")["ts"] == dt.datetime(2026, 1, 5, 11, tzinfo=UTC)
        assert one("Jul  5 12:00:00 h sshd[1]: x", tz="Europe/Berlin")["ts"] == dt.datetime(2026, 7, 5, 10, tzinfo=UTC)
        assert one("Jul  5 12:00:00 h sshd[1]: x", tz="America/New_York")["ts"] == dt.datetime(2026, 7, 5, 16, tzinfo=UTC)

    def test_impossible_or_nonexistent_times_give_null_ts_and_keep_the_line(self):
        r = one("Feb 30 10:00:00 h sshd[1]: Accepted password for a from 192.0.2.1 port 1 ssh2")
        assert r["ts"] is None and "bad_ts" in r["flags"] and r["event"] == "ssh_login"
        # 02:30 does not exist in Berlin on the spring-forward day
        r = one("Mar 29 02:30:00 h sshd[1]: x", tz="Europe/Berlin")
        assert r["ts"] is None and "bad_ts" in r["flags"]
        r = one("Jan  5 25:61:00 h sshd[1]: x")
        assert r["ts"] is None

    def test_no_hostname_header(self):
        r = one("Feb 11 15:23:17 dropbear[1252]: login attempt for nonexistent user from ::ffff:198.51.100.215:60495")
        assert (r["host"], r["program"], r["pid"]) == (None, "dropbear", 1252)
        assert r["src_ip"] == "198.51.100.215"

    def test_program_without_pid(self):
        r = one("Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls")
        assert (r["program"], r["pid"], r["event"], r["command"]) == ("sudo", None, "sudo_command", "/bin/ls")

    def test_header_without_program_keeps_ts_and_host(self):
        r = one("Jan  5 03:04:05 web-01 -- MARK --")
        assert r["host"] == "web-01" and r["ts"] is not None and r["event"] == "syslog_meta"

    def test_journal_style_line_without_timestamp(self):
        r = one("srv sshd[13709]: Invalid user test from 192.0.2.7 port 22")
        assert (r["ts"], r["host"], r["program"], r["pid"], r["event"]) == (None, "srv", "sshd", 13709, "ssh_invalid_user")

    def test_solaris_id_prefix_is_removed(self):
        r = one("Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2")
        assert r["event"] == "ssh_failed_auth" and r["src_ip"] == "205.186.180.55" and r["method"] == "keyboard-interactive"


class TestRfc3339Header:
    def test_fraction_and_offsets(self):
        r = one("2026-01-05T03:04:05.123456+02:00 web-01 sshd-session[9]: Failed password for root from 192.0.2.1 port 5 ssh2")
        assert r["ts"] == dt.datetime(2026, 1, 5, 1, 4, 5, 123456, tzinfo=UTC)
        assert (r["program"], r["event"]) == ("sshd-session", "ssh_failed_auth")
        assert one("2026-01-05T03:04:05Z h sshd[1]: x")["ts"] == dt.datetime(2026, 1, 5, 3, 4, 5, tzinfo=UTC)
        assert one("2026-01-05T03:04:05-05:00 h sshd[1]: x")["ts"] == dt.datetime(2026, 1, 5, 8, 4, 5, tzinfo=UTC)

    def test_without_offset_is_local_time(self):
        assert one("2026-07-05T12:00:00 h sshd[1]: x", tz="Europe/Berlin")["ts"] == dt.datetime(2026, 7, 5, 10, tzinfo=UTC)

    def test_impossible_date(self):
        r = one("2026-02-30T10:00:00+00:00 h sshd[1]: x")
        assert r["ts"] is None and "bad_ts" in r["flags"] and r["program"] == "sshd"

    def test_rfc5424(self):
        r = one("<38>1 2019-07-08T17:40:16.954167-04:00 hostname.example.com sshd 57915 - - Failed unknown for invalid user redmond from 192.0.2.1 port 59197 ssh2")
        assert (r["host"], r["program"], r["pid"]) == ("hostname.example.com", "sshd", 57915)
        assert (r["event"], r["user"], r["src_ip"]) == ("ssh_failed_auth", "redmond", "192.0.2.1")
        assert r["ts"] == dt.datetime(2019, 7, 8, 21, 40, 16, 954167, tzinfo=UTC)


class TestYears:
    def test_year_from_now(self):
        assert one("Nov 20 10:00:00 h sshd[1]: x")["ts"].year == 2026
        # a December stamp read in January belongs to last year
        assert one("Dec 31 23:00:00 h sshd[1]: x", now=dt.datetime(2027, 1, 2, tzinfo=UTC))["ts"].year == 2026

    def test_december_january_crossing_inside_one_batch(self):
        lines = ["Dec 31 23:59:58 h sshd[1]: a", "Dec 31 23:59:59 h sshd[1]: b", "Jan  1 00:00:01 h sshd[1]: c",
                 "Dec 31 23:59:59 h2 sshd[2]: late from another host", "Jan  1 00:00:02 h sshd[1]: d"]
        df = parse_lines(lines, tz="UTC", now=dt.datetime(2027, 1, 3, tzinfo=UTC))
        assert [t.year for t in df.get_column("ts")] == [2026, 2026, 2027, 2026, 2027]

    def test_year_state_carries_across_batches(self):
        state = YearState(year=2026)
        a = parse_lines(["Dec 31 23:59:59 h sshd[1]: a"], tz="UTC", year_state=state)
        b = parse_lines(["Jan  1 00:00:01 h sshd[1]: b"], tz="UTC", year_state=state, first_line=2)
        assert a.row(0, named=True)["ts"].year == 2026 and b.row(0, named=True)["ts"].year == 2027
        assert b.row(0, named=True)["line"] == 2

    def test_file_year_is_inferred_backwards_from_mtime_across_batches(self, tmp_path):
        p = tmp_path / "auth.log"
        lines = [f"Dec 30 10:00:{i % 60:02d} h sshd[1]: Invalid user u{i} from 192.0.2.1" for i in range(3000)]
        lines += [f"Jan  2 10:00:{i % 60:02d} h sshd[1]: Invalid user v{i} from 192.0.2.1" for i in range(3000)]
        p.write_text("\n".join(lines) + "\n")
        mtime = dt.datetime(2027, 1, 2, 12, tzinfo=UTC).timestamp()
        os.utime(p, (mtime, mtime))
        assert classic_start_year(p, dt.datetime(2027, 1, 2, 12, tzinfo=UTC)).year == 2026
        df = pl.concat(list(parse_file(p, tz="UTC", batch_bytes=50_000)))
        years = df.get_column("ts").dt.year()
        assert df.height == 6000
        assert years[:3000].unique().to_list() == [2026] and years[3000:].unique().to_list() == [2027]
        assert df.get_column("line").to_list() == list(range(1, 6001))


class TestRemotes:
    @pytest.mark.parametrize("written,ip,host", [
        ("203.0.113.9", "203.0.113.9", None),
        ("2001:db8::1", "2001:db8::1", None),
        ("2001:DB8:0:0::1", "2001:db8::1", None),
        ("::ffff:198.51.100.3", "198.51.100.3", None),
        ("fe80::1%enp3s0", "fe80::1%enp3s0", None),
        ("gw.example.com", None, "gw.example.com"),
        ("192.030.0.6", None, "192.030.0.6"),  # leading zeros: not a valid address
        ("999.1.1.1", None, "999.1.1.1"),
    ])
    def test_address_or_host(self, written, ip, host):
        r = one(f"Jan  5 03:04:05 h sshd[1]: Invalid user bob from {written} port 22")
        assert (r["src_ip"], r["src_host"]) == (ip, host)

    def test_ip_comes_from_sshd_text_not_from_the_user_name(self):
        r = one("Jan  5 03:04:05 h sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 192.0.2.44 port 40000 ssh2")
        assert (r["user"], r["src_ip"], r["src_port"]) == ("x from 6.6.6.6 port 1 ssh2", "192.0.2.44", 40000)
        r = one("Jan  5 03:04:05 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.5  user=a rhost=6.6.6.6")
        assert r["src_ip"] == "192.0.2.5"

    def test_outcome_is_not_found_by_searching_the_message(self):
        r = one("Jan  5 03:04:05 h sshd[1]: Invalid user Accepted_password from 192.0.2.1 port 2")
        assert (r["event"], r["outcome"]) == ("ssh_invalid_user", "failure")
        r = one("Jan  5 03:04:05 h sshd[1]: Failed password for invalid user accepted from 192.0.2.1 port 2 ssh2")
        assert r["outcome"] == "failure"


class TestHostileInput:
    def test_message_repeated(self):
        r = one("Jan  5 03:04:05 h sshd[1]: message repeated 5 times: [ Failed password for root from 192.0.2.1 port 22 ssh2]")
        assert (r["count"], r["event"], r["src_ip"]) == (5, "ssh_failed_auth", "192.0.2.1")
        assert r["message"] == "Failed password for root from 192.0.2.1 port 22 ssh2"

    def test_crlf_and_control_bytes(self):
        r = one("Jan  5 03:04:05 h sshd[1]: Invalid user a\x00b\x1b[31m from 192.0.2.1 port 22\r")
        assert r["flags"] == "control_chars"
        assert "\x00" not in r["message"] and "\x1b" not in r["message"] and not r["message"].endswith("\r")
        assert r["src_ip"] == "192.0.2.1" and r["user"] == "a\u2400b\u241b[31m"
        assert one("Jan  5 03:04:05 h sshd[1]: x\r")["flags"] is None

    def test_invalid_utf8_is_kept_readable(self):
        data = b"Jan  5 03:04:05 h sshd[1]: Invalid user \xf1andu from 192.0.2.1 port 22\n"
        (batch,) = list(iter_batches(io.BytesIO(data)))
        r = parse_lines(batch.lines, tz="UTC", now=NOW).row(0, named=True)
        assert r["user"] == "\ufffdandu" and r["flags"] == "invalid_utf8" and r["src_ip"] == "192.0.2.1"

    def test_huge_line_is_truncated_and_flagged(self):
        line = "Jan  5 03:04:05 h sshd[1]: Invalid user " + "A" * (MAX_LINE * 2) + " from 192.0.2.1 port 22"
        r = one(line)
        assert "truncated" in r["flags"] and len(r["message"]) < MAX_LINE and r["host"] == "h"

    def test_garbage_lines_are_kept_as_unknown(self):
        df = parse_lines(["\x00\x01\x02", "}{", "Jan", "   x   "], tz="UTC", now=NOW)
        assert df.height == 4
        assert set(df.get_column("event")) == {"unknown"}
        assert df.get_column("message").to_list()[1] == "}{"

    def test_blank_lines_are_skipped_but_numbered(self):
        df = parse_lines(["a", "", "  ", "b"], tz="UTC", now=NOW)
        assert df.get_column("line").to_list() == [1, 4]

    def test_gzip_file(self, tmp_path):
        p = tmp_path / "auth.log.2.gz"
        with gzip.open(p, "wt") as f:
            f.write("Jan  5 03:04:05 h sshd[1]: Invalid user x from 192.0.2.1 port 22\n")
        df = pl.concat(list(parse_file(p, tz="UTC", now=NOW)))
        assert df.height == 1 and df.row(0, named=True)["source"] == str(p)


def test_parse_records_for_headerless_input():
    rec = pl.DataFrame({
        "ts": [dt.datetime(2026, 1, 5, tzinfo=UTC)], "host": ["h"], "program": ["sshd"], "pid": [7],
        "message": ["Accepted publickey for vagrant from 10.0.2.2 port 48274 ssh2: ED25519 SHA256:abc"],
        "count": [1], "flags": [None], "source": ["journal"], "line": [1],
    }, schema_overrides={"flags": pl.String})
    r = parse_records(rec).row(0, named=True)
    assert (r["event"], r["user"], r["src_ip"], r["method"]) == ("ssh_login", "vagrant", "10.0.2.2", "publickey")


def test_stamps_outside_a_sane_range_are_flagged():
    r = one("1969-07-20T20:17:40Z h sshd[1]: Invalid user eagle from 192.0.2.1 port 1")
    assert r["ts"] is None and "bad_ts" in r["flags"] and r["event"] == "ssh_invalid_user"
