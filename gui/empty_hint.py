"""What an empty outbox shows: the first step still to take, instead of a blank table.

Centred on the message table while it has no messages at all. With no account
the first step is adding one (an "Add an account" button, which opens the
accounts dialog, where "Find Settings" takes it from an e-mail address); with
an account, adding messages (dropping .eml files on the window, or Add
Messages). It names what to click, never a command to type, and it sits inside
the table's viewport, so it never adds a scrollbar.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

NO_ACCOUNT = (
    "Welcome to Outbox.\n\nFirst add the account your mail goes out through.\n"
    "Drop .eml files here, or click Add Messages."
)
NO_MESSAGE = "The outbox is empty.\n\nDrop .eml files here, or click Add Messages."


class EmptyHint(QWidget):
    """The empty table's hint: the first step still to take, with an Add an account button."""

    #: "Add an account" was pressed.
    add_account_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("empty_hint")
        self.setAccessibleName("What to do first")
        self.text = QLabel(NO_MESSAGE)
        self.text.setObjectName("empty_hint_text")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setStyleSheet("color: palette(placeholder-text)")
        self.add_account = QPushButton("Add an account")
        self.add_account.setObjectName("empty_add_account")
        self.add_account.clicked.connect(self.add_account_requested)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.text, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.add_account, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)

    def show_for(self, messages: int, has_accounts: bool) -> None:
        """Visible only while there are no messages; the button only without accounts."""
        self.text.setText(NO_MESSAGE if has_accounts else NO_ACCOUNT)
        self.add_account.setVisible(not has_accounts)
        self.setVisible(messages == 0)
