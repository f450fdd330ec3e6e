"""Text from outside shows as typed: a subject, an address or a server's reply is never HTML.

Qt shows a label's text, a message box's and every tooltip as HTML when it
looks like HTML (``Qt.mightBeRichText``: a known tag on its first line). A
subject ``<h1>URGENT</h1>`` would then be a heading, ``<img src=…>`` an image
and ``<a href=…>`` a link. Here a hostile subject, and a server
whose greeting is markup, go through a flush started from the window; then
every label and every tooltip the application shows is read as Qt draws it.
A message file refused when dropped on the window has its header quoted in
the box that says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import Qt as QtGui_Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLabel
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import MainWindow
from relay.accounts import save_accounts
from relay.message import parse_message
from tests.gui.driving import click_action, click_rows, modal, shown_state
from tests.gui.messages import message_bytes
from tests.gui.test_window import drop
from tests.support.fault_server import threaded_fault_server

SUBJECT = '<h1>URGENT</h1> pay <a href="http://evil.example/">here</a>'
GREETING = "554 <h1>GO AWAY</h1> <img src=x>"


def as_drawn(text: str, text_format: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """The characters Qt draws for ``text`` in this format (a tooltip's is AutoText)."""
    rich = text_format is Qt.TextFormat.RichText or (
        text_format is Qt.TextFormat.AutoText and QtGui_Qt.mightBeRichText(text)
    )
    if not rich:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def tooltips(model: QAbstractItemModel, parent: QModelIndex | None = None) -> Iterator[str]:
    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        for column in range(model.columnCount(parent)):
            index = model.index(row, column, parent)
            tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
            if tip:
                yield str(tip)
            if model.hasChildren(index):
                yield from tooltips(model, index)


def drawn_texts() -> Iterator[tuple[str, str]]:
    """(text as set, text as drawn) for every label and item tooltip of the application."""
    for widget in QApplication.allWidgets():
        if isinstance(widget, QLabel) and widget.text():
            yield widget.text(), as_drawn(widget.text(), widget.textFormat())
        if isinstance(widget, QAbstractItemView) and widget.model() is not None:
            for tip in tooltips(widget.model()):
                yield tip, as_drawn(tip)


def test_a_hostile_subject_and_server_greeting_show_as_typed_not_as_html(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path
) -> None:
    with threaded_fault_server(greeting=GREETING) as server:
        save_accounts(home, [server.account(name="fault")])
        window: MainWindow = create_main_window(home)
        qtbot.addWidget(window)
        window.show()
        data = message_bytes(["ann@example.net", "bob@example.net"], SUBJECT)
        message = window.engine.enqueue(parse_message(data)).id
        qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

        with qtbot.waitSignal(window.runner.finished, timeout=20_000):
            click_action(qtbot, window, window.action_flush)
        qtbot.waitUntil(lambda: shown_state(window, message) == "deferred")
        click_rows(qtbot, window, message)

        hostile = [(text, shown) for text, shown in drawn_texts()
                   if "GO AWAY" in shown or "URGENT" in shown]  # fmt: skip
        # Where a person looks: the status bar, the table's and the detail pane's tooltips.
        assert window.status.server_label.isVisible()
        assert any(shown.endswith(f"refused the session: {GREETING}") for _, shown in hostile)
        assert any(shown == f"{SUBJECT}\nfrom alice@example.org" for _, shown in hostile)
        assert len(hostile) >= 5  # + the last result's, each recipient's reply, the attempt's
        for text, shown in hostile:
            assert "<h1>" in shown, f"drawn as HTML: {text!r} shows as {shown!r}"


def test_a_refused_file_whose_header_is_markup_is_explained_as_typed(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    hostile = tmp_path / "invoice.eml"
    hostile.write_bytes(
        b"From: <h1>Your bank</h1> <bank@example.org>\r\nTo: you@example.net\r\n"
        b"Subject: Invoice\r\n\r\nPay.\r\n"
    )
    drop(window, [hostile])

    box = modal(qtbot, "add_refused")
    label = box.findChild(QLabel, "qt_msgbox_informativelabel")
    assert label is not None
    assert label.text().startswith('invoice.eml: bad address list "<h1>Your bank</h1>')
    assert as_drawn(label.text(), label.textFormat()) == label.text()
    box.close()
