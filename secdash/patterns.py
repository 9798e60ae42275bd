"""Log patterns as data: one TOML file per program family in ``secdash/patterns/``.

File layout::

    family = "sshd"
    description = "..."
    programs = ["sshd", "sshd-session", "sshd-auth"]   # or ["*"]: any program
    message_prefix = ""          # optional: the family only sees messages starting with this
    priority = 50                # families are tried in ascending priority, then name

    [[patterns]]
    id = "sshd.accepted"         # stable: stored with every event, used by explain and tests
    event = "ssh_login"
    outcome = "success"          # optional, default: the event's default outcome
    prefix = "Accepted "         # literal(s) the message starts with (fast pre-filter); "" = none
    regex = '^Accepted ...$'     # anchored; named groups become columns (see GROUP_COLUMNS)
    fields = { user = ["ruser", "puser"] }    # optional: column <- first non-empty of these groups
    samples = [ { line = "...", user = "alice", src_ip = "203.0.113.5" } ]
    negatives = [ "a line this pattern must not match" ]

The regex dialect is the common subset of Rust's ``regex`` (what polars runs) and Python's ``re``
(used for linting): no look-around, no back-references; write digits as ``[0-9]`` (``\\d`` is
Unicode-aware in both).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from secdash.events import EVENTS, OUTCOMES

PATTERN_DIR = Path(__file__).resolve().parent / "patterns"

# Named groups that become columns. "src" is a remote given as IP or name: validated into
# src_ip, else src_host. Groups starting with "_" or listed in a pattern's `fields` are helpers.
GROUP_COLUMNS = (
    "user", "target_user", "src", "src_ip", "src_host", "src_port", "method", "command", "tty",
    "cwd", "uid", "session_id", "group_name", "detail",
)
OUTPUT_COLUMNS = tuple(c for c in GROUP_COLUMNS if c != "src")
INT_COLUMNS = ("src_port", "uid")
REMOTE_GROUPS = ("src", "src_ip", "src_host")
# A wildcard that can swallow any text, greedy or lazy.
_WILDCARD = re.compile(r"(?<!\\)\.(?:[*+]|\{[0-9]+,\})\??")


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class Pattern:
    id: str
    family: str
    event: str
    outcome: str
    prefixes: tuple[str, ...]  # the message starts with one of these (empty: no pre-filter)
    regex: str
    fields: dict[str, tuple[str, ...]]
    samples: tuple[dict, ...]
    negatives: tuple[str, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(re.compile(self.regex).groupindex)

    def column_sources(self) -> dict[str, tuple[str, ...]]:
        """Output column -> groups coalesced into it (first non-empty wins)."""
        groups = set(self.groups)
        out: dict[str, tuple[str, ...]] = {}
        for col in GROUP_COLUMNS:
            if col in self.fields:
                out[col] = self.fields[col]
            elif col in groups:
                out[col] = (col,)
        return out


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    programs: tuple[str, ...]
    message_prefix: str
    priority: int = 50
    patterns: tuple[Pattern, ...] = field(default_factory=tuple)

    @property
    def any_program(self) -> bool:
        return "*" in self.programs


def _prefixes(value: str | list[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    return () if "" in items else tuple(items)


def _family_from_toml(path: Path) -> Family:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PatternError(f"{path.name}: not valid TOML: {exc}") from None
    name = data.get("family") or path.stem
    pats = []
    for raw in data.get("patterns", []):
        pid = raw.get("id", "?")
        unknown = set(raw) - {"id", "event", "outcome", "prefix", "regex", "fields", "samples", "negatives"}
        if unknown:
            raise PatternError(f"{path.name}: pattern {pid}: unknown keys {sorted(unknown)}")
        event = raw.get("event")
        if event not in EVENTS:
            raise PatternError(f"{path.name}: pattern {pid}: unknown event {event!r}")
        outcome = raw.get("outcome", EVENTS[event][0])
        if outcome not in OUTCOMES:
            raise PatternError(f"{path.name}: pattern {pid}: bad outcome {outcome!r}")
        fields = {k: tuple([v] if isinstance(v, str) else v) for k, v in raw.get("fields", {}).items()}
        pats.append(Pattern(
            id=pid, family=name, event=event, outcome=outcome, prefixes=_prefixes(raw.get("prefix", "")),
            regex=raw["regex"], fields=fields, samples=tuple(raw.get("samples", ())),
            negatives=tuple(raw.get("negatives", ())),
        ))
    return Family(
        name=name, description=data.get("description", ""),
        programs=tuple(data.get("programs", ["*"])), message_prefix=data.get("message_prefix", ""),
        priority=int(data.get("priority", 50)), patterns=tuple(pats),
    )


def lint(p: Pattern) -> list[str]:
    """Problems with one pattern (empty list: fine)."""
    problems = []
    try:
        compiled = re.compile(p.regex)
    except re.error as exc:
        return [f"{p.id}: regex does not compile: {exc}"]
    if not p.regex.startswith("^") or not p.regex.endswith("$"):
        problems.append(f"{p.id}: regex must be anchored with ^ and $")
    if re.search(r"\\d", p.regex):
        problems.append(f"{p.id}: use [0-9] instead of \\d (Unicode digits)")
    if re.search(r"\(\?[=!<]", p.regex.replace("(?P<", "")):
        problems.append(f"{p.id}: look-around is not supported by the Rust regex engine")
    for col in p.column_sources():
        if col not in GROUP_COLUMNS:
            problems.append(f"{p.id}: unknown output column {col!r}")
    for col, groups in p.fields.items():
        for g in groups:
            if g not in compiled.groupindex:
                problems.append(f"{p.id}: fields.{col} names missing group {g!r}")
    for g in compiled.groupindex:
        if g not in GROUP_COLUMNS and not g.startswith("_") and not any(g in v for v in p.fields.values()):
            problems.append(f"{p.id}: group {g!r} is neither a column nor used in fields")
    # Attacker-controlled text (user names) must not be able to supply the remote address:
    # a wildcard may stand on one side of the address group only, and before it only greedy,
    # so the address is the one sshd wrote at the fixed end (or the fixed start) of the message.
    for g in REMOTE_GROUPS:
        m = re.search(r"\(\?P<%s>" % g, p.regex)
        if not m:
            continue
        depth, i = 0, m.start()
        while i < len(p.regex):  # find the end of the address group
            c = p.regex[i]
            if c == "\\":
                i += 2
                continue
            depth += c == "("
            depth -= c == ")"
            i += 1
            if depth == 0:
                break
        before, inside, after = p.regex[: m.start()], p.regex[m.end(): i - 1], p.regex[i:]
        if _WILDCARD.search(inside):
            problems.append(f"{p.id}: address group {g!r} must not contain a '.' wildcard")
        wb, wa = _WILDCARD.findall(before), _WILDCARD.findall(after)
        if wb and wa:
            problems.append(f"{p.id}: wildcards both before and after {g!r}: the address is not anchored")
        if any(w.endswith("?") for w in wb):
            problems.append(f"{p.id}: lazy wildcard before {g!r} lets a user name supply the address")
    if not p.samples:
        problems.append(f"{p.id}: has no sample")
    return problems


@lru_cache(maxsize=1)
def load_families(directory: str | None = None) -> tuple[Family, ...]:
    """All families in dispatch order (priority, then name)."""
    d = Path(directory) if directory else PATTERN_DIR
    fams = sorted((_family_from_toml(p) for p in d.glob("*.toml")), key=lambda f: (f.priority, f.name))
    seen: dict[str, str] = {}
    for f in fams:
        for p in f.patterns:
            if p.id in seen:
                raise PatternError(f"duplicate pattern id {p.id!r} ({seen[p.id]} and {f.name})")
            seen[p.id] = f.name
    return tuple(fams)


def all_patterns() -> list[Pattern]:
    return [p for f in load_families() for p in f.patterns]
