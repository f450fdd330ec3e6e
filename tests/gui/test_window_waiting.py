"""Over one connection one message is sent at a time: the others claimed say "waiting".

The window shows ``sending`` only for the message whose own transaction
runs; the rest of the batch its connection took reads ``waiting`` until its
turn, and every one ends ``sent``.
"""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from relay.states import MessageState
from tests.gui.driving import click_action, shown_state
from tests.gui.messages import enqueue
from tests.gui.servers import GatedHandler
from tests.gui.test_window_flush import FLUSH_TIMEOUT_MS, states_seen
from tests.support.smtp_servers import RunningServer


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
