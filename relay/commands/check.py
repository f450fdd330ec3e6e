"""``outbox check [--repair]``: is the store sound, and starting afresh when it is not.

``outbox check`` runs SQLite's integrity check on the store and says what it
found: exit 0 when sound, 74 (EX_IOERR) when damaged. ``--repair`` then
moves the damaged file aside (``outbox.sqlite3.damaged-<time>``, never
deleted) and starts a fresh store holding every message that can still be
read whole, ids and history kept (``relay.store.check``); it names what was
lost. A sound store is left alone. Repairing waits for no flush: it refuses
while one runs.
"""

from __future__ import annotations

import argparse
import sys

EX_IOERR = 74


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check",
        help="check the store's integrity (and set a damaged one aside with --repair)",
        description="Run SQLite's integrity check on the outbox store and say what it found."
        " With --repair, a damaged store is renamed aside (never deleted) and a fresh one"
        " is started with every message still readable.",
        epilog="Exit status: 0 sound (or repaired with nothing lost); 74 damaged (or"
        " repaired with messages lost).",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="set a damaged store aside and start a fresh one with what can be read",
    )
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from relay.engine import no_flush_running, store_path
    from relay.home import resolve_home
    from relay.store.check import check_store, repair_store

    home = resolve_home(args.home)
    store = store_path(home)
    if not store.exists():
        print(f"{store}: no store yet (nothing to check)")
        return 0
    report = check_store(home)
    if report.sound:
        print(f"{report.path}: ok ({report.messages} messages)")
        if args.repair:
            print("nothing to repair")
        return 0
    print(f"{report.path}: damaged", file=sys.stderr)
    for problem in report.problems:
        print("  " + problem.replace("\n", "\n  "), file=sys.stderr)
    if not args.repair:
        print(
            "outbox: run `outbox check --repair` to set this file aside and start a fresh"
            " store with every message still readable",
            file=sys.stderr,
        )
        return EX_IOERR
    with no_flush_running(home):
        repaired = repair_store(home)
    print(f"the damaged store is set aside as {repaired.set_aside}")
    print(
        f"kept {len(repaired.kept)} messages and {repaired.attempts_kept} attempts"
        f" in a fresh {store}"
    )
    if repaired.unlisted:
        print(
            f"outbox: not one message of the damaged store could be listed (the file may be"
            f" cut short), so none was kept; they may still be found in {repaired.set_aside}",
            file=sys.stderr,
        )
        return EX_IOERR
    if repaired.lost:
        shown = ", ".join(map(str, repaired.lost[:20])) + (" …" if len(repaired.lost) > 20 else "")
        print(
            f"outbox: {len(repaired.lost)} messages could not be read whole and were not kept:"
            f" {shown} (they may still be found in {repaired.set_aside})",
            file=sys.stderr,
        )
        return EX_IOERR
    return 0
