"""The event model: columns, their types, and the event vocabulary (the one place documenting them).

One record per non-blank input line; nothing is dropped. Empty means null.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import polars as pl

# Column -> (polars dtype, meaning). Order is the output order of ``parse`` and the store.
COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "ts": (pl.Datetime("us", "UTC"), "event time, normalised to UTC (null when the line has no usable time)"),
    "host": (pl.String, "syslog host name of the machine that wrote the line"),
    "program": (pl.String, "syslog ident / journald SYSLOG_IDENTIFIER (sshd, sshd-session, sudo, CRON, ...)"),
    "pid": (pl.Int64, "process id of the writer"),
    "event": (pl.String, "event type, see EVENTS"),
    "outcome": (pl.String, "success / failure / unknown"),
    "user": (pl.String, "the acting or authenticating account (attacker-controlled for failed logins)"),
    "target_user": (pl.String, "the account acted upon: sudo/su run-as user, account created/changed, session account"),
    "src_ip": (pl.String, "remote address, validated (IPv4-mapped IPv6 is given as IPv4)"),
    "src_host": (pl.String, "remote given as a DNS name (or an invalid address) instead of an IP"),
    "src_port": (pl.Int64, "remote port"),
    "method": (pl.String, "SSH authentication method as sshd writes it (password, publickey, keyboard-interactive/pam, ...)"),
    "command": (pl.String, "command run (sudo COMMAND=, cron CMD)"),
    "tty": (pl.String, "terminal (sudo TTY=, su on ..., PAM tty=)"),
    "cwd": (pl.String, "working directory (sudo PWD=)"),
    "uid": (pl.Int64, "numeric user id when the line gives one (useradd UID=, PAM uid=)"),
    "session_id": (pl.String, "logind session id"),
    "group_name": (pl.String, "group created, deleted or joined"),
    "detail": (pl.String, "short extra text: disconnect reason, key fingerprint, refusal reason, ..."),
    "count": (pl.Int64, "1, or N for rsyslog's 'message repeated N times: [ ... ]'"),
    "message": (pl.String, "the message body (after the syslog header)"),
    "pattern": (pl.String, "id of the pattern that matched (null: no pattern)"),
    "flags": (pl.String, "comma list: truncated, invalid_utf8, control_chars, bad_ts, no_header"),
    "source": (pl.String, "where the line came from (file path, journal)"),
    "line": (pl.Int64, "1-based line number in the source file (journal: entry number)"),
}

SCHEMA: dict[str, pl.DataType] = {name: dtype for name, (dtype, _) in COLUMNS.items()}
STRING_COLUMNS = [n for n, t in SCHEMA.items() if t == pl.String]

OUTCOMES = ("success", "failure", "unknown")

# Event vocabulary: name -> (default outcome, meaning).
EVENTS: dict[str, tuple[str, str]] = {
    "ssh_login": ("success", "sshd accepted a login (Accepted <method> for <user> from <ip>)"),
    "ssh_failed_auth": ("failure", "sshd rejected an authentication attempt (Failed <method> for [invalid user] <user>)"),
    "ssh_invalid_user": ("failure", "a login was tried for an account that does not exist (Invalid user ...)"),
    "ssh_max_attempts": ("failure", "too many authentication failures on one connection"),
    "ssh_disconnect": ("unknown", "connection closed, reset or disconnected (before or after auth)"),
    "ssh_not_allowed": ("failure", "account refused by sshd configuration (AllowUsers, DenyUsers, shell, ...)"),
    "ssh_negotiation_failed": ("failure", "no common key exchange / cipher / MAC / host key type"),
    "ssh_timeout": ("failure", "the client did not authenticate in time (LoginGraceTime)"),
    "ssh_bad_banner": ("failure", "no or bad SSH identification string: scanners and non-SSH clients"),
    "ssh_reverse_mapping": ("unknown", "reverse DNS of the client does not match (POSSIBLE BREAK-IN ATTEMPT)"),
    "ssh_connection": ("unknown", "a connection was opened (Connection from ..., LogLevel VERBOSE)"),
    "auth_failure": ("failure", "PAM (or unix_chkpwd) reports a failed authentication, any service"),
    "auth_failure_summary": ("failure", "PAM: N more authentication failures on one connection (N in detail)"),
    "account_locked": ("failure", "PAM faillock/tally: account locked after failures"),
    "session_open": ("success", "PAM session opened (sshd, sudo, su, cron, login, systemd-user, ...)"),
    "session_close": ("unknown", "PAM session closed"),
    "sudo_command": ("success", "sudo (or doas) ran a command as target_user"),
    "sudo_auth_failure": ("failure", "sudo / doas: incorrect password attempts, or a password was required"),
    "sudo_denied": ("failure", "sudo / doas refused: user NOT in sudoers, command not allowed"),
    "pkexec_command": ("success", "pkexec (polkit) ran a command as target_user"),
    "pkexec_refused": ("failure", "pkexec refused: not authorized, or a suspicious environment (CVE-2021-4034 exploit attempts)"),
    "su_success": ("success", "su switched user"),
    "su_failure": ("failure", "su failed"),
    "login_failure": ("failure", "console login(1) failure"),
    "user_created": ("success", "account created (useradd, adduser)"),
    "user_deleted": ("success", "account deleted (userdel)"),
    "user_modified": ("success", "account changed (usermod, chage, chsh, ...)"),
    "user_change_failed": ("failure", "an account change failed (useradd/usermod error)"),
    "group_created": ("success", "group created (groupadd, useradd)"),
    "group_deleted": ("success", "group deleted (groupdel, userdel)"),
    "group_modified": ("success", "group changed (groupmod, gpasswd)"),
    "group_member_added": ("success", "user added to a group (usermod -aG, gpasswd -a)"),
    "group_member_removed": ("success", "user removed from a group (gpasswd -d, userdel)"),
    "password_changed": ("success", "password changed (passwd, chpasswd)"),
    "password_change_failed": ("failure", "a password change was refused or failed (PAM chauthtok)"),
    "login_session_new": ("success", "systemd-logind: New session N of user U"),
    "login_session_removed": ("unknown", "systemd-logind: Removed session N / session logged out"),
    "cron_command": ("unknown", "cron ran a command (CMD)"),
    "service_event": ("unknown", "daemon lifecycle (sshd listening, terminating, signals)"),
    "syslog_meta": ("unknown", "syslog bookkeeping (-- MARK --, last message repeated)"),
    "unknown": ("unknown", "no pattern matched; the line is kept with its header fields and message"),
}


@dataclass
class Event:
    """One parsed record (the row type of a parse result)."""

    ts: dt.datetime | None = None
    host: str | None = None
    program: str | None = None
    pid: int | None = None
    event: str = "unknown"
    outcome: str = "unknown"
    user: str | None = None
    target_user: str | None = None
    src_ip: str | None = None
    src_host: str | None = None
    src_port: int | None = None
    method: str | None = None
    command: str | None = None
    tty: str | None = None
    cwd: str | None = None
    uid: int | None = None
    session_id: str | None = None
    group_name: str | None = None
    detail: str | None = None
    count: int = 1
    message: str | None = None
    pattern: str | None = None
    flags: str | None = None
    source: str | None = None
    line: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def to_events(df: pl.DataFrame) -> list[Event]:
    return [Event(**row) for row in df.select(list(SCHEMA)).iter_rows(named=True)]


def markdown() -> str:
    """The event model as Markdown (docs/events.md is generated from this)."""
    from secdash.patterns import load_families

    out = ["# Event model", "", "Generated from `secdash/events.py` and `secdash/patterns/*.toml`",
           "(`./test.sh tests/test_docs.py --regen` rewrites it).", "",
           "One record per non-blank input line; nothing is dropped. Empty means null.", "",
           "## Columns", "", "| column | type | meaning |", "| --- | --- | --- |"]
    for name, (dtype, meaning) in COLUMNS.items():
        out.append(f"| `{name}` | {dtype} | {meaning} |")
    by_event: dict[str, list[str]] = {}
    for fam in load_families():
        for p in fam.patterns:
            by_event.setdefault(p.event, []).append(p.id)
    out += ["", "## Event types", "", "| event | default outcome | meaning | patterns |", "| --- | --- | --- | --- |"]
    for name, (outcome, meaning) in EVENTS.items():
        pats = ", ".join(f"`{p}`" for p in by_event.get(name, [])) or "-"
        out.append(f"| `{name}` | {outcome} | {meaning} | {pats} |")
    out += ["", "## Pattern families", "", "| family | programs | patterns | description |", "| --- | --- | --- | --- |"]
    for fam in load_families():
        progs = ", ".join(fam.programs)
        out.append(f"| `{fam.name}` | {progs} | {len(fam.patterns)} | {fam.description} |")
    return "\n".join(out) + "\n"
