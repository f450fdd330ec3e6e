"""Noticing what other processes changed in the outbox, within a second.

A ``sendmail`` from a mail client or a ``flush``/``delete`` on the command line
writes the same SQLite file through its own connection; none of it comes
through this process's event bus. Every ``INTERVAL_MS`` the watcher asks the
store for SQLite's ``data_version``, which changes only when another
connection committed (this process's own commits, already known from the bus,
leave it alone), and says ``changed`` when it moved. The check is a single
pragma on an open connection: cheap enough to run twice a second forever.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from relay.engine import StoreError
from relay.store.outbox import Outbox

INTERVAL_MS = 500


class StoreWatcher(QObject):
    """Checks once a second whether another process committed to the store."""

    #: Another process committed a change since the last check.
    changed = Signal()

    def __init__(self, outbox: Outbox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._outbox = outbox
        self._version = outbox.data_version()
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def check(self) -> bool:
        """Look now; true (and ``changed`` emitted) when another process wrote."""
        try:
            version = self._outbox.data_version()
        except StoreError:
            return False  # busy or closing: the next tick looks again
        if version == self._version:
            return False
        self._version = version
        self.changed.emit()
        return True
