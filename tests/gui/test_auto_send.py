"""Due mail goes by itself while the window runs: real window, real engine, real server.

Timers run for real and short (a message due in ~2 s); every wait is on the
outbox's state or a signal, never a sleep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.auto_send import SETTING
from gui.main_window import MainWindow
from relay.message import parse_message
from relay.states import MessageState
from relay.store.outbox import utc_now
from tests.gui.driving import click_action, shown_state
from tests.gui.messages import enqueue, message_bytes
from tests.support.gated_servers import GatedHandler
from tests.support.smtp_servers import RunningServer

FLUSH_TIMEOUT_MS = 30_000
BOB = "bob@example.net"


def soon(seconds: float) -> datetime:
    """A whole second at least ``seconds`` from now (the store keeps whole seconds)."""
    return (utc_now() + timedelta(seconds=seconds + 1)).replace(microsecond=0)


def schedule(window: MainWindow, when: datetime, subject: str = "Later") -> int:
    raw = message_bytes(BOB, subject)
    return window.outbox.add_message(parse_message(raw), not_before=when).id


def auto_send_action(window: MainWindow) -> QAction:
    action = window.findChild(QAction, "action_auto_send")
    assert action is not None
    return action


def test_auto_send_is_a_checked_menu_action_on_by_default_and_remembered(
    window: MainWindow, qtbot: QtBot, account_home: Path
) -> None:
    action = auto_send_action(window)
    assert action.isCheckable() and action.isChecked()
    assert action.text() == "Send deferred messages when they are due"
    menus = [a.menu() for a in window.menuBar().actions() if a.menu() is not None]
    assert any(action in menu.actions() for menu in menus)
    action.trigger()
    assert not action.isChecked()
    window.close()
    again = create_main_window(account_home)
    qtbot.addWidget(again)
    try:
        assert not auto_send_action(again).isChecked()
        assert str(again.settings.value(SETTING)).lower() == "false"
    finally:
        again.close()


def test_a_deferred_message_healed_at_the_server_is_sent_without_a_click_once_due(
    window: MainWindow,
    qtbot: QtBot,
    server: RunningServer,
    handler: GatedHandler,
    account_home: Path,
) -> None:
    config = account_home / "config.toml"
    config.write_text(config.read_text() + "\n[queue]\nfirst_retry_s = 2\n")
    handler.refuse[BOB] = "451 4.2.0 Mailbox busy, try later"
    message = enqueue(window.outbox, BOB, "Minutes")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    deferred = window.outbox.get(message)
    assert deferred.state is MessageState.DEFERRED and deferred.next_attempt_at is not None

    handler.refuse.clear()  # the server heals; nobody clicks
    with qtbot.waitSignal(window.auto_send.started, timeout=FLUSH_TIMEOUT_MS):
        pass
    qtbot.waitUntil(
        lambda: window.outbox.get(message).state is MessageState.SENT, timeout=FLUSH_TIMEOUT_MS
    )
    attempts = window.outbox.attempts(message)
    assert len(attempts) == 2 and attempts[1].started_at >= deferred.next_attempt_at
    assert [r.rcpt_tos for r in server.received] == [(BOB,)]
    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")


def test_a_message_sent_later_goes_at_its_time_and_not_before_and_new_mail_waits(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    new = enqueue(window.outbox, BOB, "Nobody asked to send this yet")
    when = soon(2)
    later = schedule(window, when)
    qtbot.waitUntil(
        lambda: window.outbox.get(later).state is MessageState.SENT, timeout=FLUSH_TIMEOUT_MS
    )
    (attempt,) = window.outbox.attempts(later)
    assert attempt.started_at >= when
    assert window.outbox.get(new).state is MessageState.QUEUED
    assert len(server.received) == 1
    # Nothing else waits for a time: no wake is set once the flush is over.
    qtbot.waitUntil(lambda: not window.runner.running and not window.auto_send.armed)
    assert window.auto_send.wake_at is None


def test_with_auto_send_off_nothing_moves(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    auto_send_action(window).trigger()
    with qtbot.waitSignal(
        window.auto_send.wake_changed, timeout=5000, check_params_cb=lambda at: at is None
    ):
        due = schedule(window, utc_now() - timedelta(minutes=1), "Due a minute ago")
    assert not window.auto_send.armed and not window.runner.running
    assert window.outbox.get(due).state is MessageState.QUEUED and server.received == []
    # Turned on again, the same message goes: it was auto-send that held it back.
    auto_send_action(window).trigger()
    qtbot.waitUntil(
        lambda: window.outbox.get(due).state is MessageState.SENT, timeout=FLUSH_TIMEOUT_MS
    )


def test_a_daily_limit_pauses_the_account_and_the_window_says_until_when(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    handler.refuse[BOB] = "550 5.4.5 Daily user sending limit exceeded."
    first = enqueue(window.outbox, BOB, "One")
    second = enqueue(window.outbox, "carol@example.net", "Two")
    qtbot.waitUntil(lambda: shown_state(window, second) == "queued")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    assert window.outbox.get(first).state is MessageState.DEFERRED
    assert (window.outbox.get(second).state, window.outbox.get(second).attempts) == (
        MessageState.QUEUED,
        0,
    )
    pause = window.outbox.account_pauses()["test"]
    label = window.status.pause_label
    qtbot.waitUntil(label.isVisible)  # beside the counts, whatever notice shows
    local = pause.until.astimezone()
    shown_until = local.strftime("%H:%M")
    if local.date() != utc_now().astimezone().date():
        shown_until = local.strftime("%Y-%m-%d ") + shown_until
    assert label.text() == f"test: paused until {shown_until} (daily sending limit)"
    assert window.auto_send.wake_at == pause.until  # nothing goes by itself before
    # A person's click on Send All sends through the paused account all the same.
    handler.refuse.clear()
    qtbot.waitUntil(lambda: shown_state(window, second) == "queued")  # the table caught up
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    assert window.outbox.get(second).state is MessageState.SENT
    assert window.outbox.account_pauses() == {}  # mail went through: the pause is over
    qtbot.waitUntil(lambda: not label.isVisible())


def test_an_account_that_needs_its_password_is_not_tried_again_by_itself(
    window: MainWindow, qtbot: QtBot, server: RunningServer, account_home: Path
) -> None:
    from relay.accounts import save_accounts

    # The account now signs in, and no password is stored for it.
    save_accounts(account_home, [server.account(name="test", default=True, user="alice")])
    starts: list[None] = []
    window.auto_send.started.connect(lambda: starts.append(None))
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS) as finished:
        due = schedule(window, utc_now() - timedelta(minutes=1), "Due a minute ago")
    assert finished.args is not None and finished.args[0].needs_person == {"test"}
    # Still due, but nothing wakes for it: a person has to give the password first.
    qtbot.waitUntil(lambda: not window.runner.running and window.auto_send.wake_at is None)
    assert not window.auto_send.armed and starts == [None]
    assert window.outbox.get(due).state is MessageState.QUEUED
    assert window.outbox.get(due).attempts == 0 and server.received == []
    # Nobody clicked: the status bar says why, no dialog pops up out of nowhere.
    assert QApplication.activeModalWidget() is None
    assert "no password" in window.statusBar().currentMessage()
