"""Reading the outbox into the table: at start-up, and again after another process wrote.

The table's rows come from ``relay.listing`` (one plain tuple per message, no
bodies) over a read connection of the window's own. ``load`` reads them all
at once (the start-up). ``start`` -- when ``gui.store_watcher`` saw another
process commit -- re-reads them ``PAGE`` messages at a time, one page per
turn of the event loop, and hands each page to ``OutboxModel.reconcile_listed``,
which changes only the rows that differ. So a ``sendmail`` from a mail client
costs the window a few milliseconds at a time even with 100,000 messages,
instead of one long freeze while the whole outbox is re-read.

Each page is read and applied in the same turn of the loop, so the engine's
events (applied in order with it) never see a page older than themselves. A
change made while a pass runs starts another pass when it ends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from gui.outbox_model import OutboxModel
from relay.listing import L_ID, list_messages
from relay.storefile import connect

PAGE = 2000
RETRY_MS = 500


class StoreResync(QObject):
    #: A pass over the whole outbox ended (the model matches the store as read).
    finished = Signal()

    def __init__(self, path: Path, model: OutboxModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._conn: sqlite3.Connection | None = connect(path)
        self._model = model
        self._after: int | None = None  # None: no pass running
        self._again = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._next_page)

    @property
    def running(self) -> bool:
        return self._after is not None

    def load(self) -> None:
        """Replace the model's rows with every message, read now."""
        if self._conn is not None:
            self._model.load_listed(list_messages(self._conn))

    def start(self) -> None:
        """Re-read the outbox, a page per turn of the loop; again at the end if already running."""
        if self._conn is None:
            return
        if self._after is not None:
            self._again = True
            return
        self._after = 0
        self._timer.start(0)

    def close(self) -> None:
        self._timer.stop()
        self._after = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _next_page(self) -> None:
        if self._conn is None or self._after is None:
            return
        after = self._after
        try:
            rows = list_messages(self._conn, after_id=after, limit=PAGE)
        except sqlite3.Error:
            self._after = 0  # busy: the whole pass again in a moment
            self._timer.start(RETRY_MS)
            return
        up_to = rows[-1][L_ID] if len(rows) == PAGE else None
        self._model.reconcile_listed(rows, after, up_to)
        if up_to is not None:
            self._after = up_to
            self._timer.start(0)
            return
        self._after = None
        self.finished.emit()
        if self._again:
            self._again = False
            self.start()
