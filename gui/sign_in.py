"""Running an account's browser sign-in from the window, on the Qt loop through qasync.

``BrowserSignIn.start(home, account)`` runs ``relay.oauth.login``'s browser
flow as an asyncio task: the system browser opens the provider's page
(``QDesktopServices``; ``open_url`` can be replaced, and tests replace it with
an HTTP client acting as the browser), Outbox waits on 127.0.0.1 for it to
come back, and the refresh token goes to the keyring. ``finished`` says how
it ended: an empty text when signed in, else why not (never a token).
Closing the window or dialog that owns it cancels the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from relay.accounts import Account
from relay.errors import OutboxError

log = logging.getLogger(__name__)


def open_in_system_browser(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


class BrowserSignIn(QObject):
    """Runs one account's OAuth2 browser sign-in as a task on the window's loop."""

    #: The sign-in ended: (account name, "" when signed in, else why not).
    finished = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.open_url: Callable[[str], object] = open_in_system_browser
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, home: Path, account: Account) -> bool:
        """Begin signing ``account`` in; false (and ``finished``) when it cannot start."""
        if self._task is not None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.finished.emit(account.name, "the window's event loop is not running")
            return False
        self._task = loop.create_task(self._run(home, account))
        return True

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, home: Path, account: Account) -> None:
        from relay.oauth.login import sign_in_with_browser
        from relay.oauth.providers import endpoints
        from relay.oauth.store import get_client_secret, store_refresh_token

        problem = ""
        try:
            if account.oauth2 is None:
                raise OutboxError(f"account {account.name} does not sign in with OAuth2")
            token = await sign_in_with_browser(
                endpoints(account.oauth2),
                account_name=account.name,
                open_url=self.open_url,
                client_secret=get_client_secret(home, account.name),
                login_hint=account.user,
            )
            store_refresh_token(home, account.name, token)
        except asyncio.CancelledError:
            raise
        except OutboxError as exc:
            problem = str(exc)
        except Exception as exc:  # a bug: one line, the window stays
            log.exception("the sign-in stopped on an unexpected error")
            problem = f"the sign-in stopped on an unexpected error: {type(exc).__name__}"
        finally:
            if self._task is asyncio.current_task():  # not a sign-in started after a cancel
                self._task = None
        self.finished.emit(account.name, problem)
