"""The password never reaches the screen: the window after flushes that echo it back.

tests/reliability/test_secrets.py searches everything the command line
writes. This is the window's half: a distinctive password in the keyring,
servers that repeat it (and its AUTH PLAIN / LOGIN forms) in a 535, in a 235
and in the reply to MAIL, flushes started from the window -- and then every
text the application shows or exposes is searched: every widget's labels,
titles, tooltips and accessible names, every text box (the detail pane's
headers, body, recipients, attempts and each attempt's transcript), every
cell of every item view in every role a view or screen reader can ask for,
the status bar, the tray icon's tooltip and the password prompt. Only a
password field (echo mode Password) may hold it, as the person typed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSystemTrayIcon,
    QTableView,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import MainWindow
from relay.accounts import save_accounts
from relay.message import parse_message
from tests.gui.driving import click_action, click_rows, modal, shown_state
from tests.gui.messages import message_bytes
from tests.reliability.test_secrets import login_echo, plain_echo, secret_forms
from tests.support.fault_server import threaded_fault_server
from tests.support.keyrings import MemoryKeyring, stored_key
from tests.support.smtp_servers import USER

PASSWORD = "Qx7-vault-ZEBRA-horse-91"
ROLES = (
    Qt.ItemDataRole.DisplayRole,
    Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.StatusTipRole,
    Qt.ItemDataRole.WhatsThisRole,
    Qt.ItemDataRole.AccessibleTextRole,
    Qt.ItemDataRole.AccessibleDescriptionRole,
    Qt.ItemDataRole.UserRole,
)


def model_texts(model: QAbstractItemModel, parent: QModelIndex | None = None) -> Iterator[str]:
    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        for column in range(model.columnCount(parent)):
            index = model.index(row, column, parent)
            for role in ROLES:
                value = model.data(index, role)
                if value is not None:
                    yield str(value)
            if model.hasChildren(index):
                yield from model_texts(model, index)


def widget_texts(widget: QWidget) -> Iterator[str]:
    yield from (
        widget.windowTitle(),
        widget.toolTip(),
        widget.statusTip(),
        widget.whatsThis(),
        widget.accessibleName(),
        widget.accessibleDescription(),
    )
    if isinstance(widget, QLabel | QAbstractButton):
        yield widget.text()
    if isinstance(widget, QLineEdit) and widget.echoMode() is QLineEdit.EchoMode.Normal:
        yield from (widget.text(), widget.placeholderText())
    if isinstance(widget, QPlainTextEdit | QTextEdit):
        yield widget.toPlainText()
    if isinstance(widget, QComboBox):
        yield from (widget.itemText(i) for i in range(widget.count()))
    if isinstance(widget, QAbstractItemView) and widget.model() is not None:
        yield from model_texts(widget.model())


def on_screen(window: MainWindow) -> str:
    """Every text the application shows, with the transcript of every attempt of every row."""
    texts: list[str] = []
    view = window.findChild(QTableView, "outbox_view")
    assert view is not None
    for row in range(view.model().rowCount()):
        view.selectRow(row)
        QApplication.processEvents()
        attempts = window.detail.attempts
        for number in range(attempts.topLevelItemCount()):
            item = attempts.topLevelItem(number)
            assert item is not None
            attempts.setCurrentItem(item)
            QApplication.processEvents()
            texts.append(window.detail.transcript.toPlainText())
        for widget in QApplication.allWidgets():
            texts.extend(widget_texts(widget))
    for tray in window.findChildren(QSystemTrayIcon):
        texts.append(tray.toolTip())
    texts.append(window.statusBar().currentMessage())
    return "\n".join(texts)


def leaks(text: str) -> list[str]:
    return [form for form, needle in secret_forms(PASSWORD).items() if needle.decode() in text]


def test_no_text_in_the_window_shows_the_password_a_server_echoed(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    p = PASSWORD
    refusing = threaded_fault_server(
        auth_mechanisms=("PLAIN",), auth=f"535 5.7.8 bad: AUTH PLAIN {plain_echo(p)} ({p})"
    )
    echoing = threaded_fault_server(
        auth_mechanisms=("LOGIN",),
        auth=f"235 2.7.0 welcome {p} / {plain_echo(p)}",
        mail=f"250 2.1.0 ok, sender {login_echo(p)} {p}",
        end_of_data=f"250 2.0.0 queued for {p}",
    )
    with refusing as refuser, echoing as echoer:
        save_accounts(
            home,
            [
                refuser.account(name="refuses", user=USER, from_patterns=("*@refused.example",)),
                echoer.account(name="echoes", user=USER, default=True),
            ],
        )
        memory_keyring.set_password(*stored_key(home, "refuses"), p)
        memory_keyring.set_password(*stored_key(home, "echoes"), p)
        window: MainWindow = create_main_window(home)
        qtbot.addWidget(window)
        window.show()
        refused = window.outbox.add_message(
            parse_message(message_bytes("bob@example.net", "Refused", sender="ann@refused.example"))
        ).id
        sent = window.outbox.add_message(
            parse_message(message_bytes("cy@example.net", "Echoed"))
        ).id
        qtbot.waitUntil(lambda: shown_state(window, sent) == "queued")

        with qtbot.waitSignal(window.runner.finished, timeout=30_000):
            click_action(qtbot, window, window.action_flush)
        prompt = modal(qtbot, "password_prompt")
        qtbot.waitUntil(lambda: shown_state(window, sent) == "sent")
        assert shown_state(window, refused) == "queued"
        assert echoer.messages and not refuser.messages

        prompt_text = "\n".join(
            text for w in [prompt, *prompt.findChildren(QWidget)] for text in widget_texts(w)
        )
        assert "535" in prompt_text  # the server's words are shown, its echo masked
        click_rows(qtbot, window, sent)
        shown = on_screen(window)
    assert "queued for" in shown  # the echoing server's replies really are on screen
    assert "welcome" in shown  # and so is the transcript with the 235 that echoed
    assert "****" in shown  # with the AUTH exchange masked
    assert leaks(shown) == []
    assert leaks(prompt_text) == []
