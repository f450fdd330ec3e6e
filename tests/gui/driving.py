"""Driving the window as a person does: clicks on real widgets, reading what the view shows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import ID_ROLE, PROGRESS_ROLE, Column, Progress


def click_action(qtbot: QtBot, window: MainWindow, action: QAction) -> None:
    """Click the action's toolbar button (or trigger it from its menu when it has none)."""
    assert action.isEnabled(), f"{action.objectName()} is disabled"
    button = window.toolbar.widgetForAction(action)
    if button is not None:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    else:
        action.trigger()


def row_of(window: MainWindow, message_id: int) -> int | None:
    proxy = window.view.model()
    for row in range(proxy.rowCount()):
        if proxy.index(row, 0).data(ID_ROLE) == message_id:
            return row
    return None


def shown_state(window: MainWindow, message_id: int) -> str | None:
    """The word in the State column of the message's row, as the view shows it."""
    row = row_of(window, message_id)
    return None if row is None else window.view.model().index(row, Column.STATE).data()


def shown(window: MainWindow, message_id: int, column: Column) -> str | None:
    row = row_of(window, message_id)
    return None if row is None else window.view.model().index(row, column).data()


def shown_progress(window: MainWindow, message_id: int) -> Progress | None:
    row = row_of(window, message_id)
    if row is None:
        return None
    value = window.view.model().index(row, Column.PROGRESS).data(PROGRESS_ROLE)
    return value if isinstance(value, Progress) else None


def click_rows(qtbot: QtBot, window: MainWindow, *message_ids: int) -> None:
    """Click the first row, Ctrl-click the others."""
    view = window.view
    for position, message_id in enumerate(message_ids):
        row = row_of(window, message_id)
        assert row is not None, f"message {message_id} is not shown"
        index = view.model().index(row, Column.SUBJECT)
        view.scrollTo(index)
        modifier = (
            Qt.KeyboardModifier.ControlModifier if position else Qt.KeyboardModifier.NoModifier
        )
        qtbot.mouseClick(
            view.viewport(), Qt.MouseButton.LeftButton, modifier, view.visualRect(index).center()
        )
    assert sorted(window.selected_ids()) == sorted(message_ids)


def modal(qtbot: QtBot, name: str) -> QWidget:
    """Wait for the window-modal dialog called ``name`` and return it."""

    def shown_now() -> bool:
        widget = QApplication.activeModalWidget()
        return widget is not None and widget.objectName() == name and widget.isVisible()

    qtbot.waitUntil(shown_now, timeout=5000)
    widget = QApplication.activeModalWidget()
    assert widget is not None
    return widget


def click_button(qtbot: QtBot, dialog: QWidget, name: str) -> None:
    button = dialog.findChild(QAbstractButton, name)
    assert button is not None, f"no button {name} in {dialog.objectName()}"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
