""" "Send Later…" on the selection: a date-time picker, and the message waits for its time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QDate, QDateTime, QTime
from PySide6.QtWidgets import QDateTimeEdit
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import Column
from gui.send_later import SendLaterDialog
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


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is Europe/Berlin (clocks go back at 03:00 CEST on 2026-10-25)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 02:10 CET, after the clocks went back: 02:45 comes again in 35 minutes.
        (datetime(2026, 10, 25, 1, 10, tzinfo=UTC), datetime(2026, 10, 25, 1, 45, tzinfo=UTC)),
        # 02:10 CEST, before: 02:45 is its first showing, in 35 minutes too.
        (datetime(2026, 10, 25, 0, 10, tzinfo=UTC), datetime(2026, 10, 25, 0, 45, tzinfo=UTC)),
    ],
)
def test_a_time_the_clock_shows_twice_is_the_next_one_to_come(
    qtbot: QtBot, berlin: None, now: datetime, expected: datetime
) -> None:
    dialog = SendLaterDialog(1, now)
    qtbot.addWidget(dialog)
    dialog.show()
    picker = dialog.findChild(QDateTimeEdit, "send_later_when")
    assert picker is not None
    picker.setDateTime(QDateTime(QDate(2026, 10, 25), QTime(2, 45)))
    assert picker.time() == QTime(2, 45)

    with qtbot.waitSignal(dialog.chosen) as chosen:
        click_button(qtbot, dialog, "send_later_accept")

    assert chosen.args == [expected]
