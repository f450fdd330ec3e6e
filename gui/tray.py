"""The system-tray icon: how many messages wait or failed, and word when a flush fails.

The tooltip carries the counts; the icon gets a red badge while something has
failed. When a flush ends with failed or uncertain messages, a desktop
notification says so (through the tray, the platform's usual way); ``notified``
is emitted either way, so a session without a tray (or a test) still hears it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from gui.display_text import counts_text
from gui.icons import app_icon
from relay.events import FlushFinished
from relay.states import MessageState

NEEDS_A_PERSON = (MessageState.FAILED, MessageState.UNCERTAIN)


def tray_text(counts: dict[MessageState, int]) -> str:
    """The status bar's counts, word for word: a person never reconciles two tallies."""
    return "Outbox: " + counts_text(counts)


def failure_text(event: FlushFinished) -> str | None:
    """The notification for a flush that ended with failures, or None if there were none."""
    if not (event.failed or event.uncertain):
        return None
    parts = []
    if event.failed:
        parts.append(f"{event.failed} message{'s' if event.failed != 1 else ''} failed")
    if event.uncertain:
        parts.append(f"{event.uncertain} may or may not have arrived")
    return "; ".join(parts) + ". Open Outbox to see the server's replies and retry."


class OutboxTray(QObject):
    """The tray icon: its menu, a tooltip with what waits or failed, and balloons where needed."""

    #: A notification was raised: (title, text).
    notified = Signal(str, str)

    def __init__(
        self, show_window: QAction, flush: QAction, quit_app: QAction, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.icon.setObjectName("tray_icon")
        self._failed = False
        self.menu = QMenu()
        self.menu.addAction(show_window)
        self.menu.addAction(flush)
        self.menu.addSeparator()
        self.menu.addAction(quit_app)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self._show_window = show_window
        self.icon.setToolTip("Outbox")
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()

    def available(self) -> bool:
        """The desktop shows tray icons: the window may hide in it."""
        return QSystemTrayIcon.isSystemTrayAvailable() and self.icon.isVisible()

    def close(self) -> None:
        self.icon.hide()
        self.menu.deleteLater()

    def show_counts(self, counts: dict[MessageState, int]) -> None:
        self.icon.setToolTip(tray_text(counts))
        failed = any(counts.get(s, 0) for s in NEEDS_A_PERSON)
        if failed != self._failed:
            self._failed = failed
            self.icon.setIcon(_badged(app_icon()) if failed else app_icon())

    def on_flush_finished(self, event: FlushFinished) -> None:
        text = failure_text(event)
        if text is None:
            return
        title = "Outbox: sending failed"
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, 10_000)
        self.notified.emit(title, text)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self._show_window.trigger()


def _badged(icon: QIcon) -> QIcon:
    badged = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        pixmap = QPixmap(icon.pixmap(size, size))
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#dc2626"))
        badge = size * 0.42
        painter.drawEllipse(QRectF(size - badge, 0, badge, badge))
        painter.end()
        badged.addPixmap(pixmap)
    return badged
