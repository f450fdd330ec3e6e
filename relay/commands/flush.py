"""``outbox flush [ID…]``: send what is due, say what happened, exit 0 / 75 / 1.

One line per message on stderr (id, recipients, outcome, the server's reply),
written a group at a time (a flush settles thousands a second); a progress
bar on stdout when it is a terminal, redrawn at most ``ProgressBar.REDRAW_S``
apart. Ctrl-C stops cleanly: the
message in flight is finished or aborted, nothing is lost, and everything not
finished stays queued. A second Ctrl-C aborts at once (still nothing lost: the
next start settles what was in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from relay.attempts import Settled
from relay.commands.store import open_engine, parse_ids
from relay.events import Event, FlushStarted, MessageChanged, ProgressMade, RecipientSnapshot
from relay.sizes import size_text
from relay.states import MessageState, RecipientState
from relay.store.outbox import Outbox

if TYPE_CHECKING:
    from relay.dropfolder import DropImport
    from relay.flush import FlushResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "flush",
        help="send what is due (or the given messages, whatever their back-off)",
        description="Exit status: 0 everything tried was sent; 75 try later: something"
        " deferred, uncertain or left queued, an account paused or to sign in again, the"
        " flush stopped with mail still unsent, or another flush running; 1 something"
        " failed permanently or an account needs a person (a refused password).",
    )
    p.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="send only these messages, due or not (default: every message that is due)",
    )
    p.add_argument(
        "--due",
        action="store_true",
        help="send only deferred and scheduled messages whose time has come, not new mail"
        " nobody asked to send yet (for cron or a systemd timer)",
    )
    p.set_defaults(func=cmd_flush)


def describe(item: Settled) -> str:
    """One message's line: ``7 bob@example.org: sent``, or each recipient's verdict.

    When a message's recipients fared differently, the line names each one's
    verdict and reply (``7 deferred: bob@… sent; cy@… failed (554 …); dan@…
    deferred (451 …)``), so a permanent rejection is never quoted as the reason
    for a deferral. Addresses and replies reach the terminal through ``visible``.
    """
    from relay.visible import visible

    message = item.message
    if len({r.state for r in message.recipients}) > 1:
        verdicts = "; ".join(_verdict(r) for r in message.recipients)
        return f"{message.id} {message.state.value}: {verdicts}"
    recipients = ", ".join(visible(r.address) for r in message.recipients)
    line = f"{message.id} {recipients}: {message.state.value}"
    replies = sorted({r.reply for r in message.recipients if r.reply})
    detail = item.detail or (replies[0] if replies else None)
    return f"{line} ({visible(detail)})" if detail else line


def _verdict(recipient: RecipientSnapshot) -> str:
    from relay.visible import visible

    word = "not tried" if recipient.state is RecipientState.PENDING else recipient.state.value
    address = visible(recipient.address)
    if recipient.reply and recipient.state is not RecipientState.SENT:
        return f"{address} {word} ({visible(recipient.reply)})"
    return f"{address} {word}"


class SettledLines:
    """``describe`` of each settled message on ``out``, one write per event-loop turn.

    Settlements are announced in groups (one commit each); their lines reach
    the terminal together, in order, instead of one write (and flush) each.
    """

    def __init__(self, out: TextIO, bar: ProgressBar | None = None) -> None:
        self._out = out
        self._bar = bar
        self._pending: list[str] = []
        self._scheduled = False

    def __call__(self, item: Settled) -> None:
        self._pending.append(describe(item))
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        loop.call_soon(self.flush)
        self._scheduled = True

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            if self._bar is not None:
                self._bar.clear()  # the lines go above the bar, never glued onto it
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
            if self._bar is not None:
                self._bar.draw()


#: ANSI "erase from the cursor to the end of the line" (every terminal emulator has it).
ERASE_LINE = "\x1b[K"


class ProgressBar:
    """Messages and bytes done of the flush's total, redrawn in place on a terminal.

    The bar is the terminal's last line and holds no newline; whoever prints a
    line while it is up calls ``clear`` first and ``draw`` after (as
    ``SettledLines`` does), so text and bar never share a line, even with
    stdout and stderr on one terminal. A dozen lines of ANSI (carriage return,
    erase to end of line) do this without a progress library.
    """

    WIDTH = 30
    REDRAW_S = 0.1

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._total_messages = 0
        self._total_bytes = 0
        self._done_messages = 0
        self._done_bytes = 0
        self._in_flight: dict[int, int] = {}
        self._drawn_at = float("-inf")
        self._shown = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, FlushStarted):
            self._total_messages, self._total_bytes = event.message_count, event.total_bytes
        elif isinstance(event, ProgressMade):
            self._in_flight[event.message_id] = event.sent_bytes
        elif isinstance(event, MessageChanged):
            if event.message.state is MessageState.SENDING:
                self._in_flight[event.message.id] = 0
            elif self._in_flight.pop(event.message.id, None) is not None:
                self._done_messages += 1
                self._done_bytes += event.message.size
        else:
            return
        now = time.monotonic()
        if now - self._drawn_at >= self.REDRAW_S or self._done_messages >= self._total_messages:
            self._drawn_at = now
            self.draw()

    def draw(self) -> None:
        if not self._total_messages:
            return
        sent = min(self._total_bytes, self._done_bytes + sum(self._in_flight.values()))
        share = sent / self._total_bytes if self._total_bytes else 1.0
        filled = int(share * self.WIDTH)
        self._out.write(
            f"\r{ERASE_LINE}[{'#' * filled}{' ' * (self.WIDTH - filled)}]"
            f" {min(self._done_messages, self._total_messages)}/{self._total_messages} messages,"
            f" {size_text(sent)} of {size_text(self._total_bytes)}"
        )
        self._out.flush()
        self._shown = True

    def clear(self) -> None:
        """Take the bar off its line, so the next text starts at column 0 of an empty line."""
        if self._shown:
            self._out.write(f"\r{ERASE_LINE}")
            self._out.flush()
            self._shown = False

    def finish(self) -> None:
        if self._total_messages:
            self.draw()
            self._out.write("\n")
            self._out.flush()
            self._shown = False


def cmd_flush(args: argparse.Namespace) -> int:
    from relay.machineproblems import quiet_machine_problems

    ids = parse_ids(args.ids) if args.ids else None
    if ids is not None and args.due:
        from relay.errors import UsageError

        raise UsageError("flush: --due sends what is due; name messages or give --due, not both")
    with open_engine(args.home) as engine:
        bar = ProgressBar(sys.stdout) if sys.stdout.isatty() else None
        lines = SettledLines(sys.stderr, bar)
        flush = engine.begin_flush(on_settled=lines, on_imported=_say_refused)
        with flush:
            if bar is not None:
                engine.subscribe(bar)

            async def run() -> None:
                loop = asyncio.get_running_loop()
                loop.set_exception_handler(quiet_machine_problems)
                task = asyncio.current_task()
                interrupts = 0

                def interrupted() -> None:
                    nonlocal interrupts
                    interrupts += 1
                    lines.flush()
                    if bar is not None:
                        bar.clear()
                    if interrupts == 1:
                        print("outbox: stopping after the message in flight…", file=sys.stderr)
                        flush.stop()
                    elif task is not None:
                        task.cancel()

                loop.add_signal_handler(signal.SIGINT, interrupted)
                loop.add_signal_handler(signal.SIGTERM, interrupted)
                await flush.run(ids, due_only=args.due)

            # What start-up made (modules, the account, the engine) lives as long as
            # the process: full collections during the flush need not walk it again
            # (one walk was ~16 ms of a 4,000-message flush). The window does the same.
            gc.freeze()
            aborted = False
            try:
                asyncio.run(run())
            except asyncio.CancelledError:
                aborted = True
            finally:
                lines.flush()
                if bar is not None:
                    bar.finish()
            result = flush.result
            outbox = engine.outbox
            for line in (*result.notes, *map(str, result.errors), *_pause_lines(result)):
                print(f"outbox: {line}", file=sys.stderr)
            if aborted or result.stopped:
                # The last line says what is left: a stop is not a success.
                remaining = _not_sent(outbox, result.asked)
                how = "aborted" if aborted else "stopped"
                print(f"outbox: {how}; {_messages(remaining)} not sent yet", file=sys.stderr)
                if remaining or aborted:
                    return 1 if result.exit_code == 1 else 75
            elif not (result.settled or result.errors or result.notes or result.paused):
                print(f"outbox: {_nothing_due(outbox, due_only=args.due)}", file=sys.stderr)
    return result.exit_code


def _not_sent(outbox: Outbox, asked: list[int]) -> int:
    """How many of ``asked`` still owe a recipient the message (queued, deferred, held)."""
    from relay.flush import UNSENT

    return sum(1 for snapshot in outbox.snapshots(asked) if snapshot.state in UNSENT)


def _nothing_due(outbox: Outbox, *, due_only: bool = False) -> str:
    """Why there was nothing to send, and when there will be."""
    now = datetime.now(UTC)
    count, first = outbox.deferred_waiting(now)
    if not count or first is None:
        return "nothing due" if due_only else "nothing to send"
    minutes = max(1, round((first - now).total_seconds() / 60))
    wait = f"{minutes} min" if minutes < 90 else f"{minutes / 60:.0f} h"
    when = first.astimezone().strftime("%Y-%m-%d %H:%M")
    waits = "message waits" if count == 1 else "messages wait"
    return (
        f"nothing due now; {count} deferred {waits} for a later try,"
        f" the next at {when} (in {wait}; `outbox flush ID` sends one now)"
    )


def _messages(count: int) -> str:
    return f"{count} message" + ("" if count == 1 else "s")


def _pause_lines(result: FlushResult) -> list[str]:
    """``work: paused until 14:00 (daily sending limit); …``: one line per paused account."""
    from relay.store.outbox import utc_now
    from relay.throttle import pause_text

    now = utc_now()
    return [
        f"{pause_text(pause, now)}; `outbox flush ID` sends a message anyway"
        for pause in result.paused.values()
    ]


def _say_refused(imported: DropImport) -> None:
    """Say what the drop folder held that is not a message (the flush takes in the rest)."""
    from relay.smtp.transcript import printable

    for rejection in imported.rejected:
        # Any program may name a file there: its name reaches the terminal escaped.
        print(f"outbox: drop/{printable(rejection.name)}: {rejection.reason}", file=sys.stderr)
