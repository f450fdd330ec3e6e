"""The window's default layout: no scrollbar on an empty table, a detail pane that shows enough."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from relay.message import parse_message
from tests.gui.driving import click_rows
from tests.gui.messages import enqueue

SERVER_COLUMN = 3


def test_the_empty_table_has_no_horizontal_scrollbar(window: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitExposed(window)
    view = window.view
    qtbot.waitUntil(lambda: view.viewport().width() > 0)
    assert window.model.rowCount() == 0
    assert not view.horizontalScrollBar().isVisible()
    header = view.horizontalHeader()
    assert header.length() <= view.viewport().width()


def test_the_detail_pane_shows_five_recipients_and_the_whole_server_column(
    window: MainWindow, qtbot: QtBot
) -> None:
    qtbot.waitExposed(window)
    message_id = enqueue(window.outbox, [f"person{n}@example.org" for n in range(8)])
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    click_rows(qtbot, window, message_id)
    detail = window.detail
    assert window.splitter.childrenCollapsible() is False
    assert all(size > 0 for size in window.splitter.sizes())  # both panes, resizable

    detail.tabs.setCurrentWidget(detail.recipients)
    recipients = detail.recipients
    qtbot.waitUntil(recipients.isVisible)
    row_height = recipients.visualItemRect(recipients.topLevelItem(0)).height()
    assert row_height > 0
    assert recipients.viewport().height() >= 5 * row_height

    attempts = detail.attempts
    detail.tabs.setCurrentIndex(2)
    qtbot.waitUntil(attempts.isVisible)
    assert attempts.viewport().height() >= 4 * row_height
    header = attempts.header()
    right = header.sectionViewportPosition(SERVER_COLUMN) + header.sectionSize(SERVER_COLUMN)
    assert right <= attempts.viewport().width()
    assert header.sectionSize(SERVER_COLUMN) >= attempts.fontMetrics().horizontalAdvance(
        "smtp.example.org:587"
    )


def test_a_very_long_subject_does_not_widen_the_window(window: MainWindow, qtbot: QtBot) -> None:
    # Folded over many lines, as RFC 5322 allows: 5,400 characters once unfolded.
    subject = "\r\n ".join(["A subject that goes on and on"] * 180)
    raw = f"From: a@example.org\r\nTo: b@example.net\r\nSubject: {subject}\r\n\r\nHi.\r\n"
    message_id = window.outbox.add_message(parse_message(raw.encode())).id
    window.resize(900, 600)
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)

    click_rows(qtbot, window, message_id)

    qtbot.waitUntil(lambda: window.detail.title.text().endswith("goes on and on"))
    for _level in range(10):  # each layout asks its parent's in turn: let them all catch up
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    assert window.width() == 900
    assert window.minimumSizeHint().width() < 900  # it can still be made narrower
