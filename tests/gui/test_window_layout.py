"""The window's default layout: no scrollbar on an empty table, a detail pane that shows enough."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
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
