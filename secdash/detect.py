"""Detection rules: pure functions over event frames (polars), thresholds as data (``[detect]``).

Every alert has a rule id, a severity, a MITRE ATT&CK technique, an entity (address and/or user,
plus the hosts involved), first/last seen, a count and the ids of the events behind it.

Counting SSH attempts (one attempt is counted once)
----------------------------------------------------
One password guess over SSH writes several lines: ``pam_unix(sshd:auth): authentication
failure``, ``Failed password for ...``, for unknown accounts also ``Invalid user ...`` and
``pam_unix(sshd:auth): check pass; user unknown``, sometimes ``PAM N more authentication
failures``. All of them carry the pid of the sshd process serving the connection. So:

1. SSH failure lines (``ssh_failed_auth``, ``ssh_invalid_user``, sshd's ``auth_failure`` and
   ``auth_failure_summary``) are grouped by (host, pid); within a group, lines no further apart
   than ``attempt_gap_seconds`` (default 10 s) form one *cluster*. Lines without a pid are
   clusters of their own.
2. A cluster with ``Failed ...`` lines counts as the sum of their ``count`` (one connection may
   try several passwords; rsyslog's "message repeated N times" counts N). PAM and ``Invalid
   user`` lines of that cluster add nothing.
3. A cluster without ``Failed`` lines counts its PAM ``authentication failure`` lines plus the N
   of ``PAM N more authentication failures``; without those, its ``Invalid user`` lines
   (``Invalid user`` with no ``Failed`` line following: the client gave up or used a key);
   a cluster of only ``check pass; user unknown`` lines counts 1.
4. The attempt's time is the cluster's first line, its address the first address in the
   cluster, its user the user of the ``Failed``/``Invalid user`` line (else the PAM user).

sudo failures are counted the same way per (host, user) cluster: the larger of the N in
``N incorrect password attempts`` and the number of PAM ``authentication failure`` lines.

Windows and bursts
------------------
"N in W" means N attempts whose times lie within W seconds of each other (both ends inclusive).
Every attempt that ends such a window is a trigger; the windows of triggers of one entity that
overlap are merged into one alert (one alert per rule, entity and burst). Per-event rules (root
login, new address, account changes, ...) merge events of one entity no further apart than the
rule's merge gap.

Incremental evaluation (:func:`update`)
--------------------------------------
Alerts are kept in the store's ``alerts`` table with the last evaluated event id. New events
(ids above it) only re-evaluate the tail: alerts whose last event lies within two of the largest
windows before the oldest new event are recomputed from the events since then; older alerts are
final (adding events can only add triggers after that point, and a trigger's window reaches back
at most one window). A threshold change in the config recomputes everything.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    technique: str
    description: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("ssh.brute_force", "SSH brute force", "high", "T1110.001",
         "brute_force_attempts failed SSH attempts from one address within brute_force_window_seconds"),
    Rule("ssh.slow_brute_force", "Slow SSH brute force", "medium", "T1110.001",
         "slow_brute_force_attempts failed SSH attempts from one address within slow_brute_force_window_seconds"),
    Rule("ssh.password_spray", "Password spraying / user enumeration", "high", "T1110.003",
         "spray_users distinct usernames and spray_attempts failed attempts from one address within "
         "spray_window_seconds"),
    Rule("ssh.success_after_failures", "Successful login after failures", "critical", "T1110 → T1078",
         "a successful SSH login from an address (or for a user) with success_after_failures failed attempts "
         "in the success_after_failures_window_seconds before it"),
    Rule("ssh.root_login", "Root login over SSH", "high", "T1078.003", "sshd accepted a login as root"),
    Rule("ssh.new_source_ip", "Login from a new address", "low", "T1078",
         "a user with earlier logins logged in from an address never seen for them"),
    Rule("ssh.after_hours_login", "Login outside working hours", "low", "T1078",
         "a successful SSH login outside working_hours / working_days"),
    Rule("sudo.auth_failures", "sudo password failures", "medium", "T1548.003",
         "sudo_failures sudo authentication failures of one user on one host within sudo_failures_window_seconds"),
    Rule("sudo.not_in_sudoers", "sudo by a user NOT in sudoers", "high", "T1548.003",
         "sudo refused a user who is not in sudoers (or not allowed the command)"),
    Rule("account.user_created", "User account created", "medium", "T1136.001", "useradd/adduser created an account"),
    Rule("account.uid0_created", "UID 0 account created", "critical", "T1136.001",
         "an account with UID 0 (a second root) was created"),
    Rule("account.privileged_group", "User added to a privileged group", "critical", "T1098",
         "a user was added to one of privileged_groups (sudo, wheel, adm, ...)"),
]}

ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String,
    "rule": pl.String,
    "severity": pl.String,
    "technique": pl.String,
    "title": pl.String,
    "host": pl.String,  # comma list of hosts involved
    "ip": pl.String,
    "user": pl.String,
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "count": pl.Int64,
    "event_ids": pl.List(pl.Int64),
    "detail": pl.String,
}

# Events the rules read (everything else is never loaded).
SSH_FAILURE_EVENTS = ("ssh_failed_auth", "ssh_invalid_user", "auth_failure", "auth_failure_summary")
USED_EVENTS = (*SSH_FAILURE_EVENTS, "ssh_login", "sudo_auth_failure", "sudo_denied", "user_created",
               "group_member_added")
USED_COLUMNS = ("id", "ts", "host", "program", "pid", "event", "user", "target_user", "src_ip", "method", "uid",
                "group_name", "detail", "count", "pattern")

_US = 1_000_000


def empty_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema=ALERT_SCHEMA)


def _cfg_detect(cfg):
    """Accept a Config, a DetectConfig or None (defaults)."""
    from secdash.config import DetectConfig

    if cfg is None:
        return DetectConfig()
    return getattr(cfg, "detect", cfg)


def max_window_seconds(d) -> float:
    return max(d.brute_force_window_seconds, d.slow_brute_force_window_seconds, d.spray_window_seconds,
               d.success_after_failures_window_seconds, d.sudo_failures_window_seconds, MERGE_GAP_SECONDS)


# Merge gap of per-event rules: events of one entity closer than this are one alert.
MERGE_GAP_SECONDS = 3600.0
ACCOUNT_GAP_SECONDS = 60.0


def _prepare(events: pl.DataFrame) -> pl.DataFrame:
    """Select/cast the columns the rules need (missing ones are added as nulls)."""
    from secdash.events import SCHEMA

    cols = []
    for c in USED_COLUMNS:
        dtype = pl.Int64 if c == "id" else SCHEMA[c]
        if c in events.columns:
            cols.append(pl.col(c).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(c))
    out = events.select(cols).filter(pl.col("event").is_in(USED_EVENTS) & pl.col("ts").is_not_null())
    return out.with_columns(pl.col("count").fill_null(1).clip(lower_bound=1))


# ---------------------------------------------------------------------------------------------
# Attempts (deduplication)


def ssh_attempts(events: pl.DataFrame, cfg=None) -> pl.DataFrame:
    """One row per SSH authentication attempt cluster: ts, host, ip, user, weight, ids (see module doc)."""
    d = _cfg_detect(cfg)
    ev = _prepare(events)
    ssh = ev.filter(pl.col("event").is_in(SSH_FAILURE_EVENTS)
                    & (pl.col("program").str.starts_with("sshd") | pl.col("event").is_in(["ssh_failed_auth",
                                                                                          "ssh_invalid_user"]))
                    & (pl.col("pattern").fill_null("") != "sshd.pam_ignoring_retries"))
    if ssh.height == 0:
        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "host": pl.String, "ip": pl.String,
                                    "user": pl.String, "weight": pl.Int64, "ids": pl.List(pl.Int64)})
    gap = int(d.attempt_gap_seconds * _US)
    # one int64 connection key: host code in the high bits, pid (or a unique number) below
    host_code = pl.col("host").fill_null("").cast(pl.Categorical).to_physical().cast(pl.Int64)
    conn = pl.coalesce(pl.col("pid").cast(pl.Int64), (1 << 40) + pl.col("id"))
    ssh = ssh.with_columns((host_code * (1 << 42) + conn).alias("_k"),
                           pl.col("ts").dt.epoch("us").alias("_t"))
    ssh = ssh.sort(["_k", "_t", "id"])
    ssh = ssh.with_columns(
        (((pl.col("_t") - pl.col("_t").shift(1)) > gap) | (pl.col("_k") != pl.col("_k").shift(1)))
        .fill_null(True).cum_sum().alias("_cl"))
    is_failed = pl.col("event") == "ssh_failed_auth"
    # "check pass; user unknown" accompanies the pam_unix authentication failure of the same attempt
    is_pam = (pl.col("event") == "auth_failure") & ~pl.col("pattern").fill_null("").str.ends_with(".check_pass_unknown")
    is_more = pl.col("event") == "auth_failure_summary"
    is_invalid = pl.col("event") == "ssh_invalid_user"
    more_n = pl.col("detail").str.extract(r"^([0-9]+)$", 1).cast(pl.Int64, strict=False).fill_null(0)
    ssh = ssh.with_columns(
        pl.when(is_failed).then(pl.col("count")).otherwise(0).alias("_f"),
        pl.when(is_pam).then(pl.col("count")).when(is_more).then(more_n).otherwise(0).alias("_p"),
        pl.when(is_invalid).then(pl.col("count")).otherwise(0).alias("_i"),
        pl.when(is_failed | is_invalid).then(pl.col("user")).alias("_nu"))
    agg = ssh.group_by("_cl").agg(
        pl.col("ts").min().alias("ts"),
        pl.col("host").first().alias("host"),
        pl.col("src_ip").drop_nulls().first().alias("ip"),
        pl.col("_nu").drop_nulls().first().alias("_nu"),
        pl.col("user").drop_nulls().first().alias("_u"),
        pl.col("_f").sum(), pl.col("_p").sum(), pl.col("_i").sum(),
        pl.col("id").min().alias("_id0"),
        pl.col("id").alias("ids"),  # in time order
    ).with_columns(pl.coalesce("_nu", "_u").alias("user"))
    weight = (pl.when(pl.col("_f") > 0).then(pl.col("_f"))
              .when(pl.col("_p") > 0).then(pl.col("_p"))
              .when(pl.col("_i") > 0).then(pl.col("_i")).otherwise(1)).cast(pl.Int64)
    return agg.sort("ts", "_id0").select("ts", "host", "ip", "user", weight.alias("weight"), "ids")


def sudo_attempts(events: pl.DataFrame, cfg=None) -> pl.DataFrame:
    """One row per sudo failure cluster of (host, user): ts, host, user, weight, ids."""
    d = _cfg_detect(cfg)
    ev = _prepare(events)
    su = ev.filter((pl.col("event") == "sudo_auth_failure")
                   | ((pl.col("event") == "auth_failure") & pl.col("program").is_in(["sudo", "doas"]))
                   | ((pl.col("event") == "sudo_denied") & pl.col("detail").str.contains("incorrect password")))
    schema = {"ts": pl.Datetime("us", "UTC"), "host": pl.String, "user": pl.String, "weight": pl.Int64,
              "ids": pl.List(pl.Int64)}
    if su.height == 0:
        return pl.DataFrame(schema=schema)
    gap = int(max(d.attempt_gap_seconds, 60.0) * _US)
    su = su.sort(["host", "user", "ts", "id"], nulls_last=True)
    su = su.with_columns(
        ((pl.col("ts").diff().dt.total_microseconds() > gap).fill_null(True)
         | (pl.col("host") != pl.col("host").shift(1)).fill_null(True)
         | (pl.col("user") != pl.col("user").shift(1)).fill_null(True)).cum_sum().alias("_cl"))
    n = pl.col("detail").str.extract(r"^([0-9]+) incorrect", 1).cast(pl.Int64, strict=False)
    agg = su.group_by("_cl").agg(
        pl.col("ts").min().alias("ts"), pl.col("host").first().alias("host"),
        pl.col("user").first().alias("user"),
        (n * pl.col("count")).filter(n.is_not_null()).sum().alias("_n"),
        pl.col("count").filter(pl.col("event") == "auth_failure").sum().alias("_p"),
        pl.col("count").filter(n.is_null() & (pl.col("event") != "auth_failure")).sum().alias("_o"),
        pl.col("id").min().alias("_id0"), pl.col("id").alias("ids"))
    weight = pl.max_horizontal(pl.col("_n"), pl.col("_p"), pl.col("_o"), pl.lit(1)).cast(pl.Int64)
    return agg.sort("ts", "_id0").select("ts", "host", "user", weight.alias("weight"), "ids")


# ---------------------------------------------------------------------------------------------
# The window kernel


def _run_ids(rows: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Group number per row of a frame sorted by ``keys`` (a new number where any key changes)."""
    chg = pl.lit(False)
    for k in keys:
        chg = chg | pl.col(k).ne_missing(pl.col(k).shift(1))
    return rows.select(chg.fill_null(True).cum_sum().cast(pl.Int64)).to_series().to_numpy()


def _bursts(rows: pl.DataFrame, keys: list[str], window_s: float, threshold: int, *,
            extra: np.ndarray | None = None) -> tuple[pl.DataFrame, np.ndarray]:
    """Sort ``rows`` (ts, weight, ids, key columns) by key and time; return (sorted rows, burst id
    per row, -1 outside any burst). A row triggers when the weights in [t - window, t] (ties at t
    included) reach ``threshold`` (and ``extra`` for that row is true); overlapping trigger
    windows of one key merge into one burst."""
    rows = rows.sort([*keys, "ts"], nulls_last=True, maintain_order=True)
    n = rows.height
    if n == 0:
        return rows, np.zeros(0, dtype=np.int64)
    code = _run_ids(rows, keys)
    t = rows.get_column("ts").dt.epoch("us").to_numpy().astype(np.int64)
    w = rows.get_column("weight").to_numpy().astype(np.int64)
    win = round(window_s * _US)
    tmin = int(t.min())
    stride = int(t.max()) - tmin + 2 * win + 1
    k = code * stride + (t - tmin)
    j = np.searchsorted(k, k - win, side="left")
    e = np.searchsorted(k, k, side="right") - 1
    cum = np.concatenate([[0], np.cumsum(w)])
    cnt = cum[e + 1] - cum[j]
    trig = cnt >= threshold
    if extra is not None:
        trig &= extra
    ti = np.nonzero(trig)[0]
    bid = np.full(n, -1, dtype=np.int64)
    if ti.size == 0:
        return rows, bid
    tj, te = j[ti], e[ti]
    run_end = np.maximum.accumulate(te)
    new = np.concatenate([[True], tj[1:] > run_end[:-1]])
    starts = tj[new]
    group = np.cumsum(new) - 1
    ends = np.zeros(starts.size, dtype=np.int64)
    np.maximum.at(ends, group, te)
    mark = np.zeros(n + 1, dtype=np.int64)
    np.add.at(mark, starts, 1)
    np.add.at(mark, ends + 1, -1)
    inside = np.cumsum(mark)[:n] > 0
    sid = np.zeros(n + 1, dtype=np.int64)
    np.add.at(sid, starts, 1)
    bid[inside] = (np.cumsum(sid)[:n] - 1)[inside]
    return rows, bid


def _alerts_from(rows: pl.DataFrame, bid: np.ndarray, rule: str, *, ip: str | None, user: str | None,
                 hosts: str = "host", detail: pl.Expr | None = None,
                 count: pl.Expr | None = None) -> pl.DataFrame:
    if rows.height == 0 or not (bid >= 0).any():
        return empty_alerts()
    r = RULES[rule]
    rows = rows.with_columns(pl.Series("_b", bid)).filter(pl.col("_b") >= 0)
    aggs = [
        pl.col("ts").min().alias("first_seen"), pl.col("ts").max().alias("last_seen"),
        (count if count is not None else pl.col("weight").sum()).cast(pl.Int64).alias("count"),
        pl.col("ids").list.explode(keep_nulls=False, empty_as_null=False).unique().sort().alias("event_ids"),
        pl.col(hosts).drop_nulls().unique().sort().str.join(",").alias("host"),
        (pl.col(ip).drop_nulls().first() if ip else pl.lit(None, pl.String)).alias("ip"),
        (pl.col(user).drop_nulls().first() if user else pl.lit(None, pl.String)).alias("user"),
        (detail if detail is not None else pl.lit(None, pl.String)).alias("detail"),
    ]
    out = rows.group_by("_b").agg(aggs)
    out = out.with_columns(pl.lit(r.id).alias("rule"), pl.lit(r.severity).alias("severity"),
                           pl.lit(r.technique).alias("technique"), pl.lit(r.title).alias("title"))
    out = out.with_columns(pl.concat_str([pl.col("rule"), pl.col("ip").fill_null(""), pl.col("user").fill_null(""),
                                          pl.col("event_ids").list.first().cast(pl.String)], separator="|")
                           .alias("alert_id"))
    out = out.with_columns(pl.col("alert_id").map_elements(lambda s: hashlib.sha1(s.encode()).hexdigest()[:16],
                                                           return_dtype=pl.String))
    return out.select([pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()])


# ---------------------------------------------------------------------------------------------
# Rules


def _rule_brute(att: pl.DataFrame, d) -> list[pl.DataFrame]:
    out = []
    a = att.filter(pl.col("ip").is_not_null())
    users = pl.format("{} usernames tried", pl.col("user").drop_nulls().n_unique())
    for rule, n, w in (("ssh.brute_force", d.brute_force_attempts, d.brute_force_window_seconds),
                       ("ssh.slow_brute_force", d.slow_brute_force_attempts, d.slow_brute_force_window_seconds)):
        rows, bid = _bursts(a, ["ip"], w, n)
        out.append(_alerts_from(rows, bid, rule, ip="ip", user=None, detail=users))
    # spraying: attempts threshold first (cheap), distinct users only where it is reached
    rows, bid = _bursts(a, ["ip"], d.spray_window_seconds, d.spray_attempts)
    if rows.height and (bid >= 0).any():
        # only addresses that reach the attempt threshold can spray
        cand = rows.filter(pl.Series(bid >= 0)).get_column("ip").unique()
        rows = rows.filter(pl.col("ip").is_in(cand.implode()))
        win = f"{round(d.spray_window_seconds * _US)}us"
        distinct = (rows.with_row_index("_r")
                    .rolling(index_column="ts", period=win, closed="both", group_by="ip")
                    .agg(pl.col("user").drop_nulls().n_unique().alias("_u"), pl.col("_r").last().alias("_r")))
        # rolling returns one row per input row in (ip, ts) order; map back by row index
        u = np.zeros(rows.height, dtype=np.int64)
        ri = distinct.get_column("_r").to_numpy()
        u[ri] = distinct.get_column("_u").to_numpy()
        # ties: rows with the same (ip, ts) share one window -> use the max over ties
        tie = _run_ids(rows, ["ip", "ts"])
        umax = pl.DataFrame({"t": tie, "u": u}).select(pl.col("u").max().over("t")).to_series().to_numpy()
        rows2, bid = _bursts(rows, ["ip"], d.spray_window_seconds, d.spray_attempts, extra=umax >= d.spray_users)
        out.append(_alerts_from(rows2, bid, "ssh.password_spray", ip="ip", user=None, detail=users))
    return out


def _logins(ev: pl.DataFrame) -> pl.DataFrame:
    return (ev.filter(pl.col("event") == "ssh_login")
            .select("ts", "host", pl.col("src_ip").alias("ip"), "user", "method",
                    pl.col("count").alias("weight"), pl.concat_list(pl.col("id")).alias("ids"), "id")
            .sort("ts", "id"))


def _rule_success_after_failures(att: pl.DataFrame, logins: pl.DataFrame, d) -> pl.DataFrame:
    if logins.height == 0 or att.height == 0:
        return empty_alerts()
    win = round(d.success_after_failures_window_seconds * _US)
    n_login = logins.height
    cnt_total = np.zeros(n_login, dtype=np.int64)
    hit = np.zeros(n_login, dtype=bool)
    fail_ids: list[list[int]] = [[] for _ in range(n_login)]
    lt = logins.get_column("ts").dt.epoch("us").to_numpy()
    for col in ("ip", "user"):
        a = att.filter(pl.col(col).is_not_null()).sort(col, "ts")
        if a.height == 0:
            continue
        keys = pl.concat([a.get_column(col), logins.get_column(col)]).unique().drop_nulls().sort()
        kmap = pl.DataFrame({col: keys, "_c": np.arange(keys.len(), dtype=np.int64)})
        ac = a.join(kmap, on=col, how="left").get_column("_c").to_numpy()
        lc_ser = logins.select(col).join(kmap, on=col, how="left", maintain_order="left").get_column("_c")
        at = a.get_column("ts").dt.epoch("us").to_numpy()
        tmin = min(int(at.min()), int(lt.min()))
        stride = max(int(at.max()), int(lt.max())) - tmin + 2 * win + 1
        ka = ac * stride + (at - tmin)
        ok = lc_ser.is_not_null().to_numpy()
        lc = lc_ser.fill_null(0).to_numpy().astype(np.int64)
        kl = lc * stride + (lt - tmin)
        lo = np.searchsorted(ka, kl - win, side="left")
        hi = np.searchsorted(ka, kl, side="right")
        w = a.get_column("weight").to_numpy().astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(w)])
        cnt = np.where(ok, cum[hi] - cum[lo], 0)
        h = ok & (cnt >= d.success_after_failures)
        ids = a.get_column("ids")
        for i in np.nonzero(h)[0]:
            fail_ids[i].extend(ids.slice(int(lo[i]), int(hi[i] - lo[i])).explode().to_list())
        cnt_total = np.maximum(cnt_total, cnt)
        hit |= h
    if not hit.any():
        return empty_alerts()
    sel = np.nonzero(hit)[0]
    rows = logins[sel].with_columns(
        pl.Series("ids", [sorted(set(fail_ids[i]) | {int(logins["id"][int(i)])}) for i in sel],
                  dtype=pl.List(pl.Int64)),
        pl.Series("_fails", cnt_total[sel], dtype=pl.Int64),
        pl.lit(1, pl.Int64).alias("weight"))
    rows, bid = _bursts(rows, ["ip", "user"], d.success_after_failures_window_seconds, 1)
    return _alerts_from(rows, bid, "ssh.success_after_failures", ip="ip", user="user",
                        count=pl.col("_fails").max() + pl.col("weight").sum(),
                        detail=pl.format("{} failed attempts, then {} successful login(s)", pl.col("_fails").max(),
                                         pl.col("weight").sum()))


def _rule_login_events(logins: pl.DataFrame, d, zone: str, prior: pl.DataFrame | None) -> list[pl.DataFrame]:
    out = []
    if logins.height == 0:
        return out
    root = logins.filter(pl.col("user") == "root")
    rows, bid = _bursts(root, ["ip"], MERGE_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "ssh.root_login", ip="ip", user="user"))
    # new source address for a user with earlier logins
    lg = logins.filter(pl.col("user").is_not_null() & pl.col("ip").is_not_null())
    if prior is None or prior.height == 0:
        prior = pl.DataFrame(schema={"user": pl.String, "ip": pl.String})
    prior_users = prior.select("user").unique().with_columns(pl.lit(True).alias("_pu"))
    prior_pairs = prior.select("user", "ip").unique().with_columns(pl.lit(True).alias("_pp"))
    lg = (lg.with_columns(pl.int_range(pl.len()).over("user").alias("_nth_user"),
                          pl.int_range(pl.len()).over("user", "ip").alias("_nth_pair"))
          .join(prior_users, on="user", how="left").join(prior_pairs, on=["user", "ip"], how="left"))
    new = lg.filter((pl.col("_nth_pair") == 0) & pl.col("_pp").is_null()
                    & ((pl.col("_nth_user") > 0) | pl.col("_pu").fill_null(False)))
    rows, bid = _bursts(new.select(logins.columns), ["user", "ip"], MERGE_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "ssh.new_source_ip", ip="ip", user="user"))
    # after hours
    h0, h1 = d.working_hours.split("-")
    start_min = int(h0[:2]) * 60 + int(h0[3:])
    end_min = int(h1[:2]) * 60 + int(h1[3:])
    days = {x.lower()[:3] for x in d.working_days}
    day_nums = [i + 1 for i, n in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")) if n in days]
    local = pl.col("ts").dt.convert_time_zone(d.working_zone or zone)
    minute = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)
    inside = local.dt.weekday().is_in(day_nums) & (minute >= start_min) & (minute < end_min)
    ah = logins.filter(~inside & ~pl.col("user").is_in(list(d.after_hours_ignore_users)).fill_null(False))
    rows, bid = _bursts(ah, ["user"], MERGE_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "ssh.after_hours_login", ip="ip", user="user"))
    return out


def _single(ev: pl.DataFrame, cond: pl.Expr, user: pl.Expr) -> pl.DataFrame:
    return (ev.filter(cond).select("ts", "host", user.alias("user"), pl.col("src_ip").alias("ip"),
                                   "group_name", "uid", pl.col("count").alias("weight"),
                                   pl.concat_list(pl.col("id")).alias("ids")))


def _rule_sudo_accounts(ev: pl.DataFrame, d) -> list[pl.DataFrame]:
    out = []
    sa = sudo_attempts(ev, d)
    rows, bid = _bursts(sa, ["host", "user"], d.sudo_failures_window_seconds, d.sudo_failures)
    out.append(_alerts_from(rows, bid, "sudo.auth_failures", ip=None, user="user"))
    denied = _single(ev, pl.col("event") == "sudo_denied", pl.col("user"))
    rows, bid = _bursts(denied, ["host", "user"], MERGE_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "sudo.not_in_sudoers", ip=None, user="user"))
    # The dashboard's own accounts (program "secdash", from its audit log) are not system accounts.
    system = pl.col("program").fill_null("") != "secdash"
    created = _single(ev, (pl.col("event") == "user_created") & system, pl.coalesce("target_user", "user"))
    uid0 = pl.col("uid") == 0
    rows, bid = _bursts(created.filter(~uid0.fill_null(False)), ["host", "user"], ACCOUNT_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "account.user_created", ip=None, user="user"))
    rows, bid = _bursts(created.filter(uid0.fill_null(False)), ["host", "user"], ACCOUNT_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "account.uid0_created", ip=None, user="user"))
    groups = [g.lower() for g in d.privileged_groups]
    added = _single(ev, (pl.col("event") == "group_member_added")
                    & pl.col("group_name").str.to_lowercase().is_in(groups), pl.coalesce("target_user", "user"))
    rows, bid = _bursts(added, ["host", "user", "group_name"], ACCOUNT_GAP_SECONDS, 1)
    out.append(_alerts_from(rows, bid, "account.privileged_group", ip=None, user="user",
                            detail=pl.format("added to {}", pl.col("group_name").first())))
    return out


def evaluate(events: pl.DataFrame, cfg=None, *, zone: str = "UTC", prior_logins: pl.DataFrame | None = None,
             rules: set[str] | None = None) -> pl.DataFrame:
    """All alerts of ``events`` (a frame in the event schema with an ``id`` column).

    ``prior_logins`` (user, ip) are logins before these events (for the new-address rule).
    Returns the alert frame (:data:`ALERT_SCHEMA`), most severe and newest first.
    """
    d = _cfg_detect(cfg)
    if hasattr(cfg, "display_zone") and zone == "UTC":
        zone = cfg.display_zone
    ev = _prepare(events)
    att = ssh_attempts(ev, d)
    logins = _logins(ev)
    parts = [*_rule_brute(att, d), _rule_success_after_failures(att, logins, d),
             *_rule_login_events(logins, d, zone, prior_logins), *_rule_sudo_accounts(ev, d)]
    out = pl.concat([p for p in parts if p.height], how="vertical") if any(p.height for p in parts) \
        else empty_alerts()
    skip = set(d.disabled_rules)
    if rules is not None:
        skip |= set(RULES) - set(rules)
    if skip:
        out = out.filter(~pl.col("rule").is_in(list(skip)))
    return sort_alerts(out)


def sort_alerts(alerts: pl.DataFrame) -> pl.DataFrame:
    return (alerts.with_columns(pl.col("severity").replace_strict(SEVERITY_RANK, default=9).alias("_s"))
            .sort(["_s", "last_seen", "alert_id"], descending=[False, True, False]).drop("_s"))


def count_by_rule(alerts: pl.DataFrame) -> dict[str, int]:
    return dict(alerts.group_by("rule").len().iter_rows()) if alerts.height else {}


# ---------------------------------------------------------------------------------------------
# Store integration (incremental)

ALERTS_DDL = """CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR, rule VARCHAR, severity VARCHAR, technique VARCHAR, title VARCHAR, host VARCHAR,
    ip VARCHAR, "user" VARCHAR, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, count BIGINT,
    event_ids BIGINT[], detail VARCHAR)"""
META_LAST_ID = "detect_last_id"
META_CONFIG = "detect_config"


def config_fingerprint(d, zone: str) -> str:
    return hashlib.sha1(json.dumps([asdict(d), zone], sort_keys=True, default=str).encode()).hexdigest()


def load_events(con, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                min_id: int | None = None) -> pl.DataFrame:
    """The events the rules read (only the used event types and columns), as polars."""
    from secdash.store import read_events

    return read_events(con, USED_EVENTS, USED_COLUMNS, since=since, until=until,
                       min_id=int(min_id) if min_id is not None else None)


def _scalar(con, sql: str, params=()):
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def _prior_logins(con, before: dt.datetime) -> pl.DataFrame:
    tbl = con.sql('SELECT DISTINCT "user", src_ip AS ip FROM events WHERE event = \'ssh_login\' AND ts < ? '
                      'AND "user" IS NOT NULL AND src_ip IS NOT NULL', params=[before]).to_arrow_table()
    return pl.from_arrow(tbl)


def _write_alerts(con, alerts: pl.DataFrame) -> None:
    if alerts.height == 0:
        return
    con.register("_new_alerts", alerts.to_arrow())
    try:
        cols = ", ".join(f'"{c}"' for c in ALERT_SCHEMA)
        con.execute(f"INSERT INTO alerts ({cols}) SELECT {cols} FROM _new_alerts")
    finally:
        con.unregister("_new_alerts")


@dataclass
class UpdateResult:
    mode: str  # "full", "incremental", "none"
    new_events: int
    alerts: int
    seconds: float


def update(store, cfg=None) -> UpdateResult:
    """Bring the store's ``alerts`` table up to date with its events (incrementally when possible)."""
    import time

    from secdash.store import get_meta, set_meta

    t0 = time.perf_counter()
    d = _cfg_detect(cfg)
    zone = getattr(cfg, "display_zone", "UTC") if cfg is not None and hasattr(cfg, "display_zone") else "UTC"
    fp = config_fingerprint(d, zone)
    with store.write() as con:
        con.execute(ALERTS_DDL)
        last_id = int(get_meta(con, META_LAST_ID, "0") or 0)
        same_cfg = get_meta(con, META_CONFIG) == fp
        max_id = _scalar(con, "SELECT coalesce(max(id), 0) FROM events")
        if same_cfg and max_id <= last_id:
            n = _scalar(con, "SELECT count(*) FROM alerts")
            return UpdateResult("none", 0, int(n), time.perf_counter() - t0)
        if not same_cfg or last_id == 0:
            ev = load_events(con)
            alerts = evaluate(ev, d, zone=zone)
            con.begin()
            con.execute("DELETE FROM alerts")
            _write_alerts(con, alerts)
            set_meta(con, META_LAST_ID, str(max_id))
            set_meta(con, META_CONFIG, fp)
            con.commit()
            return UpdateResult("full", int(max_id - last_id), alerts.height, time.perf_counter() - t0)
        tn = _scalar(con, "SELECT min(ts) FROM events WHERE id > ? AND ts IS NOT NULL", [last_id])
        new_events = int(_scalar(con, "SELECT count(*) FROM events WHERE id > ?", [last_id]))
        if tn is None:
            set_meta(con, META_LAST_ID, str(max_id))
            n = _scalar(con, "SELECT count(*) FROM alerts")
            return UpdateResult("incremental", new_events, int(n), time.perf_counter() - t0)
        wmax = dt.timedelta(seconds=max_window_seconds(d))
        cut = tn - 2 * wmax
        open_first = _scalar(con, "SELECT min(first_seen) FROM alerts WHERE last_seen >= ?", [cut])
        start = min(cut, open_first) if open_first is not None else cut
        slice_start = start - wmax
        ev = load_events(con, since=slice_start)
        prior = _prior_logins(con, slice_start)
        fresh = evaluate(ev, d, zone=zone, prior_logins=prior)
        fresh = fresh.filter(pl.col("last_seen") >= cut)
        con.begin()
        con.execute("DELETE FROM alerts WHERE last_seen >= ?", [cut])
        _write_alerts(con, fresh)
        set_meta(con, META_LAST_ID, str(max_id))
        con.commit()
        n = _scalar(con, "SELECT count(*) FROM alerts")
    return UpdateResult("incremental", new_events, int(n), time.perf_counter() - t0)


def read_alerts(store, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> pl.DataFrame:
    """Stored alerts overlapping [since, until) (most severe, newest first)."""
    where, params = [], []
    if since is not None:
        where.append("last_seen >= ?")
        params.append(since)
    if until is not None:
        where.append("first_seen < ?")
        params.append(until)
    cols = ", ".join(f'"{c}"' for c in ALERT_SCHEMA)
    with store.read() as con:
        exists = _scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'alerts'")
        if not exists:
            return empty_alerts()
        tbl = con.sql(f"SELECT {cols} FROM alerts" + (" WHERE " + " AND ".join(where) if where else ""),
                          params=params).to_arrow_table()
    df = pl.from_arrow(tbl)
    if df.height == 0:
        return empty_alerts()
    return sort_alerts(df.select([pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()]))


def alerts_for(store, cfg=None, *, since=None, until=None) -> pl.DataFrame:
    """Update, then read the alerts (the CLI and the pages use this)."""
    update(store, cfg)
    return read_alerts(store, since=since, until=until)


def to_records(alerts: pl.DataFrame) -> list[dict]:
    """JSON-friendly rows: times as ISO 8601 UTC with Z."""
    out = []
    for row in alerts.iter_rows(named=True):
        for k in ("first_seen", "last_seen"):
            if row[k] is not None:
                row[k] = iso_z(row[k])
        out.append(row)
    return out


def iso_z(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



# ---------------------------------------------------------------------------------------------
# Helpers for the pages: raw lines of an alert, "what if" thresholds, saving thresholds

LINE_COLUMNS = ("id", "ts", "host", "program", "pid", "event", "outcome", "user", "target_user", "src_ip", "message")


def event_rows(store, ids, *, limit: int = 500):
    """The stored events with these ids (time order, at most ``limit``) as a pandas frame."""
    from secdash.store import _frame, q

    ids = [int(i) for i in list(ids)[: max(0, int(limit))]]
    cols = ", ".join("id" if c == "id" else q(c) for c in LINE_COLUMNS)
    if not ids:
        with store.read() as con:
            return _frame(con, f"SELECT {cols} FROM events WHERE false")
    with store.read() as con:
        return _frame(con, f"SELECT {cols} FROM events WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY ts, id",
                      [ids])


def link_params(lines) -> dict[str, list[str]]:
    """Events-page query parameters selecting these lines (pandas frame of :func:`event_rows`):
    their time span in whole minutes (ISO UTC), event types, hosts, and the address when all lines
    share one."""
    if lines is None or len(lines) == 0:
        return {}
    # whole minutes (the Events page's time widgets have minute precision): since = the first
    # line's minute, until = the minute after the last line
    first = lines["ts"].min().to_pydatetime().replace(second=0, microsecond=0)
    last = lines["ts"].max().to_pydatetime().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    out: dict[str, list[str]] = {"since": [iso_z(first)], "until": [iso_z(last)],
                                 "event": sorted(set(lines["event"].dropna()))}
    hosts = sorted(set(lines["host"].dropna()))
    if hosts:
        out["host"] = hosts
    ips = set(lines["src_ip"].dropna())
    if len(ips) == 1 and lines["src_ip"].notna().all():
        out["ip"] = sorted(ips)
    return out


# rule -> (threshold setting, window setting) for the "what if" control
TUNABLE: dict[str, tuple[str, str]] = {
    "ssh.brute_force": ("brute_force_attempts", "brute_force_window_seconds"),
    "ssh.slow_brute_force": ("slow_brute_force_attempts", "slow_brute_force_window_seconds"),
    "ssh.password_spray": ("spray_attempts", "spray_window_seconds"),
    "ssh.success_after_failures": ("success_after_failures", "success_after_failures_window_seconds"),
    "sudo.auth_failures": ("sudo_failures", "sudo_failures_window_seconds"),
}


def what_if(events: pl.DataFrame, cfg, rule: str, threshold: int, window_seconds: float, *,
            zone: str = "UTC") -> int:
    """How many ``rule`` alerts ``events`` would give with another threshold / window."""
    from dataclasses import replace

    d = _cfg_detect(cfg)
    n_key, w_key = TUNABLE[rule]
    d2 = replace(d, **{n_key: int(threshold), w_key: float(window_seconds)}, disabled_rules=[])
    return evaluate(events, d2, zone=zone, rules={rule}).height


def save_settings(home, values: dict[str, int | float]) -> None:
    """Write ``[detect]`` settings into ``config.toml`` (other lines and comments kept; validated
    before the atomic replace)."""
    import os
    import re
    import tempfile
    from pathlib import Path

    from secdash import config

    path = Path(home) / config.CONFIG_NAME
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "[detect]"), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append("[detect]")
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for key, value in values.items():
        if not re.fullmatch(r"[a-z_]+", key):
            raise ValueError(f"not a setting name: {key!r}")
        new_line = f"{key} = {value!r}"
        idx = next((i for i in range(start + 1, end) if re.match(rf"\s*{key}\s*=", lines[i])), None)
        if idx is None:
            lines.insert(end, new_line)
            end += 1
        else:
            lines[idx] = new_line
    new_text = "\n".join(lines).rstrip("\n") + "\n"
    config.parse(new_text, home=Path(home), origin=str(path))  # raises ConfigError, nothing written
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = ["ALERT_SCHEMA", "RULES", "SEVERITIES", "Rule", "alerts_for", "evaluate", "read_alerts", "ssh_attempts",
           "sudo_attempts", "to_records", "update"]
