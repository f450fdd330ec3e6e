"""The Queued and Next try columns: when a message came, when it goes (its date if not today)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from pytestqt.qtbot import QtBot

from gui.outbox_model import HEADERS, Column, OutboxModel, next_try_text, queued_text
from relay.events import MessageSnapshot, RecipientSnapshot
from relay.listing import listed
from relay.states import MessageState, RecipientState

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
    assert next_try_text(listed(snapshot(MessageState.QUEUED, soon)), NOW) == local(soon, "%H:%M")


def test_new_mail_has_no_next_try_and_a_deferred_one_has_its_back_off() -> None:
    assert next_try_text(listed(snapshot(MessageState.QUEUED, None)), NOW) == ""
    later = NOW + timedelta(seconds=5)
    assert next_try_text(listed(snapshot(MessageState.DEFERRED, later)), NOW) == local(
        later, "%H:%M"
    )


def test_queued_shows_when_the_message_came_with_the_date_when_not_today() -> None:
    assert queued_text(listed(snapshot(MessageState.QUEUED, None)), NOW) == local(NOW, "%H:%M")
    old = NOW - timedelta(days=3)
    row = listed(snapshot(MessageState.SENT, None, created=old))
    assert queued_text(row, NOW) == local(old, "%Y-%m-%d %H:%M")


def test_the_model_has_a_queued_column_before_next_try(qtbot: QtBot) -> None:
    model = OutboxModel()
    model.load([dataclasses.replace(snapshot(MessageState.QUEUED, None), created_at=NOW)])
    assert HEADERS[Column.QUEUED] == "Queued" and Column.QUEUED + 1 == Column.NEXT_TRY
    shown = model.index(0, Column.QUEUED).data()
    assert shown in (local(NOW, "%H:%M"), local(NOW, "%Y-%m-%d %H:%M"))
