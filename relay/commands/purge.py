"""``outbox purge --sent [--older-than DAYS]``: remove sent messages for good.

Each sent message goes whole -- row, recipients, body, attempts -- in one
transaction. ``--older-than DAYS`` keeps those sent (last attempt finished)
within the last DAYS days. Nothing that is not ``sent`` is touched: queued,
deferred, held, failed and uncertain messages stay. The bodies of old sent
messages are also pruned on their own by the ``[retention]`` setting (see
``relay.retention``), which keeps the rest as history.
"""

from __future__ import annotations

import argparse
import math


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "purge",
        help="remove sent messages (all, or those older than --older-than DAYS)",
        description="Remove sent messages from the outbox for good: their rows, recipients,"
        " bodies and attempts. Messages not sent are never touched.",
    )
    p.add_argument("--sent", action="store_true", required=True, help="remove sent messages")
    p.add_argument(
        "--older-than",
        metavar="DAYS",
        type=_days,
        help="only those whose last attempt ended more than DAYS days ago",
    )
    p.set_defaults(func=cmd_purge)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 36_500:
        raise argparse.ArgumentTypeError(f"not a number of days from 0 to 36500: {text!r}")
    return value


def cmd_purge(args: argparse.Namespace) -> int:
    from relay.commands.store import open_engine
    from relay.retention import days_ago
    from relay.store.outbox import utc_now

    with open_engine(args.home) as engine:
        cutoff = None if args.older_than is None else days_ago(utc_now(), args.older_than)
        removed = engine.purge_sent(cutoff)
    print(f"removed {len(removed)} sent message{'s' if len(removed) != 1 else ''}")
    return 0
