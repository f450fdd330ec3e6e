"""The outbox as a Qt table: one row per message, updated in coalesced batches.

Rules this module keeps:

- Rows are fed, never fetched: ``load_listed`` once (``relay.store.listing``, one
  query for the columns shown; the first rows, then ``append_listed`` for
  the rest, a page per turn of the event loop), then snapshots from engine events
  (``EngineBridge``) or rows read after another process changed the store
  (``apply_listed_changes``: only those that changed; ``reconcile_listed``: a
  whole range re-read). The model never reads the database.
- A message a flush claimed reads "waiting" until its own transaction runs
  (a session sends one at a time). For this process's flush the engine's
  events say when (``phase_reached``); for another process's, the rows read
  from the store do (``relay.store.listing.WAITING``). Either way the row itself
  keeps the ``sending`` state it has in the store, and a mark (``_waiting``)
  changes the word shown.
- A row is a ``relay.store.listing.Listed``: a plain tuple of strings and numbers.
  100,000 of them load in one query with no per-row Python work, take little
  memory, and are invisible to the garbage collector (it untracks tuples of
  atomic values), so a full collection during a flush does not walk them.
  Display strings are made in ``data()``, for the rows on screen only; sort
  keys when sorting; the search text of a row the first time a search needs it.
- Updates are coalesced: events land in a pending buffer and a single-shot
  timer applies them at most ``MAX_REDRAWS_PER_S`` times a second, as
  ``dataChanged`` / ``rowsInserted`` / ``rowsRemoved`` for exactly the rows
  that changed. Nothing but ``load`` resets the model.
- The model sorts itself (``sort``) with Python's ``sorted`` over keys made
  once per sort: a proxy's per-comparison calls into Python would take a
  second for 10,000 rows. ``OutboxFilter`` (the view's model) only filters and
  forwards ``sort`` here. A sort that changes nothing does not announce a new
  layout. A live change that breaks the order re-sorts at most once a second,
  so rows do not jump about while a flush runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QLocale,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)

from gui.display_text import as_tooltip
from gui.icons import state_icon
from gui.local_time import exact_text, moment_text
from relay.events import MessageSnapshot
from relay.sizes import size_text
from relay.states import MessageState, RecipientState
from relay.store.listing import (
    L_ATTEMPTS,
    L_CREATED,
    L_ID,
    L_LAST_ERROR,
    L_NEXT_ATTEMPT,
    L_RECIPIENTS,
    L_REPLY,
    L_SENDER,
    L_SIZE,
    L_STATE,
    L_SUBJECT,
    WAITING,
    Listed,
    listed,
    unpack_recipients,
)
from relay.visible import visible

MAX_REDRAWS_PER_S = 30
RESORT_INTERVAL_S = 1.0

ModelIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    """The table's columns, in the order they are shown."""

    STATE = 0
    RECIPIENTS = 1
    SUBJECT = 2
    SIZE = 3
    ATTEMPTS = 4
    LAST_RESULT = 5
    QUEUED = 6
    NEXT_TRY = 7
    PROGRESS = 8


HEADERS = {
    Column.STATE: "State",
    Column.RECIPIENTS: "Recipients",
    Column.SUBJECT: "Subject",
    Column.SIZE: "Size",
    Column.ATTEMPTS: "Attempts",
    Column.LAST_RESULT: "Last result",
    Column.QUEUED: "Queued",
    Column.NEXT_TRY: "Next try",
    Column.PROGRESS: "Progress",
}

#: Column 0 (and every column): the message id (the testing contract).
ID_ROLE = Qt.ItemDataRole.UserRole
#: ``Progress`` or None: what the progress delegate draws.
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
#: The ``MessageState``.
STATE_ROLE = Qt.ItemDataRole.UserRole + 2

_STATES = {state.value: state for state in MessageState}
_RECIPIENT_STATES = {state.value: state for state in RecipientState}
# The order a sort by state shows: what needs attention first, done last.
_STATE_ORDER = {
    state.value: position
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
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
#: Sizes line up on their right edge; the count of attempts sits centred, so it never
#: touches the Last result text that starts at the left of the next column.
_ALIGNMENT = {
    Column.SIZE: Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
    Column.ATTEMPTS: Qt.AlignmentFlag.AlignCenter,
}
_CELL_ALIGNMENT = tuple(_ALIGNMENT.get(column) for column in Column)  # by index: per cell
_COLUMNS = len(Column)
_SENDING = MessageState.SENDING.value
_DEFERRED = MessageState.DEFERRED.value
# States whose next_attempt_at means something: a deferred's next try, a scheduled's time.
_WAITING = frozenset({_DEFERRED, MessageState.QUEUED.value})
_UNCERTAIN = RecipientState.UNCERTAIN.value
_NEVER = "~"  # sorts after every ISO 8601 time: no next try comes last


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


@dataclass(frozen=True, slots=True)
class RowMessage:
    """What the window's actions need to know of a shown message."""

    id: int
    state: MessageState
    recipients: tuple[tuple[str, RecipientState], ...]


def recipients_text(row: Listed) -> str:
    """The first recipient and how many more: ``ann@example.org +2``."""
    recipients = unpack_recipients(row[L_RECIPIENTS])
    if not recipients:
        return ""
    more = len(recipients) - 1
    first = visible(recipients[0][0])
    return f"{first} +{more}" if more else first


def last_result_text(row: Listed) -> str:
    """The error, or else the server's reply to the first recipient no longer pending."""
    text = row[L_LAST_ERROR] or row[L_REPLY]
    return visible(" ".join(text.split())) if text else ""


def next_try_text(row: Listed, now: datetime, locale: QLocale | None = None) -> str:
    """When a deferred message is tried again, or a scheduled one sent: ``in 5 min`` within
    the hour, the time later today, else with its date (``gui.local_time``)."""
    moment = row[L_NEXT_ATTEMPT]
    if row[L_STATE] not in _WAITING or moment is None:
        return ""
    return _local_when(moment, _minute(now), QLocale() if locale is None else locale)


def queued_text(row: Listed, now: datetime, locale: QLocale | None = None) -> str:
    """When the message entered the outbox: ``12 min ago`` within the hour, the time earlier
    today, else with its date (``gui.local_time``)."""
    created = row[L_CREATED]
    if not created:
        return ""
    return _local_when(created, _minute(now), QLocale() if locale is None else locale)


def _minute(now: datetime) -> int:
    """``now`` in whole minutes since the epoch: what the time columns' words depend on."""
    return int(now.timestamp()) // 60


@lru_cache(maxsize=4096)
def _local_when(stored: str, minute: int, locale: QLocale) -> str:
    """A stored time seen at ``minute`` in ``locale``, as ``gui.local_time`` words it.

    Remembered: a scroll redraws the same cells, and parsing and formatting a
    time per cell slows it; the key changes once a minute, as the words do, or
    with the locale.
    """
    now = datetime.fromtimestamp(minute * 60, UTC)
    return moment_text(datetime.fromisoformat(stored), now, locale)


def _exact_when(stored: str | None) -> str | None:
    return exact_text(datetime.fromisoformat(stored)) if stored else None


def _waiting_apart(rows: list[Listed]) -> tuple[list[Listed], set[int]]:
    """``rows`` read from the store with ``relay.store.listing.WAITING`` made ``sending``,
    and the ids of those rows (claimed by a flush, not yet under way)."""
    waiting = {row[L_ID] for row in rows if row[L_STATE] == WAITING}
    if not waiting:
        return rows, waiting
    return [_as_sending(row) if row[L_ID] in waiting else row for row in rows], waiting


def _as_sending(row: Listed) -> Listed:
    message_id, _, sender, subject, size, tries, next_at, error, recipients, reply, created = row
    return (
        message_id, _SENDING, sender, subject, size, tries, next_at, error, recipients, reply,
        created,
    )  # fmt: skip


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _search_text(row: Listed) -> str:
    addresses = (address for address, _ in unpack_recipients(row[L_RECIPIENTS]))
    return " ".join([row[L_SUBJECT], *addresses]).casefold()


class OutboxModel(QAbstractTableModel):
    """Every message of one outbox. Feed it; it redraws what changed, coalesced."""

    #: The per-state counts changed: ``dict[MessageState, int]``.
    counts_changed = Signal(object)
    #: A batch was applied: the ``set[int]`` of message ids whose row changed or went.
    messages_refreshed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Listed] = []
        #: What the Queued and Next try columns measure from ("in 5 min"); tests set it.
        self.clock: Callable[[], datetime] = _utc_now
        self._row_of: dict[int, int] = {}
        self._counts = dict.fromkeys(MessageState, 0)
        # Progress of the rows in "sending", by message id.
        self._progress: dict[int, Progress] = {}
        # The casefolded search text of rows a search has looked at, by message id.
        self._search: dict[int, str] = {}
        self._pending: dict[int, Listed | None] = {}
        self._pending_progress: set[int] = set()
        # Messages a flush claimed whose own transaction has not begun (this process's,
        # told by events; another's, read from the store): their State reads "waiting"
        # (a session sends one message at a time); their rows say "sending".
        self._waiting: set[int] = set()
        # Progress of messages whose "sending" snapshot waits in the pending batch:
        # shown with that batch, never before the row says "sending".
        self._early_progress: dict[int, Progress] = {}
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._last_sort_s = 0.0
        self._loaded_through: int | None = None  # a load in progress: its last id so far
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(1000 // MAX_REDRAWS_PER_S)
        self._timer.timeout.connect(self.apply_pending)
        self._resort_timer = QTimer(self)
        self._resort_timer.setSingleShot(True)
        self._resort_timer.timeout.connect(self._resort)

    # -- feeding ----------------------------------------------------------------------

    def load(self, messages: Iterable[MessageSnapshot]) -> None:
        """Replace every row with ``messages`` (the one full reset, at start-up)."""
        self.load_listed([listed(m) for m in messages])

    def load_listed(self, rows: list[Listed], *, complete: bool = True) -> None:
        """Replace every row with ``rows`` (``relay.store.listing.list_messages``, in id order).

        The model keeps the list. ``complete`` false: these are the first
        rows, the rest follow through ``append_listed``; until then news of a
        message above the last id loaded is left to the loader, which reads it.
        """
        self._loaded_through = None if complete else (rows[-1][L_ID] if rows else 0)
        self._timer.stop()
        self._pending.clear()
        self._pending_progress.clear()
        rows, self._waiting = _waiting_apart(rows)
        self._early_progress.clear()
        self._search.clear()
        self.beginResetModel()
        self._rows = rows
        self._progress = {
            row[L_ID]: Progress(row[L_SIZE]) for row in rows if row[L_STATE] == _SENDING
        }
        if not self._sort_rows():
            self._reindex()
        self.endResetModel()
        self._recount()

    def append_listed(self, rows: list[Listed], *, complete: bool) -> None:
        """The next rows of a load (ids above those loaded), as new rows at the end."""
        self.apply_pending()
        rows, waiting = _waiting_apart(rows)
        fresh = [row for row in rows if row[L_ID] not in self._row_of]
        self._waiting.update(i for i in waiting if i not in self._row_of)
        if rows and self._loaded_through is not None:
            self._loaded_through = rows[-1][L_ID]
        if fresh:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
            self._rows.extend(fresh)
            for offset, row in enumerate(fresh):
                self._row_of[row[L_ID]] = start + offset
                self._counts[_STATES[row[L_STATE]]] += 1
                if row[L_STATE] == _SENDING:
                    self._progress[row[L_ID]] = Progress(row[L_SIZE])
            self.endInsertRows()
            self.counts_changed.emit(dict(self._counts))
        if complete:
            self._loaded_through = None
            if self._sort_column >= 0:
                self._resort_timer.stop()
                self._resort()
        elif fresh and self._sort_column >= 0:
            self._request_resort()

    @property
    def loading(self) -> bool:
        """Whether rows of the load are still to come (``append_listed``)."""
        return self._loaded_through is not None

    def message_arrived(self, message: MessageSnapshot) -> None:
        """A new or changed snapshot (queued, changed): shown with the next batch.

        A message that has just become ``sending`` was claimed by a flush: it
        reads "waiting" until its own transaction starts (``phase_reached``).
        """
        row = listed(message)
        if row[L_STATE] != _SENDING:
            self._waiting.discard(message.id)
        elif not self._is_sending(message.id):
            self._waiting.add(message.id)
        self._pending[message.id] = row
        self._schedule()

    def _is_sending(self, message_id: int) -> bool:
        """Whether the row already says "sending" (shown, or waiting in the batch)."""
        pending = self._pending.get(message_id)
        if pending is not None:
            return pending[L_STATE] == _SENDING
        index = self._row_of.get(message_id)
        return index is not None and self._rows[index][L_STATE] == _SENDING

    def message_gone(self, message_id: int) -> None:
        self._waiting.discard(message_id)
        self._pending[message_id] = None
        self._schedule()

    def phase_reached(self, message_id: int, phase: str) -> None:
        self._started(message_id)
        progress = self._progress_to_update(message_id)
        if progress is not None:
            progress.phase = phase
            self._pending_progress.add(message_id)
            self._schedule()

    def bytes_sent(self, message_id: int, sent_bytes: int, total_bytes: int) -> None:
        self._started(message_id)
        progress = self._progress_to_update(message_id)
        if progress is not None:
            progress.phase = "sending"
            progress.sent_bytes = sent_bytes
            progress.total_bytes = total_bytes
            self._pending_progress.add(message_id)
            self._schedule()

    def _started(self, message_id: int) -> None:
        """The message's own transaction runs: its State reads "sending" from now on."""
        if message_id in self._waiting:
            self._waiting.discard(message_id)
            self._pending_progress.add(message_id)  # redrawn with its row's progress
            self._schedule()

    def reconcile(self, messages: Sequence[MessageSnapshot]) -> None:
        """Make the rows match ``messages`` (the whole store, re-read) with minimal changes.

        A snapshot does not say whether a claimed message's turn has come: each
        ``sending`` one reads as under way (``reconcile_listed`` is told).
        """
        self.reconcile_listed([listed(m) for m in messages])

    def reconcile_listed(
        self, rows: Sequence[Listed], after_id: int = 0, up_to_id: int | None = None
    ) -> None:
        """Make the rows with ids in (``after_id``, ``up_to_id``] match ``rows``, re-read.

        ``up_to_id`` None: every id above ``after_id``. Only what differs is
        changed, with the next batch applied at once.
        """
        self.apply_pending()
        seen = self._merge_read(rows)
        for message_id in self._row_of:
            if (
                message_id > after_id
                and (up_to_id is None or message_id <= up_to_id)
                and message_id not in seen
            ):
                self._pending[message_id] = None
        self.apply_pending()

    def apply_listed_changes(self, rows: Sequence[Listed], removed: Iterable[int]) -> None:
        """Apply what changed in the store (``relay.store.listing.changes_since``): ``rows``
        changed or new, ``removed`` deleted; only what differs, applied at once.

        Every other row stays as it is, with its selection and place in the sort.
        """
        self.apply_pending()
        self._merge_read(rows)
        for message_id in removed:
            if message_id in self._row_of or message_id in self._pending:
                self._waiting.discard(message_id)
                self._pending[message_id] = None
        self.apply_pending()

    def _merge_read(self, rows: Sequence[Listed]) -> set[int]:
        """Buffer the rows read from the store that differ from those shown; their ids."""
        rows, waiting = _waiting_apart(list(rows))
        seen = set()
        for row in rows:
            message_id = row[L_ID]
            seen.add(message_id)
            index = self._row_of.get(message_id)
            if index is None or self._rows[index] != row:
                self._pending[message_id] = row
            # The store is never behind the events: what it says of the turn holds.
            if (message_id in waiting) != (message_id in self._waiting):
                if message_id in waiting:
                    self._waiting.add(message_id)
                else:
                    self._waiting.discard(message_id)
                self._pending_progress.add(message_id)  # the State word changes
        return seen

    def _progress_to_update(self, message_id: int) -> Progress | None:
        """The progress to update: the row's, or one held back until its row says "sending"."""
        if message_id not in self._row_of:
            return None
        progress = self._progress.get(message_id)
        if progress is not None:
            return progress
        pending = self._pending.get(message_id)
        if pending is not None and pending[L_STATE] == _SENDING:
            return self._early_progress.setdefault(message_id, Progress(pending[L_SIZE]))
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
        touched: set[int] = set(pending)
        counts_before = dict(self._counts)
        for message_id in pending:
            self._search.pop(message_id, None)

        gone = sorted(
            (self._row_of[i] for i, m in pending.items() if m is None and i in self._row_of),
            reverse=True,
        )
        if gone:
            self._remove_rows(gone)

        changed_rows: list[int] = []
        added: list[Listed] = []
        for message_id, row in pending.items():
            if row is None:
                continue
            state = row[L_STATE]
            index = self._row_of.get(message_id)
            if index is None:
                if self._loaded_through is not None and message_id > self._loaded_through:
                    touched.discard(message_id)
                    continue  # the load has yet to read it, as it is now
                added.append(row)
            else:
                self._counts[_STATES[self._rows[index][L_STATE]]] -= 1
                self._rows[index] = row
                changed_rows.append(index)
            self._counts[_STATES[state]] += 1
            if state != _SENDING:
                self._progress.pop(message_id, None)
                self._waiting.discard(message_id)
            elif message_id not in self._progress:
                self._progress[message_id] = early.get(message_id) or Progress(row[L_SIZE])
        last_column = len(Column) - 1
        for first, last in _runs(sorted(changed_rows)):
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

        progress_rows = sorted(self._row_of[i] for i in progress_ids - touched if i in self._row_of)
        for first, last in _runs(progress_rows):
            # The State column too: "waiting" becomes "sending" with the first progress.
            self.dataChanged.emit(
                self.index(first, Column.STATE), self.index(last, Column.PROGRESS)
            )

        if added:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
            self._rows.extend(added)
            for offset, row in enumerate(added):
                self._row_of[row[L_ID]] = start + offset
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
            for row in self._rows[first : last + 1]:
                self._counts[_STATES[row[L_STATE]]] -= 1
                self._progress.pop(row[L_ID], None)
            del self._rows[first : last + 1]
            self.endRemoveRows()
        self._reindex()

    def _reindex(self) -> None:
        self._row_of = {row[L_ID]: index for index, row in enumerate(self._rows)}

    def _recount(self) -> None:
        by_value = Counter(row[L_STATE] for row in self._rows)
        self._counts = {state: by_value.get(state.value, 0) for state in MessageState}
        self.counts_changed.emit(dict(self._counts))

    # -- sorting ------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column = column
        self._sort_order = order
        self._resort_timer.stop()
        self._resort()

    def _resort(self) -> None:
        self.apply_pending()
        old_rows = self._rows
        rows = self._sorted_rows()
        if rows is None:  # already in that order: no new layout to announce
            self._last_sort_s = time.monotonic()
            return
        self.layoutAboutToBeChanged.emit()
        old_ids = [row[L_ID] for row in old_rows]
        self._rows = rows
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

    def _sort_rows(self) -> bool:
        """Put ``_rows`` in the sort order (reindexed); false when they were in it already."""
        rows = self._sorted_rows()
        if rows is None:
            return False
        self._rows = rows
        self._reindex()
        return True

    def _sorted_rows(self) -> list[Listed] | None:
        """The rows in the sort order, or None when they are in it already."""
        rows = self._rows
        column = self._sort_column
        by_id = sorted(rows, key=_row_id) if not _ids_ascending(rows) else rows
        if column < 0:
            return None if by_id is rows else by_id
        key = self._sort_key(column)
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        # Ties in id order, whatever the direction: stable and predictable.
        ordered = sorted(by_id, key=key, reverse=descending)
        return None if ordered == rows else ordered

    def _sort_key(self, column: int) -> Callable[[Listed], Any]:
        if column == Column.PROGRESS:
            progress = self._progress

            def by_progress(row: Listed) -> float:
                found = progress.get(row[L_ID])
                return found.fraction if found is not None else -1.0

            return by_progress
        return _SORT_KEYS[Column(column)]

    def _out_of_order(self, rows: list[int], added: int) -> bool:
        if added:
            return True
        key = self._sort_key(self._sort_column)
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        for row in rows:
            here = key(self._rows[row])
            if row > 0:
                before = key(self._rows[row - 1])
                if (here > before) if descending else (here < before):
                    return True
            if row + 1 < len(self._rows):
                after = key(self._rows[row + 1])
                if (here < after) if descending else (here > after):
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

    def message_at(self, row: int) -> RowMessage:
        shown = self._rows[row]
        return RowMessage(
            shown[L_ID],
            _STATES[shown[L_STATE]],
            tuple(
                (address, _RECIPIENT_STATES[state])
                for address, state in unpack_recipients(shown[L_RECIPIENTS])
            ),
        )

    def ids_at(self, rows: Iterable[int]) -> list[int]:
        """The message ids of source ``rows``."""
        shown = self._rows
        return [shown[row][L_ID] for row in rows]

    def has_uncertain_recipient(self, message_id: int) -> bool:
        row = self._row_of.get(message_id)
        if row is None:
            return False
        recipients = unpack_recipients(self._rows[row][L_RECIPIENTS])
        return any(state == _UNCERTAIN for _, state in recipients)

    def is_waiting(self, message_id: int) -> bool:
        """Whether a flush claimed the message and its own transaction has not started."""
        return message_id in self._waiting

    def state_of(self, message_id: int) -> MessageState | None:
        row = self._row_of.get(message_id)
        return None if row is None else _STATES[self._rows[row][L_STATE]]

    def progress_of(self, message_id: int) -> Progress | None:
        return self._progress.get(message_id) if message_id in self._row_of else None

    def matches(self, row: int, state: MessageState | None, needle: str) -> bool:
        """Whether ``row`` passes the filter: ``state`` (None: any) and casefolded ``needle``."""
        shown = self._rows[row]
        if state is not None and shown[L_STATE] != state.value:
            return False
        if not needle:
            return True
        message_id = shown[L_ID]
        search = self._search.get(message_id)
        if search is None:
            search = self._search[message_id] = _search_text(shown)
        return needle in search

    # -- QAbstractTableModel ---------------------------------------------------------------

    # Not ``flags``: Qt's own (enabled, selectable, no children) needs no call into Python,
    # and views ask it for every cell of a selection.

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else _COLUMNS

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(Column):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[Column(section)]
            if role == Qt.ItemDataRole.TextAlignmentRole:  # every header as its column's text
                return _ALIGNMENT.get(Column(section), _LEFT)
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._rows)):
            return None
        shown = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            if column == Column.PROGRESS:
                progress = self._progress.get(shown[L_ID])
                return progress.text() if progress is not None else ""
            if column == Column.STATE and self._waiting and shown[L_ID] in self._waiting:
                return WAITING
            return _display_text(shown, column, self.clock)
        if role == ID_ROLE:
            return shown[L_ID]
        if role == Qt.ItemDataRole.DecorationRole:
            return state_icon(_STATES[shown[L_STATE]]) if column == Column.STATE else None
        if role == PROGRESS_ROLE:
            return self._progress.get(shown[L_ID])
        if role == STATE_ROLE:
            return _STATES[shown[L_STATE]]
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = _tooltip(shown, column)
            return None if tip is None else as_tooltip(tip)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _CELL_ALIGNMENT[column]
        return None


def _display_text(row: Listed, column: int, clock: Callable[[], datetime]) -> str | None:
    if column == Column.STATE:
        return row[L_STATE]
    if column == Column.RECIPIENTS:
        return recipients_text(row)
    if column == Column.SUBJECT:
        return visible(row[L_SUBJECT])
    if column == Column.SIZE:
        return size_text(row[L_SIZE])
    if column == Column.ATTEMPTS:
        return str(row[L_ATTEMPTS])
    if column == Column.LAST_RESULT:
        return last_result_text(row)
    if column == Column.NEXT_TRY:
        return next_try_text(row, clock())
    if column == Column.QUEUED:
        return queued_text(row, clock())
    return None


def _tooltip(row: Listed, column: int) -> str | None:
    if column == Column.RECIPIENTS:
        recipients = unpack_recipients(row[L_RECIPIENTS])
        if len(recipients) > 1:
            return "\n".join(f"{visible(address)} ({state})" for address, state in recipients)
        return None
    if column == Column.LAST_RESULT:
        shown = last_result_text(row)
        return visible(row[L_LAST_ERROR]) if row[L_LAST_ERROR] else (shown or None)
    if column == Column.SUBJECT and row[L_SUBJECT]:
        return f"{visible(row[L_SUBJECT])}\nfrom {visible(row[L_SENDER])}"
    if column == Column.QUEUED:
        return _exact_when(row[L_CREATED])
    if column == Column.NEXT_TRY and row[L_STATE] in _WAITING:
        return _exact_when(row[L_NEXT_ATTEMPT])
    return None


def _row_id(row: Listed) -> int:
    return row[L_ID]


def _ids_ascending(rows: list[Listed]) -> bool:
    ids = [row[L_ID] for row in rows]
    return ids == sorted(ids)  # linear on sorted input, in C


def _next_try_key(row: Listed) -> str:
    return row[L_NEXT_ATTEMPT] or _NEVER


_SORT_KEYS: dict[Column, Callable[[Listed], Any]] = {
    Column.STATE: lambda row: _STATE_ORDER[row[L_STATE]],
    Column.RECIPIENTS: lambda row: recipients_text(row).casefold(),
    Column.SUBJECT: lambda row: row[L_SUBJECT].casefold(),
    Column.SIZE: lambda row: row[L_SIZE],
    Column.ATTEMPTS: lambda row: row[L_ATTEMPTS],
    Column.LAST_RESULT: lambda row: last_result_text(row).casefold(),
    Column.QUEUED: lambda row: row[L_CREATED],
    Column.NEXT_TRY: _next_try_key,
}


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

    def source_rows(self, first: int, last: int) -> Iterable[int]:
        """The source rows of the proxy's rows ``first``..``last``."""
        if self._state is None and not self._needle:
            return range(first, last + 1)  # nothing filtered out: the same rows
        return [self.mapToSource(self.index(row, 0)).row() for row in range(first, last + 1)]

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
