"""Command line: ``python -m secdash COMMAND ...``.

Each command lives in ``secdash/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``. Command modules import heavy libraries (duckdb, polars, streamlit) inside
``run`` only, so building the parser stays cheap and ``--help`` works everywhere.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from secdash.config import ConfigError
from secdash.errors import SecdashError

# name -> one-line help. Order is the order shown by --help.
COMMANDS: dict[str, str] = {
    "parse": "parse log files into typed events (jsonl or csv on stdout)",
    "explain": "show which pattern matched how many lines, and samples of unknown lines",
    "ingest": "ingest the configured (or given) log sources into the event store",
    "export": "write filtered events from the store as csv or jsonl",
    "demo": "fill the data directory with a generated month of demo events",
    "users": "manage dashboard accounts (add, passwd, role, remove, list)",
    "metrics": "print one sample of the live system metrics",
    "alerts": "print the detection alerts for the store",
    "setup": "prepare the data directory (config, secrets, first admin, data) for the dashboard",
}


def _available() -> dict[str, str]:
    here = os.path.join(os.path.dirname(__file__), "commands")
    return {n: h for n, h in COMMANDS.items() if os.path.exists(os.path.join(here, f"{n}.py"))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m secdash", description="secdash command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in _available().items():
        module = importlib.import_module(f"secdash.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (SecdashError, ConfigError) as exc:
        print(f"secdash {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"secdash {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno != errno.EPIPE and "Broken pipe" not in str(exc):
            print(f"secdash {args.command}: error: {exc}", file=sys.stderr)
            return 1
        # stdout closed early (e.g. piped into head): not an error worth a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0
