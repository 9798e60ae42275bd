"""Configuration: data directory, TOML config file, typed settings with clear errors.

The data directory is ``$SECDASH_HOME`` when set, else ``$XDG_DATA_HOME/secdash`` (default
``~/.local/share/secdash``).  It holds ``config.toml``, the event store, the users file, the
secrets file and the audit log.  Every setting has a default, so a missing config file is fine;
an unknown key, a wrong type or an impossible value is a :class:`ConfigError` naming the key.

Each section is a small dataclass.  Modules that own a section read it from :func:`load`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONFIG_NAME = "config.toml"


class ConfigError(Exception):
    """A problem with the configuration, worded for the person who wrote it."""


def data_dir(env: typing.Mapping[str, str] | None = None) -> Path:
    """The data directory (not created here)."""
    env = os.environ if env is None else env
    if env.get("SECDASH_HOME"):
        return Path(env["SECDASH_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(base) / "secdash"


def local_zone_name(env: typing.Mapping[str, str] | None = None) -> str:
    """The machine's IANA time zone name (``TZ``, ``/etc/timezone``, ``/etc/localtime``), else UTC."""
    env = os.environ if env is None else env
    candidates: list[str] = []
    tz = env.get("TZ", "").lstrip(":")
    if tz:
        candidates.append(tz)
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name and valid_zone(name):
            return name
    return "UTC"


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


# --------------------------------------------------------------------------------------------
# Sections


@dataclass
class SourcesConfig:
    # Live paths of log files; each also means its rotated set (auth.log.1, auth.log.2.gz, ...).
    # A directory means per-host logs of a central syslog server (<dir>/<host>/auth.log).
    paths: list[str] = field(default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"])
    # Also read the systemd journal (sshd, sudo, su, PAM identifiers) through journalctl.
    journald: bool = False


@dataclass
class TimeConfig:
    # IANA zone of classic syslog timestamps ("Mmm dd HH:MM:SS" carries none). Empty: the machine's.
    zone: str = ""


@dataclass
class StoreConfig:
    # Delete events older than this many days on ingest; 0 keeps everything.
    retention_days: int = 0
    # The DuckDB file of the event store. Empty: events.duckdb in the data directory.
    path: str = ""
    # Seconds to keep retrying while another process holds the store (then a clear error).
    busy_timeout_seconds: float = 5.0


@dataclass
class IngestConfig:
    # Seconds between two incremental ingest runs of the dashboard's background thread.
    interval_seconds: float = 5.0
    # Run that background ingest in the dashboard process at all (off: cron runs `ingest`).
    background: bool = True
    # Also ingest the dashboard's own audit log (its login failures are security events).
    audit_log: bool = True


@dataclass
class UIConfig:
    # Display time zone for the dashboard. Empty: the time.zone setting / the machine's zone.
    display_zone: str = ""
    # Seconds between automatic refreshes of live views.
    refresh_seconds: float = 5.0


@dataclass
class AuthConfig:
    idle_timeout_minutes: float = 30.0
    absolute_timeout_hours: float = 12.0
    # Failed logins per (username, client address) within the window that block the pair.
    throttle_failures: int = 5
    throttle_window_seconds: float = 300.0
    # First block length; doubles with each further block of the same pair, capped.
    throttle_block_seconds: float = 60.0
    throttle_max_block_seconds: float = 900.0
    # Header carrying the client address when (and only when) behind a trusted reverse proxy,
    # e.g. "X-Forwarded-For". Empty: use the socket's peer address.
    proxy_header: str = ""
    # Name of the signed re-login cookie (it only names a server-side session).
    cookie_name: str = "secdash_session"
    # Send the cookie over HTTPS only; turn on when the dashboard is served through TLS.
    cookie_secure: bool = False


@dataclass
class Threshold:
    careful: float
    warning: float
    critical: float


def _default_thresholds() -> dict[str, Threshold]:
    return {
        "cpu_percent": Threshold(50, 75, 90),
        "memory_percent": Threshold(70, 85, 95),
        "swap_percent": Threshold(20, 50, 80),
        "disk_percent": Threshold(75, 90, 95),
        "load_per_core": Threshold(0.7, 1.0, 2.0),
    }


@dataclass
class MetricsConfig:
    # Seconds between two samples of the live metrics (one sampler per server process).
    interval_seconds: float = 2.0
    # Length of the rolling history kept in memory (history_seconds / interval_seconds samples).
    history_seconds: float = 3600.0
    # Seconds between two looks at the listening sockets and logged-in users (walks every fd).
    sockets_interval_seconds: float = 10.0
    # Processes shown in the "top by CPU" and "top by memory" tables.
    top_processes: int = 10
    # Command lines are cut to this many characters.
    cmdline_chars: int = 120
    # Per-metric levels (careful <= warning <= critical); metrics not named keep their defaults.
    thresholds: dict[str, Threshold] = field(default_factory=_default_thresholds)

    def __post_init__(self) -> None:
        for name, default in _default_thresholds().items():
            self.thresholds.setdefault(name, default)


@dataclass
class DetectConfig:
    # Detection thresholds (see docs/detections.md). Counts are SSH attempts after deduplication.
    # Brute force from one address: this many failed attempts within the window (high).
    brute_force_attempts: int = 8
    brute_force_window_seconds: float = 120.0
    # Slow brute force from one address (medium).
    slow_brute_force_attempts: int = 20
    slow_brute_force_window_seconds: float = 3600.0
    # Password spraying / user enumeration from one address: distinct usernames AND attempts (high).
    spray_users: int = 10
    spray_attempts: int = 30
    spray_window_seconds: float = 300.0
    # A successful login from an address (or for a user) with this many failures before it (critical).
    success_after_failures: int = 5
    success_after_failures_window_seconds: float = 1800.0
    # sudo authentication failures of one user on one host within the window (medium).
    sudo_failures: int = 3
    sudo_failures_window_seconds: float = 300.0
    # Working hours for the after-hours login rule, "HH:MM-HH:MM" on working_days, in working_zone
    # (empty: the dashboard's display zone). Users listed in after_hours_ignore_users never alert.
    working_hours: str = "08:00-18:00"
    working_days: list[str] = field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    working_zone: str = ""
    after_hours_ignore_users: list[str] = field(default_factory=list)
    # Groups whose new members raise a critical alert.
    privileged_groups: list[str] = field(default_factory=lambda: ["sudo", "wheel", "adm", "admin", "root"])
    # Lines of one SSH connection (same host and pid) no further apart than this are one attempt.
    attempt_gap_seconds: float = 10.0
    # Rule ids to switch off, e.g. ["ssh.after_hours_login"].
    disabled_rules: list[str] = field(default_factory=list)
    # Look up reverse DNS of addresses in the entity view (off: no DNS traffic from the dashboard).
    reverse_dns: bool = False


@dataclass
class Config:
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    # Where this configuration came from (not a setting).
    home: Path = field(default_factory=data_dir)

    @property
    def zone(self) -> str:
        """Zone of classic syslog timestamps."""
        return self.time.zone or local_zone_name()

    @property
    def display_zone(self) -> str:
        return self.ui.display_zone or self.zone


# --------------------------------------------------------------------------------------------
# Loading


def _convert(value: typing.Any, tp: typing.Any, where: str) -> typing.Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return {str(k): _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {tp!r}")  # pragma: no cover


def _build(cls: type, data: dict, where: str) -> typing.Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "home"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(value, hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field of e.g. Threshold is missing
        raise ConfigError(f"{where}: {exc}") from None


def _validate(cfg: Config) -> None:
    for label, zone in (("time.zone", cfg.time.zone), ("ui.display_zone", cfg.ui.display_zone)):
        if zone and not valid_zone(zone):
            raise ConfigError(f"{label}: unknown time zone {zone!r} (use an IANA name such as Europe/Berlin)")
    positive = {
        "ingest.interval_seconds": cfg.ingest.interval_seconds,
        "ui.refresh_seconds": cfg.ui.refresh_seconds,
        "auth.idle_timeout_minutes": cfg.auth.idle_timeout_minutes,
        "auth.absolute_timeout_hours": cfg.auth.absolute_timeout_hours,
        "auth.throttle_failures": cfg.auth.throttle_failures,
        "auth.throttle_window_seconds": cfg.auth.throttle_window_seconds,
        "auth.throttle_block_seconds": cfg.auth.throttle_block_seconds,
        "metrics.interval_seconds": cfg.metrics.interval_seconds,
        "metrics.history_seconds": cfg.metrics.history_seconds,
        "metrics.sockets_interval_seconds": cfg.metrics.sockets_interval_seconds,
        "metrics.top_processes": cfg.metrics.top_processes,
        "metrics.cmdline_chars": cfg.metrics.cmdline_chars,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value}")
    if cfg.auth.throttle_max_block_seconds < cfg.auth.throttle_block_seconds:
        raise ConfigError("auth.throttle_max_block_seconds: must be at least auth.throttle_block_seconds")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cfg.auth.cookie_name):
        raise ConfigError(f"auth.cookie_name: use 1-64 letters, digits, '_' or '-', got {cfg.auth.cookie_name!r}")
    if cfg.auth.proxy_header and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", cfg.auth.proxy_header):
        raise ConfigError(f"auth.proxy_header: not a header name: {cfg.auth.proxy_header!r}")
    if cfg.store.busy_timeout_seconds <= 0:
        raise ConfigError(f"store.busy_timeout_seconds: must be greater than 0, got {cfg.store.busy_timeout_seconds}")
    if cfg.store.retention_days < 0:
        raise ConfigError(f"store.retention_days: must be 0 (keep all) or more, got {cfg.store.retention_days}")
    d = cfg.detect
    for key in ("brute_force_attempts", "brute_force_window_seconds", "slow_brute_force_attempts",
                "slow_brute_force_window_seconds", "spray_users", "spray_attempts", "spray_window_seconds",
                "success_after_failures", "success_after_failures_window_seconds", "sudo_failures",
                "sudo_failures_window_seconds", "attempt_gap_seconds"):
        if getattr(d, key) <= 0:
            raise ConfigError(f"detect.{key}: must be greater than 0, got {getattr(d, key)}")
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]", d.working_hours):
        raise ConfigError(f"detect.working_hours: use HH:MM-HH:MM, e.g. 08:00-18:00, got {d.working_hours!r}")
    bad_days = [x for x in d.working_days if x.lower()[:3] not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    if bad_days:
        raise ConfigError(f"detect.working_days: unknown day {bad_days[0]!r} (use mon, tue, ... sun)")
    if d.working_zone and not valid_zone(d.working_zone):
        raise ConfigError(f"detect.working_zone: unknown time zone {d.working_zone!r}")
    known_metrics = sorted(_default_thresholds())
    for name, t in cfg.metrics.thresholds.items():
        if name not in known_metrics:
            raise ConfigError(f"metrics.thresholds: unknown metric {name!r} (known: {', '.join(known_metrics)})")
        if not (t.careful <= t.warning <= t.critical):
            raise ConfigError(f"metrics.thresholds.{name}: need careful <= warning <= critical")


def parse(text: str, home: Path | None = None, origin: str = CONFIG_NAME) -> Config:
    """Build a :class:`Config` from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    cfg = _build(Config, data, "")
    cfg.home = home if home is not None else data_dir()
    _validate(cfg)
    return cfg


def load(home: Path | None = None) -> Config:
    """Load ``config.toml`` from the data directory; defaults when it does not exist."""
    home = data_dir() if home is None else Path(home)
    path = home / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        cfg = Config()
        cfg.home = home
        return cfg
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse(text, home=home, origin=str(path))
