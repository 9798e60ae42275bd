"""Demo data: a generated month of auth.log for several hosts, so a new user sees a full dashboard
without root or real logs.

The generator is seeded (same ``seed`` + ``now`` -> same files). It writes classic syslog lines
(times in the configured zone) to ``<data dir>/demo/<host>/auth.log`` with rotated copies
``auth.log.1`` and ``auth.log.2.gz``, so the normal ingest path (rotation, gzip) is exercised.
Contents: legitimate logins (publickey/password), sessions, cron, sudo; SSH brute force bursts;
a botnet spraying many addresses and usernames; password spraying from one address over the real
accounts; a compromise (failures, then a successful password login from the same address, then
``sudo su``, a backdoor account added to ``sudo``); sudo abuse (not in sudoers, wrong
passwords); new accounts; and hostile usernames that exercise the UI's escaping.

The data directory is marked as demo (``demo/DEMO`` marker and ``demo = true`` in the store's
meta table) so the UI can say so; the demo sources are written into ``config.toml`` so the
dashboard's background ingester follows them.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from secdash.errors import SecdashError

HOSTS = ("web-01", "web-02", "db-01", "bastion")
USERS = {  # real accounts: name -> uid
    "alice": 1000, "bob": 1001, "carol": 1002, "dave": 1003, "erin": 1004, "deploy": 1005, "backup": 1006,
    "ubuntu": 1007,
}
ADMINS = ("alice", "bob", "carol")
OFFICE = ["10.20.0.11", "10.20.0.12", "10.20.0.15", "192.168.50.7", "2001:db8:20::15"]
BOT_USERS = ["root", "admin", "test", "user", "oracle", "postgres", "git", "ftpuser", "pi", "ubnt", "guest",
             "support", "mysql", "jenkins", "hadoop", "minecraft", "steam", "nagios", "ansible", "docker"]
HOSTILE_USERS = [
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "**bold**",
    "a" * 300,
]
MARKER = "DEMO"
BACKDOOR = "sysupd"


@dataclass
class _Gen:
    rng: random.Random
    tz: ZoneInfo
    lines: dict[str, list[tuple[dt.datetime, str]]] = field(default_factory=dict)
    pid: int = 2000
    session: int = 100

    def next_pid(self) -> int:
        self.pid += self.rng.randint(1, 40)
        if self.pid > 4_000_000:
            self.pid = 2000
        return self.pid

    def emit(self, host: str, when: dt.datetime, program: str, pid: int | None, msg: str) -> None:
        local = when.astimezone(self.tz)
        stamp = f"{local.strftime('%b')} {local.day:2d} {local.strftime('%H:%M:%S')}"
        head = f"{program}[{pid}]" if pid is not None else program
        self.lines.setdefault(host, []).append((when, f"{stamp} {host} {head}: {msg}"))

    # -- building blocks --------------------------------------------------------------------

    def login(self, host: str, t: dt.datetime, user: str, ip: str, method: str = "publickey",
              duration: float = 1800.0, commands: list[str] | None = None) -> dt.datetime:
        pid = self.next_pid()
        port = self.rng.randint(32768, 60999)
        uid = USERS.get(user, 1100)
        key = "" if method != "publickey" else f": ED25519 SHA256:{self._fp(user)}"
        self.emit(host, t, "sshd", pid, f"Accepted {method} for {user} from {ip} port {port} ssh2{key}")
        self.emit(host, t, "sshd", pid, f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)")
        self.session += 1
        sid = self.session
        self.emit(host, t + dt.timedelta(seconds=1), "systemd-logind", 412, f"New session {sid} of user {user}.")
        for i, cmd in enumerate(commands or []):
            self.sudo(host, t + dt.timedelta(seconds=60 + i * 90), user, cmd)
        end = t + dt.timedelta(seconds=duration)
        self.emit(host, end, "sshd", pid, f"Received disconnect from {ip} port {port}:11: disconnected by user")
        self.emit(host, end, "sshd", pid, f"Disconnected from user {user} {ip} port {port}")
        self.emit(host, end, "sshd", pid, f"pam_unix(sshd:session): session closed for user {user}")
        self.emit(host, end + dt.timedelta(seconds=1), "systemd-logind", 412,
                  f"Session {sid} logged out. Waiting for processes to exit.")
        self.emit(host, end + dt.timedelta(seconds=1), "systemd-logind", 412, f"Removed session {sid}.")
        return end

    def _fp(self, user: str) -> str:
        r = random.Random(user)
        return "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43))

    def sudo(self, host: str, t: dt.datetime, user: str, command: str, target: str = "root") -> None:
        pid = self.next_pid()
        uid = USERS.get(user, 1100)
        self.emit(host, t, "sudo", None,
                  f"{user:>8} : TTY=pts/0 ; PWD=/home/{user} ; USER={target} ; COMMAND={command}")
        self.emit(host, t, "sudo", pid, f"pam_unix(sudo:session): session opened for user {target}(uid=0) by {user}(uid={uid})")
        self.emit(host, t + dt.timedelta(seconds=2), "sudo", pid, f"pam_unix(sudo:session): session closed for user {target}")

    def cron(self, host: str, t: dt.datetime, user: str = "root") -> None:
        pid = self.next_pid()
        uid = 0 if user == "root" else USERS.get(user, 1100)
        self.emit(host, t, "CRON", pid, f"pam_unix(cron:session): session opened for user {user}(uid={uid}) by (uid=0)")
        self.emit(host, t + dt.timedelta(seconds=self.rng.randint(0, 2)), "CRON", pid,
                  f"pam_unix(cron:session): session closed for user {user}")

    def failed(self, host: str, t: dt.datetime, user: str, ip: str, *, valid: bool) -> None:
        pid = self.next_pid()
        port = self.rng.randint(1024, 65535)
        if not valid:
            self.emit(host, t, "sshd", pid, f"Invalid user {user} from {ip} port {port}")
            self.emit(host, t + dt.timedelta(seconds=1), "sshd", pid,
                      "pam_unix(sshd:auth): check pass; user unknown")
            self.emit(host, t + dt.timedelta(seconds=1), "sshd", pid,
                      f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}")
            self.emit(host, t + dt.timedelta(seconds=3), "sshd", pid,
                      f"Failed password for invalid user {user} from {ip} port {port} ssh2")
            self.emit(host, t + dt.timedelta(seconds=4), "sshd", pid,
                      f"Connection closed by invalid user {user} {ip} port {port} [preauth]")
        else:
            self.emit(host, t, "sshd", pid,
                      f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                      f"rhost={ip}  user={user}")
            self.emit(host, t + dt.timedelta(seconds=2), "sshd", pid, f"Failed password for {user} from {ip} port {port} ssh2")
            self.emit(host, t + dt.timedelta(seconds=3), "sshd", pid,
                      f"Connection closed by authenticating user {user} {ip} port {port} [preauth]")


def _bot_ip(rng: random.Random) -> str:
    first = rng.choice([45, 61, 81, 91, 103, 106, 112, 116, 118, 122, 125, 141, 159, 176, 185, 193, 195, 218, 222])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate(now: dt.datetime, *, tz: str = "UTC", seed: int = 7, days: int = 30) -> dict[str, list[tuple[dt.datetime, str]]]:
    """(UTC time, line) per host, in time order, for the ``days`` before ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    g = _Gen(rng=rng, tz=ZoneInfo(tz))
    start = (now - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)

    def at(day: float, jitter_h: float = 0.0) -> dt.datetime:
        return start + dt.timedelta(days=day, hours=rng.uniform(0, jitter_h))

    # Background: cron every hour on every host, daily backups, legitimate work-hour logins with sudo.
    hours = int((now - start).total_seconds() // 3600)
    for h in range(hours):
        t = start + dt.timedelta(hours=h)
        for host in HOSTS:
            g.cron(host, t + dt.timedelta(minutes=17, seconds=rng.randint(0, 3)))
            if h % 24 == 2:
                g.cron(host, t + dt.timedelta(minutes=30), user="backup")
    admin_cmds = ["/usr/bin/apt update", "/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u ssh",
                  "/usr/bin/tail -n 100 /var/log/syslog", "/usr/sbin/ufw status", "/usr/bin/docker ps"]
    for d in range(days):
        day = start + dt.timedelta(days=d)
        local = day.astimezone(g.tz)
        weekend = local.weekday() >= 5
        for _ in range(rng.randint(2, 4) if weekend else rng.randint(10, 18)):
            user = rng.choice(list(USERS)[:6])
            host = rng.choice(HOSTS)
            t = day.replace(hour=0) + dt.timedelta(hours=rng.uniform(8, 18))
            cmds = rng.sample(admin_cmds, rng.randint(0, 2)) if user in ADMINS else []
            method = "publickey" if rng.random() < 0.85 else "password"
            g.login(host, t, user, rng.choice(OFFICE), method, duration=rng.uniform(120, 5400), commands=cmds)
        # the deploy account from CI, every night
        g.login("web-01", day + dt.timedelta(hours=1, minutes=5), "deploy", "10.20.1.50", "publickey", duration=40,
                commands=["/usr/bin/systemctl reload nginx"])
        # a typo now and then
        if rng.random() < 0.5:
            user = rng.choice(ADMINS)
            g.failed(rng.choice(HOSTS), day + dt.timedelta(hours=rng.uniform(8, 18)), user, rng.choice(OFFICE),
                     valid=True)
        # internet background noise: scanners on the exposed hosts
        for _ in range(rng.randint(30, 60)):
            host = rng.choice(("web-01", "web-02", "bastion"))
            ip = _bot_ip(rng)
            t = day + dt.timedelta(hours=rng.uniform(0, 24))
            user = rng.choice(BOT_USERS)
            g.failed(host, t, user, ip, valid=user == "root")

    # Brute force bursts: a few addresses, hundreds of attempts each within an hour or two.
    for n, ip in enumerate(["185.220.101.34", "45.155.205.233", "2a03:b0c0:3:d0::1a2b"]):
        host = ("bastion", "web-01", "web-02")[n]
        t = at(3 + n * 8, 20)
        for _ in range(rng.randint(250, 400)):
            t += dt.timedelta(seconds=rng.uniform(0.5, 12))
            user = "root" if rng.random() < 0.6 else rng.choice(BOT_USERS)
            g.failed(host, t, user, ip, valid=user == "root")
        pid = g.next_pid()
        g.emit(host, t, "sshd", pid, f"error: maximum authentication attempts exceeded for root from {ip} port "
                                     f"{rng.randint(1024, 65535)} ssh2 [preauth]")

    # Botnet spray: many addresses, one or two tries each, many usernames, over two days.
    t = at(12)
    for _ in range(900):
        t += dt.timedelta(seconds=rng.uniform(30, 200))
        ip = _bot_ip(rng)
        for _ in range(rng.randint(1, 2)):
            user = rng.choice(BOT_USERS + ["admin1", "administrator", "user1", "test123", "www", "web", "dev"])
            g.failed(rng.choice(("web-01", "web-02", "bastion")), t, user, ip, valid=user == "root")

    # Password spraying: one address, every real account, slowly, on the bastion.
    sprayer = "203.0.113.66"
    t = at(18, 6)
    for rnd in range(3):
        for user in USERS:
            t += dt.timedelta(seconds=rng.uniform(40, 120))
            g.failed("bastion", t, user, sprayer, valid=True)
        t += dt.timedelta(hours=2 + rnd)

    # Compromise: failures for dave, then success from the same address, root, a backdoor in sudo.
    attacker = "198.51.100.23"
    t = at(22, 3)
    for _ in range(rng.randint(6, 9)):
        t += dt.timedelta(seconds=rng.uniform(3, 20))
        g.failed("web-02", t, "dave", attacker, valid=True)
    t += dt.timedelta(seconds=30)
    end = t + dt.timedelta(minutes=25)
    pid = g.next_pid()
    port = rng.randint(40000, 60000)
    g.emit("web-02", t, "sshd", pid, f"Accepted password for dave from {attacker} port {port} ssh2")
    g.emit("web-02", t, "sshd", pid, f"pam_unix(sshd:session): session opened for user dave(uid={USERS['dave']}) by (uid=0)")
    g.session += 1
    g.emit("web-02", t + dt.timedelta(seconds=1), "systemd-logind", 412, f"New session {g.session} of user dave.")
    t2 = t + dt.timedelta(minutes=2)
    g.emit("web-02", t2, "sudo", None, "    dave : TTY=pts/1 ; PWD=/home/dave ; USER=root ; COMMAND=/usr/bin/su -")
    spid = g.next_pid()
    g.emit("web-02", t2, "sudo", spid, f"pam_unix(sudo:session): session opened for user root(uid=0) by dave(uid={USERS['dave']})")
    supid = g.next_pid()
    g.emit("web-02", t2 + dt.timedelta(seconds=1), "su", supid, "(to root) dave on pts/1")
    g.emit("web-02", t2 + dt.timedelta(seconds=1), "su", supid,
           "pam_unix(su-l:session): session opened for user root(uid=0) by dave(uid=0)")
    t3 = t2 + dt.timedelta(minutes=3)
    upid = g.next_pid()
    g.emit("web-02", t3, "useradd", upid, f"new group: name={BACKDOOR}, GID=1010")
    g.emit("web-02", t3, "useradd", upid,
           f"new user: name={BACKDOOR}, UID=1010, GID=1010, home=/home/{BACKDOOR}, shell=/bin/bash, from=/dev/pts/1")
    mpid = g.next_pid()
    g.emit("web-02", t3 + dt.timedelta(seconds=20), "usermod", mpid, f"add '{BACKDOOR}' to group 'sudo'")
    g.emit("web-02", t3 + dt.timedelta(seconds=20), "usermod", mpid, f"add '{BACKDOOR}' to shadow group 'sudo'")
    g.emit("web-02", t3 + dt.timedelta(seconds=40), "passwd", g.next_pid(),
           f"pam_unix(passwd:chauthtok): password changed for {BACKDOOR}")
    g.emit("web-02", end, "su", supid, "pam_unix(su-l:session): session closed for user root")
    g.emit("web-02", end, "sudo", spid, "pam_unix(sudo:session): session closed for user root")
    g.emit("web-02", end, "sshd", pid, f"Disconnected from user dave {attacker} port {port}")
    g.emit("web-02", end, "sshd", pid, "pam_unix(sshd:session): session closed for user dave")
    # the backdoor is used the next days, from the attacker's address
    USERS.setdefault(BACKDOOR, 1010)
    for k in range(3):
        g.login("web-02", end + dt.timedelta(days=k + 1, hours=rng.uniform(0, 5)), BACKDOOR, attacker, "password",
                duration=600, commands=["/bin/bash"] if k == 0 else [])

    # Sudo abuse: erin is not in sudoers and keeps trying; wrong passwords.
    for k in range(6):
        t = at(8 + k * 3, 10)
        host = rng.choice(HOSTS)
        g.emit(host, t, "sudo", g.next_pid(),
               f"pam_unix(sudo:auth): authentication failure; logname=erin uid={USERS['erin']} euid=0 tty=/dev/pts/0 "
               "ruser=erin rhost=  user=erin")
        if k % 2:
            g.emit(host, t + dt.timedelta(seconds=9), "sudo", None,
                   "    erin : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/erin ; USER=root ; "
                   "COMMAND=/bin/bash")
        else:
            g.emit(host, t + dt.timedelta(seconds=5), "sudo", None,
                   "    erin : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/erin ; USER=root ; COMMAND=/bin/cat /etc/shadow")

    # New accounts created by an admin (legitimate).
    for k, (name, uid) in enumerate((("frank", 1008), ("grace", 1009))):
        t = at(5 + k * 11, 8)
        host = rng.choice(HOSTS)
        g.sudo(host, t, "alice", f"/usr/sbin/adduser {name}")
        upid = g.next_pid()
        g.emit(host, t + dt.timedelta(seconds=3), "useradd", upid, f"new group: name={name}, GID={uid}")
        g.emit(host, t + dt.timedelta(seconds=3), "useradd", upid,
               f"new user: name={name}, UID={uid}, GID={uid}, home=/home/{name}, shell=/bin/bash, from=/dev/pts/0")
        g.emit(host, t + dt.timedelta(seconds=9), "passwd", g.next_pid(),
               f"pam_unix(passwd:chauthtok): password changed for {name}")

    # Hostile usernames (attackers choose them): the UI must show them as text.
    for k, user in enumerate(HOSTILE_USERS):
        t = at(25 + k * 0.5, 10)
        g.failed(rng.choice(("web-01", "bastion")), t, user, _bot_ip(rng), valid=False)

    USERS.pop(BACKDOOR, None)
    out: dict[str, list[tuple[dt.datetime, str]]] = {}
    for host, items in g.lines.items():
        items = [x for x in items if x[0] <= now]
        items.sort(key=lambda x: x[0])
        out[host] = items
    return out


@dataclass
class DemoResult:
    home: Path
    directory: Path
    hosts: list[str]
    lines: int
    events: int


def demo_dir(home: str | os.PathLike) -> Path:
    return Path(home) / "demo"


def is_demo(home: str | os.PathLike) -> bool:
    """True when the data directory holds demo data (the UI should say so)."""
    return (demo_dir(home) / MARKER).exists()


def _write_host(directory: Path, lines: list[str], times: list[dt.datetime], now: dt.datetime) -> None:
    """auth.log.2.gz (older than 14 days), auth.log.1 (7-14 days), auth.log (last 7 days)."""
    directory.mkdir(parents=True, exist_ok=True)
    cut2 = now - dt.timedelta(days=14)
    cut1 = now - dt.timedelta(days=7)
    parts = {"auth.log.2.gz": [], "auth.log.1": [], "auth.log": []}
    last = {}
    for line, t in zip(lines, times, strict=True):
        name = "auth.log.2.gz" if t < cut2 else "auth.log.1" if t < cut1 else "auth.log"
        parts[name].append(line)
        last[name] = t
    for name, chunk in parts.items():
        data = ("\n".join(chunk) + "\n").encode("utf-8") if chunk else b""
        path = directory / name
        if name.endswith(".gz"):
            with gzip.GzipFile(path, "wb", mtime=0) as g:
                g.write(data)
        else:
            path.write_bytes(data)
        stamp = (last.get(name) or now).timestamp() + (60 if name != "auth.log" else 0)
        if name == "auth.log":
            stamp = now.timestamp()
        os.utime(path, (stamp, stamp))


# the [sources] table: its header line up to the next table header line
_SOURCES_RE = re.compile(r"(?m)^[ \t]*\[sources\][ \t]*(?:#.*)?\n(?:(?![ \t]*\[[A-Za-z0-9_.\" -]+\][ \t]*(?:#.*)?$).*(?:\n|\Z))*")


def configure(home: Path, sources: list[str]) -> None:
    """Point ``[sources] paths`` of config.toml at the demo (keeping the rest of the file)."""
    import json

    from secdash import config

    path = home / config.CONFIG_NAME
    paths_line = "paths = " + json.dumps(sources)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    m = _SOURCES_RE.search(text)
    if m:
        body = m.group(0)
        if re.search(r"(?m)^paths\s*=", body):
            # replace the (possibly multi-line) array
            body = re.sub(r"(?ms)^paths\s*=\s*\[.*?\]", lambda _: paths_line, body, count=1)
        else:
            body = body.replace("[sources]", "[sources]\n" + paths_line, 1)
        text = text[: m.start()] + body + text[m.end():]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + \
            "# Demo data (python -m secdash demo); replace with your real logs, e.g. [\"/var/log/auth.log\"]\n" \
            f"[sources]\n{paths_line}\n"
    config.parse(text, home=home, origin=str(path))  # never write a config that does not load
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def create(home: str | os.PathLike, *, now: dt.datetime | None = None, force: bool = False, seed: int = 7,
           days: int = 30, tz: str | None = None) -> DemoResult:
    """Write the demo logs, point the config at them, and ingest them into a fresh store."""
    from secdash import config
    from secdash.ingest import ingest
    from secdash.store import DB_NAME, Store, set_meta

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    cfg = config.load(home)
    zone = tz or cfg.zone
    now = now or dt.datetime.now(dt.timezone.utc)
    store = Store.from_config(cfg)
    if store.exists() and not is_demo(home) and not force:
        if store.count_events() > 0:
            raise SecdashError(f"{store.path} already holds events that are not demo data; "
                               "use --force to replace them with demo data")
    if store.exists():
        for p in (store.path, Path(str(store.path) + ".wal")):
            if p.exists():
                p.unlink()
    directory = demo_dir(home)
    if directory.exists():
        shutil.rmtree(directory)
    per_host = generate(now, tz=zone, seed=seed, days=days)
    total = 0
    for host, items in per_host.items():
        _write_host(directory / host, [x[1] for x in items], [x[0] for x in items], now)
        total += len(items)
    (directory / MARKER).write_text("Generated by 'python -m secdash demo'. Not real data.\n")
    configure(home, [str(directory)])
    store = Store(home / DB_NAME if not cfg.store.path else Path(cfg.store.path).expanduser(),
                  timeout=cfg.store.busy_timeout_seconds)
    with store.write() as con:
        set_meta(con, "demo", "true")
    reports = ingest(store, [str(directory)], tz=zone, now=now)
    errors = [r.error for r in reports if r.error]
    if errors:
        raise SecdashError(errors[0])
    return DemoResult(home=home, directory=directory, hosts=sorted(per_host), lines=total,
                      events=sum(r.events for r in reports))


def needed(cfg) -> bool:
    """True when none of the configured log sources is readable (the quick start then uses demo)."""
    from secdash.sources import expand_sources

    for raw in cfg.sources.paths:
        try:
            for spec in expand_sources([raw]):
                for f in spec.files:
                    with open(f, "rb") as fh:
                        fh.read(1)
                    return False
        except (SecdashError, OSError):
            continue
    return True
