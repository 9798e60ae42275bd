"""Live metrics core: a fake psutil and fake clocks drive the sampler (no real machine state)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secdash import metrics
from secdash.config import MetricsConfig, Threshold, parse
from secdash.metrics import Sampler, Snapshot, UserSession, level, match_logins, rate

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class AccessDenied(Exception):
    """Named like psutil.AccessDenied (the sampler classifies by name)."""


class NoSuchProcess(Exception):
    pass


class FakeClock:
    def __init__(self, start: float = T0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeProc:
    def __init__(
        self, pid, name, user="root", cmdline=None, create_time=T0 - 100, cpu=0.0, rss=1000, conns=()
    ):
        self.pid = pid
        self._name = name
        self._user = user
        self._cmdline = cmdline if cmdline is not None else [f"/usr/bin/{name}"]
        self._ct = create_time
        self.cpu = cpu  # value returned by every cpu_percent() call; a list is consumed in order
        self.rss = rss
        self.conns = list(conns)
        self.cpu_calls = 0
        self.deny_memory = False
        self.gone = False

    def oneshot(self):
        return contextlib.nullcontext()

    def create_time(self):
        if self.gone:
            raise NoSuchProcess(self.pid)
        return self._ct

    def cpu_times(self):
        """``cpu`` is the percent of one core used since the previous call, assuming 2 s passed
        (the tests advance the clock by 2 s); the first value belongs to the priming look."""
        self.cpu_calls += 1
        if isinstance(self.cpu, list):
            pct = self.cpu.pop(0) if len(self.cpu) > 1 else self.cpu[0]  # the last value repeats
        else:
            pct = self.cpu
        self.cpu_seconds = getattr(self, "cpu_seconds", 0.0) + pct / 100 * 2
        return NS(user=self.cpu_seconds * 0.75, system=self.cpu_seconds * 0.25)

    def name(self):
        return self._name

    def memory_info(self):
        if self.deny_memory:
            raise AccessDenied(self.pid)
        return NS(rss=self.rss)

    def username(self):
        return self._user

    def cmdline(self):
        return self._cmdline

    def net_connections(self, kind="inet"):
        return self.conns


def conn(proto, ip, port, status="LISTEN", pid=None, raddr=(), family=socket.AF_INET):
    return NS(
        fd=-1,
        family=family,
        type=socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM,
        laddr=NS(ip=ip, port=port) if False else (ip, port),
        raddr=raddr,
        status=status,
        pid=pid,
    )


class FakePs:
    CONN_LISTEN = "LISTEN"

    def __init__(self):
        self.cpu_total = [99.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # first value = the priming call
        self.cpu_cores = [
            [99.0, 99.0],
            [5.0, 15.0],
            [10.0, 30.0],
            [20.0, 40.0],
            [30.0, 50.0],
            [40.0, 60.0],
            [50.0, 70.0],
        ]
        self.cores = 2
        self.load = (1.0, 0.5, 0.25)
        self.mem = NS(total=1000, available=400, percent=60.0, used=500)
        self.swap = NS(total=200, used=50, percent=25.0)
        self.partitions = [
            NS(device="/dev/sda1", mountpoint="/", fstype="ext4", opts="rw"),
            NS(device="/dev/sda2", mountpoint="/home", fstype="xfs", opts="rw"),
            NS(device="tmpfs", mountpoint="/run", fstype="tmpfs", opts="rw"),
            NS(device="/dev/loop0", mountpoint="/snap/core/1", fstype="squashfs", opts="ro"),
            NS(device="cgroup2", mountpoint="/sys/fs/cgroup", fstype="cgroup2", opts="rw"),
            NS(device="/dev/sda1", mountpoint="/etc/hosts", fstype="ext4", opts="rw"),  # bind mount
        ]
        self.usage = {
            "/": NS(total=100, used=91, free=9, percent=91.0),
            "/home": NS(total=100, used=10, free=90, percent=10.0),
        }
        self.disk = NS(read_bytes=1000, write_bytes=5000)
        self.nics = {"eth0": NS(bytes_sent=100, bytes_recv=1000), "lo": NS(bytes_sent=7, bytes_recv=7)}
        self.boot = T0 - 3600
        self.procs = [
            FakeProc(1, "systemd", cpu=[0.0, 1.0, 1.0, 1.0, 1.0], rss=50),
            FakeProc(200, "sshd", cpu=[0.0, 5.0, 5.0, 5.0, 5.0], rss=100),
            FakeProc(
                300,
                "postgres",
                user="postgres",
                cpu=[0.0, 2.0, 2.0, 2.0, 2.0],
                rss=300,
                cmdline=["postgres", "-D", "/var/lib/x" * 30],
            ),
        ]
        self.conns = [
            conn("tcp", "0.0.0.0", 22, pid=200),
            conn("udp", "127.0.0.1", 53, status="NONE", pid=None),
            conn("tcp", "10.0.0.1", 40000, status="ESTABLISHED", pid=200, raddr=("1.2.3.4", 5555)),
        ]
        self.user_list = [NS(name="alice", terminal="pts/0", host="203.0.113.5", started=T0 - 60, pid=4242)]
        self.deny: set[str] = set()
        self._acc: dict[bool, list[list[float]]] = {}
        self.calls: dict[str, int] = {}

    def _hit(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.deny:
            raise AccessDenied(name)

    def cpu_times(self, percpu=False):
        """Cumulative CPU times whose busy share since the previous call is the next value of
        ``cpu_total`` / ``cpu_cores`` (the first value belongs to the priming call)."""
        self._hit("cpu_times")
        seq = self.cpu_cores if percpu else self.cpu_total
        pct = seq.pop(0) if len(seq) > 1 else seq[0]  # the last value repeats
        pcts = pct if percpu else [pct]
        acc = self._acc.setdefault(percpu, [[0.0, 0.0, 0.0] for _ in pcts])
        out = []
        for a, p in zip(acc, pcts, strict=True):
            a[0] += p * 0.6  # user
            a[1] += p * 0.4  # system
            a[2] += 100.0 - p  # idle
            out.append(NS(user=a[0], nice=0.0, system=a[1], idle=a[2], iowait=0.0, guest=0.0, guest_nice=0.0))
        return out if percpu else out[0]

    def cpu_count(self, logical=True):
        return self.cores

    def getloadavg(self):
        self._hit("getloadavg")
        return self.load

    def virtual_memory(self):
        self._hit("virtual_memory")
        return self.mem

    def swap_memory(self):
        self._hit("swap_memory")
        return self.swap

    def disk_partitions(self, all=False):
        self._hit("disk_partitions")
        return self.partitions

    def disk_usage(self, path):
        self._hit("disk_usage")
        return self.usage[path]

    def disk_io_counters(self, perdisk=False):
        self._hit("disk_io_counters")
        return self.disk

    def net_io_counters(self, pernic=True):
        self._hit("net_io_counters")
        return dict(self.nics)

    def boot_time(self):
        self._hit("boot_time")
        return self.boot

    def process_iter(self):
        self._hit("process_iter")
        return iter(list(self.procs))

    def Process(self, pid):
        for p in self.procs:
            if p.pid == pid:
                return p
        raise NoSuchProcess(pid)

    def net_connections(self, kind="inet"):
        self._hit("net_connections")
        return list(self.conns)

    def users(self):
        self._hit("users")
        return list(self.user_list)


def make(ps=None, **kw):
    ps = ps or FakePs()
    clock = FakeClock()
    opts = dict(
        interval=2.0,
        history_seconds=20.0,
        clock=clock,
        monotonic=clock,
        euid=0,
        thresholds=MetricsConfig().thresholds,
        sockets_interval=0.0,
    )
    opts.update(kw)
    return ps, clock, Sampler(ps, **opts)


# --------------------------------------------------------------------------------------------
# CPU priming, rates, wraparound


def test_first_cpu_percent_is_primed_and_discarded():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    snap = s.sample()
    assert snap.cpu_percent == 10.0  # not the 99.0 of the priming call
    assert snap.cpu_per_core == [5.0, 15.0]
    clock.advance(2)
    assert s.sample().cpu_percent == 20.0
    # psutil.cpu_percent(interval=None) keeps its baseline per calling thread: never used
    assert "cpu_percent" not in ps.calls


def test_busy_share_helpers():
    t = NS(
        user=10.0,
        nice=0.0,
        system=5.0,
        idle=80.0,
        iowait=5.0,
        irq=0.0,
        softirq=0.0,
        steal=0.0,
        guest=3.0,
        guest_nice=1.0,
    )
    assert metrics._busy(t) == (15.0, 100.0)  # guest already counted in user/nice; iowait is idle
    assert metrics._busy_percent((10.0, 100.0), (60.0, 200.0)) == 50.0
    assert metrics._busy_percent((10.0, 100.0), (10.0, 100.0)) is None  # no tick elapsed
    assert metrics._busy_percent((50.0, 100.0), (10.0, 200.0)) == 0.0  # never negative
    assert metrics._busy_percent(None, (1.0, 2.0)) is None


def test_real_cpu_share_does_not_depend_on_the_calling_thread():
    """Prime in one thread, sample in another while a third burns CPU: a real, non-zero share
    (psutil's per-thread cpu_percent baseline would report 0.0 here)."""
    import threading
    import time

    s = Sampler(sockets_interval=1e9)
    s.prime()
    stop = time.monotonic() + 0.6

    def burn():
        while time.monotonic() < stop:
            sum(i * i for i in range(1000))

    burner = threading.Thread(target=burn)
    burner.start()
    time.sleep(0.5)
    out = []
    sampler_thread = threading.Thread(target=lambda: out.append(s.sample()))
    sampler_thread.start()
    sampler_thread.join()
    burner.join()
    snap = out[0]
    assert snap.cpu_percent is not None and snap.cpu_percent > 100 / (2 * (snap.cpu_count or 1)) * 0.5
    assert snap.cpu_per_core is not None and len(snap.cpu_per_core) == snap.cpu_count


def test_sample_without_explicit_prime_primes_and_reports_no_cpu_yet():
    ps, clock, s = make()
    snap = s.sample()  # primes internally, zero elapsed: no fake 0 %
    assert snap.cpu_percent is None and snap.cpu_per_core is None
    assert ps.cpu_total[0] == 20.0  # priming call (99) and the sample's call (10) both consumed
    clock.advance(2)
    assert s.sample().cpu_percent == 20.0


def test_rates_from_counter_deltas_over_elapsed_time():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    ps.disk = NS(read_bytes=3000, write_bytes=9000)
    ps.nics = {"eth0": NS(bytes_sent=300, bytes_recv=5000), "lo": NS(bytes_sent=1007, bytes_recv=1007)}
    snap = s.sample()
    assert snap.disk_read_bytes_per_s == 1000.0
    assert snap.disk_write_bytes_per_s == 2000.0
    eth0 = next(n for n in snap.net if n.interface == "eth0")
    assert (eth0.sent_bytes_per_s, eth0.recv_bytes_per_s) == (100.0, 2000.0)
    # the totals leave out loopback
    assert (snap.net_sent_bytes_per_s, snap.net_recv_bytes_per_s) == (100.0, 2000.0)


def test_counter_wraparound_or_reset_gives_no_negative_rate_and_rebaselines():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    ps.disk = NS(read_bytes=10, write_bytes=6000)  # read counter went down
    ps.nics = {"eth0": NS(bytes_sent=5, bytes_recv=2000), "lo": NS(bytes_sent=7, bytes_recv=7)}
    snap = s.sample()
    assert snap.disk_read_bytes_per_s is None
    assert snap.disk_write_bytes_per_s == 500.0
    eth0 = next(n for n in snap.net if n.interface == "eth0")
    assert eth0.sent_bytes_per_s is None and eth0.recv_bytes_per_s == 500.0
    clock.advance(2)
    ps.disk = NS(read_bytes=410, write_bytes=6000)
    snap = s.sample()
    assert snap.disk_read_bytes_per_s == 200.0  # counted from the new baseline


def test_new_interface_has_no_rate_until_second_sample():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    ps.nics = dict(ps.nics, wg0=NS(bytes_sent=10**9, bytes_recv=10**9))
    snap = s.sample()
    wg0 = next(n for n in snap.net if n.interface == "wg0")
    assert wg0.sent_bytes_per_s is None


def test_rate_helper():
    assert rate(100, 300, 2) == 100
    assert rate(300, 100, 2) is None
    assert rate(None, 100, 2) is None
    assert rate(100, 200, 0) is None


# --------------------------------------------------------------------------------------------
# Other fields


def test_load_memory_swap_uptime_and_count():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    snap = s.sample()
    assert (snap.load_1, snap.load_5, snap.load_15) == (1.0, 0.5, 0.25)
    assert snap.cpu_count == 2 and snap.load_per_core == 0.5
    assert snap.memory_total_bytes == 1000 and snap.memory_used_bytes == 600 and snap.memory_percent == 60.0
    assert snap.swap_used_bytes == 50 and snap.swap_percent == 25.0
    assert snap.boot_time == datetime.fromtimestamp(T0 - 3600, tz=UTC)
    assert snap.uptime_seconds == pytest.approx(3602)
    assert snap.process_count == 3
    assert snap.ts == datetime.fromtimestamp(T0 + 2, tz=UTC)
    assert snap.ts.tzinfo is UTC


def test_pseudo_file_systems_and_bind_mounts_excluded():
    ps, clock, s = make()
    snap = s.sample()
    assert [d.mountpoint for d in snap.disks] == ["/", "/home"]
    assert snap.disk_percent == 91.0


def test_overlay_root_is_kept_in_containers():
    ps = FakePs()
    ps.partitions = [
        NS(device="overlay", mountpoint="/", fstype="overlay", opts="rw"),
        NS(device="overlay", mountpoint="/var/lib/docker/x/merged", fstype="overlay", opts="rw"),
    ]
    ps.usage = {"/": NS(total=100, used=50, free=50, percent=50.0)}
    _, _, s = make(ps)
    assert [d.mountpoint for d in s.sample().disks] == ["/"]


@pytest.mark.parametrize(
    "fstype,mount,pseudo",
    [
        ("ext4", "/", False),
        ("tmpfs", "/dev/shm", True),
        ("cgroup", "/sys/fs/cgroup/x", True),
        ("proc", "/proc", True),
        ("overlay", "/", False),
        ("overlay", "/merged", True),
        ("squashfs", "/snap/x", True),
        ("", "/weird", True),
        ("nfs4", "/mnt/nfs", False),
        ("btrfs", "/data", False),
        ("devtmpfs", "/dev", True),
    ],
)
def test_is_pseudo_fs(fstype, mount, pseudo):
    assert metrics.is_pseudo_fs(fstype, mount) is pseudo


# --------------------------------------------------------------------------------------------
# Denied calls


@pytest.mark.parametrize(
    "call,fields",
    [
        ("getloadavg", ["load_1", "load_per_core"]),
        ("virtual_memory", ["memory_percent", "memory_total_bytes"]),
        ("swap_memory", ["swap_percent"]),
        ("disk_partitions", ["disks", "disk_percent"]),
        ("disk_io_counters", ["disk_read_bytes_per_s"]),
        ("net_io_counters", ["net", "net_sent_bytes_per_s"]),
        ("boot_time", ["boot_time", "uptime_seconds"]),
        ("process_iter", ["process_count", "top_cpu", "top_memory"]),
        ("users", ["users"]),
    ],
)
def test_denied_call_gives_none_and_a_note(call, fields):
    ps, clock, s = make()
    ps.deny.add(call)
    s.prime()
    clock.advance(2)
    snap = s.sample()
    for f in fields:
        assert getattr(snap, f) is None, f
    assert snap.notes and any("permission denied" in n or "privilege" in n for n in snap.notes)
    assert snap.cpu_percent == 10.0  # the rest still works
    json.dumps(snap.to_dict())


def test_unsupported_call_is_a_note_not_a_crash():
    ps, clock, s = make()

    def boom(**kw):
        raise NotImplementedError

    ps.disk_io_counters = boom
    snap = s.sample()
    assert snap.disk_read_bytes_per_s is None
    assert any("not available" in n for n in snap.notes)


def test_disk_io_none_inside_containers_is_noted():
    ps, clock, s = make()
    ps.disk = None
    s.prime()
    clock.advance(2)
    snap = s.sample()
    assert snap.disk_read_bytes_per_s is None
    assert any(n.startswith("disk I/O") for n in snap.notes)


def test_unexpected_errors_are_not_swallowed():
    ps, clock, s = make()

    def bug():
        raise ZeroDivisionError

    ps.getloadavg = bug
    with pytest.raises(ZeroDivisionError):
        s.sample()


def test_denied_net_connections_falls_back_to_own_processes_and_says_needs_privilege():
    ps, clock, s = make(euid=1000)
    ps.deny.add("net_connections")
    ps.procs[2].conns = [conn("tcp", "127.0.0.1", 5432)]
    snap = s.sample()
    assert [(x.port, x.pid, x.process) for x in snap.listeners] == [(5432, 300, "postgres")]
    assert metrics.NOTE_SOCKETS_DENIED in snap.notes


def test_listener_without_pid_says_needs_privilege_when_not_root():
    ps, clock, s = make(euid=1000)
    snap = s.sample()
    udp = next(x for x in snap.listeners if x.port == 53)
    assert udp.process == "needs privilege" and udp.pid is None
    assert metrics.NOTE_SOCKET_OWNERS in snap.notes
    _, _, root = make(euid=0)
    assert next(x for x in root.sample().listeners if x.port == 53).process == "not visible"


def test_denied_process_memory_is_counted_in_a_note():
    ps, clock, s = make()
    ps.procs[0].deny_memory = True
    snap = s.sample()
    assert any("needs privilege" in n for n in snap.notes)
    assert snap.process_count == 3


def test_vanished_process_is_skipped():
    ps, clock, s = make()
    s.prime()
    ps.procs[1].gone = True
    clock.advance(2)
    snap = s.sample()
    assert snap.process_count == 2
    assert 200 not in [p.pid for p in snap.top_cpu]


# --------------------------------------------------------------------------------------------
# Processes


def test_top_processes_ordering_priming_and_truncation():
    ps, clock, s = make(cmdline_chars=40)
    s.prime()
    clock.advance(2)
    snap = s.sample()
    assert [p.pid for p in snap.top_cpu] == [200, 300, 1]
    assert [p.cpu_percent for p in snap.top_cpu] == [5.0, 2.0, 1.0]
    assert [p.pid for p in snap.top_memory] == [300, 200, 1]
    assert snap.top_memory[0].memory_percent == pytest.approx(30.0)
    assert snap.top_memory[0].rss_bytes == 300
    pg = snap.top_memory[0]
    assert len(pg.cmdline) == 40 and pg.cmdline.endswith("…")
    assert pg.user == "postgres" and pg.started == datetime.fromtimestamp(T0 - 100, tz=UTC)
    # priming: each process's first cpu_percent call (0.0 in the fake) was not used
    assert all(p.cpu_calls == 2 for p in ps.procs)


def test_new_process_reports_no_cpu_until_primed():
    ps, clock, s = make()
    s.prime()
    ps.procs.append(FakeProc(999, "miner", cpu=[88.0, 90.0], create_time=T0))
    clock.advance(2)
    snap = s.sample()
    miner = next(p for p in s.top_processes("cpu", "miner"))
    assert miner.cpu_percent is None
    assert snap.top_cpu[0].pid == 200
    clock.advance(2)
    s.sample()
    assert s.top_processes("cpu", n=1)[0].pid == 999
    assert s.top_processes("cpu", n=1)[0].cpu_percent == 90.0


def test_pid_reuse_is_a_new_process():
    ps, clock, s = make()
    s.prime()
    ps.procs[1] = FakeProc(200, "evil", cpu=[70.0, 70.0], create_time=T0 + 1)
    ps.procs[2].cpu_seconds = -10.0  # same create time but CPU time went down: a reused pid, too
    clock.advance(2)
    s.sample()
    assert next(p for p in s.top_processes("cpu", "evil")).cpu_percent is None
    assert next(p for p in s.top_processes("cpu", "postgres")).cpu_percent is None
    clock.advance(2)
    s.sample()
    assert next(p for p in s.top_processes("cpu", "evil")).cpu_percent == pytest.approx(70.0)


def test_filter_by_user_or_name():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    s.sample()
    assert [p.pid for p in s.top_processes("cpu", "POSTGRES")] == [300]  # user or name, any case
    assert [p.pid for p in s.top_processes("memory", "ssh")] == [200]
    assert [p.pid for p in s.top_processes("cpu", "root")] == [200, 1]
    assert s.top_processes("cpu", "nobody-here") == []
    assert len(s.top_processes("cpu", "", n=2)) == 2
    with pytest.raises(ValueError):
        s.top_processes("disk")


def test_pure_filter_and_top_helpers():
    procs = [
        metrics.ProcessInfo(i, u, n, n, None, c, m, None)
        for i, u, n, c, m in [
            (1, "root", "a", 5.0, 1.0),
            (2, "bob", "b", 9.0, None),
            (3, "root", "c", None, 7.0),
        ]
    ]
    assert [p.pid for p in metrics.top_processes(procs, "cpu", 2)] == [2, 1]
    assert [p.pid for p in metrics.top_processes(procs, "memory", 5)] == [3, 1, 2]
    assert [p.pid for p in metrics.filter_processes(procs, "BOB")] == [2]
    assert [p.pid for p in metrics.filter_processes(procs, "  ")] == [1, 2, 3]


# --------------------------------------------------------------------------------------------
# Listeners and users


def test_listeners_tcp_listen_and_unconnected_udp_only():
    ps, clock, s = make()
    snap = s.sample()
    keys = [(x.proto, x.address, x.port, x.process, x.new) for x in snap.listeners]
    assert keys == [("tcp", "0.0.0.0", 22, "sshd", False), ("udp", "127.0.0.1", 53, "not visible", False)]


def test_new_listener_flagged_and_sorted_first():
    ps, clock, s = make()
    s.sample()
    ps.conns.append(conn("tcp", "::", 4444, pid=300, family=socket.AF_INET6))
    clock.advance(2)
    snap = s.sample()
    first = snap.listeners[0]
    assert (first.port, first.new, first.family, first.process) == (4444, True, "ipv6", "postgres")
    assert [x.new for x in snap.listeners[1:]] == [False, False]


def test_sockets_refreshed_at_their_own_interval():
    ps, clock, s = make(sockets_interval=10.0)
    s.sample()
    for _ in range(4):
        clock.advance(2)
        s.sample()
    assert ps.calls["net_connections"] == 1
    clock.advance(2)
    s.sample()
    assert ps.calls["net_connections"] == 2


def test_users_from_utmp():
    ps, clock, s = make()
    snap = s.sample()
    assert snap.users == [
        UserSession("alice", "pts/0", "203.0.113.5", datetime.fromtimestamp(T0 - 60, tz=UTC), 4242)
    ]


# --------------------------------------------------------------------------------------------
# match_logins


def _logins(rows):
    df = pd.DataFrame(rows, columns=["ts", "host", "program", "pid", "user", "src_ip", "method"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


START = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC)


def test_match_by_sshd_pid():
    logins = _logins(
        [
            (
                START - timedelta(days=30),
                "web1",
                "sshd",
                4242,
                "alice",
                "198.51.100.1",
                "password",
            ),  # old pid reuse
            (START - timedelta(seconds=1), "web1", "sshd", 4242, "alice", "203.0.113.5", "publickey"),
            (START - timedelta(seconds=1), "web1", "sshd", 777, "alice", "203.0.113.9", "password"),
        ]
    )
    out = match_logins([UserSession("alice", "pts/0", "somewhere.example", START, 4242)], logins)
    row = out.iloc[0]
    assert (row.src_ip, row.method, row.matched_by) == ("203.0.113.5", "publickey", "pid")
    assert row.login_ts == START - timedelta(seconds=1)


def test_match_by_user_source_and_nearest_time_before():
    logins = _logins(
        [
            (START - timedelta(minutes=3), "web1", "sshd", 1, "alice", "203.0.113.5", "password"),
            (START - timedelta(seconds=2), "web1", "sshd", 2, "alice", "203.0.113.5", "publickey"),
            (
                START - timedelta(seconds=1),
                "web1",
                "sshd",
                3,
                "alice",
                "198.51.100.7",
                "password",
            ),  # other source
            (START - timedelta(seconds=1), "web1", "sshd", 4, "bob", "203.0.113.5", "password"),  # other user
            (START + timedelta(hours=1), "web1", "sshd", 5, "alice", "203.0.113.5", "password"),  # later
        ]
    )
    out = match_logins([UserSession("alice", "pts/1", "203.0.113.5", START, None)], logins)
    row = out.iloc[0]
    assert (row.method, row.matched_by, row.login_ts) == (
        "publickey",
        "user+source+time",
        START - timedelta(seconds=2),
    )


def test_match_user_and_time_when_host_is_a_name_and_no_match_outside_window():
    logins = _logins(
        [(START - timedelta(seconds=5), "web1", "sshd", 9, "carol", "192.0.2.1", "keyboard-interactive")]
    )
    users = [
        UserSession("carol", "pts/2", "laptop.example", START, None),
        UserSession("carol", "pts/3", "192.0.2.1", START + timedelta(hours=2), None),
        UserSession("dave", "tty1", None, START, None),
    ]
    out = match_logins(users, logins)
    assert list(out.columns) == metrics.MATCH_COLUMNS
    assert out.iloc[0].src_ip == "192.0.2.1" and out.iloc[0].matched_by == "user+time"
    assert pd.isna(out.iloc[1].src_ip) and pd.isna(out.iloc[2].src_ip)


def test_match_filters_event_type_and_hostname_and_handles_empty():
    logins = _logins(
        [
            (START - timedelta(seconds=1), "db1", "sshd", 1, "alice", "203.0.113.5", "password"),
            (START - timedelta(seconds=3), "web1", "sshd", 2, "alice", "203.0.113.5", "publickey"),
        ]
    )
    out = match_logins([UserSession("alice", "pts/0", "203.0.113.5", START, None)], logins, hostname="web1")
    assert out.iloc[0].method == "publickey"
    logins["event"] = ["ssh_login", "ssh_failed"]
    out = match_logins([UserSession("alice", "pts/0", "203.0.113.5", START, None)], logins)
    assert out.iloc[0].method == "password"
    empty = match_logins(
        [UserSession("alice", "pts/0", None, START, 1)], pd.DataFrame(columns=metrics.LOGIN_COLUMNS)
    )
    assert len(empty) == 1 and pd.isna(empty.iloc[0].matched_by)
    assert len(match_logins([], logins)) == 0
    # sshd wrote a DNS name (src_host) that utmp shows too
    named = _logins(
        [
            (START - timedelta(seconds=9), "web1", "sshd", 1, "erin", None, "password"),
            (START - timedelta(seconds=2), "web1", "sshd", 2, "erin", "192.0.2.8", "publickey"),
        ]
    )
    named["src_host"] = ["laptop.example", None]
    out = match_logins([UserSession("erin", "pts/0", "laptop.example", START, None)], named)
    assert (out.iloc[0].method, out.iloc[0].matched_by) == ("password", "user+source+time")
    # dict input and a naive start time (taken as UTC)
    out = match_logins(
        [
            {
                "user": "alice",
                "terminal": "pts/0",
                "host": "203.0.113.5",
                "started": START.replace(tzinfo=None),
                "pid": None,
            }
        ],
        logins,
    )
    assert out.iloc[0].method == "password"


# --------------------------------------------------------------------------------------------
# Thresholds


def test_level_boundaries():
    th = {"cpu_percent": Threshold(50, 75, 90)}
    assert level("cpu_percent", 49.9, th) is None
    assert level("cpu_percent", 50, th) == "careful"
    assert level("cpu_percent", 75, th) == "warning"
    assert level("cpu_percent", 99, th) == "critical"
    assert level("cpu_percent", None, th) is None
    assert level("cpu_percent", float("nan"), th) is None
    assert level("unknown_metric", 99, th) is None
    assert level("x", 5, {"x": {"careful": 1, "warning": 2, "critical": 3}}) == "critical"


def test_snapshot_levels_from_config_thresholds():
    cfg = parse("[metrics.thresholds.memory_percent]\ncareful = 10\nwarning = 20\ncritical = 59\n")
    ps, clock, s = make(thresholds=cfg.metrics.thresholds)
    s.prime()
    clock.advance(2)
    snap = s.sample()
    # memory 60 % >= 59 critical; disk 91 % >= 90 warning; swap 25 % >= 20 careful; load/core 0.5 fine
    assert snap.levels == {"memory_percent": "critical", "disk_percent": "warning", "swap_percent": "careful"}


# --------------------------------------------------------------------------------------------
# History and background thread


def test_history_window_length_and_columns():
    ps, clock, s = make(history_seconds=6.0, interval=2.0)
    ps.cpu_total = [0.0] + [float(i) for i in range(1, 20)]
    ps.cpu_cores = [[0.0, 0.0]] * 20
    for p in ps.procs:
        p.cpu = 1.0
    assert s.history_maxlen == 3
    s.prime()
    for _ in range(5):
        clock.advance(2)
        s.sample()
    h = s.history()
    assert len(h) == 3
    assert list(h.columns) == ["ts", *metrics.HISTORY_FIELDS]
    assert list(h.cpu_percent) == [3.0, 4.0, 5.0]
    assert str(h.ts.dt.tz) == "UTC"
    assert h.ts.iloc[-1] == pd.Timestamp(T0 + 10, unit="s", tz="UTC")
    nh = s.net_history()
    assert set(nh.interface) == {"eth0", "lo"} and len(nh) == 6
    assert s.previous()["cpu_percent"] == 4.0


def test_empty_history_has_columns():
    _, _, s = make()
    h = s.history()
    assert len(h) == 0 and "cpu_percent" in h.columns
    assert s.latest() is None and s.previous() is None


def test_config_thresholds_merge_with_defaults_and_reject_unknown_metrics():
    from secdash.config import ConfigError

    cfg = parse("[metrics.thresholds.cpu_percent]\ncareful = 1\nwarning = 2\ncritical = 3\n")
    assert cfg.metrics.thresholds["cpu_percent"] == Threshold(1, 2, 3)
    assert cfg.metrics.thresholds["memory_percent"] == Threshold(70, 85, 95)
    with pytest.raises(ConfigError, match="unknown metric 'cpu'"):
        parse("[metrics.thresholds.cpu]\ncareful = 1\nwarning = 2\ncritical = 3\n")
    with pytest.raises(ConfigError, match="top_processes"):
        parse("[metrics]\ntop_processes = 0\n")


def test_from_config_uses_interval_and_history():
    cfg = MetricsConfig(interval_seconds=5.0, history_seconds=600.0)
    s = Sampler.from_config(cfg, ps=FakePs(), euid=0)
    assert s.interval == 5.0 and s.history_maxlen == 120
    assert s.thresholds["cpu_percent"].critical == 90


def test_background_thread_samples_and_stops():
    import time

    ps = FakePs()
    ps.cpu_total = [0.0] * 10_000
    ps.cpu_cores = [[0.0, 0.0]] * 10_000
    for p in ps.procs:
        p.cpu = 0.0
    s = Sampler(ps, interval=0.01, history_seconds=10, euid=0)
    s.start()
    s.start()  # idempotent
    try:
        deadline = time.monotonic() + 5
        while len(s.history()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(s.history()) >= 3 and s.running
        assert isinstance(s.latest(), Snapshot)
    finally:
        s.stop()
    assert not s.running


def test_sampler_error_in_thread_becomes_a_note_and_sampling_continues():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    s._tick()
    good = s.latest()
    ps.getloadavg = lambda: 1 / 0
    clock.advance(2)
    s._tick()  # does not raise
    assert s.latest() is good and any(n.startswith("sampler error: ZeroDivisionError") for n in good.notes)
    ps.getloadavg = lambda: (0.0, 0.0, 0.0)
    clock.advance(2)
    s._tick()
    assert s.latest() is not good and not any(n.startswith("sampler error") for n in s.latest().notes)


# --------------------------------------------------------------------------------------------
# Snapshot serialisation and CLI


def test_to_dict_is_json_with_utc_times():
    ps, clock, s = make()
    s.prime()
    clock.advance(2)
    d = json.loads(json.dumps(s.sample().to_dict()))
    assert d["ts"] == "2027-01-15T08:00:02+00:00"
    assert d["users"][0]["started"] == "2027-01-15T07:59:00+00:00"
    assert d["top_cpu"][0]["pid"] == 200
    assert d["listeners"][0]["port"] == 22


def test_cli_json_uses_the_sampler(monkeypatch, home, capsys):
    from secdash import cli

    ps = FakePs()
    monkeypatch.setattr(metrics, "Sampler", _sampler_with(ps))
    assert cli.main(["metrics", "--json", "--wait", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    fields = [f.name for f in metrics.dataclasses.fields(Snapshot)]
    assert list(data) == fields
    assert data["cpu_percent"] == 10.0 or data["cpu_percent"] is None
    assert data["load_1"] == 1.0 and data["disks"][0]["mountpoint"] == "/"


def test_cli_text_output(monkeypatch, home, capsys):
    from secdash import cli

    ps = FakePs()
    ps.procs[2]._cmdline = ["evil\x1b[31m", "<b>x</b>"]
    monkeypatch.setattr(metrics, "Sampler", _sampler_with(ps))
    assert cli.main(["metrics", "--wait", "0"]) == 0
    out = capsys.readouterr().out
    for text in (
        "CPU",
        "load per core",
        "Disks",
        "Top processes by CPU",
        "Listening sockets",
        "Logged-in users",
        "alice",
        "sshd",
        "[WARNING]",
    ):
        assert text in out, text
    assert "\x1b" not in out


def _sampler_with(ps):
    real = Sampler

    class Patched(real):
        @classmethod
        def from_config(cls, metrics_cfg, **kw):
            clock = FakeClock()
            return real.from_config(metrics_cfg, ps=ps, clock=clock, monotonic=_Ticking(clock), euid=0, **kw)

    return Patched


class _Ticking:
    """A monotonic clock that advances 2 s per reading after the first (so the CLI's sample is 'later')."""

    def __init__(self, clock):
        self.clock = clock
        self.n = 0

    def __call__(self):
        self.n += 1
        if self.n > 1:
            self.clock.advance(2)
        return self.clock.t


def test_cli_real_machine_json_smoke(home):
    """The real command on this machine: valid JSON with the snapshot's top-level fields."""
    r = subprocess.run(
        [sys.executable, "-m", "secdash", "metrics", "--json", "--wait", "0.2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SECDASH_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {f.name for f in metrics.dataclasses.fields(Snapshot)}
    assert data["cpu_count"] >= 1


# --------------------------------------------------------------------------------------------
# Linux fast path: one read of /proc/<pid>/stat


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_linux_proc_stat_agrees_with_psutil():
    import os

    import psutil

    me = psutil.Process(os.getpid())
    sum(i * i for i in range(200_000))  # burn a little CPU
    cpu, rss = metrics.linux_proc_stat(os.getpid())
    t = me.cpu_times()
    assert abs(cpu - (t.user + t.system)) < 0.1
    assert abs(rss - me.memory_info().rss) < 16 * 1024 * 1024
    with pytest.raises(OSError):
        metrics.linux_proc_stat(2**22 + 12345)  # beyond pid_max: no such process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_real_sampler_uses_the_fast_path_and_fakes_do_not():
    assert Sampler()._proc_stat is metrics.linux_proc_stat
    _, _, s = make()
    assert s._proc_stat is None


def test_injected_proc_stat_feeds_cpu_and_rss():
    seconds = {1: 0.0, 200: 0.0, 300: 0.0}

    def stat(pid):
        if pid == 1:
            raise PermissionError(pid)  # hidepid
        return seconds[pid], 4096 * pid

    ps, clock, s = make(proc_stat=stat)
    s.prime()
    seconds[200] = 1.0  # one CPU second in 2 s = 50 % of one core
    clock.advance(2)
    snap = s.sample()
    assert [(p.pid, p.cpu_percent, p.rss_bytes) for p in snap.top_cpu] == [
        (200, 50.0, 819200),
        (300, 0.0, 1228800),
    ]
    assert any("1 processes could not be read fully" in n for n in snap.notes)


def test_every_field_is_documented_with_a_unit():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| `")}
    documented = {name.strip().strip("`") for row in rows for name in row.split(",")}
    for cls in (
        Snapshot,
        metrics.DiskUsage,
        metrics.NetRate,
        metrics.ProcessInfo,
        metrics.Listener,
        UserSession,
    ):
        for f in metrics.dataclasses.fields(cls):
            assert f.name in documented, f"{cls.__name__}.{f.name} missing from docs/metrics.md"
    for name in metrics.HISTORY_FIELDS:
        assert f"`{name}`" in doc


# --------------------------------------------------------------------------------------------
# Properties and concurrency


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=2**64), min_size=2, max_size=30),
    st.floats(min_value=0.5, max_value=10),
)
def test_rates_from_any_counter_sequence_are_never_negative(counters, step):
    ps, clock, s = make()
    ps.disk = NS(read_bytes=counters[0], write_bytes=0)
    s.prime()
    for prev, cur in zip(counters, counters[1:]):
        ps.disk = NS(read_bytes=cur, write_bytes=0)
        clock.advance(step)
        r = s.sample().disk_read_bytes_per_s
        if cur < prev:
            assert r is None
        else:
            assert r == pytest.approx((cur - prev) / step)


def test_concurrent_samples_are_serialised():
    import threading

    ps = FakePs()
    ps.cpu_total = [1.0]
    ps.cpu_cores = [[1.0, 1.0]]
    s = Sampler(ps, interval=1.0, history_seconds=1000.0, euid=0)
    errors = []

    def work():
        try:
            for _ in range(25):
                s.sample()
                s.history()
                s.top_processes("memory", "sh")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(s.history()) == 100
    assert s.history().ts.is_monotonic_increasing
