"""What to do first, shown over the empty message table until there is something to show.

With no account the first step is adding one; with an account and no message,
adding messages (dropping .eml files or Add Messages). The hint is a label over
the table's viewport that follows its size, so it never adds a scrollbar, and
it names what to click, never a command to type.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QLabel

NO_ACCOUNT = (
    "Welcome to Outbox.\n\nFirst add the account your mail goes out through:"
    " click Accounts (File → Accounts…).\nThen drop .eml files here, or click Add Messages."
)
NO_MESSAGE = "The outbox is empty.\n\nDrop .eml files here, or click Add Messages."


class FirstStartHint(QLabel):
    def __init__(self, view: QAbstractItemView) -> None:
        super().__init__(view.viewport())
        self.setObjectName("first_start_hint")
        self.setAccessibleName("What to do first")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # drops go through
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._viewport = view.viewport()
        self._viewport.installEventFilter(self)
        self.setGeometry(self._viewport.rect())
        self.hide()

    def update_hint(self, *, has_account: bool, has_message: bool) -> None:
        """Show the first step still to take, or nothing once both are done."""
        if has_account and has_message:
            self.hide()
            return
        self.setText(NO_MESSAGE if has_account else NO_ACCOUNT)
        self.setGeometry(self._viewport.rect())
        self.show()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._viewport and event.type() == QEvent.Type.Resize:
            self.setGeometry(self._viewport.rect())
        return False
