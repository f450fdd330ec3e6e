"""The prompt that opens when a server refuses an account's password during a flush.

The engine stops the flush for that account at once (a wrong password sent
again and again gets accounts locked) and publishes ``AuthenticationRefused``
with the server's reply. This dialog says so in plain words, takes the right
password and stores it in the keyring, then lets the window send again. It is
opened with ``open()`` from a zero-delay timer, never from inside the engine's
callback.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from gui.command_hints import for_window
from relay.credentials import store_password
from relay.errors import OutboxError


class PasswordPrompt(QDialog):
    """Asks for an account's password after the server refused it, and keeps it in the keyring."""

    #: The new password is in the keyring: (account name).
    password_saved = Signal(str)

    def __init__(self, home: Path, account: str, reply: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.account = account
        self.setObjectName("password_prompt")
        self.setWindowTitle(f"Password for {account}")
        self.setWindowModality(Qt.WindowModality.WindowModal)

        explanation = QLabel(
            f"The server refused the password of account “{account}”:\n\n{reply}\n\n"
            "Outbox stopped sending through this account so that the server does not"
            " lock it. Enter the right password to store it in your keyring and send again."
        )
        explanation.setWordWrap(True)
        explanation.setTextFormat(Qt.TextFormat.PlainText)
        explanation.setObjectName("password_prompt_text")

        self.password = QLineEdit()
        self.password.setObjectName("password_prompt_password")
        self.password.setAccessibleName(f"New password for account {account}")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.textChanged.connect(self._on_text_changed)

        self.error = QLabel()
        self.error.setObjectName("password_prompt_error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #dc2626")
        self.error.hide()

        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton(
            "Save and send again", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setObjectName("password_prompt_save")
        self.save_button.setEnabled(False)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Password:", self.password)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _on_text_changed(self, text: str) -> None:
        self.save_button.setEnabled(bool(text))

    def _save(self) -> None:
        try:
            store_password(self.home, self.account, self.password.text())
        except OutboxError as exc:
            self.error.setText(for_window(str(exc)))
            self.error.show()
            return
        self.password.clear()
        self.password_saved.emit(self.account)
        self.accept()
