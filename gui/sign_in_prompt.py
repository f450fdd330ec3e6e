"""The "Sign in again" prompt: an OAuth2 account's grant is gone, the mail waits.

The OAuth2 sibling of ``gui.password_prompt``: when a flush finds that an
account that signs in with OAuth2 must sign in again (the provider refused
its refresh token: revoked, password changed, expired; or nobody signed in
yet), the engine leaves its mail queued and publishes
``AuthenticationRefused``. This dialog says so and offers one button that
runs the browser sign-in (``gui.sign_in``); once signed in the window sends
again. Opened with ``open()`` from a zero-delay timer, like the password prompt.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from gui.command_hints import for_window
from gui.sign_in import BrowserSignIn
from relay.accounts import Account


class SignInPrompt(QDialog):
    """Asks a person to sign an OAuth2 account in again once its grant is gone."""

    #: The account is signed in again: (account name).
    signed_in = Signal(str)

    def __init__(
        self, home: Path, account: Account, reply: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.home = home
        self.account = account
        self.setObjectName("sign_in_prompt")
        label = account.oauth2.label if account.oauth2 is not None else "OAuth2"
        self.setWindowTitle(f"Sign in again: {account.name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)

        explanation = QLabel(
            f"Account “{account.name}” needs signing in again:\n\n{reply}\n\n"
            "Its messages stay in the outbox, untouched. Sign in with your browser"
            " and Outbox sends them."
        )
        explanation.setWordWrap(True)
        explanation.setTextFormat(Qt.TextFormat.PlainText)
        explanation.setObjectName("sign_in_prompt_text")

        self.state = QLabel("")
        self.state.setObjectName("sign_in_prompt_state")
        self.state.setWordWrap(True)
        self.state.setTextFormat(Qt.TextFormat.PlainText)

        self.buttons = QDialogButtonBox()
        self.sign_in_button = self.buttons.addButton(
            f"Sign in with {label}…", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.sign_in_button.setObjectName("sign_in_prompt_sign_in")
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._sign_in)
        self.buttons.rejected.connect(self.reject)

        self.flow = BrowserSignIn(self)
        self.flow.finished.connect(self._on_finished)

        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(self.state)
        layout.addWidget(self.buttons)

    def _sign_in(self) -> None:
        if self.flow.start(self.home, self.account):
            self.sign_in_button.setEnabled(False)
            self.state.setText("Waiting for the browser… (finish signing in there)")

    def _on_finished(self, account: str, problem: str) -> None:
        self.sign_in_button.setEnabled(True)
        if problem:
            self.state.setText(for_window(problem))
            self.state.setStyleSheet("color: #dc2626")
            return
        self.signed_in.emit(account)
        self.accept()

    def done(self, result: int) -> None:
        self.flow.cancel()
        super().done(result)
