"""Parse auth-log lines into typed events (vectorised with polars; one record per non-blank line).

Pipeline for a batch of lines:

1. normalise: strip CR, cap length (flag ``truncated``), replace control bytes by visible
   control pictures (flag ``control_chars``), flag U+FFFD from undecodable bytes (``invalid_utf8``);
2. split the syslog header: classic ``Mmm dd HH:MM:SS host prog[pid]: msg``, RFC 3339
   ``2026-01-05T03:04:05.123+01:00 host prog[pid]: msg``, RFC 5424, header without host, header
   without time (journal export style); anything else keeps the whole line as message (``no_header``);
3. unwrap ``message repeated N times: [ ... ]`` (count = N) and Solaris ``[ID n facility.level]``;
4. classify: pattern families (``secdash/patterns/*.toml``) by program, each pattern pre-filtered by
   its literal prefix and matched with its anchored regex; first match wins;
5. validate remote addresses with :mod:`ipaddress` (IPv4-mapped IPv6 becomes IPv4; a remote that
   is not an address is a host name);
6. timestamps to UTC: classic stamps are local time in ``tz`` with the year inferred (see
   :func:`infer_years`), RFC 3339 stamps carry their offset.

No hidden clock: callers pass ``tz`` and ``now`` (or a start year).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from secdash.events import SCHEMA
from secdash.patterns import INT_COLUMNS, OUTPUT_COLUMNS, Family, load_families

MAX_LINE = 256 * 1024  # characters kept of one line; longer lines are cut and flagged

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MON = "(?:" + "|".join(MONTHS) + ")"
_CLASSIC = _MON + r" [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}"
# Years 1000-2999 only: a stamp like "0000-12-30" (seen in the wild) gives a time Python cannot hold.
_ISO = r"[12][0-9]{3}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
_NAME = r"[^ :\[\]]+"
# Between stamp and host: FreeBSD "<10.5>" priority tags. Before the program: busybox facility.level.
_PRI_TAG = r"(?:<[0-9]{1,3}(?:\.[0-9]{1,3})?> )?"
_FACILITY = (r"(?:(?:auth|authpriv|daemon|user|kern|mail|cron|syslog|security|local[0-7])"
             r"\.(?:emerg|alert|crit|err|error|warn|warning|notice|info|debug) )?")
# The header regex captures only the header (group _h); the message is the rest of the line.
# Not running the capture engine over the message halves the cost of this step.
# Accepted: one or more spaces after the stamp (macOS writes two; an empty host leaves two),
# "prog[pid]:", "prog:", "[prog]:", "[prog]" and rsyslog's colon-less "prog[pid] ".
HEADER_RE = (
    r"^(?P<_h>(?:<[0-9]{1,3}>)?(?:\[?(?P<cts>" + _CLASSIC + r")\]?|(?P<its>" + _ISO + r")) +" + _PRI_TAG
    + r"(?:(?P<host>" + _NAME + r") )?" + _FACILITY + r"\[?(?P<program>" + _NAME + r")"
    r"(?:\[(?P<pid>[0-9]{1,10})\](?:: ?| )|\]:? ?|: ?))"
)
# RFC 5424; the "<PRI>1 " prefix may be missing when a relay stripped it (the stamp is then required).
# Structured data: a "]" inside a quoted PARAM-VALUE should be escaped but often is not.
RFC5424_RE = (
    r"^(?:<[0-9]{1,3}>1 )?(?P<its>-|[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[^ ]+) (?P<host>[^ ]+) (?P<program>[^ ]+) "
    r'(?P<pid>[^ ]+) [^ ]+ (?:-|(?:\[(?:[^\]\\"]|\\.|"(?:[^"\\]|\\.)*")*\])+) ?(?P<msg>.*)$'
)
TS_HOST_RE = r"^(?:<[0-9]{1,3}>)?(?:\[?(?P<cts>" + _CLASSIC + r")\]?|(?P<its>" + _ISO + r")) +(?P<host>[^ ]+) (?P<msg>.*)$"
NO_TS_RE = r"^(?P<host>" + _NAME + r") (?P<program>" + _NAME + r")\[(?P<pid>[0-9]{1,10})\]: ?(?P<msg>.*)$"
REPEAT_RE = r"^message repeated (?P<n>[0-9]{1,9}) times: \[ ?(?P<inner>.*)\]$"
SOLARIS_RE = r"^\[ID [0-9]+ [a-z0-9]+\.[a-z]+\] "

_CONTROL = [chr(c) for c in range(0x20) if c != 0x09] + ["\x7f"]
_PICTURES = [chr(0x2400 + ord(c)) if c != "\x7f" else "\u2421" for c in _CONTROL]
_CONTROL_RE = r"[\x00-\x08\x0a-\x1f\x7f]"
_ODD_RE = r"[\x00-\x08\x0a-\x1f\x7f\x{fffd}]"


# ---------------------------------------------------------------------------------------------
# Years of classic timestamps


def month_numbers(cts: pl.Series) -> np.ndarray:
    """Month 1-12 of classic stamps, 0 where the row has none."""
    table = {m: i + 1 for i, m in enumerate(MONTHS)}
    return cts.str.slice(0, 3).replace_strict(table, default=0, return_dtype=pl.Int8).to_numpy()


def year_offsets(months: np.ndarray, carry: int = 0) -> tuple[np.ndarray, int, int]:
    """Relative year of each row from the sequence of months.

    Crossing from Nov/Dec to Jan/Feb between consecutive stamped rows adds a year; going back
    from Jan/Feb to Nov/Dec (interleaved hosts around midnight) takes it away again.
    ``carry`` is the month of the last stamped row before this batch (0: none).
    Returns (offsets per row, offset of the last row, month of the last stamped row).
    """
    has = months > 0
    stamped = months[has].astype(np.int16)
    if stamped.size == 0:
        return np.zeros(len(months), dtype=np.int32), 0, carry
    prev = np.concatenate(([carry], stamped[:-1]))
    delta = np.where((prev >= 11) & (stamped <= 2), 1, 0) - np.where((prev > 0) & (prev <= 2) & (stamped >= 11), 1, 0)
    cum = np.cumsum(delta, dtype=np.int32)
    out = np.zeros(len(months), dtype=np.int32)
    out[has] = cum
    # rows without a stamp take the offset of the stamped row before them
    idx = np.where(has, np.arange(len(months)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    return out, int(cum[-1]), int(stamped[-1])


def end_year(last_month: int, last_day: int, now: dt.datetime) -> int:
    """Year of the last classic stamp written no later than ``now`` (a day of slack for zones)."""
    if (last_month, last_day) > (now.month, now.day + 1):
        return now.year - 1
    return now.year


@dataclass
class YearState:
    """Carry-over between consecutive batches of one source."""

    year: int  # year of the first stamped row of the next batch (before its own wraps)
    month: int = 0  # month of the last stamped row seen

    @classmethod
    def for_lines(cls, cts: pl.Series, now: dt.datetime) -> YearState:
        months = month_numbers(cts)
        _, last_off, last_month = year_offsets(months)
        if last_month == 0:
            return cls(year=now.year)
        last = cts.filter(cts.is_not_null())[-1]
        return cls(year=end_year(last_month, int(last[4:6]), now) - last_off)


# ---------------------------------------------------------------------------------------------
# Helpers


def _classic_to_utc(cts: pl.Expr, year: pl.Expr, tz: str) -> pl.Expr:
    """'Jan  5 03:04:05' + year, local time in ``tz`` -> UTC (null for impossible dates)."""
    naive = pl.concat_str([year.cast(pl.String), cts], separator=" ").str.to_datetime(
        "%Y %b %e %H:%M:%S", strict=False, time_unit="us")
    return naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def _iso_to_utc(its: pl.Series, tz: str) -> pl.Series:
    """RFC 3339 / ISO 8601 stamps -> UTC. Stamps without an offset are local time in ``tz``."""
    fast = its.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us")
    redo = fast.is_null() & its.is_not_null()
    if not redo.any():
        return fast
    odd = its.filter(redo)
    norm = odd.str.replace(" ", "T", literal=True).str.replace(",", ".", literal=True).str.replace("Z", "+00:00", literal=True)
    norm = norm.str.replace(r"([+-][0-9]{2})([0-9]{2})$", "$1:$2")
    with_off = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us")
    naive = (
        norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return fast.scatter(redo.arg_true(), with_off.fill_null(naive))


@lru_cache(maxsize=65536)
def _remote(value: str) -> tuple[str | None, str | None]:
    """(ip, host) for a remote as written by a daemon."""
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    try:
        ip = ipaddress.ip_address(v)
    except ValueError:
        return None, value
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), None
    return str(ip), None


_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = r"^" + _IPV4_OCTET + r"(?:\." + _IPV4_OCTET + r"){3}$"


def _resolve_remotes(df: pl.DataFrame) -> pl.DataFrame:
    """Fill src_ip / src_host from the raw ``src`` / ``src_ip`` / ``src_host`` captures.

    Canonical dotted IPv4 is accepted as is (vectorised); everything else goes through
    :mod:`ipaddress` once per distinct value.
    """
    raw = pl.coalesce(pl.col("_src"), pl.col("src_ip"), pl.col("src_host"))
    df = df.with_columns(raw.alias("_src")).with_columns(pl.col("_src").str.contains(_CANONICAL_IPV4).alias("_v4"))
    uniq = df.filter(~pl.col("_v4")).get_column("_src").drop_nulls().unique().to_list()
    resolved = [_remote(u) for u in uniq]
    table = pl.DataFrame({"_src": uniq, "_ip": [r[0] for r in resolved], "_host": [r[1] for r in resolved]},
                         schema={"_src": pl.String, "_ip": pl.String, "_host": pl.String})
    df = df.join(table, on="_src", how="left", maintain_order="left")
    return df.with_columns(
        pl.when(pl.col("_v4")).then(pl.col("_src")).otherwise(pl.col("_ip")).alias("src_ip"),
        pl.when(pl.col("_v4")).then(None).otherwise(pl.col("_host")).alias("src_host"),
    ).drop("_src", "_v4", "_ip", "_host")


def _nonempty(e: pl.Expr) -> pl.Expr:
    return pl.when(e != "").then(e)


# ---------------------------------------------------------------------------------------------
# Classification


@dataclass(frozen=True)
class _CompiledPattern:
    """A pattern's polars expressions, built once per process (building them is not free)."""

    pattern: object
    prefix_filter: pl.Expr | None
    extract: pl.Expr
    output: tuple[pl.Expr, ...]


@dataclass(frozen=True)
class _CompiledFamily:
    family: Family
    condition: pl.Expr | None
    keyed: bool  # worth splitting its rows by first word
    patterns: tuple[_CompiledPattern, ...]


def _compile_pattern(pat, order: int) -> _CompiledPattern:
    prefix_filter = None
    if pat.prefixes:
        prefix_filter = pl.any_horizontal([pl.col("message").str.starts_with(x) for x in pat.prefixes])
    sources = pat.column_sources()
    cols = []
    for col in OUTPUT_COLUMNS + ("_src",):
        key = "src" if col == "_src" else col
        if key in sources:
            exprs = [_nonempty(pl.col("g").struct.field(g)) for g in sources[key]]
            cols.append((exprs[0] if len(exprs) == 1 else pl.coalesce(exprs)).alias(col))
        else:
            cols.append(pl.lit(None, dtype=pl.String).alias(col))
    output = (pl.col("_idx"), pl.lit(order, dtype=pl.Int32).alias("_order"), pl.lit(pat.id).alias("pattern"),
              pl.lit(pat.event).alias("event"), pl.lit(pat.outcome).alias("outcome"), *cols)
    extract = pl.col("message").str.extract_groups("^(?P<_m>)" + pat.regex[1:]).alias("g")
    return _CompiledPattern(pat, prefix_filter, extract, output)


@lru_cache(maxsize=1)
def _compiled() -> tuple[_CompiledFamily, ...]:
    out = []
    order = 0
    for fam in load_families():
        cond = None if fam.any_program else pl.col("program").is_in(list(fam.programs))
        if fam.message_prefix:
            pre = pl.col("message").str.starts_with(fam.message_prefix)
            cond = pre if cond is None else cond & pre
        pats = []
        for pat in fam.patterns:
            pats.append(_compile_pattern(pat, order))
            order += 1
        keyed = sum(1 for p in fam.patterns if p.prefixes) >= 4
        out.append(_CompiledFamily(fam, cond, keyed, tuple(pats)))
    return tuple(out)


_MATCHED = pl.col("g").struct.field("_m").is_not_null()


_FIRST_WORD_RE = r"^([^ (]*)"


def _candidate_keys(prefixes: tuple[str, ...], groups: dict) -> list[str]:
    """First words of messages that can start with one of ``prefixes``."""
    keys: set[str] = set()
    for p in prefixes:
        word = re.match(r"[^ (]*", p).group(0)
        if len(word) < len(p):  # the prefix contains the first word's end: exact key
            if word in groups:
                keys.add(word)
        else:  # the prefix is part of the first word
            keys.update(k for k in groups if k.startswith(p))
    return sorted(keys)


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Add event, outcome, pattern and the extracted field columns to ``frame``.

    ``frame`` needs ``program`` and ``message``; other columns pass through unchanged.
    """
    base = frame.with_row_index("_idx")
    msgs = base.select("_idx", "program", "message")
    parts: list[pl.LazyFrame] = []
    for fam in _compiled():
        fam_rows = msgs if fam.condition is None else msgs.filter(fam.condition)
        if fam_rows.height == 0:
            continue
        # Big families are split once by the message's first word, so that each pattern scans
        # only the rows that can start with its prefix (instead of one pass per pattern).
        groups = None
        if fam.keyed and fam_rows.height > 5000:
            keyed = fam_rows.with_columns(pl.col("message").str.extract(_FIRST_WORD_RE, 1).fill_null("").alias("_k"))
            groups = {k[0]: g for k, g in keyed.partition_by("_k", as_dict=True, include_key=False).items()}
        for cp in fam.patterns:
            if cp.prefix_filter is not None and groups is not None:
                keys = _candidate_keys(cp.pattern.prefixes, groups)
                if not keys:
                    continue
                rows = pl.concat([groups[k] for k in keys]).lazy()
            else:
                rows = fam_rows.lazy()
            if cp.prefix_filter is not None:
                rows = rows.filter(cp.prefix_filter)
            parts.append(rows.select("_idx", cp.extract).filter(_MATCHED).select(*cp.output))
    if not parts:
        parts.append(pl.LazyFrame(schema={"_idx": pl.UInt32, "_order": pl.Int32, "pattern": pl.String,
                                          "event": pl.String, "outcome": pl.String,
                                          **{c: pl.String for c in OUTPUT_COLUMNS}, "_src": pl.String}))
    matched = pl.concat(pl.collect_all(parts), how="vertical")
    dup = matched.get_column("_idx").is_duplicated()
    if dup.any():  # a line matched two patterns: the first in dispatch order wins
        first = matched.filter(dup).sort("_idx", "_order").unique(subset="_idx", keep="first")
        matched = pl.concat([matched.filter(~dup), first])
    matched = _resolve_remotes(matched.drop("_order"))
    out = base.drop([c for c in ("event", "outcome", "pattern", *OUTPUT_COLUMNS) if c in base.columns])
    out = out.join(matched, on="_idx", how="left", maintain_order="left")
    out = out.with_columns(
        *[pl.col(c).cast(pl.Int64, strict=False) for c in INT_COLUMNS],
        pl.col("event").fill_null("unknown"),
        pl.col("outcome").fill_null("unknown"),
    )
    return out.drop("_idx")


# ---------------------------------------------------------------------------------------------
# Lines -> events


def _flag(expr: pl.Expr, name: str) -> pl.Expr:
    return pl.when(expr).then(pl.lit(name))


def _patch(df: pl.DataFrame, fix: pl.DataFrame) -> pl.DataFrame:
    """Overwrite the non-null values of ``fix`` (rows located by its ``_i`` column) in ``df``."""
    idx = fix.get_column("_i")
    cols = []
    for name in fix.columns:
        if name == "_i" or name not in df.columns:
            continue
        values = fix.get_column(name)
        keep = values.is_not_null()
        if keep.any():
            col = df.get_column(name)
            cols.append(col.scatter(idx.filter(keep), values.filter(keep).cast(col.dtype)))
    return df.with_columns(cols) if cols else df


def split_lines(raw: pl.Series) -> pl.DataFrame:
    """Normalise raw lines and split the header: columns cts, its, host, program, pid, message, flags."""
    df = pl.DataFrame({"raw": raw.cast(pl.String)}).with_row_index("_i")
    df = df.with_columns(pl.lit(None, dtype=pl.String).alias("_f"))
    # One pass finds the rare lines that need care (CR, control bytes, undecodable bytes, length).
    odd = pl.col("raw").str.contains(_ODD_RE) | (pl.col("raw").str.len_bytes() > MAX_LINE)
    fixed = df.filter(odd)
    if fixed.height:
        fixed = fixed.with_columns(pl.col("raw").str.strip_suffix("\r")).with_columns(
            (pl.col("raw").str.len_chars() > MAX_LINE).alias("_long"),
            pl.col("raw").str.contains("\ufffd", literal=True).alias("_bad_utf8"),
            pl.col("raw").str.contains(_CONTROL_RE).alias("_ctrl"),
        ).with_columns(pl.col("raw").str.slice(0, MAX_LINE))
        flags = pl.concat_str([_flag(pl.col("_long"), "truncated"), _flag(pl.col("_bad_utf8"), "invalid_utf8"),
                               _flag(pl.col("_ctrl"), "control_chars")], separator=",", ignore_nulls=True)
        fixed = fixed.select(
            "_i",
            pl.when("_ctrl").then(pl.col("raw").str.replace_many(_CONTROL, _PICTURES)).otherwise("raw").alias("raw"),
            pl.when(flags != "").then(flags).alias("_f"),
        )
        df = _patch(df, fixed)
    df = df.drop("_i")
    hdr = df.select(pl.col("raw").str.extract_groups(HEADER_RE).alias("h")).unnest("h")
    df = pl.concat([df, hdr], how="horizontal").with_columns(
        pl.when(pl.col("_h").is_not_null()).then(pl.col("raw").str.slice(pl.col("_h").str.len_chars())).alias("msg")
    ).drop("_h").with_row_index("_i")
    missing = df.filter(pl.col("msg").is_null())
    if missing.height:
        fixes = []
        for regex in (RFC5424_RE, TS_HOST_RE, NO_TS_RE):
            if not missing.height:
                break
            got = missing.select("_i", pl.col("raw").str.extract_groups(regex).alias("h")).unnest("h")
            got = got.filter(pl.col("msg").is_not_null())
            fixes.append(got)
            missing = missing.join(got.select("_i"), on="_i", how="anti")
        # lines that match no header: the whole line is the message
        fixes.append(missing.select("_i", pl.col("raw").alias("msg"),
                                    pl.concat_str([pl.col("_f"), pl.lit("no_header")], separator=",",
                                                  ignore_nulls=True).alias("_f")))
        fix = pl.concat(fixes, how="diagonal_relaxed")
        df = _patch(df, fix)
        df = df.with_columns(pl.when(pl.col("pid") == "-").then(None).otherwise("pid").alias("pid"))
    df = df.with_columns(pl.col("pid").cast(pl.Int64, strict=False), pl.lit(1, pl.Int64).alias("count"))
    # message repeated N times: [ ... ]   and   Solaris "[ID 123 auth.info] "
    special = pl.col("msg").str.starts_with("message repeated ") | pl.col("msg").str.starts_with("[ID ")
    if df.select(special.any()).item():
        sub = df.filter(special).select("_i", "msg")
        rep = sub.with_columns(pl.col("msg").str.extract_groups(REPEAT_RE).alias("r")).with_columns(
            pl.coalesce(pl.col("r").struct.field("n").cast(pl.Int64, strict=False), pl.lit(1, pl.Int64)).alias("count"),
            pl.coalesce(pl.col("r").struct.field("inner").str.strip_suffix(" "), pl.col("msg"))
            .str.replace(SOLARIS_RE, "").alias("msg"),
        ).drop("r")
        df = _patch(df, rep)
    return df.select("cts", "its", "host", "program", "pid", pl.col("msg").alias("message"), "count",
                     pl.col("_f").alias("flags"))


def parse_lines(lines, *, tz: str = "UTC", now: dt.datetime | None = None, source: str | None = None,
                first_line: int = 1, year_state: YearState | None = None) -> pl.DataFrame:
    """Parse a batch of lines (list of str or a polars Series) into the event schema.

    Blank lines are skipped (their numbers are not reused). Classic stamps take their year from
    ``year_state`` when given (and it is advanced), else from ``now`` (required then).
    """
    return finish(prepare(lines, first_line), tz=tz, now=now, source=source, year_state=year_state)


def prepare(lines, first_line: int = 1) -> pl.DataFrame:
    """The time-independent, expensive half of parsing: header split and classification.

    Needs no state from earlier batches, so batches can be prepared in parallel (see
    :func:`secdash.sources.parse_batches`); :func:`finish` then adds the times in order.
    """
    raw = lines if isinstance(lines, pl.Series) else pl.Series("raw", lines, dtype=pl.String)
    numbered = pl.DataFrame({"raw": raw}).with_row_index("line", offset=first_line)
    numbered = numbered.filter(pl.col("raw").str.strip_chars(" \t\r\n") != "")
    parts = split_lines(numbered.get_column("raw"))
    parts = parts.with_columns(numbered.get_column("line").cast(pl.Int64).alias("line"))
    return classify(parts)


def finish(parts: pl.DataFrame, *, tz: str, now: dt.datetime | None, source: str | None,
           year_state: YearState | None) -> pl.DataFrame:
    """Prepared rows -> typed events: years of classic stamps, time zones, column order."""
    cts = parts.get_column("cts")
    if year_state is None:
        if cts.null_count() < len(cts):
            if now is None:
                raise ValueError("classic syslog timestamps need `now` (or a YearState) to infer the year")
            year_state = YearState.for_lines(cts, now)
        else:
            year_state = YearState(year=(now or dt.datetime(1970, 1, 1)).year)
    months = month_numbers(cts)
    offsets, last_off, last_month = year_offsets(months, year_state.month)
    years = pl.Series("_year", offsets + year_state.year, dtype=pl.Int64)
    year_state.year += last_off
    year_state.month = last_month
    df = parts.with_columns(years)
    df = df.with_columns(_iso_to_utc(df.get_column("its"), tz).alias("_iso"))
    df = df.with_columns(
        pl.when(pl.col("cts").is_not_null()).then(_classic_to_utc(pl.col("cts"), pl.col("_year"), tz))
        .otherwise(pl.col("_iso")).alias("ts")
    )
    # a stamp outside 1970..2999 is not a real event time (e.g. "0000-12-30"): null and flagged
    df = df.with_columns(pl.when(pl.col("ts").dt.year().is_between(1970, 2999)).then(pl.col("ts")).alias("ts"))
    bad_ts = (pl.col("cts").is_not_null() | pl.col("its").is_not_null()) & pl.col("ts").is_null()
    df = df.with_columns(
        pl.when(bad_ts).then(pl.concat_str([pl.col("flags"), pl.lit("bad_ts")], separator=",", ignore_nulls=True))
        .otherwise("flags").alias("flags"),
        pl.lit(source, dtype=pl.String).alias("source"),
    )
    return df.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])


def parse_records(records: pl.DataFrame) -> pl.DataFrame:
    """Records that arrive without a syslog header (journald) -> typed events.

    ``records`` has ts (UTC), host, program, pid, message, count, flags, source, line.
    """
    ctrl = pl.col("message").str.contains(_CONTROL_RE).fill_null(False)
    df = records.with_columns(
        pl.when(ctrl).then(pl.col("message").str.replace_many(_CONTROL, _PICTURES)).otherwise("message").alias("message"),
        pl.when(ctrl).then(pl.concat_str([pl.col("flags"), pl.lit("control_chars")], separator=",", ignore_nulls=True))
        .otherwise("flags").alias("flags"),
    ).with_columns(pl.col("message").fill_null(""))
    df = classify(df)
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items()])
