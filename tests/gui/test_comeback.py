"""Back online, or awake again: deferred mail goes at once, not at its next back-off tick."""

from __future__ import annotations

from datetime import timedelta

from PySide6.QtNetwork import QNetworkInformation
from pytestqt.qtbot import QtBot

from gui.comeback import NETWORK, WAKE, ComebackWatch
from gui.main_window import MainWindow
from relay.message import parse_message
from relay.states import MessageState
from relay.store.outbox import utc_now
from tests.gui.driving import click_action, shown_state
from tests.gui.messages import enqueue, message_bytes
from tests.support.gated_servers import GatedHandler
from tests.support.smtp_servers import RunningServer

Reachability = QNetworkInformation.Reachability
FLUSH_TIMEOUT_MS = 30_000


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.monotonic = 500.0


def watch(qtbot: QtBot, clocks: Clocks) -> tuple[ComebackWatch, list[str]]:
    seen: list[str] = []
    comeback = ComebackWatch(
        use_backend=False, wall=lambda: clocks.wall, monotonic=lambda: clocks.monotonic
    )
    comeback.came_back.connect(seen.append)
    return comeback, seen


def test_a_wake_from_sleep_is_the_wall_clock_running_ahead_of_the_monotonic_one(
    qtbot: QtBot,
) -> None:
    clocks = Clocks()
    comeback, seen = watch(qtbot, clocks)
    clocks.wall += 30
    clocks.monotonic += 30
    comeback.check_sleep()
    assert seen == []  # awake all along
    clocks.wall += 45 * 60  # the lid was closed for 45 minutes
    clocks.monotonic += 30
    comeback.check_sleep()
    assert seen == [WAKE]
    comeback.stop()


def test_the_network_coming_back_is_a_comeback_and_staying_online_is_not(qtbot: QtBot) -> None:
    comeback, seen = watch(qtbot, Clocks())
    assert comeback.backend is None  # no backend: nothing else changes
    comeback.reachability_changed(Reachability.Online)
    comeback.reachability_changed(Reachability.Disconnected)
    comeback.reachability_changed(Reachability.Local)
    assert seen == []
    comeback.reachability_changed(Reachability.Online)
    assert seen == [NETWORK]
    comeback.stop()


def test_back_online_the_window_sends_deferred_mail_at_once_and_nothing_else(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    handler.refuse["bob@example.net"] = "451 4.4.1 No route to host"
    message = enqueue(window.outbox, "bob@example.net", "Stuck on a train")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    deferred = window.outbox.get(message)
    assert deferred.next_attempt_at is not None
    assert deferred.next_attempt_at >= utc_now() + timedelta(seconds=30)  # a real back-off
    new = enqueue(window.outbox, "carol@example.net", "Nobody asked yet")
    later = window.outbox.add_message(
        parse_message(message_bytes("dan@example.net", "Tomorrow")),
        not_before=utc_now() + timedelta(days=1),
    ).id

    handler.refuse.clear()
    window.comeback.reachability_changed(Reachability.Disconnected)
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        window.comeback.reachability_changed(Reachability.Online)
    assert window.outbox.get(message).state is MessageState.SENT
    assert window.outbox.attempts(message)[1].started_at < deferred.next_attempt_at
    assert window.outbox.get(new).state is MessageState.QUEUED
    assert window.outbox.get(later).state is MessageState.QUEUED
    assert [r.rcpt_tos for r in server.received] == [("bob@example.net",)]


def test_a_wake_and_the_network_coming_back_together_send_deferred_mail_once(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    handler.refuse["bob@example.net"] = "451 4.4.1 No route to host"
    message = enqueue(window.outbox, "bob@example.net", "Stuck on a train")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    assert window.outbox.get(message).attempts == 1

    # The lid opens: the clocks tell of the sleep and the network is back at once.
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        window.comeback.came_back.emit(WAKE)
        window.comeback.came_back.emit(NETWORK)
    assert not window.runner.running  # no second flush for the same comeback
    assert window.outbox.get(message).attempts == 2
    assert window.outbox.get(message).state is MessageState.DEFERRED
