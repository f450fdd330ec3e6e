"""The status bar's words and numbers: counts, a flush's progress and rates, how it ended."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gui.display_text import counts_text
from gui.flush_progress import FlushProgress
from gui.status import finished_text
from gui.tray import failure_text, tray_text
from relay.events import FlushFinished, MessageSnapshot
from relay.states import MessageState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def message(message_id: int, state: MessageState, size: int = 1000) -> MessageSnapshot:
    return MessageSnapshot(
        id=message_id,
        state=state,
        sender="a@example.org",
        subject="",
        size=size,
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
        attempts=0,
        next_attempt_at=None,
        last_error=None,
        recipients=(),
    )


def test_progress_counts_messages_when_they_leave_sending_and_bytes_as_they_go() -> None:
    clock = FakeClock()
    progress = FlushProgress(clock)
    progress.started(message_count=3, total_bytes=3000)
    for i in (1, 2):
        progress.message_changed(message(i, MessageState.SENDING))
    progress.bytes_sent(1, 400)
    progress.bytes_sent(2, 300)
    clock.now += 1
    figures = progress.figures()
    assert (figures.done_messages, figures.done_bytes) == (0, 700)
    assert figures.bytes_per_s == pytest.approx(700)

    progress.message_changed(message(1, MessageState.SENT))  # its whole size now counts
    progress.bytes_sent(2, 200)  # a late, smaller report never runs the bytes backwards
    clock.now += 1
    figures = progress.figures()
    assert (figures.done_messages, figures.done_bytes) == (1, 1300)
    assert figures.messages_per_s == pytest.approx(0.5)
    progress.message_changed(message(2, MessageState.DEFERRED))
    progress.message_changed(message(3, MessageState.QUEUED))  # never sent: not done
    assert progress.figures().done_messages == 2


def test_rates_look_at_the_last_few_seconds_only() -> None:
    clock = FakeClock()
    progress = FlushProgress(clock)
    progress.started(message_count=100, total_bytes=100_000)
    for i in range(1, 11):  # ten messages in the first second
        progress.message_changed(message(i, MessageState.SENDING))
        progress.message_changed(message(i, MessageState.SENT))
    clock.now += 1
    progress.figures()
    clock.now += 10  # then a long stall
    progress.figures()
    clock.now += 1
    assert progress.figures().messages_per_s < 1


def test_counts_and_endings_in_words() -> None:
    counts = dict.fromkeys(MessageState, 0)
    assert counts_text(counts) == "The outbox is empty"
    counts |= {MessageState.QUEUED: 2, MessageState.FAILED: 1, MessageState.SENT: 7}
    assert counts_text(counts) == "2 queued · 1 failed · 7 sent"
    assert tray_text(counts) == "Outbox: " + counts_text(counts)
    done = FlushFinished(sent=3, deferred=1, failed=0, uncertain=0, stopped=False, error=None)
    assert finished_text(done) == "Flush done: 3 sent, 1 deferred."
    assert failure_text(done) is None
    stopped = dataclasses.replace(done, failed=2, stopped=True)
    assert finished_text(stopped) == "Flush stopped: 3 sent, 1 deferred, 2 failed."
    left = dataclasses.replace(stopped, unsent=4)
    assert finished_text(left) == (
        "Flush stopped: 3 sent, 1 deferred, 2 failed. 4 not sent yet: they stay in the outbox."
    )
    assert failure_text(stopped) == (
        "2 messages failed. Open Outbox to see the server's replies and retry."
    )
    nothing = FlushFinished(0, 0, 0, 0, False, None)
    assert finished_text(nothing) == "Nothing was due to be sent."


def test_send_again_counts_its_messages() -> None:
    from gui.confirm import send_again_text

    assert send_again_text(1) == "The server may already have this message."
    assert send_again_text(3) == "The server may already have these 3 messages."
