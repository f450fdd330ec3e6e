"""The outbox as a Qt table: one row per message, updated in coalesced batches.

Rules this module keeps:

- Rows are fed, never fetched: ``load`` once, then snapshots from engine
  events (``EngineBridge``) or from a reconciliation after another process
  changed the store (``reconcile``). The model never reads the database.
- Updates are coalesced: events land in a pending buffer and a single-shot
  timer applies them at most ``MAX_REDRAWS_PER_S`` times a second, as
  ``dataChanged`` / ``rowsInserted`` / ``rowsRemoved`` for exactly the rows
  that changed. Nothing but ``load`` resets the model.
- Per-row data is cheap: display strings and sort keys are computed once per
  change, so ``data()`` is a lookup; 10,000 rows scroll without work.
- The model sorts itself (``sort``) with Python's ``sorted`` over precomputed
  keys: a proxy's per-comparison calls into Python would take a second for
  10,000 rows. ``OutboxFilter`` (the view's model) only filters and forwards
  ``sort`` here. A live change that breaks the order re-sorts at most once a
  second, so rows do not jump about while a flush runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)

from gui.display_text import last_result_text, recipients_text, size_text, when_text
from gui.icons import state_icon
from relay.events import MessageSnapshot
from relay.states import MessageState

MAX_REDRAWS_PER_S = 30
RESORT_INTERVAL_S = 1.0

ModelIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    STATE = 0
    RECIPIENTS = 1
    SUBJECT = 2
    SIZE = 3
    ATTEMPTS = 4
    LAST_RESULT = 5
    NEXT_TRY = 6
    PROGRESS = 7


HEADERS = {
    Column.STATE: "State",
    Column.RECIPIENTS: "Recipients",
    Column.SUBJECT: "Subject",
    Column.SIZE: "Size",
    Column.ATTEMPTS: "Attempts",
    Column.LAST_RESULT: "Last result",
    Column.NEXT_TRY: "Next try",
    Column.PROGRESS: "Progress",
}

#: Column 0 (and every column): the message id (the testing contract).
ID_ROLE = Qt.ItemDataRole.UserRole
#: ``Progress`` or None: what the progress delegate draws.
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
#: The ``MessageState``.
STATE_ROLE = Qt.ItemDataRole.UserRole + 2

# The order a sort by state shows: what needs attention first, done last.
_STATE_ORDER = {
    state: position
    for position, state in enumerate(
        (
            MessageState.SENDING,
            MessageState.FAILED,
            MessageState.UNCERTAIN,
            MessageState.DEFERRED,
            MessageState.QUEUED,
            MessageState.HELD,
            MessageState.SENT,
        )
    )
}
_NUMERIC = (Column.SIZE, Column.ATTEMPTS)


class Progress:
    """Where a message being sent is: a phase word and bytes of total."""

    __slots__ = ("phase", "sent_bytes", "total_bytes")

    def __init__(self, total_bytes: int) -> None:
        self.phase = "waiting"
        self.sent_bytes = 0
        self.total_bytes = total_bytes

    @property
    def fraction(self) -> float:
        return min(1.0, self.sent_bytes / self.total_bytes) if self.total_bytes else 0.0

    def text(self) -> str:
        if self.phase == "sending" and self.total_bytes:
            return f"{self.fraction:.0%}"
        return self.phase


class _Row:
    __slots__ = ("keys", "message", "progress", "search", "texts")

    def __init__(self, message: MessageSnapshot, now: datetime) -> None:
        self.progress: Progress | None = None
        self.set(message, now)

    def set(
        self, message: MessageSnapshot, now: datetime, progress: Progress | None = None
    ) -> None:
        self.message = message
        recipients = recipients_text(message)
        last = last_result_text(message)
        self.texts = (
            message.state.value,
            recipients,
            message.subject,
            size_text(message.size),
            str(message.attempts),
            last,
            when_text(message.next_attempt_at, now) if message.state.value == "deferred" else "",
        )
        self.search = " ".join(
            [message.subject, *(r.address for r in message.recipients)]
        ).casefold()
        next_at = message.next_attempt_at
        self.keys: tuple[Any, ...] = (
            _STATE_ORDER[message.state],
            recipients.casefold(),
            message.subject.casefold(),
            message.size,
            message.attempts,
            last.casefold(),
            next_at.timestamp() if next_at is not None else float("inf"),
        )
        if message.state is not MessageState.SENDING:
            self.progress = None
        elif self.progress is None:
            self.progress = progress or Progress(message.size)

    def sort_key(self, column: int) -> Any:
        if column == Column.PROGRESS:
            return self.progress.fraction if self.progress is not None else -1.0
        return self.keys[column]


class OutboxModel(QAbstractTableModel):
    """Every message of one outbox. Feed it; it redraws what changed, coalesced."""

    #: The per-state counts changed: ``dict[MessageState, int]``.
    counts_changed = Signal(object)
    #: A batch was applied: the ``set[int]`` of message ids whose row changed or went.
    messages_refreshed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []
        self._row_of: dict[int, int] = {}
        self._counts = dict.fromkeys(MessageState, 0)
        self._pending: dict[int, MessageSnapshot | None] = {}
        self._pending_progress: set[int] = set()
        # Progress of messages whose "sending" snapshot waits in the pending batch:
        # shown with that batch, never before the row says "sending".
        self._early_progress: dict[int, Progress] = {}
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._last_sort_s = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(1000 // MAX_REDRAWS_PER_S)
        self._timer.timeout.connect(self.apply_pending)
        self._resort_timer = QTimer(self)
        self._resort_timer.setSingleShot(True)
        self._resort_timer.timeout.connect(self._resort)

    # -- feeding ----------------------------------------------------------------------

    def load(self, messages: Iterable[MessageSnapshot]) -> None:
        """Replace every row (the one full reset, at start-up)."""
        self._timer.stop()
        self._pending.clear()
        self._pending_progress.clear()
        self._early_progress.clear()
        now = datetime.now(UTC)
        self.beginResetModel()
        self._rows = [_Row(m, now) for m in messages]
        self._sort_rows()
        self._reindex()
        self.endResetModel()
        self._recount()

    def message_arrived(self, message: MessageSnapshot) -> None:
        """A new or changed snapshot (queued, changed): shown with the next batch."""
        self._pending[message.id] = message
        self._schedule()

    def message_gone(self, message_id: int) -> None:
        self._pending[message_id] = None
        self._schedule()

    def phase_reached(self, message_id: int, phase: str) -> None:
        progress = self._progress(message_id)
        if progress is not None:
            progress.phase = phase
            self._pending_progress.add(message_id)
            self._schedule()

    def bytes_sent(self, message_id: int, sent_bytes: int, total_bytes: int) -> None:
        progress = self._progress(message_id)
        if progress is not None:
            progress.phase = "sending"
            progress.sent_bytes = sent_bytes
            progress.total_bytes = total_bytes
            self._pending_progress.add(message_id)
            self._schedule()

    def reconcile(self, messages: Sequence[MessageSnapshot]) -> None:
        """Make the rows match ``messages`` (the whole store, re-read) with minimal changes."""
        self.apply_pending()
        seen = set()
        for message in messages:
            seen.add(message.id)
            row = self._row_of.get(message.id)
            if row is None or self._rows[row].message != message:
                self._pending[message.id] = message
        for message_id in self._row_of.keys() - seen:
            self._pending[message_id] = None
        self.apply_pending()

    def _progress(self, message_id: int) -> Progress | None:
        """The progress to update: the row's, or one held back until its row says "sending"."""
        row = self._row_of.get(message_id)
        if row is None:
            return None
        entry = self._rows[row]
        if entry.progress is not None:
            return entry.progress
        pending = self._pending.get(message_id)
        if pending is not None and pending.state is MessageState.SENDING:
            return self._early_progress.setdefault(message_id, Progress(pending.size))
        return None

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    # -- applying a batch ---------------------------------------------------------------

    def apply_pending(self) -> None:
        """Show everything buffered now: removals, then changes, then new rows."""
        self._timer.stop()
        if not self._pending and not self._pending_progress:
            return
        pending, self._pending = self._pending, {}
        progress_ids, self._pending_progress = self._pending_progress, set()
        early, self._early_progress = self._early_progress, {}
        now = datetime.now(UTC)
        touched: set[int] = set(pending)
        counts_before = dict(self._counts)

        gone = sorted(
            (self._row_of[i] for i, m in pending.items() if m is None and i in self._row_of),
            reverse=True,
        )
        if gone:
            self._remove_rows(gone)

        changed_rows: list[int] = []
        added: list[_Row] = []
        for message_id, message in pending.items():
            if message is None:
                continue
            row = self._row_of.get(message_id)
            if row is None:
                added.append(_Row(message, now))
                self._counts[message.state] += 1
                continue
            entry = self._rows[row]
            self._counts[entry.message.state] -= 1
            self._counts[message.state] += 1
            entry.set(message, now, early.get(message_id))
            changed_rows.append(row)
        last_column = len(Column) - 1
        for first, last in _runs(sorted(changed_rows)):
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

        progress_rows = sorted(
            self._row_of[i] for i in progress_ids - touched if i in self._row_of
        )
        for first, last in _runs(progress_rows):
            self.dataChanged.emit(
                self.index(first, Column.PROGRESS), self.index(last, Column.PROGRESS)
            )

        if added:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
            self._rows.extend(added)
            for offset, entry in enumerate(added):
                self._row_of[entry.message.id] = start + offset
            self.endInsertRows()

        if self._sort_column >= 0 and self._out_of_order(
            [*changed_rows, *progress_rows], len(added)
        ):
            self._request_resort()
        if self._counts != counts_before:
            self.counts_changed.emit(dict(self._counts))
        self.messages_refreshed.emit(touched | progress_ids)

    def _remove_rows(self, rows_descending: list[int]) -> None:
        for last, first in _runs(rows_descending, step=-1):
            self.beginRemoveRows(QModelIndex(), first, last)
            for entry in self._rows[first : last + 1]:
                self._counts[entry.message.state] -= 1
            del self._rows[first : last + 1]
            self.endRemoveRows()
        self._reindex()

    def _reindex(self) -> None:
        self._row_of = {entry.message.id: row for row, entry in enumerate(self._rows)}

    def _recount(self) -> None:
        counts = dict.fromkeys(MessageState, 0)
        for entry in self._rows:
            counts[entry.message.state] += 1
        self._counts = counts
        self.counts_changed.emit(dict(counts))

    # -- sorting ------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column = column
        self._sort_order = order
        self._resort_timer.stop()
        self._resort()

    def _resort(self) -> None:
        self.apply_pending()
        self.layoutAboutToBeChanged.emit()
        old_ids = [entry.message.id for entry in self._rows]
        self._sort_rows()
        self._reindex()
        persistent = self.persistentIndexList()
        if persistent:
            self.changePersistentIndexList(
                persistent,
                [
                    self.index(self._row_of[old_ids[index.row()]], index.column())
                    for index in persistent
                ],
            )
        self.layoutChanged.emit()
        self._last_sort_s = time.monotonic()

    def _sort_rows(self) -> None:
        column = self._sort_column
        if column < 0:
            self._rows.sort(key=lambda entry: entry.message.id)
            return
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        # Ties in id order, whatever the direction: stable and predictable.
        self._rows.sort(key=lambda entry: entry.message.id)
        self._rows.sort(key=lambda entry: entry.sort_key(column), reverse=descending)

    def _out_of_order(self, rows: list[int], added: int) -> bool:
        if added:
            return True
        column = self._sort_column
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        for row in rows:
            key = self._rows[row].sort_key(column)
            if row > 0:
                before = self._rows[row - 1].sort_key(column)
                if (key > before) if descending else (key < before):
                    return True
            if row + 1 < len(self._rows):
                after = self._rows[row + 1].sort_key(column)
                if (key < after) if descending else (key > after):
                    return True
        return False

    def _request_resort(self) -> None:
        if self._resort_timer.isActive():
            return
        wait_s = max(0.0, self._last_sort_s + RESORT_INTERVAL_S - time.monotonic())
        self._resort_timer.start(int(wait_s * 1000))

    # -- reading ----------------------------------------------------------------------

    def counts(self) -> dict[MessageState, int]:
        return dict(self._counts)

    def row_of(self, message_id: int) -> int | None:
        return self._row_of.get(message_id)

    def message_at(self, row: int) -> MessageSnapshot:
        return self._rows[row].message

    def progress_of(self, message_id: int) -> Progress | None:
        row = self._row_of.get(message_id)
        return None if row is None else self._rows[row].progress

    def matches(self, row: int, state: MessageState | None, needle: str) -> bool:
        """Whether ``row`` passes the filter: ``state`` (None: any) and casefolded ``needle``."""
        entry = self._rows[row]
        if state is not None and entry.message.state is not state:
            return False
        return not needle or needle in entry.search

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(Column):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[Column(section)]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in _NUMERIC:
                return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._rows)):
            return None
        entry = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            if column == Column.PROGRESS:
                return entry.progress.text() if entry.progress is not None else ""
            return entry.texts[column] if column < len(entry.texts) else None
        if role == ID_ROLE:
            return entry.message.id
        if role == Qt.ItemDataRole.DecorationRole:
            return state_icon(entry.message.state) if column == Column.STATE else None
        if role == PROGRESS_ROLE:
            return entry.progress
        if role == STATE_ROLE:
            return entry.message.state
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _NUMERIC:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    @staticmethod
    def _tooltip(entry: _Row, column: int) -> str | None:
        message = entry.message
        if column == Column.RECIPIENTS and len(message.recipients) > 1:
            return "\n".join(f"{r.address} ({r.state.value})" for r in message.recipients)
        if column == Column.LAST_RESULT and entry.texts[Column.LAST_RESULT]:
            return message.last_error or entry.texts[Column.LAST_RESULT]
        if column == Column.SUBJECT and message.subject:
            return f"{message.subject}\nfrom {message.sender}"
        return None


class OutboxFilter(QSortFilterProxyModel):
    """The view's model: filters by state and a search text; sorting is the source's job."""

    def __init__(self, source: OutboxModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._state: MessageState | None = None
        self._needle = ""
        self.setSourceModel(source)

    @property
    def state(self) -> MessageState | None:
        return self._state

    @property
    def search_text(self) -> str:
        return self._needle

    def set_state(self, state: MessageState | None) -> None:
        if state is not self._state:
            self._change_filter(state, self._needle)

    def set_search_text(self, text: str) -> None:
        needle = " ".join(text.split()).casefold()
        if needle != self._needle:
            self._change_filter(self._state, needle)

    def _change_filter(self, state: MessageState | None, needle: str) -> None:
        if _HAS_FILTER_CHANGE:  # Qt 6.10: invalidateRowsFilter is deprecated
            self.beginFilterChange()
            self._state, self._needle = state, needle
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._state, self._needle = state, needle
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        return self._source.matches(source_row, self._state, self._needle)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        # The source sorts far faster than per-comparison calls into Python; the
        # proxy keeps the source's order (its own sort column stays -1).
        self._source.sort(column, order)


_HAS_FILTER_CHANGE = hasattr(QSortFilterProxyModel, "endFilterChange")


def _runs(rows: Sequence[int], step: int = 1) -> list[tuple[int, int]]:
    """Consecutive runs of ``rows`` (sorted in the direction of ``step``) as (first, last)."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and row == runs[-1][1] + step:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
