"""``outbox alias set|list|remove``: where mail to a local name (``root``) goes.

Rules in ``relay.aliases``: a name maps to full addresses; ``default`` catches
every local name without an alias of its own. Mail is resolved when it is
stored, so a change applies to messages stored after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from relay.aliases import DEFAULT_ALIAS, load_aliases, remove_alias, set_alias
from relay.commands import utf8_output
from relay.home import resolve_home


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alias",
        help="where mail to a local name (root, a cron job's user) goes",
        description="Aliases map a local name (no @domain), as cron, at and mail(1) address"
        f" mail, to full addresses. The alias '{DEFAULT_ALIAS}' catches every local name"
        " without one of its own.",
    )
    actions = parser.add_subparsers(dest="alias_action", metavar="ACTION", required=True)

    change = actions.add_parser(
        "set", help="make NAME an alias of ADDR[,ADDR…] (replacing what it was)"
    )
    change.add_argument("name", metavar="NAME", help=f"a local name, or '{DEFAULT_ALIAS}'")
    change.add_argument(
        "addresses", metavar="ADDR[,ADDR…]", nargs="+", help="the addresses mail to NAME goes to"
    )
    change.set_defaults(func=run_set)

    listing = actions.add_parser("list", help="list the aliases")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(func=run_list)

    remove = actions.add_parser("remove", help="forget an alias")
    remove.add_argument("name", metavar="NAME", help="the alias to remove")
    remove.set_defaults(func=run_remove)


def run_set(args: argparse.Namespace) -> int:
    name, addresses = set_alias(resolve_home(args.home), args.name, args.addresses)
    print(f"{name}: {', '.join(addresses)}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    aliases = load_aliases(resolve_home(args.home))
    if args.json:
        items = [{"name": name, "addresses": list(targets)} for name, targets in aliases.items()]
        json.dump(items, sys.stdout, ensure_ascii=not utf8_output(), indent=2)
        sys.stdout.write("\n")
        return 0
    if not aliases:
        print(
            f"no aliases: add one with 'outbox alias set NAME ADDR' ('{DEFAULT_ALIAS}' catches"
            " every local name)",
            file=sys.stderr,
        )
        return 0
    width = max(len(name) for name in aliases)
    for name, targets in aliases.items():
        print(f"{name.ljust(width)}  {', '.join(targets)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    remove_alias(resolve_home(args.home), args.name)
    print(f"removed alias {args.name.lower()}")
    return 0
