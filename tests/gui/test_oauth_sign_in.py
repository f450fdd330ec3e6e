"""Signing in with OAuth2 from the window: the accounts dialog and the "Sign in again" prompt.

Authlib's authorization server and the token-checking SMTP server run on
127.0.0.1; the "system browser" is an HTTP client on a thread of its own that
consents and follows the redirect back to the window's listener.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from gui.accounts_dialog import AccountsDialog
from gui.app import create_main_window
from gui.main_window import MainWindow
from gui.sign_in_prompt import SignInPrompt
from relay.accounts import Account, Security, load_accounts, save_accounts
from relay.oauth.providers import OAuth2Settings, Provider
from relay.oauth.store import REFRESH_TOKEN, keyring_entry
from relay.states import MessageState
from tests.gui.driving import click_action, click_button, modal, shown_state
from tests.gui.messages import enqueue
from tests.support.keyrings import MemoryKeyring
from tests.support.oauth_browser import consent
from tests.support.oauth_server import CLIENT_ID, SCOPE, USER, AuthorizationServerRunning, serving
from tests.support.oauth_smtp import OAuthSmtpRunning, serving_oauth_smtp

pytestmark = pytest.mark.filterwarnings(
    "ignore:Session.login_data is deprecated:DeprecationWarning"
)


@pytest.fixture
def auth_server() -> Iterator[AuthorizationServerRunning]:
    with serving(access_lifetime_s=300) as running:
        yield running


@pytest.fixture
def smtp(auth_server: AuthorizationServerRunning) -> Iterator[OAuthSmtpRunning]:
    with serving_oauth_smtp(auth_server.token_is_valid) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Callable[[str], None]]:
    """A stand-in for the system browser: consents on a thread, joined after the test."""
    threads: list[threading.Thread] = []

    def open_url(url: str) -> None:
        thread = threading.Thread(target=consent, args=(url,), daemon=True)
        threads.append(thread)
        thread.start()

    yield open_url
    for thread in threads:
        thread.join(timeout=30)


def oauth_account(auth: AuthorizationServerRunning, smtp: OAuthSmtpRunning) -> Account:
    return Account(
        name="work",
        host=smtp.host,
        port=smtp.port,
        security=Security.NONE,
        user=USER,
        default=True,
        connect_timeout_s=5.0,
        command_timeout_s=5.0,
        data_timeout_s=5.0,
        oauth2=OAuth2Settings(
            provider=Provider.CUSTOM,
            client_id=CLIENT_ID,
            authorize_url=auth.authorize_url,
            token_url=auth.token_url,
            scope=SCOPE,
        ),
    )


def test_the_dialog_offers_sign_in_runs_the_browser_flow_and_shows_the_account_signed_in(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    memory_keyring: MemoryKeyring,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    browser: Callable[[str], None],
) -> None:
    dialog = AccountsDialog(home)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.sign_in.open_url = browser
    for field, text in (("name", "work"), ("host", smtp.host), ("user", USER)):
        getattr(dialog, field).clear()
        qtbot.keyClicks(getattr(dialog, field), text)
    dialog.security.setCurrentIndex(dialog.security.findData(Security.NONE.value))
    dialog.port.setValue(smtp.port)
    dialog.auth.setCurrentIndex(dialog.auth.findData(Provider.CUSTOM.value))
    assert not dialog.password.isVisible() and dialog.oauth_client_id.isVisible()
    for field, text in (
        ("oauth_client_id", CLIENT_ID),
        ("oauth_authorize_url", auth_server.authorize_url),
        ("oauth_token_url", auth_server.token_url),
        ("oauth_scope", SCOPE),
    ):
        qtbot.keyClicks(getattr(dialog, field), text)

    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.sign_in.finished, timeout=30_000) as ended:
        pass
    assert ended.args == ["work", ""]
    assert dialog.sign_in_state.text() == f"Signed in as {USER}"
    (account,) = load_accounts(home)
    assert account.oauth2 is not None and account.oauth2.client_id == CLIENT_ID
    stored = memory_keyring.passwords()
    assert list(stored) == [keyring_entry(home, "work", REFRESH_TOKEN)]
    assert stored[keyring_entry(home, "work", REFRESH_TOKEN)] in auth_server.issued_tokens()
    config = (home / "config.toml").read_text()
    assert all(token not in config for token in auth_server.issued_tokens())


def test_a_sign_in_the_browser_never_finishes_can_be_cancelled_and_started_again(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    memory_keyring: MemoryKeyring,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    browser: Callable[[str], None],
) -> None:
    save_accounts(home, [oauth_account(auth_server, smtp)])
    dialog = AccountsDialog(home)
    qtbot.addWidget(dialog)
    dialog.show()
    opened: list[str] = []
    dialog.sign_in.open_url = opened.append  # the person closes that tab and forgets it

    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(opened) == 1)
    assert dialog.sign_in.running
    assert dialog.sign_in_button.isEnabled() and dialog.sign_in_button.text() == "Cancel Sign-in"
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert not dialog.sign_in.running
    assert dialog.sign_in_state.text() == "Not signed in (the sign-in was cancelled)"

    dialog.sign_in.open_url = browser  # this time the person signs in
    with qtbot.waitSignal(dialog.sign_in.finished, timeout=30_000) as ended:
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["work", ""]
    assert dialog.sign_in_state.text() == f"Signed in as {USER}"
    assert dialog.sign_in_button.text() == "Sign in with your provider…"
    assert list(memory_keyring.passwords()) == [keyring_entry(home, "work", REFRESH_TOKEN)]


def test_a_flush_that_needs_sign_in_keeps_the_mail_and_sign_in_again_sends_it(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    memory_keyring: MemoryKeyring,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    browser: Callable[[str], None],
) -> None:
    save_accounts(home, [oauth_account(auth_server, smtp)])
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    message = enqueue(window.outbox, "hal@example.net", "Waits for the sign-in")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

    click_action(qtbot, window, window.action_flush)
    prompt = modal(qtbot, "sign_in_prompt")
    assert isinstance(prompt, SignInPrompt)
    text = prompt.findChild(QLabel, "sign_in_prompt_text")
    assert text is not None and "outbox account login work" in text.text()
    qtbot.waitUntil(lambda: not window.runner.running)
    assert window.outbox.get(message).state is MessageState.QUEUED
    assert smtp.handler.received == []

    prompt.flow.open_url = browser
    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        click_button(qtbot, prompt, "sign_in_prompt_sign_in")
    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")
    assert [r.rcpt_tos for r in smtp.handler.received] == [("hal@example.net",)]


def test_find_settings_fills_the_form_from_an_address_and_saves_nothing_until_save(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path, memory_keyring: MemoryKeyring
) -> None:
    dialog = AccountsDialog(home)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.address, "someone@outlook.com")
    qtbot.mouseClick(dialog.discover_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.discovered.text().startswith("Found:"), timeout=10_000)
    assert dialog.host.text() == "smtp-mail.outlook.com" and dialog.port.value() == 587
    assert dialog.security.currentData() == Security.STARTTLS.value
    assert dialog.user.text() == "someone@outlook.com"
    assert dialog.auth.currentData() == Provider.MICROSOFT.value
    assert dialog.oauth_client_id.isVisible() and not dialog.password.isVisible()
    assert load_accounts(home) == []


def test_the_empty_window_invites_adding_an_account_and_dropping_files(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path, memory_keyring: MemoryKeyring
) -> None:
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    hint = window.empty_hint
    qtbot.waitUntil(hint.isVisible)
    assert "Drop .eml files here" in hint.text.text()
    assert hint.add_account.isVisible()
    qtbot.mouseClick(hint.add_account, Qt.MouseButton.LeftButton)
    dialog = modal(qtbot, "accounts_dialog")
    assert isinstance(dialog, AccountsDialog)
    dialog.reject()
    message = enqueue(window.outbox, "hal@example.net", "Not empty any more")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    qtbot.waitUntil(lambda: not hint.isVisible())
