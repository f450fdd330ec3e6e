"""The command line: ``outbox`` and its sub-commands.

Objects are wired here and in the window's start-up, nowhere else. Every
command module has ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. Imports stay lazy: ``outbox sendmail`` is started once
per message by mail clients and must not pay for Qt or aiosmtplib.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from relay import __version__
from relay.errors import OutboxError

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    import argparse

#: Names under which ``outbox`` is that program (a symlink on PATH or /usr/sbin/sendmail).
_SENDMAIL_NAMES = frozenset({"sendmail", "mailq", "newaliases"})

COMMAND_MODULES = (
    "relay.commands.intake",
    "relay.commands.manage",
    "relay.commands.flush",
    "relay.commands.account",
    "relay.commands.alias",
    "relay.commands.gui",
    "relay.commands.desktop",
    "relay.commands.check",
    "relay.commands.purge",
)


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(
        prog="outbox",
        description="A desktop outbox for e-mail. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"outbox {__version__}")
    from relay.home import HOME_ENV, default_home

    parser.add_argument(
        "--home",
        metavar="DIR",
        help=f"the outbox's data directory (default: ${HOME_ENV} if set, else {default_home()})",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Dispatched by hand before argparse (sendmail's flags are not argparse's): listed for --help.
    subparsers.add_parser(
        "sendmail", add_help=False, help="take a message on stdin as sendmail does (-t -i -f …)"
    )
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group not built yet
        module.register(subparsers)
    return parser


def _split_home(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--home DIR`` / ``--home=DIR`` from anywhere before a ``--``."""
    home = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--home" and i + 1 < len(argv):
            home = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--home="):
            home = arg.split("=", 1)[1]
            i += 1
            continue
        rest.append(arg)
        i += 1
    return home, rest


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    os.umask(0o077)  # everything Outbox writes holds unsent mail or settings: owner only
    home, args_list = _split_home(args_list)
    invoked_as = os.path.basename(sys.argv[0]) if argv is None else "outbox"
    try:
        if invoked_as in _SENDMAIL_NAMES or (args_list and args_list[0] == "sendmail"):
            from relay.commands import sendmail

            if invoked_as in _SENDMAIL_NAMES:
                # Run as sendmail, mailq or newaliases (a symlink): that program's arguments.
                sendmail_args = sendmail.program_arguments(invoked_as, args_list)
                assert sendmail_args is not None
                args_list = sendmail_args
            else:
                args_list = args_list[1:]
            return sendmail.run(args_list, home)
        parser = build_parser()
        if not args_list:
            args_list = ["gui"]
        args = parser.parse_args(args_list)
        args.home = home
        code: int = args.func(args)
        return code
    except OutboxError as exc:
        print(f"outbox: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("outbox: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        problem = _machine_problem(exc, home)
        if problem is None:
            raise
        print(f"outbox: {problem}", file=sys.stderr)
        return problem.exit_code


def _machine_problem(exc: Exception, home_arg: str | None) -> OutboxError | None:
    """``exc`` told as a problem of the machine (``relay.machineproblems``), or None."""
    from relay.home import resolve_home
    from relay.machineproblems import explain
    from relay.store.database import DB_NAME

    try:
        home = resolve_home(home_arg)
    except OutboxError:
        home = None
    return explain(exc, store=home / DB_NAME if home else None, home=home)


if __name__ == "__main__":
    sys.exit(main())
