"""What an empty outbox shows: the first steps, instead of a blank table.

Centred on the message table while it has no messages at all: "Drop .eml
files here" (the window takes dropped files), and an "Add an account" button
while no account is configured yet, which opens the accounts dialog, where
"Find Settings" takes it from an e-mail address.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyHint(QWidget):
    #: "Add an account" was pressed.
    add_account_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("empty_hint")
        self.text = QLabel("Nothing in the outbox.\nDrop .eml files here to send them.")
        self.text.setObjectName("empty_hint_text")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
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
        self.add_account.setVisible(not has_accounts)
        self.setVisible(messages == 0)
