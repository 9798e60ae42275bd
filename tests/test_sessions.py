"""SSH session reconstruction: login -> session open (same host+pid) -> sudo/su -> close,
with interleaved sessions of several users and of one user on two terminals."""
from __future__ import annotations

import datetime as dt

import polars as pl

from secdash import sessions
from secdash import store as st
from secdash.parse import parse_lines

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 10, tzinfo=UTC)


def frame(lines: list[str]) -> pl.DataFrame:
    df = parse_lines(lines, tz="UTC", now=NOW)
    return df.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))


LOG = [
    # alice logs in twice (two terminals), bob once; lines interleave
    "Mar  2 09:00:00 web sshd[100]: Accepted publickey for alice from 10.0.0.1 port 5001 ssh2",
    "Mar  2 09:00:00 web sshd[100]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
    "Mar  2 09:00:01 web systemd-logind[5]: New session 7 of user alice.",
    "Mar  2 09:01:00 web sshd[200]: Accepted password for bob from 10.0.0.2 port 5002 ssh2",
    "Mar  2 09:01:00 web sshd[200]: pam_unix(sshd:session): session opened for user bob(uid=1001) by (uid=0)",
    "Mar  2 09:02:00 web sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
    "Mar  2 09:03:00 web sshd[300]: Accepted publickey for alice from 10.0.0.3 port 5003 ssh2",
    "Mar  2 09:03:00 web sshd[300]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
    "Mar  2 09:04:00 web sudo:    alice : TTY=pts/2 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
    "Mar  2 09:05:00 web sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=www-data ; COMMAND=/usr/bin/ls",
    "Mar  2 09:06:00 web su[400]: (to root) bob on pts/1",
    "Mar  2 09:10:00 web sshd[100]: pam_unix(sshd:session): session closed for user alice",
    "Mar  2 09:11:00 web sudo:    alice : TTY=pts/2 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/whoami",
    "Mar  2 09:20:00 web sshd[300]: pam_unix(sshd:session): session closed for user alice",
    "Mar  2 09:30:00 web sudo:    alice : TTY=pts/2 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/late",
    # another host reuses pid 100: a different session
    "Mar  2 09:40:00 db sshd[100]: Accepted publickey for alice from 10.0.0.1 port 5004 ssh2",
]


def test_interleaved_sessions():
    s = sessions.reconstruct(frame(LOG)).sort("start")
    assert s.height == 4
    a1, bob, a2, db = s.iter_rows(named=True)
    assert (a1["user"], a1["src_ip"], a1["method"], a1["pid"], a1["host"]) == ("alice", "10.0.0.1", "publickey", 100,
                                                                              "web")
    assert a1["opened"] and a1["status"] == "closed" and a1["duration_s"] == 600
    assert a1["commands"] == ["sudo /usr/bin/apt update", "sudo -u www-data /usr/bin/ls"] and a1["tty"] == "pts/0"
    assert a1["logind_session"] == "7"
    assert a2["commands"] == ["sudo /usr/bin/id", "sudo /usr/bin/whoami"] and a2["tty"] == "pts/2"
    assert a2["duration_s"] == 17 * 60
    assert bob["commands"] == ["su root"] and bob["status"] == "open" and bob["end"] is None
    assert db["host"] == "db" and db["opened"] is False and db["n_commands"] == 0 and db["status"] == "open"
    # event ids: login, open, logind, commands, close
    ids = frame(LOG).get_column("id").to_list()
    assert a1["event_ids"] == [ids[0], ids[1], ids[2], ids[5], ids[9], ids[11]]
    # the command after both alice sessions ended belongs to none
    assert "sudo /usr/bin/late" not in [c for cs in s["commands"].to_list() for c in cs]


def test_open_line_of_another_pid_is_not_taken():
    s = sessions.reconstruct(frame([
        "Mar  2 09:00:00 web sshd[100]: Accepted publickey for alice from 10.0.0.1 port 5001 ssh2",
        "Mar  2 09:00:00 web sshd[101]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        "Mar  2 09:05:00 web sshd[101]: pam_unix(sshd:session): session closed for user alice",
    ]))
    assert s.height == 1 and not s["opened"][0] and s["status"][0] == "open"


def test_empty_and_store_loader(tmp_path):
    assert sessions.reconstruct(frame(["Mar  2 09:00:00 web CRON[1]: (root) CMD (true)"])).height == 0
    store = st.Store(tmp_path / "e.duckdb")
    with store.write() as con:
        con.begin()
        st.insert_events(con, parse_lines(LOG, tz="UTC", now=NOW))
        con.commit()
    all_ = sessions.load(store)
    assert all_.height == 4
    part = sessions.load(store, since=dt.datetime(2026, 3, 2, 9, 2, tzinfo=UTC),
                         until=dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    # only sessions that started in the range; their close lines are still found
    assert part["src_ip"].to_list() == ["10.0.0.3"] and part["status"][0] == "closed"
