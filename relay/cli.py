"""The command line: ``outbox`` and its sub-commands.

Objects are wired here and in the window's start-up, nowhere else. Every
command module has ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. Imports stay lazy: ``outbox sendmail`` is started once
per message by mail clients and must not pay for Qt or aiosmtplib, and every
other command imports its own module only (``COMMANDS``, ``parser_for``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from relay import __version__
from relay.errors import OutboxError, UsageError

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    import argparse
    from pathlib import Path

#: Names under which ``outbox`` is that program (a symlink on PATH or /usr/sbin/sendmail).
_SENDMAIL_NAMES = frozenset({"sendmail", "mailq", "newaliases"})

#: Every command in the order ``outbox --help`` lists them: the module that
#: registers it and its line of help there. Only the module of the command being
#: run is imported (``parser_for``): ``outbox flush`` pays for the flush, not for
#: the window's, the accounts' or OAuth2's modules. A test holds each line to the
#: one its module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "enqueue": ("relay.commands.intake", "store RFC 5322 message files in the outbox"),
    "list": ("relay.commands.manage", "list the messages in the outbox"),
    "show": ("relay.commands.manage", "show one message, its recipients and attempts"),
    "hold": ("relay.commands.manage", "keep messages out of every flush"),
    "release": ("relay.commands.manage", "let held messages go again"),
    "delete": ("relay.commands.manage", "remove messages from the outbox"),
    "retry": (
        "relay.commands.manage",
        "make messages due now (every recipient not yet sent is owed again)",
    ),
    "flush": (
        "relay.commands.flush",
        "send what is due (or the given messages, whatever their back-off)",
    ),
    "account": (
        "relay.commands.account",
        "add, change, list, test and remove the accounts mail goes out through",
    ),
    "alias": ("relay.commands.alias", "where mail to a local name (root, a cron job's user) goes"),
    "gui": ("relay.commands.gui", "open the window (the default without a command)"),
    "desktop": (
        "relay.commands.desktop",
        "add Outbox to (or remove it from) the desktop's application menu",
    ),
    "check": (
        "relay.commands.check",
        "check the store's integrity (and set a damaged one aside with --repair)",
    ),
    "purge": (
        "relay.commands.purge",
        "remove sent messages (all, or those older than --older-than DAYS)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every command's module imported (for help texts and tests)."""
    return _parser(frozenset(module for module, _ in COMMANDS.values()))


def parser_for(args: Sequence[str]) -> argparse.ArgumentParser:
    """A parser that reads ``args`` exactly as ``build_parser()``'s would.

    Only the module of the command ``args`` name is imported; every other
    command is a stand-in with the same name and help line, which is all that
    ``outbox --help`` and an unknown command's error show of it. The options
    before a command are flags only (``--home`` was taken out before), so the
    first word that is not one names the command.

    The default home is worked out (``platformdirs`` where ``relay.home`` does
    not answer itself: ~20 ms) only when ``outbox``'s own help may be shown,
    the one text that names it: when a flag comes before the command, or there
    is none.
    """
    command = next((arg for arg in args if not arg.startswith("-")), None)
    chosen = COMMANDS.get(command or "")
    flags_first = command is None or args.index(command) > 0
    return _parser(
        frozenset({chosen[0]}) if chosen else frozenset(), default_home_shown=flags_first
    )


def _parser(modules: frozenset[str], *, default_home_shown: bool = True) -> argparse.ArgumentParser:
    """The parser with the commands of ``modules`` in full, stand-ins for the rest."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(
        prog="outbox",
        description="A desktop outbox for e-mail. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"outbox {__version__}")
    from relay.home import HOME_ENV, default_home

    default = default_home() if default_home_shown else "the user's data directory"
    parser.add_argument(
        "--home",
        metavar="DIR",
        help=f"the outbox's data directory (default: ${HOME_ENV} if set, else {default})",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Dispatched by hand before argparse (sendmail's flags are not argparse's): listed for --help.
    subparsers.add_parser(
        "sendmail", add_help=False, help="take a message on stdin as sendmail does (-t -i -f …)"
    )
    registered: set[str] = set()
    for name, (module, helptext) in COMMANDS.items():
        if module not in modules:
            subparsers.add_parser(name, add_help=False, help=helptext)
        elif module not in registered:
            registered.add(module)
            importlib.import_module(module).register(subparsers)
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
    for stream in (sys.stdout, sys.stderr):
        # A locale that is not UTF-8: a subject or a server's reply in any script must
        # still print (escaped), not end the command in a UnicodeEncodeError.
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
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
        if not args_list:
            args_list = ["gui"]
        try:
            args = parser_for(args_list).parse_args(args_list)
        except SystemExit as exc:
            # argparse ends a usage error (an unknown flag or command, a missing or
            # bad argument) with status 2, after printing the usage and the error;
            # the documented status of bad usage is sysexits' EX_USAGE, as sendmail's.
            if exc.code == 2:
                return UsageError.exit_code
            raise
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
    return _output_full(exc, home) or explain(
        exc, store=home / DB_NAME if home else None, home=home
    )


def _output_full(exc: Exception, home: Path | None) -> OutboxError | None:
    """A full device behind standard output (``> /dev/full``), told as such, not as the home's.

    Writing the output raises an OSError that names no file; so does a write to
    an open file of the home (the drop folder). It is the output's only when
    standard output is a device that is not a terminal (``/dev/full``), or a
    file on another file system than the home's that has no room left.
    """
    import errno
    import stat

    if not (
        isinstance(exc, OSError)
        and exc.filename is None
        and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        and home is not None
    ):
        return None
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        out = os.fstat(fd)
        if stat.S_ISCHR(out.st_mode):
            full = not os.isatty(fd)
        elif stat.S_ISREG(out.st_mode) and out.st_dev != os.stat(home).st_dev:
            room = os.fstatvfs(fd)
            full = room.f_bavail * room.f_frsize < 64 * 1024
        else:
            full = False
    except (OSError, ValueError):
        return None
    if not full:
        return None
    from relay.machineproblems import MachineProblem

    return MachineProblem(f"cannot write to standard output: {exc.strerror}")


if __name__ == "__main__":
    sys.exit(main())
