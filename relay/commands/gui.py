"""``outbox gui`` (and ``outbox`` alone): open the window on the outbox.

The window lives in the ``gui`` package; it is imported only here, inside the
command, so nothing else the command line does ever loads Qt.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("gui", help="open the window (the default without a command)")
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from gui.app import main
    from relay.home import resolve_home

    return main(resolve_home(args.home))
