"""Live system metrics: one sampler per server process, with a rolling history.

No streamlit here (the page lives in :mod:`secdash.ui.live`).  Every field is documented with
its unit in ``docs/metrics.md``.

Design notes

* psutil is reached through an injectable object (``Sampler(ps=...)``) and every time through
  injectable clocks (``clock`` = wall time in epoch seconds, ``monotonic`` = elapsed time), so the
  tests drive a fake psutil with a fake clock.
* ``psutil.cpu_percent()`` (and ``Process.cpu_percent()``) measure *since the previous call*; the
  very first call is meaningless.  :meth:`Sampler.prime` makes that first call and discards it,
  and a process seen for the first time reports ``None`` for its CPU share.
* Rates (disk and network bytes per second) come from counter deltas over elapsed monotonic time.
  A counter that goes down (32-bit wraparound, interface re-created, disk re-attached) gives
  ``None`` for that interval and becomes the new baseline: never a negative rate.
* Each psutil call is wrapped: AccessDenied / PermissionError / NotImplementedError / OSError make
  the field ``None`` and add a human-readable note to the snapshot (containers deny several).
* Listening sockets walk every process's file descriptors (that is how the socket -> pid mapping
  works on Linux), so they and the logged-in users are refreshed every ``sockets_interval``
  seconds rather than on every sample.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

LEVELS = ("careful", "warning", "critical")

# File system types that never hold user data worth watching (kernel views, RAM disks, images).
PSEUDO_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "nfsd",
        "aufs",
        "shm",
        "none",
    }
)
# ...except when one of them *is* the root file system (overlay/aufs in containers).
ROOT_OK_FSTYPES = frozenset({"overlay", "aufs", "tmpfs"})

NOTE_SOCKETS_DENIED = (
    "listening sockets need privilege (run as root, or grant CAP_NET_ADMIN / CAP_SYS_PTRACE); "
    "showing only the sockets of this user's processes"
)
NOTE_SOCKET_OWNERS = (
    "the process owning some listening sockets needs privilege to see "
    "(run as root, or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)"
)
NEEDS_PRIVILEGE = "needs privilege"
NOT_VISIBLE = "not visible"

_DENIED_NAMES = ("AccessDenied", "NoSuchProcess", "ZombieProcess")


# --------------------------------------------------------------------------------------------
# Snapshot types


@dataclass
class DiskUsage:
    mountpoint: str
    device: str
    fstype: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    percent: float


@dataclass
class NetRate:
    interface: str
    sent_bytes_per_s: float | None
    recv_bytes_per_s: float | None


@dataclass
class ProcessInfo:
    pid: int
    user: str | None
    name: str
    cmdline: str
    started: datetime | None
    cpu_percent: float | None
    memory_percent: float | None
    rss_bytes: int | None


@dataclass
class Listener:
    proto: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    address: str
    port: int
    pid: int | None
    process: str  # name, "needs privilege" or "not visible"
    new: bool  # appeared after the sampler's first look at the sockets

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.proto, self.address, self.port)


@dataclass
class UserSession:
    user: str
    terminal: str | None
    host: str | None
    started: datetime | None
    pid: int | None


@dataclass
class Snapshot:
    """One full sample.  ``None`` means "not available here" (see ``notes`` for why)."""

    ts: datetime
    cpu_percent: float | None = None
    cpu_per_core: list[float] | None = None
    cpu_count: int | None = None
    load_1: float | None = None
    load_5: float | None = None
    load_15: float | None = None
    load_per_core: float | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_available_bytes: int | None = None
    memory_percent: float | None = None
    swap_total_bytes: int | None = None
    swap_used_bytes: int | None = None
    swap_percent: float | None = None
    disks: list[DiskUsage] | None = None
    disk_percent: float | None = None
    disk_read_bytes_per_s: float | None = None
    disk_write_bytes_per_s: float | None = None
    net: list[NetRate] | None = None
    net_sent_bytes_per_s: float | None = None
    net_recv_bytes_per_s: float | None = None
    boot_time: datetime | None = None
    uptime_seconds: float | None = None
    process_count: int | None = None
    top_cpu: list[ProcessInfo] | None = None
    top_memory: list[ProcessInfo] | None = None
    listeners: list[Listener] | None = None
    users: list[UserSession] | None = None
    levels: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO 8601 UTC strings)."""
        return _jsonable(dataclasses.asdict(self))


# Scalar fields kept in the rolling history (one row per sample).
HISTORY_FIELDS = (
    "cpu_percent",
    "load_1",
    "load_per_core",
    "memory_percent",
    "swap_percent",
    "disk_percent",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_sent_bytes_per_s",
    "net_recv_bytes_per_s",
    "process_count",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Pure helpers


def level(metric: str, value: float | None, thresholds: Mapping[str, Any]) -> str | None:
    """``None`` (fine or unknown), ``"careful"``, ``"warning"`` or ``"critical"``.

    ``thresholds`` maps metric name to an object with ``careful``/``warning``/``critical``
    attributes (``secdash.config.Threshold``) or a dict with those keys.  A level is reached when
    the value is greater than or equal to its bound.
    """
    t = thresholds.get(metric) if thresholds else None
    if t is None or value is None:
        return None
    try:
        if math.isnan(value):
            return None
    except TypeError:
        return None
    found = None
    for name in LEVELS:
        bound = t[name] if isinstance(t, Mapping) else getattr(t, name)
        if value >= bound:
            found = name
    return found


def snapshot_levels(snap: Snapshot, thresholds: Mapping[str, Any]) -> dict[str, str]:
    """Level of every thresholded metric of a snapshot that is not fine."""
    out: dict[str, str] = {}
    for metric in thresholds or {}:
        value = getattr(snap, metric, None)
        if isinstance(value, (int, float)):
            lv = level(metric, value, thresholds)
            if lv:
                out[metric] = lv
    return out


def rate(prev: float | None, cur: float | None, elapsed: float | None) -> float | None:
    """Per-second rate of a monotonically increasing counter; ``None`` when unknown.

    A counter that went down (wraparound or reset) or a zero/negative elapsed time gives None.
    """
    if prev is None or cur is None or elapsed is None or elapsed <= 0:
        return None
    delta = cur - prev
    if delta < 0:
        return None
    return delta / elapsed


def is_pseudo_fs(fstype: str, mountpoint: str) -> bool:
    fstype = (fstype or "").lower()
    if mountpoint == "/" and fstype in ROOT_OK_FSTYPES:
        return False
    if fstype in PSEUDO_FSTYPES or fstype.startswith("cgroup"):
        return True
    return not fstype  # psutil reports "" for unknown kernel views


def filter_processes(procs: Iterable[ProcessInfo], query: str | None) -> list[ProcessInfo]:
    """Processes whose user or name contains ``query`` (case-insensitive); all when empty."""
    procs = list(procs)
    q = (query or "").strip().lower()
    if not q:
        return procs
    return [p for p in procs if q in (p.name or "").lower() or q in (p.user or "").lower()]


def top_processes(procs: Iterable[ProcessInfo], by: str, n: int) -> list[ProcessInfo]:
    """The ``n`` processes with the highest ``by`` ("cpu" or "memory"); ties by pid."""
    attr = {"cpu": "cpu_percent", "memory": "memory_percent"}[by]
    return sorted(procs, key=lambda p: (-(getattr(p, attr) or 0.0), p.pid))[: max(0, n)]


def truncate(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


LOGIN_COLUMNS = ["ts", "host", "program", "pid", "user", "src_ip", "method"]  # + optional event, src_host
MATCH_COLUMNS = ["user", "terminal", "host", "started", "pid", "login_ts", "src_ip", "method", "matched_by"]


def match_logins(
    users: Sequence[UserSession | Mapping[str, Any]],
    logins: pd.DataFrame,
    *,
    hostname: str | None = None,
    window: timedelta = timedelta(minutes=5),
    slack: timedelta = timedelta(seconds=60),
) -> pd.DataFrame:
    """For each live session, the ``ssh_login`` event that opened it.

    ``logins`` has the event store's columns (``ts`` UTC tz-aware, ``host``, ``program``,
    ``pid``, ``user``, ``src_ip``, ``method``; an ``event`` column, when present, is filtered to
    ``ssh_login``).  ``hostname`` restricts events to this machine when the store holds several.

    Matching, in order: the same sshd ``pid`` and user (the pid in utmp is the sshd process that
    logged "Accepted ..."); else the same user and source (``src_ip`` equals the session's host)
    with the nearest login at or before the session start (up to ``window`` before, ``slack``
    after, for syslog's whole seconds and clock skew); else the same user alone, nearest within
    the window.  Sessions without a match keep empty login columns.
    """
    rows = []
    df = logins if logins is not None else pd.DataFrame(columns=LOGIN_COLUMNS)
    if len(df) and "event" in df.columns:
        df = df[df["event"] == "ssh_login"]
    if len(df) and hostname and "host" in df.columns:
        same = df[df["host"] == hostname]
        if len(same):
            df = same
    if len(df):
        df = df.copy()
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    for u in users:
        s = (
            u
            if isinstance(u, UserSession)
            else UserSession(**{k: u.get(k) for k in ("user", "terminal", "host", "started", "pid")})
        )
        row = {
            "user": s.user,
            "terminal": s.terminal,
            "host": s.host,
            "started": s.started,
            "pid": s.pid,
            "login_ts": None,
            "src_ip": None,
            "method": None,
            "matched_by": None,
        }
        hit, how = _match_one(s, df, window, slack) if len(df) else (None, None)
        if hit is not None:
            row.update(
                login_ts=hit["ts"].to_pydatetime(), src_ip=hit["src_ip"], method=hit["method"], matched_by=how
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=MATCH_COLUMNS)


def _match_one(s: UserSession, df: pd.DataFrame, window: timedelta, slack: timedelta):
    mine = df[df["user"] == s.user]
    if not len(mine):
        return None, None
    start = pd.Timestamp(s.started) if s.started is not None else None
    if start is not None and start.tzinfo is None:
        start = start.tz_localize("UTC")
    if s.pid is not None and "pid" in mine.columns:
        by_pid = mine[(pd.to_numeric(mine["pid"], errors="coerce") == s.pid).fillna(False).astype(bool)]
        if start is not None:
            by_pid = by_pid[by_pid["ts"] <= start + slack]
        if len(by_pid):
            if start is not None:
                # the latest login of that pid at or before the start (pids are reused over time)
                return by_pid.loc[by_pid["ts"].idxmax()], "pid"
            return by_pid.iloc[-1], "pid"
    if start is None:
        return None, None
    near = mine[(mine["ts"] >= start - window) & (mine["ts"] <= start + slack)]
    if not len(near):
        return None, None
    if s.host:
        same_src = near["src_ip"].astype(str) == str(s.host)
        if "src_host" in near.columns:  # sshd logged a DNS name instead of an address
            same_src |= near["src_host"].astype(str) == str(s.host)
        same_src = near[same_src]
        if len(same_src):
            return _nearest(same_src, start), "user+source+time"
    return _nearest(near, start), "user+time"


def _nearest(df: pd.DataFrame, start: pd.Timestamp):
    # prefer logins at or before the start; then the closest in time
    before = df[df["ts"] <= start]
    pool = before if len(before) else df
    idx = (pool["ts"] - start).abs().idxmin()
    return pool.loc[idx]


# --------------------------------------------------------------------------------------------
# Sampler


def _exc_kind(exc: BaseException) -> str | None:
    """Classify an exception from psutil: 'denied', 'gone', 'unsupported', or None (a bug)."""
    name = type(exc).__name__
    if name in ("NoSuchProcess", "ZombieProcess"):
        return "gone"
    if name == "AccessDenied" or isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, (NotImplementedError, AttributeError)):
        return "unsupported"
    if isinstance(exc, OSError):
        return "denied" if getattr(exc, "errno", None) in (1, 13) else "unsupported"
    return None


class _ProcEntry:
    __slots__ = ("cmdline", "cpu", "cpu_time", "create_time", "mem", "name", "proc", "rss", "seen_at", "user")

    def __init__(self, proc: Any, create_time: float | None):
        self.proc = proc
        self.create_time = create_time
        self.user: str | None = None
        self.name: str | None = None
        self.cmdline: str | None = None
        self.cpu: float | None = None
        self.mem: float | None = None
        self.rss: int | None = None
        self.cpu_time: float | None = None  # user + system CPU seconds at the previous look
        self.seen_at: float | None = None  # monotonic time of the previous look


class Sampler:
    """Samples the machine; thread-safe; optional background thread (:meth:`start`).

    One instance per server process (the UI caches it with ``st.cache_resource``).
    """

    def __init__(
        self,
        ps: Any = None,
        *,
        interval: float = 2.0,
        history_seconds: float = 3600.0,
        thresholds: Mapping[str, Any] | None = None,
        top_n: int = 10,
        cmdline_chars: int = 120,
        sockets_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        euid: int | None = None,
        proc_stat: Any = "auto",
    ):
        self._real_psutil = ps is None
        if ps is None:
            import psutil as ps
        self.ps = ps
        self.interval = float(interval)
        self.history_seconds = float(history_seconds)
        self.thresholds = dict(thresholds or {})
        self.top_n = int(top_n)
        self.cmdline_chars = int(cmdline_chars)
        self.sockets_interval = float(sockets_interval)
        self.clock = clock
        self.monotonic = monotonic
        self.euid = os.geteuid() if euid is None and hasattr(os, "geteuid") else (euid or 0)
        maxlen = max(1, int(round(self.history_seconds / self.interval)))
        self._history: deque[tuple] = deque(maxlen=maxlen)
        self._net_history: deque[tuple] = deque(maxlen=maxlen)
        self._lock = threading.RLock()
        self._primed = False
        self._prime_at: float | None = None
        self._prev_mono: float | None = None
        self._prev_disk: tuple[int, int] | None = None
        self._prev_cpu: tuple[float, float] | None = None  # (busy, total) CPU seconds
        self._prev_cores: list[tuple[float, float]] | None = None
        self._prev_net: dict[str, tuple[int, int]] = {}
        self._procs: dict[int, _ProcEntry] = {}
        self._users_cache: dict[int, str] = {}
        self._baseline: set[tuple[str, str, int]] | None = None
        self._sockets_at: float | None = None
        self._listeners: list[Listener] | None = None
        self._users: list[UserSession] | None = None
        self._slow_notes: list[str] = []
        self._latest: Snapshot | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if proc_stat == "auto":
            proc_stat = linux_proc_stat if self._real_psutil and _linux_proc_stat_works() else None
        self._proc_stat: Callable[[int], tuple[float, int] | None] | None = proc_stat

    @classmethod
    def from_config(cls, metrics_cfg: Any, **kwargs: Any) -> Sampler:
        opts = dict(
            interval=metrics_cfg.interval_seconds,
            history_seconds=metrics_cfg.history_seconds,
            thresholds=metrics_cfg.thresholds,
        )
        for name, attr in (
            ("top_n", "top_processes"),
            ("cmdline_chars", "cmdline_chars"),
            ("sockets_interval", "sockets_interval_seconds"),
        ):
            if hasattr(metrics_cfg, attr):
                opts[name] = getattr(metrics_cfg, attr)
        opts.update(kwargs)
        return cls(**opts)

    # ---------------------------------------------------------------- wrapped calls

    def _call(self, notes: list[str], what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            kind = _exc_kind(exc)
            if kind is None:
                raise
            if kind == "unsupported":
                notes.append(f"{what}: not available on this system ({type(exc).__name__})")
            else:
                notes.append(
                    f"{what}: permission denied (typical inside containers; run as root for full data)"
                )
            return None

    # ---------------------------------------------------------------- priming

    def prime(self) -> None:
        """First CPU-times reading (discarded), counter baselines, first look at processes."""
        with self._lock:
            notes: list[str] = []
            self._prev_cpu = self._call(notes, "CPU usage", lambda: _busy(self.ps.cpu_times(percpu=False)))
            per = self._call(notes, "CPU usage per core", lambda: self.ps.cpu_times(percpu=True))
            self._prev_cores = None if per is None else [_busy(t) for t in per]
            self._prev_mono = self.monotonic()
            self._prime_at = self._prev_mono
            d = self._call(notes, "disk I/O", lambda: self.ps.disk_io_counters(perdisk=False))
            self._prev_disk = (d.read_bytes, d.write_bytes) if d is not None else None
            n = self._call(notes, "network I/O", lambda: self.ps.net_io_counters(pernic=True))
            self._prev_net = {k: (v.bytes_sent, v.bytes_recv) for k, v in (n or {}).items()}
            self._scan_processes(notes, self._prev_mono)
            self._primed = True

    # ---------------------------------------------------------------- sampling

    def sample(self) -> Snapshot:
        """Take one sample, append it to the history and return it."""
        with self._lock:
            if not self._primed:
                self.prime()
            notes: list[str] = []
            now_mono = self.monotonic()
            elapsed = None if self._prev_mono is None else now_mono - self._prev_mono
            snap = Snapshot(ts=datetime.fromtimestamp(self.clock(), tz=UTC))
            self._sample_cpu(snap, notes, elapsed)
            self._sample_memory(snap, notes)
            self._sample_disks(snap, notes, elapsed)
            self._sample_net(snap, notes, elapsed)
            self._sample_uptime(snap, notes)
            self._sample_processes(snap, notes, now_mono)
            if self._sockets_at is None or now_mono - self._sockets_at >= self.sockets_interval:
                self._sockets_at = now_mono
                self._slow_notes = []
                self._listeners = self._sample_listeners(self._slow_notes)
                self._users = self._sample_users(self._slow_notes)
            snap.listeners = (
                None if self._listeners is None else [dataclasses.replace(x) for x in self._listeners]
            )
            snap.users = None if self._users is None else list(self._users)
            notes.extend(self._slow_notes)
            self._prev_mono = now_mono
            snap.levels = snapshot_levels(snap, self.thresholds)
            snap.notes = list(dict.fromkeys(notes))
            self._latest = snap
            self._history.append((snap.ts,) + tuple(getattr(snap, f) for f in HISTORY_FIELDS))
            if snap.net is not None:
                self._net_history.append(
                    (snap.ts, tuple((r.interface, r.sent_bytes_per_s, r.recv_bytes_per_s) for r in snap.net))
                )
            return snap

    def _sample_cpu(self, snap: Snapshot, notes: list[str], elapsed: float | None) -> None:
        ps = self.ps
        snap.cpu_count = self._call(notes, "CPU count", lambda: ps.cpu_count(logical=True))
        # Too soon after priming the kernel counters have not moved: report nothing, not 0 %.
        # CPU shares come from our own CPU-times baseline, not psutil.cpu_percent(interval=None):
        # psutil keeps that baseline per calling thread, and the page's script threads and the
        # background thread would each get a different (or no) reference point.
        fresh = elapsed is not None and elapsed >= 0.05
        total = self._call(notes, "CPU usage", lambda: _busy(ps.cpu_times(percpu=False)))
        per = self._call(notes, "CPU usage per core", lambda: [_busy(t) for t in ps.cpu_times(percpu=True)])
        if fresh:
            snap.cpu_percent = _busy_percent(self._prev_cpu, total)
            if per is not None and self._prev_cores is not None and len(per) == len(self._prev_cores):
                cores = [_busy_percent(a, b) for a, b in zip(self._prev_cores, per, strict=True)]
                snap.cpu_per_core = None if any(c is None for c in cores) else cores
        self._prev_cpu, self._prev_cores = total, per
        load = self._call(notes, "load average", lambda: ps.getloadavg())
        if load is not None:
            snap.load_1, snap.load_5, snap.load_15 = (float(x) for x in load)
            if snap.cpu_count:
                snap.load_per_core = snap.load_1 / snap.cpu_count

    def _sample_memory(self, snap: Snapshot, notes: list[str]) -> None:
        vm = self._call(notes, "memory", lambda: self.ps.virtual_memory())
        if vm is not None:
            snap.memory_total_bytes = int(vm.total)
            snap.memory_used_bytes = int(vm.total - vm.available)
            snap.memory_available_bytes = int(vm.available)
            snap.memory_percent = float(vm.percent)
        sw = self._call(notes, "swap", lambda: self.ps.swap_memory())
        if sw is not None:
            snap.swap_total_bytes = int(sw.total)
            snap.swap_used_bytes = int(sw.used)
            snap.swap_percent = float(sw.percent)

    def _sample_disks(self, snap: Snapshot, notes: list[str], elapsed: float | None) -> None:
        parts = self._call(notes, "mounted file systems", lambda: self.ps.disk_partitions(all=False))
        if parts is not None:
            disks: list[DiskUsage] = []
            seen: dict[str, int] = {}
            for p in sorted(parts, key=lambda p: (len(p.mountpoint), p.mountpoint)):
                if is_pseudo_fs(p.fstype, p.mountpoint):
                    continue
                # bind mounts (and btrfs subvolumes) show the same device again: keep the shortest
                if p.device and p.device.startswith("/") and p.device in seen:
                    continue
                u = self._call(
                    notes, f"disk usage of {p.mountpoint}", lambda p=p: self.ps.disk_usage(p.mountpoint)
                )
                if u is None:
                    continue
                seen[p.device] = 1
                disks.append(
                    DiskUsage(
                        p.mountpoint,
                        p.device,
                        p.fstype,
                        int(u.total),
                        int(u.used),
                        int(u.free),
                        float(u.percent),
                    )
                )
            snap.disks = disks
            snap.disk_percent = max((d.percent for d in disks), default=None)
        d = self._call(notes, "disk I/O", lambda: self.ps.disk_io_counters(perdisk=False))
        if d is None:
            if not any(n.startswith("disk I/O") for n in notes):
                notes.append("disk I/O: no counters on this system (typical inside containers)")
            self._prev_disk = None
        else:
            cur = (int(d.read_bytes), int(d.write_bytes))
            prev = self._prev_disk
            if prev is not None:
                snap.disk_read_bytes_per_s = rate(prev[0], cur[0], elapsed)
                snap.disk_write_bytes_per_s = rate(prev[1], cur[1], elapsed)
            self._prev_disk = cur

    def _sample_net(self, snap: Snapshot, notes: list[str], elapsed: float | None) -> None:
        n = self._call(notes, "network I/O", lambda: self.ps.net_io_counters(pernic=True))
        if n is None:
            self._prev_net = {}
            return
        rates: list[NetRate] = []
        cur_all: dict[str, tuple[int, int]] = {}
        for name in sorted(n):
            c = n[name]
            cur = (int(c.bytes_sent), int(c.bytes_recv))
            cur_all[name] = cur
            prev = self._prev_net.get(name)
            if prev is None:
                rates.append(NetRate(name, None, None))
            else:
                rates.append(NetRate(name, rate(prev[0], cur[0], elapsed), rate(prev[1], cur[1], elapsed)))
        self._prev_net = cur_all
        snap.net = rates
        ext = [r for r in rates if r.interface != "lo"]
        sent = [r.sent_bytes_per_s for r in ext if r.sent_bytes_per_s is not None]
        recv = [r.recv_bytes_per_s for r in ext if r.recv_bytes_per_s is not None]
        snap.net_sent_bytes_per_s = sum(sent) if sent else None
        snap.net_recv_bytes_per_s = sum(recv) if recv else None

    def _sample_uptime(self, snap: Snapshot, notes: list[str]) -> None:
        bt = self._call(notes, "boot time", lambda: self.ps.boot_time())
        if bt is not None:
            snap.boot_time = datetime.fromtimestamp(float(bt), tz=UTC)
            snap.uptime_seconds = max(0.0, snap.ts.timestamp() - float(bt))

    # ---------------------------------------------------------------- processes

    def _scan_processes(self, notes: list[str], now_mono: float) -> None:
        """Refresh the per-pid Process cache and each process's CPU/memory share.

        A process's CPU share is its CPU-time delta over the elapsed time since the previous
        look (what ``Process.cpu_percent()`` computes, without its per-call overhead): percent
        of one core, like top.  A process seen for the first time has no share yet (priming).
        Deliberately no ``oneshot()``: the context manager costs more than it saves.  With the
        real psutil on Linux, CPU time and RSS come from one read of ``/proc/<pid>/stat``
        (:func:`linux_proc_stat`) instead of two psutil calls: half the file opens.
        """
        ps = self.ps
        procs = self._call(notes, "process list", lambda: list(ps.process_iter()))
        if procs is None:
            self._procs = {}
            return
        total_mem = None
        vm = self._call([], "memory", lambda: ps.virtual_memory())
        if vm is not None:
            total_mem = vm.total
        fresh: dict[int, _ProcEntry] = {}
        denied = 0
        for p in procs:
            pid = p.pid
            entry = self._procs.get(pid)
            try:
                ct = p.create_time()  # cached on psutil's Process instances
                if entry is None or entry.create_time != ct:
                    entry = _ProcEntry(p, ct)  # new process (or pid reused): prime its cpu_percent
                proc = entry.proc
                fast = self._proc_stat(pid) if self._proc_stat is not None else None
                if fast is not None:
                    cpu_time, rss_fast = fast
                else:
                    t = proc.cpu_times()
                    cpu_time, rss_fast = float(t.user) + float(t.system), None
                if (
                    entry.cpu_time is None
                    or entry.seen_at is None
                    or now_mono <= entry.seen_at
                    or cpu_time < entry.cpu_time
                ):
                    entry.cpu = None  # first look (or pid reused): primed, not reported
                else:
                    entry.cpu = 100.0 * (cpu_time - entry.cpu_time) / (now_mono - entry.seen_at)
                entry.cpu_time, entry.seen_at = cpu_time, now_mono
                if entry.name is None:
                    entry.name = proc.name()
                try:
                    rss = rss_fast if rss_fast is not None else proc.memory_info().rss
                    entry.rss = int(rss)
                    entry.mem = (100.0 * rss / total_mem) if total_mem else None
                except Exception as exc:
                    if _exc_kind(exc) != "denied":
                        raise
                    entry.rss = entry.mem = None
                    denied += 1
            except Exception as exc:
                kind = _exc_kind(exc)
                if kind is None:
                    raise
                if kind == "denied":
                    denied += 1
                continue
            fresh[pid] = entry
        self._procs = fresh
        if denied:
            notes.append(f"{denied} processes could not be read fully (needs privilege)")

    def _user(self, entry: _ProcEntry) -> str:
        if entry.user is None:
            try:
                entry.user = self._username(entry.proc)
            except Exception as exc:
                kind = _exc_kind(exc)
                if kind is None:
                    raise
                entry.user = NEEDS_PRIVILEGE if kind == "denied" else ""
        return entry.user

    def _info(self, entry: _ProcEntry, pid: int) -> ProcessInfo:
        """Full row for one process (user and command line are read on demand, then kept)."""
        proc = entry.proc
        self._user(entry)
        if entry.cmdline is None:
            try:
                entry.cmdline = " ".join(proc.cmdline())
            except Exception as exc:
                if _exc_kind(exc) is None:
                    raise
                entry.cmdline = ""
            if not entry.cmdline:
                entry.cmdline = f"[{entry.name or ''}]"
        started = datetime.fromtimestamp(entry.create_time, tz=UTC) if entry.create_time else None
        return ProcessInfo(
            pid=pid,
            user=entry.user,
            name=entry.name or "",
            cmdline=truncate(entry.cmdline, self.cmdline_chars),
            started=started,
            cpu_percent=entry.cpu,
            memory_percent=entry.mem,
            rss_bytes=entry.rss,
        )

    def _username(self, proc: Any) -> str:
        uid = None
        try:
            uid = proc.uids().real
        except Exception:  # noqa: BLE001 - not all platforms / fakes have uids()
            return proc.username()
        name = self._users_cache.get(uid)
        if name is None:
            try:
                import pwd

                name = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                name = str(uid)
            self._users_cache[uid] = name
        return name

    def _sample_processes(self, snap: Snapshot, notes: list[str], now_mono: float) -> None:
        self._scan_processes(notes, now_mono)
        if not self._procs and any(n.startswith("process list") for n in notes):
            return
        snap.process_count = len(self._procs)
        snap.top_cpu = self._top("cpu", None, self.top_n)
        snap.top_memory = self._top("memory", None, self.top_n)

    def _top(self, by: str, query: str | None, n: int) -> list[ProcessInfo]:
        attr = "cpu" if by == "cpu" else "mem"
        items = sorted(self._procs.items(), key=lambda kv: (-(getattr(kv[1], attr) or 0.0), kv[0]))
        q = (query or "").strip().lower()
        out: list[ProcessInfo] = []
        for pid, entry in items:
            if len(out) >= n:
                break
            if q and q not in (entry.name or "").lower() and q not in self._user(entry).lower():
                continue
            out.append(self._info(entry, pid))
        return out

    def top_processes(
        self, by: str = "cpu", query: str | None = None, n: int | None = None
    ) -> list[ProcessInfo]:
        """Top ``n`` processes of the latest sample by "cpu" or "memory", filtered by user or name."""
        if by not in ("cpu", "memory"):
            raise ValueError(f"by must be 'cpu' or 'memory', got {by!r}")
        with self._lock:
            return self._top(by, query, self.top_n if n is None else n)

    # ---------------------------------------------------------------- sockets and users

    def _sample_listeners(self, notes: list[str]) -> list[Listener] | None:
        ps = self.ps
        conns = None
        fallback = False
        try:
            conns = ps.net_connections(kind="inet")
        except Exception as exc:
            kind = _exc_kind(exc)
            if kind is None:
                raise
            if kind == "unsupported":
                notes.append(f"listening sockets: not available on this system ({type(exc).__name__})")
                return None
            conns = self._own_connections()
            fallback = True
            notes.append(NOTE_SOCKETS_DENIED)
        listeners: dict[tuple[str, str, int], Listener] = {}
        hidden_owner = False
        for c in conns or []:
            proto = _proto(ps, c)
            if proto == "tcp" and c.status != getattr(ps, "CONN_LISTEN", "LISTEN"):
                continue
            if proto == "udp" and c.raddr:
                continue
            if proto is None or not c.laddr:
                continue
            address, port = c.laddr[0], int(c.laddr[1])
            key = (proto, address, port)
            if key in listeners and listeners[key].pid is not None:
                continue
            pid = getattr(c, "pid", None)
            if pid is not None:
                entry = self._procs.get(pid)
                pname = (entry.name if entry and entry.name else None) or self._proc_name(pid)
            else:
                pname = NEEDS_PRIVILEGE if self.euid != 0 else NOT_VISIBLE
                hidden_owner = hidden_owner or self.euid != 0
            listeners[key] = Listener(proto, _family(ps, c), address, port, pid, pname, False)
        if hidden_owner and not fallback:
            notes.append(NOTE_SOCKET_OWNERS)
        if self._baseline is None:
            self._baseline = set(listeners)
        for key, lst in listeners.items():
            lst.new = key not in self._baseline
        return sorted(listeners.values(), key=lambda x: (not x.new, x.proto, x.port, x.address))

    def _own_connections(self) -> list[Any]:
        out: list[Any] = []
        for entry in list(self._procs.values()):
            try:
                for c in entry.proc.net_connections(kind="inet"):
                    out.append(_WithPid(c, entry.proc.pid))
            except Exception as exc:
                if _exc_kind(exc) is None:
                    raise
        return out

    def _proc_name(self, pid: int) -> str:
        try:
            return self.ps.Process(pid).name()
        except Exception as exc:
            kind = _exc_kind(exc)
            if kind is None:
                raise
            return NEEDS_PRIVILEGE if kind == "denied" else NOT_VISIBLE

    def _sample_users(self, notes: list[str]) -> list[UserSession] | None:
        users = self._call(notes, "logged-in users", lambda: self.ps.users())
        if users is None:
            return None
        out = []
        for u in users:
            started = datetime.fromtimestamp(float(u.started), tz=UTC) if u.started else None
            out.append(
                UserSession(u.name, u.terminal or None, u.host or None, started, getattr(u, "pid", None))
            )
        return out

    # ---------------------------------------------------------------- history and thread

    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._latest

    def previous(self) -> dict[str, Any] | None:
        """The scalar fields of the sample before the latest (for deltas), or None."""
        with self._lock:
            if len(self._history) < 2:
                return None
            row = self._history[-2]
        return dict(zip(("ts",) + HISTORY_FIELDS, row))

    def history(self) -> pd.DataFrame:
        """The rolling window: one row per sample, column ``ts`` (UTC) plus ``HISTORY_FIELDS``."""
        with self._lock:
            rows = list(self._history)
        df = pd.DataFrame(rows, columns=["ts", *HISTORY_FIELDS])
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        for col in HISTORY_FIELDS:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return df

    def net_history(self) -> pd.DataFrame:
        """Per-interface rates over the window: ts, interface, sent/recv bytes per second."""
        with self._lock:
            rows = [(ts, name, s, r) for ts, items in self._net_history for name, s, r in items]
        df = pd.DataFrame(rows, columns=["ts", "interface", "sent_bytes_per_s", "recv_bytes_per_s"])
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        for col in ("sent_bytes_per_s", "recv_bytes_per_s"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return df

    @property
    def history_maxlen(self) -> int:
        return self._history.maxlen or 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sampler:
        """Start the background daemon thread (idempotent); primes synchronously first."""
        with self._lock:
            if self.running:
                return self
            if not self._primed:
                self.prime()
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="secdash-metrics", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def _tick(self) -> None:
        """One background sample; an unexpected error keeps the thread alive and is shown as a
        note on the latest snapshot (the page keeps the last good numbers)."""
        try:
            self.sample()
        except Exception as exc:  # noqa: BLE001 - keep sampling; surface it on the page
            note = f"sampler error: {type(exc).__name__}: {exc}"
            with self._lock:
                if self._latest is not None and note not in self._latest.notes:
                    self._latest.notes.append(note)


class _WithPid:
    """A per-process connection (which has no pid field) carrying the owning pid."""

    def __init__(self, conn: Any, pid: int):
        self._c = conn
        self.pid = pid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


def _proto(ps: Any, c: Any) -> str | None:
    import socket

    t = c.type
    if t == getattr(socket, "SOCK_STREAM", 1):
        return "tcp"
    if t == getattr(socket, "SOCK_DGRAM", 2):
        return "udp"
    return None


def _family(ps: Any, c: Any) -> str:
    import socket

    return "ipv6" if c.family == getattr(socket, "AF_INET6", 10) else "ipv4"


def _busy(t: Any) -> tuple[float, float]:
    """(busy, total) seconds of a psutil ``cpu_times`` tuple, the way psutil counts them:
    idle and iowait are not busy; guest time is already inside user/nice on Linux."""
    fields = t._asdict() if hasattr(t, "_asdict") else dict(vars(t))
    total = sum(float(v) for v in fields.values())
    total -= float(fields.get("guest", 0.0)) + float(fields.get("guest_nice", 0.0))
    idle = float(fields.get("idle", 0.0)) + float(fields.get("iowait", 0.0))
    return total - idle, total


def _busy_percent(prev: tuple[float, float] | None, cur: tuple[float, float] | None) -> float | None:
    """Busy share (0-100) between two :func:`_busy` readings; None when unknown."""
    if prev is None or cur is None:
        return None
    d_total = cur[1] - prev[1]
    if d_total <= 0:
        return None  # no tick elapsed (or counters reset)
    d_busy = cur[0] - prev[0]
    return min(100.0, max(0.0, 100.0 * d_busy / d_total))


_CLK_TCK: float | None = None
_PAGE_SIZE: int | None = None


def linux_proc_stat(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds, resident set size in bytes) of a process from one read of
    ``/proc/<pid>/stat``; None when the line cannot be parsed (the caller then asks psutil).

    Raises FileNotFoundError/ProcessLookupError when the process is gone and PermissionError when
    /proc is mounted with hidepid, like psutil would.
    """
    global _CLK_TCK, _PAGE_SIZE
    if _CLK_TCK is None:
        _CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
        _PAGE_SIZE = int(os.sysconf("SC_PAGE_SIZE"))
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # "pid (comm) state ppid ..." - comm may hold spaces and parentheses: split after the last ")"
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        # fields after comm: state=0 ... utime=11 stime=12 ... rss=21 (proc(5) numbering minus 3)
        return (int(rest[11]) + int(rest[12])) / _CLK_TCK, int(rest[21]) * _PAGE_SIZE
    except (IndexError, ValueError):
        return None


def _linux_proc_stat_works() -> bool:
    try:
        return linux_proc_stat(os.getpid()) is not None
    except (OSError, ValueError):
        return False


def collect_once(
    ps: Any = None, *, wait: float = 0.5, sleep: Callable[[float], None] = time.sleep, **kwargs: Any
) -> Snapshot:
    """One full, real sample: prime, wait ``wait`` seconds, sample (for the CLI)."""
    s = Sampler(ps, **kwargs)
    s.prime()
    sleep(wait)
    return s.sample()
