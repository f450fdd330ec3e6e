"""The first start: the empty table says what to do first, until there is something to show."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.accounts_dialog import AccountsDialog
from gui.app import create_main_window
from gui.empty_hint import NO_ACCOUNT, NO_MESSAGE
from gui.main_window import MainWindow
from tests.gui.driving import click_action
from tests.gui.messages import enqueue


def test_a_new_user_is_told_to_add_an_account_then_messages(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path
) -> None:
    window = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    hint = window.empty_hint
    qtbot.waitUntil(hint.isVisible)
    assert hint.text.text() == NO_ACCOUNT and hint.add_account.isVisible()
    assert "outbox " not in hint.text.text()  # what to click, not what to type
    assert hint.parent() is window.view.viewport()  # inside the table: never a scrollbar

    click_action(qtbot, window, window.action_accounts)
    dialog = window.findChild(AccountsDialog, "accounts_dialog")
    assert dialog is not None
    for field, text in ((dialog.name, "work"), (dialog.host, "smtp.example.org")):
        qtbot.keyClicks(field, text)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: hint.text.text() == NO_MESSAGE)
    assert hint.isVisible() and not hint.add_account.isVisible()

    enqueue(window.outbox, "ann@example.org")
    qtbot.waitUntil(lambda: not hint.isVisible())


def test_an_outbox_with_an_account_and_mail_shows_no_hint(window: MainWindow, qtbot: QtBot) -> None:
    hint = window.empty_hint
    qtbot.waitUntil(hint.isVisible)
    assert hint.text.text() == NO_MESSAGE
    enqueue(window.outbox, "ann@example.org")
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 1)
    qtbot.waitUntil(lambda: not hint.isVisible())
