"""Sources: rotated sets, per-host directories, unreadable / non-text files, journald records."""
from __future__ import annotations

import builtins
import gzip
import io
import json

import pytest

from secdash.errors import SourceError
from secdash.sources import (expand_sources, fingerprint, iter_batches, journal_command, journal_records,
                             open_binary, read_journal, rotated_set)

LINE = "Jan  5 03:04:05 web-01 sshd[1]: Invalid user x from 192.0.2.1 port 22\n"


def write(p, text=LINE, gz=False):
    p.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(p, "wt") as f:
            f.write(text)
    else:
        p.write_text(text)
    return p


def test_rotated_set_is_oldest_first(tmp_path):
    for name in ("auth.log", "auth.log.1", "auth.log.2.gz", "auth.log.10.gz", "auth.log.3.gz", "other.log", "auth.log.bak"):
        write(tmp_path / name, gz=name.endswith(".gz"))
    names = [p.name for p in rotated_set(tmp_path / "auth.log")]
    assert names == ["auth.log.10.gz", "auth.log.3.gz", "auth.log.2.gz", "auth.log.1", "auth.log"]


def test_rhel_dateext_rotation(tmp_path):
    for name in ("secure", "secure-20260101", "secure-20251225.gz"):
        write(tmp_path / name, gz=name.endswith(".gz"))
    assert [p.name for p in rotated_set(tmp_path / "secure")] == ["secure-20251225.gz", "secure-20260101", "secure"]


def test_live_file_missing_but_rotations_present(tmp_path):
    write(tmp_path / "auth.log.1")
    (spec,) = expand_sources([str(tmp_path / "auth.log")])
    assert spec.live is None and [p.name for p in spec.files] == ["auth.log.1"]


def test_directory_of_per_host_logs(tmp_path):
    write(tmp_path / "web-01" / "auth.log")
    write(tmp_path / "web-01" / "auth.log.1")
    write(tmp_path / "db-01" / "secure")
    write(tmp_path / "fw.log")
    specs = expand_sources([str(tmp_path)])
    assert sorted(s.name for s in specs) == sorted([str(tmp_path / "db-01" / "secure"), str(tmp_path / "fw.log"),
                                                    str(tmp_path / "web-01" / "auth.log")])
    web = next(s for s in specs if "web-01" in s.name)
    assert [p.name for p in web.files] == ["auth.log.1", "auth.log"]


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        expand_sources([str(tmp_path / "nope.log")])
    with pytest.raises(SourceError, match="no such file"):
        open_binary(tmp_path / "nope.log")
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(SourceError, match="holds no auth logs"):
        expand_sources([str(empty)])


def test_permission_denied_tells_about_group_adm(tmp_path, monkeypatch):
    p = write(tmp_path / "auth.log")
    real_open = builtins.open

    def deny(file, *a, **kw):
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(SourceError, match="group 'adm'"):
        open_binary(p)


@pytest.mark.parametrize("head,what", [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 5000, "executable"),
    (b"LPKSHHRH" + b"\x00" * 5000, "journal"),
    (b"\x28\xb5\x2f\xfd" + b"\x00" * 100, "zstd"),
    (bytes(range(1, 9)) * 1000, "binary"),
])
def test_non_text_files_are_refused(tmp_path, head, what):
    p = tmp_path / "x.log"
    p.write_bytes(head)
    with pytest.raises(SourceError, match=what):
        open_binary(p)


def test_nul_blocks_inside_a_text_log_are_tolerated(tmp_path):
    # after a crash, logs can contain runs of NUL bytes; the file is still a log
    p = tmp_path / "auth.log"
    p.write_bytes(LINE.encode() + b"\x00" * 300 + b"\n" + LINE.encode())
    with open_binary(p) as f:
        lines = [ln for b in iter_batches(f) for ln in b.lines]
    assert len(lines) == 3


def test_damaged_gzip(tmp_path):
    p = tmp_path / "auth.log.2.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SourceError):
        with open_binary(p) as f:
            list(iter_batches(f))


def test_fingerprint_survives_compression(tmp_path):
    plain = write(tmp_path / "auth.log.1", LINE * 50)
    packed = write(tmp_path / "auth.log.2.gz", LINE * 50, gz=True)
    assert fingerprint(plain) == fingerprint(packed)


def test_partial_last_line_is_held_for_live_files():
    data = LINE.encode() + b"Jan  5 03:04:06 web-01 sshd[1]: Invalid us"
    held = list(iter_batches(io.BytesIO(data), final=False))
    assert [len(b.lines) for b in held] == [1] and held[-1].end_offset == len(LINE)
    done = list(iter_batches(io.BytesIO(data), final=True))
    assert sum(len(b.lines) for b in done) == 2 and done[-1].end_offset == len(data)


def test_batches_cover_every_line_once(tmp_path):
    text = "".join(f"line {i}\n" for i in range(10_000))
    batches = list(iter_batches(io.BytesIO(text.encode()), batch_bytes=1000))
    lines = [ln for b in batches for ln in b.lines]
    assert lines == [f"line {i}" for i in range(10_000)]
    assert [b.first_line for b in batches][:2] == [1, 1 + len(batches[0].lines)]
    for a, b in zip(batches, batches[1:]):
        assert a.end_offset == b.start_offset


def test_journal_records_map_to_events():
    entries = [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": "1767582245000000", "_HOSTNAME": "deb12", "SYSLOG_IDENTIFIER": "sshd",
         "_PID": "812", "MESSAGE": "Failed password for root from 192.0.2.9 port 4242 ssh2"},
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": "1767582246000000", "_HOSTNAME": "deb12", "SYSLOG_IDENTIFIER": "sudo",
         "MESSAGE": list(b"  bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id \xff")},
        {"__CURSOR": "c3", "__REALTIME_TIMESTAMP": "1767582247000000", "_HOSTNAME": "deb12", "SYSLOG_IDENTIFIER": "sshd",
         "_PID": "813", "MESSAGE": None},
    ]
    lines = [json.dumps(e) for e in entries] + ["not json"]
    records, cursor = journal_records(lines)
    assert cursor == "c3" and records.height == 4
    from secdash.parse import parse_records

    df = parse_records(records)
    rows = df.to_dicts()
    assert (rows[0]["event"], rows[0]["src_ip"], rows[0]["pid"], rows[0]["host"]) == ("ssh_failed_auth", "192.0.2.9", 812, "deb12")
    assert rows[0]["ts"].isoformat() == "2026-01-05T03:04:05+00:00"
    assert rows[1]["event"] == "sudo_command" and rows[1]["user"] == "bob" and rows[1]["command"].endswith("\ufffd")
    assert rows[2]["event"] == "unknown"
    assert rows[3]["flags"] == "no_header" and rows[3]["message"] == "not json"


def test_journalctl_command_and_missing_binary():
    cmd = journal_command(after_cursor="abc", file="/x.journal")
    assert cmd[:4] == ["journalctl", "-o", "json", "--no-pager"]
    assert "--after-cursor" in cmd and "SYSLOG_FACILITY=4" in cmd and "SYSLOG_FACILITY=10" in cmd
    with pytest.raises(SourceError, match="journalctl not found"):
        read_journal(journalctl="journalctl-does-not-exist-here")


def test_fake_journalctl_end_to_end(tmp_path):
    fake = tmp_path / "journalctl"
    entry = {"__CURSOR": "s=1", "__REALTIME_TIMESTAMP": "1767582245000000", "_HOSTNAME": "h",
             "SYSLOG_IDENTIFIER": "sshd-session", "_PID": "9", "MESSAGE": "Invalid user admin from 198.51.100.7 port 1"}
    fake.write_text("#!/bin/sh\necho '" + json.dumps(entry) + "'\n")
    fake.chmod(0o755)
    df, cursor = read_journal(journalctl=str(fake))
    assert cursor == "s=1" and df.row(0, named=True)["event"] == "ssh_invalid_user"
    denied = tmp_path / "journalctl2"
    denied.write_text("#!/bin/sh\necho 'No journal files were opened due to insufficient permissions.' >&2\n")
    denied.chmod(0o755)
    with pytest.raises(SourceError, match="systemd-journal"):
        read_journal(journalctl=str(denied))


def test_file_starting_with_a_nul_block_is_still_a_log(tmp_path):
    p = tmp_path / "auth.log"
    p.write_bytes(b"\x00" * 8000 + b"\n" + LINE.encode())
    with open_binary(p) as f:
        lines = [ln for b in iter_batches(f) for ln in b.lines]
    assert lines[-1] == LINE.rstrip("\n") and len(lines) == 2
