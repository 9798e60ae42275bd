"""``python -m secdash metrics [--json]``: one full sample of the live system metrics.

The same fields the live page shows (see docs/metrics.md for every field and its unit).
cpu_percent is primed first and the sample taken ``--wait`` seconds later, so the numbers are real.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="machine-readable JSON (one object) instead of tables"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="seconds between priming cpu_percent and the sample (default 0.5)",
    )


def run(args: argparse.Namespace) -> int:
    from secdash import config, metrics

    if args.wait < 0:
        print("secdash metrics: error: --wait must be 0 or more", file=sys.stderr)
        return 2
    cfg = config.load()
    sampler = metrics.Sampler.from_config(cfg.metrics)
    sampler.prime()
    import time

    time.sleep(args.wait)
    snap = sampler.sample()
    if args.json:
        json.dump(snap.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(snap, cfg.display_zone))
    return 0


# --------------------------------------------------------------------------------------------
# Human-readable output


def _bytes(n: float | None, per_s: bool = False) -> str:
    if n is None:
        return "-"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    v = float(n)
    i = 0
    while abs(v) >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    text = f"{v:.0f} {units[i]}" if i == 0 else f"{v:.1f} {units[i]}"
    return text + ("/s" if per_s else "")


def _num(v: float | None, fmt: str = "{:.1f}", suffix: str = "") -> str:
    return "-" if v is None else fmt.format(v) + suffix


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "  (none)\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines) + "\n"


def _clean(text: str | None) -> str:
    """Process names and command lines are attacker-controlled: no control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in (text or ""))


def format_text(snap, zone: str = "UTC") -> str:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)

    def when(dt) -> str:
        return "-" if dt is None else dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")

    def lv(metric: str) -> str:
        name = snap.levels.get(metric)
        return f"  [{name.upper()}]" if name else ""

    out = [f"secdash metrics at {when(snap.ts)}\n\n"]
    rows = [
        ["CPU", _num(snap.cpu_percent, suffix=" %") + lv("cpu_percent")],
        [
            "CPU per core",
            "-" if snap.cpu_per_core is None else " ".join(f"{x:.0f}%" for x in snap.cpu_per_core),
        ],
        ["cores", _num(snap.cpu_count, "{:d}")],
        ["load 1/5/15 min", " / ".join(_num(x, "{:.2f}") for x in (snap.load_1, snap.load_5, snap.load_15))],
        ["load per core", _num(snap.load_per_core, "{:.2f}") + lv("load_per_core")],
        [
            "memory",
            f"{_num(snap.memory_percent, suffix=' %')} "
            f"({_bytes(snap.memory_used_bytes)} of {_bytes(snap.memory_total_bytes)})" + lv("memory_percent"),
        ],
        [
            "swap",
            f"{_num(snap.swap_percent, suffix=' %')} "
            f"({_bytes(snap.swap_used_bytes)} of {_bytes(snap.swap_total_bytes)})" + lv("swap_percent"),
        ],
        [
            "disk read / write",
            f"{_bytes(snap.disk_read_bytes_per_s, True)} / {_bytes(snap.disk_write_bytes_per_s, True)}",
        ],
        [
            "network sent / recv",
            f"{_bytes(snap.net_sent_bytes_per_s, True)} / {_bytes(snap.net_recv_bytes_per_s, True)}",
        ],
        ["boot time", when(snap.boot_time)],
        ["uptime", _duration(snap.uptime_seconds)],
        ["processes", _num(snap.process_count, "{:d}")],
    ]
    out.append(_table(["metric", "value"], rows))
    out.append("\nDisks\n")
    out.append(
        _table(
            ["mount", "device", "type", "used", "size", "use%"],
            [
                [
                    _clean(d.mountpoint),
                    _clean(d.device),
                    d.fstype,
                    _bytes(d.used_bytes),
                    _bytes(d.total_bytes),
                    f"{d.percent:.1f}"
                    + (
                        f" [{snap.levels['disk_percent'].upper()}]"
                        if snap.levels.get("disk_percent") and d.percent == snap.disk_percent
                        else ""
                    ),
                ]
                for d in snap.disks or []
            ],
        )
    )
    out.append("\nNetwork interfaces\n")
    out.append(
        _table(
            ["interface", "sent", "received"],
            [
                [_clean(n.interface), _bytes(n.sent_bytes_per_s, True), _bytes(n.recv_bytes_per_s, True)]
                for n in snap.net or []
            ],
        )
    )
    for title, procs in (
        ("Top processes by CPU", snap.top_cpu),
        ("Top processes by memory", snap.top_memory),
    ):
        out.append(f"\n{title}\n")
        out.append(
            _table(
                ["pid", "user", "cpu%", "mem%", "rss", "started", "command"],
                [
                    [
                        str(p.pid),
                        _clean(p.user),
                        _num(p.cpu_percent),
                        _num(p.memory_percent),
                        _bytes(p.rss_bytes),
                        when(p.started),
                        _clean(p.cmdline),
                    ]
                    for p in procs or []
                ],
            )
        )
    out.append("\nListening sockets\n")
    out.append(
        _table(
            ["proto", "address", "port", "pid", "process", "new"],
            [
                [
                    lst.proto,
                    _clean(lst.address),
                    str(lst.port),
                    "-" if lst.pid is None else str(lst.pid),
                    _clean(lst.process),
                    "NEW" if lst.new else "",
                ]
                for lst in snap.listeners or []
            ],
        )
    )
    out.append("\nLogged-in users\n")
    out.append(
        _table(
            ["user", "terminal", "from", "since", "pid"],
            [
                [
                    _clean(u.user),
                    _clean(u.terminal or "-"),
                    _clean(u.host or "-"),
                    when(u.started),
                    "-" if u.pid is None else str(u.pid),
                ]
                for u in snap.users or []
            ],
        )
    )
    if snap.notes:
        out.append("\nNotes\n")
        out.extend(f"  - {n}\n" for n in snap.notes)
    return "".join(out)
