"""Incremental ingest with real files: rotation (create, compress, copytruncate), truncation,
partial lines, duplicates, disappearing sources, multi-host directories, audit log, concurrency."""
from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from secdash import ingest as ing
from secdash import store as st
from secdash.errors import StoreBusyError

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)


def line(i: int, host: str = "web-01") -> str:
    """A unique, parseable line: pid = 1000 + i identifies it."""
    return (f"2026-03-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00 {host} sshd[{1000 + i}]: "
            f"Failed password for invalid user u{i} from 203.0.113.{i % 250} port {4000 + i} ssh2")


def write(path: Path, ids, mode: str = "a", host: str = "web-01") -> None:
    with open(path, mode, encoding="utf-8") as f:
        for i in ids:
            f.write(line(i, host) + "\n")


def rows(store: st.Store):
    with store.read() as con:
        return con.execute("SELECT pid, host, message, source, line FROM events ORDER BY pid").fetchall()


def pids(store: st.Store) -> list[int]:
    return [r[0] - 1000 for r in rows(store)]


def run(store, *paths, **kw):
    kw.setdefault("tz", "UTC")
    kw.setdefault("now", NOW)
    return ing.ingest(store, [str(p) for p in paths], **kw)


@pytest.fixture
def store(tmp_path) -> st.Store:
    return st.Store(tmp_path / "db" / "events.duckdb", timeout=5)


@pytest.fixture
def logdir(tmp_path) -> Path:
    d = tmp_path / "log"
    d.mkdir()
    return d


def old(path: Path, seconds: float = 3600) -> None:
    """Make a file look untouched for a while (a rotated file's writer is gone)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_initial_append_and_idempotent(store, logdir):
    live = logdir / "auth.log"
    write(live, range(10), "w")
    (r,) = run(store, live)
    assert (r.files, r.new_lines, r.events, r.unknown) == (1, 10, 10, 0)
    assert r.by_event["ssh_failed_auth"] == 10
    assert pids(store) == list(range(10))
    (r,) = run(store, live)
    assert r.new_lines == 0 and pids(store) == list(range(10))
    write(live, range(10, 15))
    (r,) = run(store, live)
    assert r.new_lines == 5
    got = rows(store)
    assert [x[0] - 1000 for x in got] == list(range(15))
    # content and line numbers are what was written
    assert [(x[1], x[3], x[4]) for x in got] == [("web-01", str(live), i + 1) for i in range(15)]
    assert got[3][2] == "Failed password for invalid user u3 from 203.0.113.3 port 4003 ssh2"


def test_create_rotation_then_compression(store, logdir):
    live = logdir / "auth.log"
    write(live, range(10), "w")
    run(store, live)
    write(live, range(10, 15))  # written before the rotation, not yet ingested
    os.rename(live, logdir / "auth.log.1")  # logrotate create
    write(live, range(15, 22), "w")
    (r,) = run(store, live)
    assert r.files == 2 and r.new_lines == 12
    assert pids(store) == list(range(22))
    # next rotation: .1 is compressed to .2.gz, live becomes .1, a new live file starts
    write(live, range(22, 25))
    with open(logdir / "auth.log.1", "rb") as f, gzip.open(logdir / "auth.log.2.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    os.remove(logdir / "auth.log.1")
    os.rename(live, logdir / "auth.log.1")
    write(live, range(25, 27), "w")
    (r,) = run(store, live)
    assert r.files == 3 and r.new_lines == 5
    assert pids(store) == list(range(27))
    # lines kept the numbers they have in their file
    by_pid = {x[0] - 1000: x for x in rows(store)}
    assert by_pid[14][4] == 15 and by_pid[15][4] == 1 and by_pid[26][4] == 2
    (r,) = run(store, live)
    assert r.new_lines == 0 and pids(store) == list(range(27))


def test_compressed_file_is_not_reread(store, logdir, monkeypatch):
    live = logdir / "auth.log"
    write(logdir / "auth.log.1", range(5), "w")
    with open(logdir / "auth.log.1", "rb") as f, gzip.open(logdir / "auth.log.2.gz", "wb") as g:
        g.write(b"".join((line(i) + "\n").encode() for i in range(100, 105)))
    write(live, range(5, 7), "w")
    run(store, live)
    assert sorted(pids(store)) == [*range(7), *range(100, 105)]
    seen = []
    import secdash.sources as sources

    orig = sources.iter_batches

    def spy(f, **kw):
        seen.append(kw["start_offset"])
        return orig(f, **kw)

    monkeypatch.setattr(sources, "iter_batches", spy)
    run(store, live)
    assert seen == []  # nothing changed: no file is read again


def test_copytruncate(store, logdir):
    live = logdir / "auth.log"
    write(live, range(10), "w")
    run(store, live)
    write(live, range(10, 15))
    shutil.copyfile(live, logdir / "auth.log.1")  # logrotate copytruncate
    with open(live, "r+") as f:
        f.truncate(0)
    write(live, range(15, 19))
    (r,) = run(store, live)
    assert r.new_lines == 9
    assert pids(store) == list(range(19))


def test_truncation_in_place(store, logdir):
    live = logdir / "auth.log"
    write(live, range(10), "w")
    run(store, live)
    with open(live, "r+") as f:
        f.truncate(0)
    (r,) = run(store, live)
    assert r.new_lines == 0
    write(live, range(10, 13))
    (r,) = run(store, live)
    assert r.new_lines == 3
    write(live, range(13, 14))
    run(store, live)
    assert pids(store) == list(range(14))
    # truncated and immediately refilled with more than before
    with open(live, "w") as f:
        f.truncate(0)
    write(live, range(20, 40))
    run(store, live)
    assert pids(store) == [*range(14), *range(20, 40)]


def test_partial_last_line_is_held_until_complete(store, logdir):
    live = logdir / "auth.log"
    write(live, range(3), "w")
    full = line(3)
    with open(live, "a") as f:
        f.write(full[:30])
    (r,) = run(store, live)
    assert r.new_lines == 3 and pids(store) == [0, 1, 2]
    with open(live, "a") as f:
        f.write(full[30:] + "\n")
    write(live, [4])
    (r,) = run(store, live)
    assert r.new_lines == 2
    got = rows(store)
    assert [x[0] - 1000 for x in got] == [0, 1, 2, 3, 4]
    assert got[3][2] == full.split(": ", 1)[1] and got[3][4] == 4


def test_partial_line_of_rotated_file_taken_once_writer_is_gone(store, logdir):
    live = logdir / "auth.log"
    write(live, range(2), "w")
    with open(live, "a") as f:
        f.write(line(2))  # no newline, ever
    run(store, live)
    assert pids(store) == [0, 1]
    os.rename(live, logdir / "auth.log.1")
    write(live, [3], "w")
    run(store, live)
    assert pids(store) == [0, 1, 3]  # the rotated file was just written: still held
    old(logdir / "auth.log.1")
    run(store, live)
    assert pids(store) == [0, 1, 2, 3]
    run(store, live)
    assert pids(store) == [0, 1, 2, 3]


def test_same_file_given_twice(store, logdir):
    live = logdir / "auth.log"
    write(live, range(5), "w")
    os.symlink(live, logdir / "other.log")
    reports = run(store, live, live, logdir / "other.log")
    assert sum(r.new_lines for r in reports) == 5
    write(live, range(5, 8))
    run(store, logdir / "other.log")
    run(store, live)
    assert pids(store) == list(range(8))


def test_source_disappears_and_returns(store, logdir, tmp_path):
    live = logdir / "auth.log"
    write(live, range(5), "w")
    run(store, live)
    shutil.move(str(logdir), str(tmp_path / "away"))
    (r,) = run(store, live)
    assert r.error and "no such file" in r.error and r.missing
    shutil.move(str(tmp_path / "away"), str(logdir))
    write(live, range(5, 9))
    (r,) = run(store, live)
    assert r.error is None and r.new_lines == 4
    assert pids(store) == list(range(9))


def test_multi_host_directory(store, tmp_path):
    central = tmp_path / "hosts"
    for n, host in enumerate(["web-01", "db-01", "bastion"]):
        (central / host).mkdir(parents=True)
        write(central / host / "auth.log", range(n * 100, n * 100 + 4 + n), "w", host=host)
    (central / "db-01" / "auth.log.1").write_text(line(900, "db-01") + "\n")
    reports = run(store, central)
    assert len(reports) == 3 and sum(r.new_lines for r in reports) == 4 + 5 + 6 + 1
    with store.read() as con:
        hosts = dict(con.execute("SELECT host, count(*) FROM events GROUP BY 1").fetchall())
    assert hosts == {"web-01": 4, "db-01": 6, "bastion": 6}
    reports = run(store, central)
    assert sum(r.new_lines for r in reports) == 0


def test_classic_year_carries_across_runs(store, logdir):
    live = logdir / "auth.log"
    live.write_text("Dec 31 23:59:58 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2\n")
    t = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.timezone.utc).timestamp()
    os.utime(live, (t, t))
    run(store, live)
    with open(live, "a") as f:
        f.write("Jan  1 00:00:02 h sshd[2]: Failed password for root from 192.0.2.1 port 2 ssh2\n")
    run(store, live)
    with store.read() as con:
        got = [r[0] for r in con.execute("SELECT ts FROM events ORDER BY pid").fetchall()]
    assert [x.year for x in got] == [2025, 2026]


def test_crash_between_batches_loses_and_doubles_nothing(store, logdir, monkeypatch):
    live = logdir / "auth.log"
    write(live, range(200), "w")
    calls = {"n": 0}
    real = ing.insert_events

    def flaky(con, df):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(con, df)

    monkeypatch.setattr(ing, "insert_events", flaky)
    with pytest.raises(RuntimeError):
        run(store, live, batch_bytes=2000, flush_rows=1)
    partial = pids(store)
    assert 0 < len(partial) < 200 and partial == list(range(len(partial)))
    monkeypatch.setattr(ing, "insert_events", real)
    run(store, live, batch_bytes=2000, flush_rows=1)
    assert pids(store) == list(range(200))


def test_retention(store, logdir):
    live = logdir / "auth.log"
    write(live, range(5), "w")
    run(store, live, retention_days=30, now=dt.datetime(2026, 3, 20, tzinfo=dt.timezone.utc))
    assert len(pids(store)) == 5
    write(live, range(5, 6))
    run(store, live, retention_days=5, now=dt.datetime(2026, 3, 20, tzinfo=dt.timezone.utc))
    assert pids(store) == []


def test_audit_log_is_a_source(store, tmp_path):
    from secdash import audit

    home = tmp_path / "home"
    audit.record(home, "login_failure", user="=cmd|' /C calc'!A0", ip="198.51.100.9", now=1772366400.0)
    audit.record(home, "login_failure", user="admin\nFake line", ip="198.51.100.9", now=1772366401.0)
    audit.record(home, "login", user="admin", ip="198.51.100.9", now=1772366402.0, role="admin")
    audit.record(home, "export", user="admin", ip=None, now=1772366403.0, rows=5)
    reports = ing.ingest(store, [], tz="UTC", now=NOW, audit_log=audit.path(home))
    assert reports[-1].kind == "audit" and reports[-1].new_lines == 4
    with store.read() as con:
        got = con.execute('SELECT event, outcome, "user", src_ip, program, message, line, ts FROM events '
                          "ORDER BY line").fetchall()
    assert [g[0] for g in got] == ["auth_failure", "auth_failure", "session_open", "service_event"]
    assert got[0][1] == "failure" and got[0][2] == "=cmd|' /C calc'!A0" and got[0][3] == "198.51.100.9"
    assert got[1][2] == "admin\u240aFake line"  # control characters made visible
    assert got[0][4] == "secdash" and "dashboard login failed" in got[0][5]
    assert got[0][7] == dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    audit.record(home, "logout", user="admin", ip="198.51.100.9", now=1772366404.0)
    reports = ing.ingest(store, [], tz="UTC", now=NOW, audit_log=audit.path(home))
    assert reports[-1].new_lines == 1


def test_busy_ingest_lock(store, logdir):
    live = logdir / "auth.log"
    write(live, range(3), "w")
    store.ensure()
    lock = ing.IngestLock(store)
    assert lock.acquire(1)
    try:
        with pytest.raises(StoreBusyError, match="another ingest"):
            run(store, live, lock_timeout=0.2)
    finally:
        lock.release()
    run(store, live)
    assert pids(store) == [0, 1, 2]


WRITER = textwrap.dedent("""
    import sys
    from secdash import ingest, store
    s = store.Store(sys.argv[1], timeout=30)
    for _ in range(3):
        ingest.ingest(s, [sys.argv[2]], tz="UTC", batch_bytes=20000)
    print("done", flush=True)
""")


def test_concurrent_read_while_ingesting(store, logdir):
    live = logdir / "auth.log"
    write(live, range(3000), "w")
    store.ensure()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), str(live)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = st.Store(store.path, timeout=30)
    counts = []
    while proc.poll() is None:
        counts.append(reader.count_events())
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and out.strip() == "done"
    counts.append(reader.count_events())
    assert counts == sorted(counts) and counts[-1] == 3000
    assert pids(store) == list(range(3000))


def test_cli_ingest(home, logdir, capsys):
    from secdash.cli import main

    live = logdir / "auth.log"
    write(live, range(4), "w")
    assert main(["ingest", str(live)]) == 0
    out = capsys.readouterr().out
    assert "4 new line(s)" in out and "ssh_failed_auth 4" in out
    assert main(["ingest", str(logdir / "nope.log")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err


def test_cli_ingest_busy_store(home, logdir):
    live = logdir / "auth.log"
    write(live, range(4), "w")
    st.Store(home / "events.duckdb").ensure()
    holder = "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(3)"
    proc = subprocess.Popen([sys.executable, "-c", holder, str(home / "events.duckdb")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-m", "secdash", "ingest", "--wait", "0.5", str(live)],
                             capture_output=True, text=True, env=env, timeout=60)
    finally:
        proc.wait(timeout=10)
    assert res.returncode == 1
    assert "in use by another process" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_background_ingester(home, logdir):
    from secdash import config

    live = logdir / "auth.log"
    write(live, range(3), "w")
    (home / "config.toml").write_text(f'[sources]\npaths = ["{live}"]\n[ingest]\ninterval_seconds = 0.1\n'
                                      '[time]\nzone = "UTC"\n')
    cfg = config.load(home)
    bg = ing.start_background_ingest(cfg)
    try:
        assert ing.start_background_ingest(cfg) is bg
        s = st.Store.from_config(cfg)
        deadline = time.time() + 20
        while time.time() < deadline and s.count_events() < 3:
            time.sleep(0.05)
        write(live, range(3, 6))
        while time.time() < deadline and s.count_events() < 6:
            time.sleep(0.05)
        assert s.count_events() == 6
        assert bg.status()["last_error"] is None and bg.status()["runs"] >= 2
    finally:
        ing.stop_background_ingest()
    assert not bg.is_alive()


def test_journald_source_keeps_its_cursor(store, monkeypatch):
    import polars as pl

    import secdash.sources as sources
    from secdash.parse import YearState, parse_lines

    calls = []
    batches = [
        (parse_lines([line(1), line(2)], tz="UTC", source="journal", year_state=YearState(2026)), "c2"),
        (parse_lines([line(3)], tz="UTC", source="journal", year_state=YearState(2026)), "c3"),
        (parse_lines([], tz="UTC", source="journal", year_state=YearState(2026)), None),
    ]

    def fake(*, after_cursor=None, **kw):
        calls.append(after_cursor)
        return batches[len(calls) - 1]

    monkeypatch.setattr(sources, "read_journal", fake)
    (r,) = run(store, "journald")
    assert r.kind == "journal" and r.new_lines == 2
    (r,) = run(store, "journald")
    assert r.new_lines == 1
    (r,) = run(store, "journald")
    assert r.new_lines == 0
    assert calls == [None, "c2", "c3"]
    assert pids(store) == [1, 2, 3]
    assert isinstance(batches[0][0], pl.DataFrame)


def test_file_and_its_compressed_copy_side_by_side(store, logdir):
    """logrotate's compress step: auth.log.1 and auth.log.1.gz exist at the same time."""
    live = logdir / "auth.log"
    write(live, range(6), "w")
    run(store, live)
    write(live, range(6, 8))
    os.rename(live, logdir / "auth.log.1")
    with open(logdir / "auth.log.1", "rb") as f, gzip.open(logdir / "auth.log.1.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    write(live, range(8, 10), "w")
    run(store, live)
    assert pids(store) == list(range(10))
    os.remove(logdir / "auth.log.1")
    run(store, live)
    assert pids(store) == list(range(10))


def test_a_copy_given_as_another_source_is_not_doubled(store, logdir, tmp_path):
    live = logdir / "auth.log"
    write(live, range(6), "w")
    copy = tmp_path / "copy" / "auth.log"
    copy.parent.mkdir()
    shutil.copyfile(live, copy)
    reports = run(store, live, copy)
    assert sum(r.new_lines for r in reports) == 6
    assert pids(store) == list(range(6))


@pytest.mark.parametrize("seed", range(int(os.environ.get("SECDASH_ROTATION_SEEDS", "4"))))
def test_random_rotation_histories_lose_and_double_nothing(store, logdir, seed):
    """Random sequences of appends (with partial lines), ingests, create/copytruncate rotations
    with delayed compression, and deletion of old (already ingested) rotations."""
    import random

    rng = random.Random(seed)
    live = logdir / "auth.log"
    live.write_text("")
    written: list[int] = []
    partial: str | None = None  # text of an unterminated last line of the live file
    nxt = 0
    dirty: set[str] = {"auth.log"}

    def finish_partial():
        nonlocal partial
        if partial is not None:
            with open(live, "a") as f:
                f.write(line(nxt_pid_of_partial)[len(partial):] + "\n")
            partial = None
            dirty.add("auth.log")

    nxt_pid_of_partial = -1
    for _ in range(25):
        op = rng.choices(["append", "ingest", "create", "copytruncate", "delete"], [5, 4, 1, 1, 1])[0]
        if os.environ.get("SECDASH_DEBUG"):
            print(op, sorted((p.name, p.stat().st_ino, p.stat().st_size) for p in logdir.iterdir()), len(pids(store)))
        if op == "append":
            if partial is not None and rng.random() < 0.7:
                finish_partial()
            if partial is None:
                k = rng.randint(1, 30)
                write(live, range(nxt, nxt + k))
                written += range(nxt, nxt + k)
                nxt += k
                if rng.random() < 0.3:
                    nxt_pid_of_partial = nxt
                    full = line(nxt)
                    partial = full[: rng.randint(1, len(full) - 1)]
                    with open(live, "a") as f:
                        f.write(partial)
                    written.append(nxt)
                    nxt += 1
            dirty.add("auth.log")
        elif op == "ingest":
            run(store, live)
            dirty.clear()
            if os.environ.get("SECDASH_DEBUG"):
                with store.read() as con:
                    print(con.execute('select file_id, path, inode, fp_len, "offset", line, size from ingest_state '
                                      'order by file_id').fetchall())
                    print(con.execute("select source, min(pid)-1000, max(pid)-1000, count(*) from events "
                                      "group by all order by 2").fetchall())
            assert set(pids(store)) <= set(written)
            assert len(pids(store)) == len(set(pids(store)))
        elif op in ("create", "copytruncate"):
            finish_partial()
            rotated = sorted((p for p in logdir.iterdir() if p.name != "auth.log"),
                             key=lambda p: int(p.name.split(".")[2]), reverse=True)
            for p in rotated:
                n = int(p.name.split(".")[2])
                if p.name.endswith(".gz"):
                    os.rename(p, logdir / f"auth.log.{n + 1}.gz")
                    if p.name in dirty:
                        dirty.add(f"auth.log.{n + 1}.gz")
                else:  # delaycompress: .1 becomes .2.gz
                    with open(p, "rb") as f, gzip.open(logdir / f"auth.log.{n + 1}.gz", "wb") as g:
                        shutil.copyfileobj(f, g)
                    os.remove(p)
                    if p.name in dirty:
                        dirty.add(f"auth.log.{n + 1}.gz")
            if op == "create":
                os.rename(live, logdir / "auth.log.1")
                live.write_text("")
            else:
                shutil.copyfile(live, logdir / "auth.log.1")
                with open(live, "r+") as f:
                    f.truncate(0)
            if "auth.log" in dirty:
                dirty.add("auth.log.1")
        elif op == "delete":
            rotated = sorted((p for p in logdir.iterdir() if p.name != "auth.log"),
                             key=lambda p: int(p.name.split(".")[2]))
            if rotated and rotated[-1].name not in dirty:
                os.remove(rotated[-1])
    finish_partial()
    for p in logdir.iterdir():
        old(p)
    run(store, live)
    got = pids(store)
    assert got == sorted(set(got)), "doubled lines"
    assert got == sorted(written), "lost lines"


def test_background_ingester_follows_config_changes(home, logdir):
    from secdash import config

    a, b = logdir / "a", logdir / "b"
    a.mkdir()
    b.mkdir()
    write(a / "auth.log", range(2), "w")
    write(b / "auth.log", range(10, 13), "w", host="db-01")
    (home / "config.toml").write_text(f'[sources]\npaths = ["{a / "auth.log"}"]\n[time]\nzone = "UTC"\n')
    bg = ing.BackgroundIngester(config.load(home), interval=0.05)
    bg.run_once()
    s = st.Store.from_config(config.load(home))
    assert s.count_events() == 2
    (home / "config.toml").write_text(f'[sources]\npaths = ["{b / "auth.log"}"]\n[time]\nzone = "UTC"\n')
    bg.run_once()
    assert s.count_events() == 5
    (home / "config.toml").write_text("not toml [")
    bg.run_once()
    assert bg.status()["last_error"] is None  # the last good configuration is kept


def test_cli_export_and_ingest_while_dashboard_ingests(home, logdir):
    """The dashboard's background ingester runs; cron-style CLI exports and ingests still work."""
    import threading

    from secdash import config

    live = logdir / "auth.log"
    write(live, range(500), "w")
    (home / "config.toml").write_text(f'[sources]\npaths = ["{live}"]\n[ingest]\ninterval_seconds = 0.05\n'
                                      '[time]\nzone = "UTC"\n[store]\nbusy_timeout_seconds = 20\n')
    cfg = config.load(home)
    bg = ing.BackgroundIngester(cfg)
    bg.start()
    stop = threading.Event()

    def appender():
        i = 500
        while not stop.is_set():
            write(live, range(i, i + 50))
            i += 50
            time.sleep(0.02)
        appender.last = i

    t = threading.Thread(target=appender)
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline and bg.new_events == 0:
        time.sleep(0.05)
    env = dict(os.environ, PYTHONPATH=str(ROOT), SECDASH_HOME=str(home))
    try:
        for k in range(3):
            out = logdir / f"export-{k}.csv"
            res = subprocess.run([sys.executable, "-m", "secdash", "export", "-o", str(out)], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            assert "Traceback" not in res.stderr and out.read_text().startswith("id,ts,")
            res = subprocess.run([sys.executable, "-m", "secdash", "ingest", "--wait", "20"], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
    finally:
        stop.set()
        t.join()
        bg.stop()
    s = st.Store.from_config(cfg)
    ing.ingest(s, [str(live)], tz="UTC", now=NOW, audit_log=ing.audit_path(home))
    with s.read() as con:
        got = [r[0] - 1000 for r in con.execute("SELECT pid FROM events WHERE program = 'sshd' ORDER BY pid").fetchall()]
        exports = con.execute("SELECT count(*) FROM events WHERE program = 'secdash' AND message LIKE "
                              "'dashboard export%'").fetchall()[0][0]
    assert got == list(range(appender.last))
    assert exports == 3  # the exports' audit entries became events too
    assert bg.status()["runs"] > 0


def test_source_status_and_runs(store, logdir):
    live = logdir / "auth.log"
    write(live, range(5), "w")
    run(store, live)
    run(store, live)  # nothing new: no extra run row
    status = store.source_status()
    assert status["source"].tolist() == [str(live)] and status["lines_read"].tolist() == [5]
    assert status["last_lines"].tolist() == [5] and status["last_run"].notna().all()
    runs = store.ingest_runs()
    assert len(runs) == 1 and runs["lines"].iloc[0] == 5 and runs["events"].iloc[0] == 5
