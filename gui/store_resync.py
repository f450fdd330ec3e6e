"""Reading the outbox into the table: at start-up, and again after another process wrote.

The table's rows come from ``Engine.read_listed`` (``relay.store.listing``: one
plain tuple per message, no bodies, read on a connection of the engine's own).
``load`` reads the first ``FIRST_PAGE`` at once, so the window shows rows at
once, and the rest ``LOAD_PAGE`` at a time, one page per turn of the event
loop (100,000 messages take about 0.3 s to read in all; the window stays live
meanwhile).

``start`` -- when ``gui.store_watcher`` saw another process commit -- reads
only what changed since the last reading (``Engine.read_changes``,
``relay.store.listing.changes_since``: the store logs its changes), ``PAGE``
log entries per turn of the loop, and hands them to
``OutboxModel.apply_listed_changes``, which changes only the rows that differ
and removes the deleted ones. A ``sendmail`` from a mail client
costs the window one row read, whether it shows ten messages or 100,000
(reading all 100,000 again took about 0.4 s of CPU a pass). Only a window
so far behind that the store has forgotten which messages were deleted
re-reads the whole outbox, ``PAGE`` messages at a time (``reconcile_listed``).

Each page is read and applied in the same turn of the loop, so the engine's
events (applied in order with it) never see a page older than themselves. A
change made while a pass runs starts another pass when it ends.

A page is small (``PAGE``, 250) because a pass also runs during this window's
own flush: its group commits are made on the writer thread's connection
(``relay.attempts``), which SQLite's ``data_version`` counts as another's. A
page of 2,000 changes took 16-17 ms of the loop then (a frame's worth, in the
middle of claims of 2,500 messages a connection); one of 250 takes about 2 ms.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from gui.outbox_model import OutboxModel
from relay.engine import Engine, StoreError
from relay.store.listing import L_ID

FIRST_PAGE = 1000
PAGE = 250
LOAD_PAGE = 5000
RETRY_MS = 500


class StoreResync(QObject):
    """Reads the store's rows into the table through the engine, page by page.

    At start-up all of them; after another process wrote, only what changed.
    """

    #: A pass ended (the model matches the store as read).
    finished = Signal()
    #: The last rows of the start-up's load are in the model.
    loaded = Signal()

    def __init__(self, engine: Engine, model: OutboxModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The engine owns the reading connection and closes it with itself.
        self._engine: Engine | None = engine
        self._model = model
        #: The store's change number the model stands at; None before a first reading.
        self._since: int | None = None
        self._running = False
        self._after: int | None = None  # a full pass: the last id read so far
        self._full_since = 0  # a full pass: the change number at its first page
        self._loading_after: int | None = None  # None: not loading
        self._again = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._next_page)

    @property
    def running(self) -> bool:
        return self._running

    def load(self) -> None:
        """Replace the model's rows: the first ones now, the rest a page per loop turn."""
        if self._engine is None:
            return
        self._since, rows = self._engine.read_first_listed(limit=FIRST_PAGE)
        complete = len(rows) < FIRST_PAGE
        self._model.load_listed(rows, complete=complete)
        if not complete:
            self._loading_after = rows[-1][L_ID]
            self._timer.start(0)

    @property
    def loading(self) -> bool:
        return self._loading_after is not None

    def start(self) -> None:
        """Read what changed, a page per turn of the loop; again at the end if already running."""
        if self._engine is None:
            return
        if self._running or self._loading_after is not None:
            self._again = True  # after this pass, or after the load
            return
        self._running = True
        self._after = None if self._since is not None else 0
        self._timer.start(0)

    def close(self) -> None:
        self._timer.stop()
        self._running = False
        self._after = self._loading_after = None
        self._engine = None  # read nothing more

    def _next_page(self) -> None:
        engine = self._engine
        if engine is not None and self._loading_after is not None:
            self._load_next_page(engine, self._loading_after)
            return
        if engine is None or not self._running:
            return
        try:
            more = (
                self._full_page(engine) if self._after is not None else self._changes_page(engine)
            )
        except StoreError:
            self._timer.start(RETRY_MS)  # busy: this page again in a moment
            return
        if more:
            self._timer.start(0)
            return
        self._running = False
        self.finished.emit()
        if self._again:
            self._again = False
            self.start()

    def _changes_page(self, engine: Engine) -> bool:
        """Apply the next ``PAGE`` changes; whether more wait."""
        assert self._since is not None
        changes = engine.read_changes(self._since, limit=PAGE)
        if changes is None:  # too far behind: the deletions are forgotten
            self._after = 0
            return True
        self._model.apply_listed_changes(changes.rows, changes.removed)
        self._since = changes.through
        return changes.more

    def _full_page(self, engine: Engine) -> bool:
        """Reconcile the next ``PAGE`` messages by id; whether more wait."""
        after = self._after
        assert after is not None
        if after == 0:
            self._full_since, rows = engine.read_first_listed(limit=PAGE)
        else:
            rows = engine.read_listed(after_id=after, limit=PAGE)
        up_to = rows[-1][L_ID] if len(rows) == PAGE else None
        self._model.reconcile_listed(rows, after, up_to)
        if up_to is not None:
            self._after = up_to
            return True
        self._after = None
        self._since = self._full_since
        return False

    def _load_next_page(self, engine: Engine, after: int) -> None:
        try:
            rows = engine.read_listed(after_id=after, limit=LOAD_PAGE)
        except StoreError:
            self._timer.start(RETRY_MS)  # busy: this page again in a moment
            return
        complete = len(rows) < LOAD_PAGE
        self._loading_after = None if complete else rows[-1][L_ID]
        self._model.append_listed(rows, complete=complete)
        if not complete:
            self._timer.start(0)
            return
        self.loaded.emit()
        if self._again:
            self._again = False
            self.start()
