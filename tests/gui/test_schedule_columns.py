"""The Queued and Next try columns: when a message came, when it goes ("in 5 min" within the
hour, the time later today, else with its date), and the cells on screen kept up to date."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QEvent, QObject, QRect
from PySide6.QtGui import QPaintEvent
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import HEADERS, Column, OutboxModel, next_try_text, queued_text
from relay.events import MessageSnapshot, RecipientSnapshot
from relay.states import MessageState, RecipientState
from relay.store.listing import listed
from tests.gui.driving import shown
from tests.gui.messages import enqueue

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def local(moment: datetime, form: str) -> str:
    return moment.astimezone().strftime(form)


def snapshot(
    state: MessageState, next_at: datetime | None, created: datetime = NOW
) -> MessageSnapshot:
    return MessageSnapshot(
        1, state, "alice@example.org", "Hi", 100, created, 0, next_at, None,
        (RecipientSnapshot("bob@example.net", RecipientState.PENDING, None),), None,
    )  # fmt: skip


def test_a_scheduled_message_shows_when_it_goes_with_the_date_when_not_today() -> None:
    tomorrow = NOW + timedelta(days=1, minutes=30)
    row = listed(snapshot(MessageState.QUEUED, tomorrow))
    assert next_try_text(row, NOW) == local(tomorrow, "%Y-%m-%d %H:%M")
    soon = NOW + timedelta(seconds=1)
    assert next_try_text(listed(snapshot(MessageState.QUEUED, soon)), NOW) == "now"


def test_new_mail_has_no_next_try_and_a_deferred_one_has_its_back_off() -> None:
    assert next_try_text(listed(snapshot(MessageState.QUEUED, None)), NOW) == ""
    later = NOW + timedelta(minutes=5)
    assert next_try_text(listed(snapshot(MessageState.DEFERRED, later)), NOW) == "in 5 min"


def test_a_next_try_reads_relative_within_the_hour_and_as_a_time_after_it() -> None:
    def next_try(ahead: timedelta, now: datetime = NOW) -> str:
        return next_try_text(listed(snapshot(MessageState.DEFERRED, NOW + ahead)), now)

    assert next_try(timedelta(minutes=59, seconds=30)) == "in 59 min"
    assert next_try(timedelta(minutes=60)) == "in 60 min"
    beyond = NOW + timedelta(minutes=61)
    assert next_try(timedelta(minutes=61)) in (
        local(beyond, "%H:%M"),
        local(beyond, "%Y-%m-%d %H:%M"),
    )
    # The same cell, a little later: the words follow the clock, minute by minute.
    assert next_try(timedelta(minutes=5), NOW + timedelta(seconds=59)) == "in 5 min"
    assert next_try(timedelta(minutes=5), NOW + timedelta(minutes=2)) == "in 3 min"


def test_queued_shows_when_the_message_came_with_the_date_when_not_today() -> None:
    assert queued_text(listed(snapshot(MessageState.QUEUED, None)), NOW) == "now"
    earlier = listed(snapshot(MessageState.QUEUED, None, created=NOW - timedelta(minutes=12)))
    assert queued_text(earlier, NOW) == "12 min ago"
    old = NOW - timedelta(days=3)
    row = listed(snapshot(MessageState.SENT, None, created=old))
    assert queued_text(row, NOW) == local(old, "%Y-%m-%d %H:%M")


def test_the_model_has_a_queued_column_before_next_try(qtbot: QtBot) -> None:
    model = OutboxModel()
    model.load([dataclasses.replace(snapshot(MessageState.QUEUED, None), created_at=NOW)])
    assert HEADERS[Column.QUEUED] == "Queued" and Column.QUEUED + 1 == Column.NEXT_TRY
    model.clock = lambda: NOW + timedelta(minutes=3)
    assert model.index(0, Column.QUEUED).data() == "3 min ago"
    model.clock = lambda: NOW + timedelta(hours=2)
    assert model.index(0, Column.QUEUED).data() in (
        local(NOW, "%H:%M"),
        local(NOW, "%Y-%m-%d %H:%M"),
    )


class Paints(QObject):
    """The regions of the paint events a widget gets."""

    def __init__(self) -> None:
        super().__init__()
        self.regions: list[QRect] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QPaintEvent):
            self.regions.append(event.rect())
        return False


def test_the_time_cells_on_screen_are_repainted_once_a_minute(
    window: MainWindow, qtbot: QtBot
) -> None:
    qtbot.waitExposed(window)
    now = datetime.now(UTC)
    window.model.clock = lambda: now
    message_id = enqueue(window.outbox, "ann@example.org")
    when = now.replace(second=30, microsecond=0) + timedelta(minutes=5)
    window.outbox.schedule([message_id], when)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.NEXT_TRY) == "in 5 min")

    timer = window.time_columns_timer
    assert timer.isActive() and 0 < timer.remainingTime() <= 60_000  # at most once a minute
    later = now + timedelta(minutes=2)
    window.model.clock = lambda: later
    assert shown(window, message_id, Column.NEXT_TRY) == "in 3 min"  # the model's words

    paints = Paints()
    viewport = window.view.viewport()
    viewport.installEventFilter(paints)
    header = window.view.horizontalHeader()
    column = QRect(
        header.sectionViewportPosition(Column.NEXT_TRY), 0,
        header.sectionSize(Column.NEXT_TRY), viewport.height(),
    )  # fmt: skip
    for _ in range(2):  # the first time, other redraws may still be on their way
        viewport.repaint()
        paints.regions.clear()
        with qtbot.waitSignal(timer.timeout, timeout=61_000):
            timer.start(1)  # the minute turns
    # The whole column on screen, not just a row a change of the message redrew.
    qtbot.waitUntil(lambda: any(region.contains(column) for region in paints.regions))
    assert timer.isActive()  # again at the next minute
    viewport.removeEventFilter(paints)
