"""``list``, ``show``, ``hold``, ``release``, ``delete``, ``retry``: managing the outbox.

Subjects, addresses and replies are shown through ``relay.visible`` (a
bidirectional override or zero-width character escaped); ``--json`` prints
the stored text as it is.

A message a flush claimed reads ``sending`` only while its own transaction
runs; claimed and waiting for its turn on the connection it reads
``waiting``, as in the window. ``--json`` keeps ``state`` to the store's
words (``sending`` for both: a flush holds the message) and says which of the
two with ``"waiting": true`` or ``false``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime

from relay.commands import utf8_output
from relay.commands.store import open_engine, parse_ids
from relay.engine import Engine
from relay.errors import UsageError
from relay.events import MessageSnapshot
from relay.sizes import size_text
from relay.states import MessageState, RecipientState
from relay.store.listing import WAITING
from relay.visible import visible


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("list", help="list the messages in the outbox")
    p.add_argument(
        "--state",
        choices=[s.value for s in MessageState],
        metavar="STATE",
        help="only messages in STATE: "
        + ", ".join(s.value for s in MessageState)
        + " (sending includes the messages a flush claimed that wait for their turn)",
    )
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("show", help="show one message, its recipients and attempts")
    p.add_argument("id", metavar="ID", help="the message's id (see outbox list)")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--json", action="store_true", help="one JSON object, with every attempt's transcript"
    )
    group.add_argument("--raw", action="store_true", help="the message exactly as it will be sent")
    p.set_defaults(func=cmd_show)

    for name, helptext, more, func in (
        (
            "hold",
            "keep messages out of every flush",
            " Refused (exit 1) for a message whose transaction with the server is under way:"
            " it may be delivered.",
            cmd_hold,
        ),
        ("release", "let held messages go again", "", cmd_release),
        (
            "delete",
            "remove messages from the outbox",
            " Refused (exit 1) for a message being sent.",
            cmd_delete,
        ),
    ):
        p = subparsers.add_parser(
            name, help=helptext, description=helptext.capitalize() + "." + more
        )
        p.add_argument("ids", nargs="+", metavar="ID", help="message ids (see outbox list)")
        p.set_defaults(func=func)

    p = subparsers.add_parser(
        "retry",
        help="make messages due now (every recipient not yet sent is owed again)",
        description="Make messages due now: every recipient not yet sent is owed the message"
        " again, failed ones included. For an uncertain message (the server may already have"
        " it) it warns first that the recipients may get it twice.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="message ids (see outbox list)")
    p.add_argument("--failed", action="store_true", help="every failed message (instead of ids)")
    p.set_defaults(func=cmd_retry)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    with open_engine(args.home) as engine:
        outbox = engine.outbox
        messages = outbox.messages(MessageState(args.state) if args.state else None)
        pruned = outbox.pruned()
        waiting = outbox.waiting_ids()
    if args.json:
        items = [
            {**m.to_json(), "body_pruned": m.id in pruned, "waiting": _is_waiting(m, waiting)}
            for m in messages
        ]
        json.dump(items, sys.stdout, ensure_ascii=not utf8_output(), indent=1)
        sys.stdout.write("\n")
        return 0
    if not messages:
        print("the outbox is empty" if not args.state else f"no {args.state} messages")
        return 0
    rows = [("ID", "STATE", "SIZE", "TRIES", "NEXT TRY", "TO", "SUBJECT")]
    for m in messages:
        to = visible(m.recipients[0].address) if m.recipients else ""
        if len(m.recipients) > 1:
            to += f" +{len(m.recipients) - 1}"
        rows.append(
            (
                str(m.id),
                _state_word(m, waiting),
                "pruned" if m.id in pruned else size_text(m.size),
                str(m.attempts),
                _when(m.next_attempt_at),
                _clip(to, 32),
                _clip(visible(m.subject), 40),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _is_waiting(m: MessageSnapshot, waiting: set[int]) -> bool:
    """Whether ``m`` was claimed by a flush and waits for its turn (``Outbox.waiting_ids``)."""
    return m.state is MessageState.SENDING and m.id in waiting


def _state_word(m: MessageSnapshot, waiting: set[int]) -> str:
    return WAITING if _is_waiting(m, waiting) else m.state.value


def cmd_show(args: argparse.Namespace) -> int:
    (message_id,) = parse_ids([args.id])
    with open_engine(args.home) as engine:
        outbox = engine.outbox
        message = outbox.get(message_id)
        if args.raw:
            sys.stdout.buffer.write(outbox.raw(message_id))  # BodyPruned says so
            sys.stdout.flush()
            return 0
        attempts = outbox.attempts(message_id)
        pruned = bool(outbox.pruned([message_id]))
        waiting = outbox.waiting_ids() if message.state is MessageState.SENDING else set()
    if args.json:
        item = {**message.to_json(), "waiting": _is_waiting(message, waiting)}
        item["body_pruned"] = pruned
        item["attempt_history"] = [{**a.to_json(), "transcript": a.transcript} for a in attempts]
        json.dump(item, sys.stdout, ensure_ascii=not utf8_output(), indent=1)
        sys.stdout.write("\n")
        return 0
    _print_message(message, _state_word(message, waiting))
    if pruned:
        print("body: pruned after sending (retention); the history below is kept")
    if attempts:
        print("attempts:")
        for a in attempts:
            ended = _when(a.ended_at) if a.ended_at else "unfinished"
            print(
                f"  {_when(a.started_at)} → {ended}  {a.account} ({a.server})  {a.outcome or '-'}"
            )
            if a.error:
                print(f"    {visible(a.error)}")
    return 0


def _print_message(m: MessageSnapshot, state: str) -> None:
    print(f"message {m.id}: {state}")
    print(f"  from:       {visible(m.sender)}")
    print(f"  subject:    {visible(m.subject)}")
    print(f"  size:       {m.size} octets")
    print(f"  queued:     {_when(m.created_at)}")
    print(f"  attempts:   {m.attempts}")
    print(f"  next try:   {_when(m.next_attempt_at)}")
    if m.last_error:
        print(f"  last error: {visible(m.last_error)}")
    print("recipients:")
    for r in m.recipients:
        reply = f"  ({visible(r.reply)})" if r.reply else ""
        print(f"  {visible(r.address)}  {r.state.value}{reply}")


def cmd_hold(args: argparse.Namespace) -> int:
    return _change_and_show(args, Engine.hold)


def cmd_release(args: argparse.Namespace) -> int:
    return _change_and_show(args, Engine.release)


def _change_and_show(
    args: argparse.Namespace, change: Callable[[Engine, list[int]], list[MessageSnapshot]]
) -> int:
    with open_engine(args.home) as engine:
        for m in change(engine, parse_ids(args.ids)):
            print(f"{m.id}: {m.state.value}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_engine(args.home) as engine:
        for message_id in engine.delete(parse_ids(args.ids)):
            print(f"{message_id}: deleted")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.failed:
        raise UsageError(
            "retry needs the ids of the messages to send again (see outbox list),"
            " or --failed for every failed message"
        )
    if args.ids and args.failed:
        raise UsageError("retry takes message ids or --failed, not both")
    with open_engine(args.home) as engine:
        ids = engine.outbox.failed_ids() if args.failed else parse_ids(args.ids)
        before = {i: engine.outbox.get(i) for i in ids}
        for m in engine.retry(ids):
            again = [
                r.address for r in before[m.id].recipients if r.state is RecipientState.UNCERTAIN
            ]
            if again:
                print(
                    f"outbox: warning: {m.id}: {', '.join(again)} may already have"
                    " this message and may receive it twice",
                    file=sys.stderr,
                )
            print(f"{m.id}: {m.state.value}")
    if not ids:
        print("no failed messages")
    return 0
