"""``python -m secdash users add|passwd|role|remove|list``: manage dashboard accounts.

Passwords are read with getpass (asked twice) or, with ``--password-stdin``, as the first line
of standard input (only the line break is removed: the password is used exactly as typed).
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("add", help="create an account", description="create an account")
    p.add_argument("name", metavar="NAME", help="username (lowercase letters, digits, . _ -)")
    p.add_argument("--role", required=True, choices=["admin", "analyst"], help="what the account may see")
    p.add_argument("--display-name", default="", help="name shown in the dashboard (default: NAME)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    p = sub.add_parser("passwd", help="set a new password (ends the user's sessions)",
                       description="set a new password; every session of the user ends")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    p = sub.add_parser("role", help="change an account's role (ends its sessions)",
                       description="change an account's role; every session of the user ends")
    p.add_argument("name", metavar="NAME")
    p.add_argument("role", choices=["admin", "analyst"])
    p = sub.add_parser("remove", help="delete an account (ends its sessions)", description="delete an account")
    p.add_argument("name", metavar="NAME")
    sub.add_parser("list", help="list accounts", description="list accounts")


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry for the uid
        return "cli"


def _read_password(args, name: str) -> str:
    import getpass
    import sys

    from secdash.auth import check_password
    from secdash.errors import SecdashError

    if args.password_stdin:
        line = sys.stdin.readline()
        if line.endswith("\n"):
            line = line[:-1]
            if line.endswith("\r"):
                line = line[:-1]
        password = line
    else:
        if not sys.stdin.isatty():
            raise SecdashError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass(f"Password for {name}: ")
        problems = check_password(password, name)
        if problems:
            raise SecdashError("password " + "; ".join(problems))
        if getpass.getpass("Repeat the password: ") != password:
            raise SecdashError("the two passwords differ")
    if not password:
        raise SecdashError("empty password")
    return password


def run(args) -> int:
    import time

    from secdash import audit, auth
    from secdash.config import load

    cfg = load()
    home = auth.ensure_home(cfg.home)
    now = time.time()
    if args.action == "add":
        auth.check_username(args.name)
        if args.name in auth.load_users(home):
            raise auth.AuthError(f"user {args.name!r} already exists (use 'passwd' to change the password)")
        password = _read_password(args, args.name)
        auth.add_user(home, args.name, password, args.role, name=args.display_name, now=now)
        audit.record(home, "user_add", user=_actor(), target=args.name, role=args.role)
        print(f"added {args.role} {args.name}")
    elif args.action == "passwd":
        if args.name not in auth.load_users(home):
            raise auth.AuthError(f"no such user {args.name!r}")
        password = _read_password(args, args.name)
        auth.set_password(home, args.name, password, now=now)
        audit.record(home, "password_change", user=_actor(), target=args.name)
        print(f"password of {args.name} changed; their dashboard sessions have ended")
    elif args.action == "role":
        auth.set_role(home, args.name, args.role)
        audit.record(home, "user_role", user=_actor(), target=args.name, role=args.role)
        print(f"{args.name} is now {args.role}; their dashboard sessions have ended")
    elif args.action == "remove":
        auth.remove_user(home, args.name)
        audit.record(home, "user_remove", user=_actor(), target=args.name)
        print(f"removed {args.name}")
    else:
        users = auth.load_users(home)
        if not users:
            print("no accounts (create the first with: python -m secdash setup)")
            return 0
        width = max(8, *(len(u) for u in users))
        print(f"{'USERNAME':<{width}}  {'ROLE':<8}  PASSWORD CHANGED (UTC)")
        for u in sorted(users.values(), key=lambda u: u.username):
            changed = time.strftime("%Y-%m-%d %H:%M", time.gmtime(u.password_changed)) if u.password_changed else "-"
            print(f"{u.username:<{width}}  {u.role:<8}  {changed}")
    return 0
