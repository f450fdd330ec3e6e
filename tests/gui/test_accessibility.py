"""Every control can be named by a screen reader and reached with Tab."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from tests.gui.messages import enqueue


def test_every_focusable_control_has_an_accessible_name(window: MainWindow) -> None:
    unnamed = [
        f"{type(widget).__name__} {widget.objectName()}"
        for widget in window.findChildren(QWidget)
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus
        and widget.isVisibleTo(window)
        and not widget.objectName().startswith("qt_")  # Qt's own parts of a named control
        and not widget.accessibleName()
        and not (isinstance(widget, QAbstractButton) and widget.text())  # named by its text
    ]
    assert unnamed == []


def test_tab_reaches_every_part_of_the_window_and_leaves_the_table(
    window: MainWindow, qtbot: QtBot
) -> None:
    enqueue(window.outbox, "ann@example.org")
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 1)
    window.activateWindow()
    window.state_filter.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.state_filter)
    reached = []
    for _ in range(12):
        focused = QApplication.focusWidget()
        assert focused is not None
        reached.append(focused.objectName())
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
    for name in ("state_filter", "search", "outbox_view", "detail_headers", "detail_body"):
        assert name in reached, reached
    assert reached.count("outbox_view") <= 2  # one Tab in, one Tab out: not a cell a Tab
