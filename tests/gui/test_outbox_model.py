"""The outbox model: fed snapshots, it shows exactly what changed, coalesced, and stays valid.

Most of these feed the model the way the bridge does and check it with
pytest-qt's ``qtmodeltester`` after every kind of change.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from gui.outbox_model import (
    HEADERS,
    ID_ROLE,
    MAX_REDRAWS_PER_S,
    PROGRESS_ROLE,
    Column,
    OutboxFilter,
    OutboxModel,
    Progress,
)
from relay.events import MessageSnapshot, RecipientSnapshot
from relay.states import MessageState, RecipientState
from relay.store.listing import listed

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def snapshot(
    message_id: int,
    state: MessageState = MessageState.QUEUED,
    *,
    subject: str | None = None,
    to: str | None = None,
    size: int = 1000,
    error: str | None = None,
) -> MessageSnapshot:
    return MessageSnapshot(
        id=message_id,
        state=state,
        sender="alice@example.org",
        subject=subject if subject is not None else f"Subject {message_id}",
        size=size,
        created_at=NOW,
        attempts=1 if state is not MessageState.QUEUED else 0,
        next_attempt_at=NOW + timedelta(minutes=5) if state is MessageState.DEFERRED else None,
        last_error=error,
        recipients=(
            RecipientSnapshot(to or f"user{message_id}@example.net", RecipientState.PENDING, None),
        ),
    )


@pytest.fixture
def model(qtbot: QtBot) -> OutboxModel:
    return OutboxModel()


def column_values(model: OutboxModel | OutboxFilter, column: int) -> list[object]:
    return [model.index(row, column).data() for row in range(model.rowCount())]


def ids_of(model: OutboxModel | OutboxFilter) -> list[int]:
    return [model.index(row, 0).data(ID_ROLE) for row in range(model.rowCount())]


def test_column_zero_user_role_is_the_message_id_and_the_state_column_holds_the_word(
    model: OutboxModel,
) -> None:
    model.load([snapshot(4, MessageState.FAILED), snapshot(9, MessageState.HELD)])
    state_column = [
        c
        for c in range(model.columnCount())
        if model.headerData(c, Qt.Orientation.Horizontal) == "State"
    ]
    assert state_column == [Column.STATE]
    assert ids_of(model) == [4, 9]
    assert column_values(model, Column.STATE) == ["failed", "held"]
    assert model.index(0, 0).data(Qt.ItemDataRole.UserRole) == 4


def test_the_model_stays_valid_through_every_kind_of_change(
    model: OutboxModel, qtmodeltester: ModelTester
) -> None:
    proxy = OutboxFilter(model)
    model.load([snapshot(i) for i in range(1, 6)])
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)

    model.message_arrived(snapshot(6))  # queued
    model.apply_pending()
    qtmodeltester.check(model)
    model.message_arrived(snapshot(2, MessageState.SENDING))  # changed
    model.bytes_sent(2, 500, 1000)  # progress
    model.apply_pending()
    qtmodeltester.check(model)
    model.message_gone(3)  # deleted
    model.message_gone(4)
    model.apply_pending()
    qtmodeltester.check(model)
    proxy.sort(Column.SUBJECT, Qt.SortOrder.DescendingOrder)  # sorted
    qtmodeltester.check(proxy)
    proxy.set_state(MessageState.QUEUED)  # filtered
    qtmodeltester.check(proxy)
    model.reconcile([snapshot(1, MessageState.SENT), snapshot(7)])  # another process
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)
    assert sorted(ids_of(model)) == [1, 7]
    assert ids_of(proxy) == [7]


def test_changes_read_from_the_store_insert_update_and_remove_only_their_rows(
    model: OutboxModel, qtmodeltester: ModelTester
) -> None:
    proxy = OutboxFilter(model)
    model.load([snapshot(i) for i in range(1, 6)])
    proxy.sort(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    events: list[str] = []
    model.modelReset.connect(lambda: events.append("reset"))
    model.rowsInserted.connect(lambda *_: events.append("inserted"))
    model.rowsRemoved.connect(lambda *_: events.append("removed"))
    model.apply_listed_changes(
        [listed(snapshot(2, MessageState.HELD)), listed(snapshot(3)), listed(snapshot(7))],
        removed=[4, 99],  # 99: added and deleted before it was ever read
    )
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)
    assert events == ["removed", "inserted"]  # never a reset
    assert [model.row_of(2)] == [row for row, _ in changed]  # 3 read back unchanged: left alone
    assert sorted(ids_of(model)) == [1, 2, 3, 5, 7]
    assert model.state_of(2) is MessageState.HELD
    assert model.counts()[MessageState.HELD] == 1 and model.counts()[MessageState.QUEUED] == 4


def test_events_are_shown_in_one_batch_on_the_next_tick_not_one_redraw_each(
    model: OutboxModel, qtbot: QtBot
) -> None:
    model.load([snapshot(i) for i in range(1, 101)])
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b: changes.append((a.row(), b.row())))
    resets: list[None] = []
    model.modelReset.connect(lambda: resets.append(None))
    for message_id in range(1, 101):
        model.message_arrived(snapshot(message_id, MessageState.SENDING))
        for sent in range(0, 1000, 100):
            model.bytes_sent(message_id, sent, 1000)
    assert changes == []  # nothing redrawn yet: all of it waits for the timer
    with qtbot.waitSignal(model.messages_refreshed):
        pass
    assert changes == [(0, 99)]  # one contiguous run, one signal
    assert resets == []
    assert column_values(model, Column.STATE) == ["sending"] * 100


def test_a_stream_of_events_redraws_at_most_thirty_times_a_second(
    model: OutboxModel, qtbot: QtBot
) -> None:
    model.load([snapshot(1, MessageState.SENDING)])
    batches: list[float] = []
    model.messages_refreshed.connect(lambda _ids: batches.append(time.monotonic()))
    sent = 0
    started = time.monotonic()

    def feed() -> bool:
        nonlocal sent
        for _ in range(50):
            sent += 1
            model.bytes_sent(1, sent, 10**9)
        return time.monotonic() - started > 0.5

    qtbot.waitUntil(feed, timeout=5000)
    qtbot.waitSignal(model.messages_refreshed).wait()
    elapsed = time.monotonic() - started
    assert len(batches) >= 2
    assert len(batches) <= elapsed * MAX_REDRAWS_PER_S + 2
    progress = model.index(0, Column.PROGRESS).data(PROGRESS_ROLE)
    assert isinstance(progress, Progress) and progress.sent_bytes == sent


def test_progress_shows_only_while_a_message_is_being_sent(model: OutboxModel) -> None:
    model.load([snapshot(1), snapshot(2)])
    model.message_arrived(snapshot(1, MessageState.SENDING, size=2048))
    model.bytes_sent(1, 1024, 2048)
    model.bytes_sent(2, 10, 100)  # not sending: ignored
    model.apply_pending()
    progress = model.index(0, Column.PROGRESS).data(PROGRESS_ROLE)
    assert isinstance(progress, Progress) and progress.fraction == 0.5
    assert model.index(0, Column.PROGRESS).data() == "50%"
    assert model.index(1, Column.PROGRESS).data(PROGRESS_ROLE) is None
    model.phase_reached(1, "awaiting verdict")
    model.apply_pending()
    assert model.index(0, Column.PROGRESS).data() == "awaiting verdict"
    model.message_arrived(dataclasses.replace(snapshot(1, MessageState.SENT), attempts=1))
    model.apply_pending()
    assert model.index(0, Column.PROGRESS).data(PROGRESS_ROLE) is None
    assert model.index(0, Column.PROGRESS).data() == ""


def test_last_result_shows_the_servers_reply(model: OutboxModel) -> None:
    refused = snapshot(1, MessageState.FAILED, error="550 5.1.1 <x@example.net>: no such user")
    model.load([refused])
    assert model.index(0, Column.LAST_RESULT).data() == ("550 5.1.1 <x@example.net>: no such user")


def test_counts_follow_every_change(model: OutboxModel, qtbot: QtBot) -> None:
    model.load([snapshot(1), snapshot(2), snapshot(3, MessageState.FAILED)])
    assert model.counts()[MessageState.QUEUED] == 2
    with qtbot.waitSignal(model.counts_changed) as blocker:
        model.message_arrived(snapshot(1, MessageState.SENT))
        model.message_gone(3)
    counts = blocker.args[0]
    assert counts[MessageState.QUEUED] == 1
    assert counts[MessageState.SENT] == 1
    assert counts[MessageState.FAILED] == 0


def test_filter_by_state_and_search_recipients_and_subject(model: OutboxModel) -> None:
    proxy = OutboxFilter(model)
    model.load(
        [
            snapshot(1, subject="Invoice November", to="ann@example.net"),
            snapshot(2, MessageState.FAILED, subject="Lunch?", to="bob@example.net"),
            snapshot(3, MessageState.FAILED, subject="Invoice December", to="cy@example.net"),
        ]
    )
    proxy.set_state(MessageState.FAILED)
    assert ids_of(proxy) == [2, 3]
    proxy.set_search_text("  INVOICE ")
    assert ids_of(proxy) == [3]
    proxy.set_state(None)
    assert ids_of(proxy) == [1, 3]
    proxy.set_search_text("bob@")
    assert ids_of(proxy) == [2]
    model.message_arrived(snapshot(4, to="bob@example.org"))
    model.apply_pending()
    assert ids_of(proxy) == [2, 4]


def test_a_live_change_that_breaks_the_sort_order_is_resorted(
    model: OutboxModel, qtbot: QtBot
) -> None:
    proxy = OutboxFilter(model)
    model.load(
        [
            snapshot(1, MessageState.QUEUED),
            snapshot(2, MessageState.QUEUED),
            snapshot(3, MessageState.SENT),
        ]
    )
    proxy.sort(Column.STATE, Qt.SortOrder.AscendingOrder)  # needs attention first
    assert ids_of(proxy) == [1, 2, 3]
    model.message_arrived(snapshot(2, MessageState.FAILED, error="550 no"))
    with qtbot.waitSignal(model.layoutChanged, timeout=3000):
        model.apply_pending()
    assert ids_of(proxy) == [2, 1, 3]


def test_a_selected_row_stays_selected_when_the_model_sorts(
    model: OutboxModel, qtbot: QtBot
) -> None:
    proxy = OutboxFilter(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    model.load([snapshot(i, subject=f"{'zyxwv'[i - 1]}") for i in range(1, 6)])
    view.selectRow(0)  # message 1, subject "z"
    proxy.sort(Column.SUBJECT, Qt.SortOrder.AscendingOrder)
    selected = view.selectionModel().selectedRows()
    assert [index.data(ID_ROLE) for index in selected] == [1]
    assert selected[0].row() == 4


class RowCountingModel(OutboxModel):
    """An outbox model that remembers which rows the view asked it about."""

    def __init__(self) -> None:
        super().__init__()
        self.rows_asked: set[int] = set()

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        self.rows_asked.add(index.row())
        return super().data(index, role)


def test_ten_thousand_messages_load_sort_filter_and_scroll(
    qtbot: QtBot,
) -> None:
    model = RowCountingModel()
    states = list(MessageState)
    messages = [
        snapshot(
            i,
            states[i % len(states)],
            subject=f"Report {(i * 7919) % 10007}",
            size=500 + (i * 37) % 90_000,
            error="451 4.7.1 try again later" if i % 7 == 0 else None,
        )
        for i in range(1, 10_001)
    ]
    proxy = OutboxFilter(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.resize(1200, 800)
    view.show()

    # How fast is for the benchmarks (figures 6a/6b); here, that each step is right and
    # paints, on any machine however busy.
    def painted(action: object) -> None:
        assert callable(action)
        action()
        view.viewport().repaint()

    painted(lambda: model.load(messages))
    for column in Column:
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            painted(lambda c=column, o=order: view.sortByColumn(c, o))
    view.sortByColumn(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    subjects = column_values(proxy, Column.SUBJECT)
    assert subjects == sorted(subjects, key=str.casefold, reverse=True)
    painted(lambda: proxy.set_state(MessageState.FAILED))
    assert proxy.rowCount() == sum(1 for m in messages if m.state is MessageState.FAILED)
    painted(lambda: proxy.set_search_text("report 1"))
    proxy.set_state(None)
    proxy.set_search_text("")
    scrollbar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: scrollbar.maximum() > 1000)
    # Scrolling costs what is on screen, not what is in the outbox: each step asks the
    # model about the rows in view (a page, plus the few Qt measures around it), never
    # about the thousands elsewhere. Counted, not timed, so a busy machine cannot fail it.
    page = view.viewport().height() // max(1, view.verticalHeader().defaultSectionSize()) + 1
    asked_per_step = []
    for value in range(0, scrollbar.maximum(), max(1, scrollbar.maximum() // 40)):
        model.rows_asked.clear()
        scrollbar.setValue(value)
        view.viewport().repaint()
        asked_per_step.append(len(model.rows_asked))
    assert max(asked_per_step) <= 3 * page, (page, max(asked_per_step))
    # A flush's worth of changes at once is one batch, not a reset.
    resets: list[None] = []
    model.modelReset.connect(lambda: resets.append(None))
    painted(
        lambda: (
            [
                model.message_arrived(dataclasses.replace(m, state=MessageState.SENT))
                for m in messages[:2000]
            ]
            and model.apply_pending()
        )
    )
    assert resets == []


def test_rows_are_not_editable_and_have_no_children(model: OutboxModel) -> None:
    model.load([snapshot(1)])
    index = model.index(0, Column.SUBJECT)
    assert not model.flags(index) & Qt.ItemFlag.ItemIsEditable
    assert model.rowCount(index) == 0
    assert model.data(QModelIndex()) is None
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in Column] == list(
        HEADERS.values()
    )
