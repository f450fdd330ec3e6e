"""``outbox enqueue FILE…``: store RFC 5322 files in the outbox.

Each file is parsed and stored on its own (one transaction each), so one bad
file in a batch does not keep the others out. Each stored message's id goes
to standard output, one per line, in the order of the arguments; each refused
file gets ``outbox: FILE: reason`` on standard error.

``--at WHEN`` schedules the messages (``relay.schedule``): no flush sends
them before WHEN unless it names them.

When the store stays busy for more than two seconds (another program holds
its write lock), the messages go into the drop folder instead: the path of
each such file is printed in place of its id, and the next flush or the
window imports it.

Exit status: 0 when every file was stored; 65 (EX_DATAERR) when some file
was refused, including a file that could not be read; 78 (EX_CONFIG) for an
unknown ``--account`` and 64 (EX_USAGE) for a ``--at`` that is not a time,
both before anything is stored.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EX_DATAERR = 65


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="store RFC 5322 message files in the outbox",
        description=(
            "Store each FILE (an RFC 5322 message; '-' reads standard input) in the outbox"
            " and print its id. The envelope comes from the headers: From (or Sender),"
            " To, Cc and Bcc, or the Resent-* fields of a resent message. Bcc and"
            " Return-Path are removed from what is stored; Date and Message-ID are added"
            " when missing."
        ),
        epilog="Exit status: 0 all stored; 65 some file refused (the others are stored).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="a message file, or -")
    parser.add_argument(
        "--account",
        metavar="NAME",
        help="send through this account (default: the one whose --from matches)",
    )
    parser.add_argument(
        "--at",
        metavar="WHEN",
        help="send no earlier than WHEN: ISO 8601 (2026-12-24T08:00+01:00), or local time"
        " HH:MM (the next one) or YYYY-MM-DD HH:MM; `outbox flush --due` and the window send"
        " it once it is due, `outbox flush ID` at once",
    )
    parser.set_defaults(func=cmd_enqueue)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from relay.commands.storeordrop import drop
    from relay.dropdelivery import INTAKE_BUSY_S
    from relay.engine import Engine
    from relay.errors import InvalidMessage
    from relay.home import ensure_home, resolve_home
    from relay.message import parse_message
    from relay.store.database import intake_guard, is_busy

    not_before = None
    if args.at is not None:
        from relay.schedule import parse_when
        from relay.store.outbox import utc_now

        now = utc_now()
        not_before = parse_when(args.at, now=now)  # UsageError before anything is stored
        if not_before <= now:
            print(f"outbox: {args.at} is past: the message is due now", file=sys.stderr)
    home = resolve_home(args.home)
    if args.account is not None:
        from relay.accounts import find_account, load_accounts

        find_account(load_accounts(home), args.account)  # raises ConfigError if unknown

    from relay.errors import ConfigError
    from relay.localnames import LocalNames

    local = LocalNames(home, account=args.account)  # a local sender or recipient (root)
    failed = 0
    guard: int | None = None
    try:
        ensure_home(home)
        guard = intake_guard(home)  # no write into a store a repair is copying
        # No recovery of interrupted flushes: intake stores and goes.
        engine: Engine | None = Engine.open(home, busy_timeout_s=INTAKE_BUSY_S, recover=False)
    except Exception as exc:
        if not is_busy(exc):
            if guard is not None:
                os.close(guard)
            raise
        engine = None  # busy: every message goes to the drop folder
    try:
        for name in args.files:
            try:
                parsed = parse_message(_read(name), local=local)
            except OSError as exc:
                print(f"outbox: {name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
                failed += 1
                continue
            except (InvalidMessage, ConfigError) as exc:
                print(f"outbox: {name}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if engine is not None:
                try:
                    snapshot = engine.enqueue(parsed, account=args.account, not_before=not_before)
                except Exception as exc:
                    if not is_busy(exc):
                        raise
                    engine.close()
                    engine = None  # the rest go to the drop folder without waiting again
                else:
                    print(snapshot.id, flush=True)
                    continue
            print(drop(home, parsed, account=args.account, not_before=not_before), flush=True)
    finally:
        if engine is not None:
            engine.close()
        if guard is not None:
            os.close(guard)  # releases the lock
    return EX_DATAERR if failed else 0


def _read(name: str) -> bytes:
    """The file's bytes, at most one more than the intake limit (so an endless
    stream such as ``/dev/zero`` is refused instead of eating the memory)."""
    from relay.message import MAX_MESSAGE_OCTETS

    if name == "-":
        return sys.stdin.buffer.read(MAX_MESSAGE_OCTETS + 1)
    with Path(name).open("rb") as stream:
        return stream.read(MAX_MESSAGE_OCTETS + 1)
