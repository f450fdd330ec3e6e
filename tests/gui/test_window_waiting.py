"""Over one connection one message is sent at a time: the others claimed say "waiting".

The window shows ``sending`` only for the message whose own transaction
runs; the rest of the batch its connection took reads ``waiting`` until its
turn, and every one ends ``sent``. So it is when the flush is another
process's (``outbox flush`` from cron while the window is open): the window
reads the difference from the store, and ``outbox list`` says the same.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from relay.states import MessageState
from tests.gui.driving import click_action, click_rows, shown_state
from tests.gui.messages import enqueue
from tests.gui.test_window_flush import FLUSH_TIMEOUT_MS, states_seen
from tests.support.cli import listed, outbox
from tests.support.gated_servers import GatedHandler
from tests.support.smtp_servers import RunningServer

#: The window re-reads the store within a second of another process's commit.
RESYNC_TIMEOUT_MS = 5000


def test_messages_claimed_behind_the_one_being_sent_read_waiting(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    ids = [enqueue(window.outbox, f"r{i}@example.net", f"Number {i}") for i in range(3)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    last_states = states_seen(window, ids[-1])
    handler.gated = True  # each message's verdict waits for the test

    click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
    # The first one's transaction runs; the other two, claimed by the same
    # connection, wait for their turn.
    qtbot.waitUntil(lambda: shown_state(window, ids[0]) == "sending")
    qtbot.waitUntil(lambda: [shown_state(window, i) for i in ids[1:]] == ["waiting"] * 2)
    assert window.outbox.get(ids[1]).state is MessageState.SENDING  # claimed, in the store

    handler.gated = False
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.open_gate()
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "sent" for i in ids))
    assert last_states[0] == "waiting" and last_states[-1] == "sent"
    assert len(server.received) == 3


def test_a_waiting_message_can_be_held_and_is_not_sent(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    """Hold on a row whose turn has not come: the flush hands it back, held, unsent."""
    ids = [enqueue(window.outbox, f"r{i}@example.net", f"Number {i}") for i in range(3)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    handler.gated = True

    click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: shown_state(window, ids[0]) == "sending")
    qtbot.waitUntil(lambda: shown_state(window, ids[2]) == "waiting")
    click_rows(qtbot, window, ids[0])
    assert not window.action_hold.isEnabled()  # its transaction runs: too late
    click_rows(qtbot, window, ids[2])
    assert window.action_hold.isEnabled()
    click_action(qtbot, window, window.action_hold)

    handler.gated = False
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.open_gate()
    qtbot.waitUntil(lambda: shown_state(window, ids[2]) == "held")
    assert [r.rcpt_tos for r in server.received] == [("r0@example.net",), ("r1@example.net",)]
    assert window.outbox.get(ids[2]).state is MessageState.HELD


def test_a_stopped_flush_says_how_many_messages_are_not_sent_yet(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    ids = [enqueue(window.outbox, f"r{i}@example.net", f"Number {i}") for i in range(4)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    handler.gated = True

    click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
    click_action(qtbot, window, window.action_stop)
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.open_gate()
    assert window.statusBar().currentMessage() == (
        "Flush stopped: 1 sent. 3 not sent yet: they stay in the outbox."
    )
    assert [window.outbox.get(i).state for i in ids[1:]] == [MessageState.QUEUED] * 3


def test_messages_a_flush_in_another_process_claimed_read_waiting_until_their_turn(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    ids = [enqueue(window.outbox, f"r{i}@example.net", f"Number {i}") for i in range(4)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    handler.gated = True  # each message's verdict waits for the test

    def shown() -> Counter[str | None]:
        return Counter(shown_state(window, i) for i in ids)

    flush = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(window.home), "flush"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # One connection (the account's limit) took all four: the server holds
        # the first one's verdict, the other three wait for their turn.
        qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
        expected = Counter({"sending": 1, "waiting": 3})
        qtbot.waitUntil(lambda: shown() == expected, timeout=RESYNC_TIMEOUT_MS)
        assert [window.outbox.get(i).state for i in ids] == [MessageState.SENDING] * 4
        # The command line says the same, in words and in JSON.
        items = listed(window.home)
        assert Counter(item["state"] for item in items) == {"sending": 4}
        assert Counter(item["waiting"] for item in items) == {True: 3, False: 1}
        words = outbox(window.home, "list").stdout.decode().split()
        assert (words.count("sending"), words.count("waiting")) == (1, 3)

        # The first is sent and the second's transaction runs: it alone says sending.
        handler.let_one_through()
        expected = Counter({"sent": 1, "sending": 1, "waiting": 2})
        qtbot.waitUntil(lambda: shown() == expected, timeout=RESYNC_TIMEOUT_MS)

        handler.open_gate()
        assert flush.wait(timeout=30) == 0, flush.stderr.read().decode() if flush.stderr else ""
    finally:
        if flush.poll() is None:
            flush.kill()
            flush.wait()
        if flush.stderr is not None:
            flush.stderr.close()
    qtbot.waitUntil(lambda: shown() == {"sent": 4}, timeout=RESYNC_TIMEOUT_MS)
    assert len(server.received) == 4
