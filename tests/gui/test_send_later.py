""" "Send Later…" on the selection: a date-time picker, and the message waits for its time."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import QDateTimeEdit
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import Column
from relay.states import MessageState
from tests.gui.driving import click_action, click_button, click_rows, modal, shown, shown_state
from tests.gui.messages import enqueue
from tests.support.smtp_servers import RunningServer

FLUSH_TIMEOUT_MS = 30_000


def test_send_later_keeps_the_selected_message_until_the_time_picked(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    later = enqueue(window.outbox, "bob@example.net", "Tomorrow morning")
    now_too = enqueue(window.outbox, "carol@example.net", "Now")
    qtbot.waitUntil(lambda: shown_state(window, now_too) == "queued")
    click_rows(qtbot, window, later)
    assert window.action_send_later.isEnabled()
    window.action_send_later.trigger()
    dialog = modal(qtbot, "send_later_dialog")
    picker = dialog.findChild(QDateTimeEdit, "send_later_when")
    assert picker is not None
    tomorrow = (datetime.now() + timedelta(days=1)).replace(hour=8, minute=0, second=0)
    picker.setDateTime(QDateTime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 0, 0))
    click_button(qtbot, dialog, "send_later_accept")

    expected = tomorrow.replace(microsecond=0).astimezone()
    qtbot.waitUntil(lambda: window.outbox.get(later).next_attempt_at == expected)
    qtbot.waitUntil(
        lambda: shown(window, later, Column.NEXT_TRY) == tomorrow.strftime("%Y-%m-%d 08:00")
    )
    # Send All sends what is due now, not what waits for tomorrow.
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    assert window.outbox.get(now_too).state is MessageState.SENT
    assert window.outbox.get(later).state is MessageState.QUEUED
    assert [r.rcpt_tos for r in server.received] == [("carol@example.net",)]
    qtbot.waitUntil(lambda: window.auto_send.wake_at == expected)


def test_the_picker_starts_in_the_future_and_refuses_the_past(
    window: MainWindow, qtbot: QtBot
) -> None:
    message = enqueue(window.outbox, "bob@example.net", "Later")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    click_rows(qtbot, window, message)
    window.action_send_later.trigger()
    dialog = modal(qtbot, "send_later_dialog")
    picker = dialog.findChild(QDateTimeEdit, "send_later_when")
    assert picker is not None
    now = QDateTime.currentDateTime()
    assert picker.dateTime() > now
    picker.setDateTime(now.addDays(-2))
    assert picker.dateTime() >= now.addSecs(-60)  # clamped to the minimum: now
    click_button(qtbot, dialog, "send_later_cancel")
    assert window.outbox.get(message).next_attempt_at is None
