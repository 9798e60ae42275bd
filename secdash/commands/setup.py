"""``python -m secdash setup``: prepare the data directory for the quick start.

Runs a list of idempotent steps; each prints what it did.  ``./start.sh`` runs it on every start.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only what needs attention")


def _step_home(ctx: dict) -> None:
    """The data directory, private to this user (0700)."""
    import os

    from secdash import auth

    home = ctx["home"]
    existed = home.exists()
    auth.ensure_home(home)
    if not existed:
        os.chmod(home, 0o700)
        ctx["say"](f"created data directory {home}")


def _step_secrets(ctx: dict) -> None:
    """The cookie signing key: 32 random bytes in secrets.json (0600), generated once."""
    from secdash import auth

    existed = auth.secrets_path(ctx["home"]).exists()
    auth.load_secrets(ctx["home"], create=True)  # also refuses a weak or exposed key
    if not existed:
        ctx["say"](f"generated the cookie signing key in {auth.secrets_path(ctx['home'])}")


def _step_first_admin(ctx: dict) -> None:
    """When no account exists: 'admin' with a random password, shown once, only its hash stored."""
    import time

    from secdash import audit, auth

    home = ctx["home"]
    if auth.load_users(home):
        return
    password = auth.random_password()
    auth.add_user(home, "admin", password, "admin", now=time.time())
    audit.record(home, "user_add", user="setup", target="admin", role="admin")
    print("")
    print("  Created the dashboard account 'admin' with the password:")
    print("")
    print(f"      {password}")
    print("")
    print("  It is shown only this once (only its bcrypt hash is stored). Change it with:")
    print("      .venv/bin/python -m secdash users passwd admin")
    print("")


# ---------------------------------------------------------------------------------------------
# DATA STEP GOES HERE: append a step (e.g. ingest the readable system logs, or load demo data
# when none is readable) to STEPS below. Each step is a function taking ``ctx`` (keys: "home",
# "cfg", "args", "say") and must be safe to run on every start.
# ---------------------------------------------------------------------------------------------

def _step_data(ctx: dict) -> None:
    """Events for the dashboard: ingest the readable configured logs, or demo data when none is.

    Runs once: when the store already holds events, the dashboard's background ingester keeps it
    current from then on.
    """
    import time

    from secdash import demo
    from secdash.ingest import ingest_config
    from secdash.store import Store

    cfg = ctx["cfg"]
    store = Store.from_config(cfg)
    if store.exists() and store.count_events() > 0:
        return
    if demo.needed(cfg):
        ctx["say"]("no readable auth log among [sources] paths " + ", ".join(cfg.sources.paths) +
                   ": loading a generated month of DEMO data (python -m secdash demo)")
        result = demo.create(cfg.home)
        ctx["say"](f"demo data: {result.events:,} events for {len(result.hosts)} hosts")
        return
    started = time.monotonic()
    ctx["say"]("first ingest of " + ", ".join(cfg.sources.paths) + " (later runs only read new lines)")
    reports = ingest_config(cfg)
    for r in reports:
        if r.error and not r.missing:
            ctx["say"](f"  {r.source}: {r.error}")
    ctx["say"](f"ingested {sum(r.events for r in reports):,} events in {time.monotonic() - started:.1f} s")


STEPS = [_step_home, _step_secrets, _step_first_admin, _step_data]


def run(args) -> int:
    from secdash.config import load

    cfg = load()
    quiet = getattr(args, "quiet", False)
    ctx = {"home": cfg.home, "cfg": cfg, "args": args, "say": (lambda m: None) if quiet else print}
    for step in STEPS:
        step(ctx)
    return 0
