"""``outbox gui`` (and ``outbox`` alone): open the window on the outbox.

The window lives in the ``gui`` package; it is imported only here, inside the
command, so nothing else the command line does ever loads Qt.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "gui",
        help="open the window (the default without a command)",
        description="Open the window on the outbox. Message files given (the desktop"
        " entry passes .eml files opened with Outbox) are added to the outbox first.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="a message file to add")
    p.add_argument(
        "--hidden",
        action="store_true",
        help="start in the tray without showing the window (as at login); shown where"
        " there is no tray",
    )
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gui.app import main
    from relay.home import resolve_home

    files = [Path(name) for name in getattr(args, "files", [])]
    return main(resolve_home(args.home), files, hidden=getattr(args, "hidden", False))
