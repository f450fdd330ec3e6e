"""The window words one thing one way: a size, a count."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import Column
from relay import __version__
from tests.gui.driving import modal
from tests.gui.messages import enqueue, message_bytes


def test_a_message_size_is_decimal_in_the_table(window: MainWindow, qtbot: QtBot) -> None:
    octets = len(message_bytes("ann@example.org", "Big", body_bytes=8_610_000))
    enqueue(window.outbox, "ann@example.org", "Big", body_bytes=8_610_000)
    model = window.view.model()
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert model.index(0, Column.SIZE).data() == f"{octets / 1e6:.1f} MB" == "8.6 MB"


def test_the_tray_tooltip_counts_as_the_status_bar_does(window: MainWindow, qtbot: QtBot) -> None:
    enqueue(window.outbox, "ann@example.org")
    held = enqueue(window.outbox, "bob@example.org")
    window.outbox.hold([held])
    qtbot.waitUntil(lambda: "held" in window.status.counts_label.text())
    counts = window.status.counts_label.text()
    assert counts == "1 queued · 1 held"
    assert window.tray.icon.toolTip() == f"Outbox: {counts}"


def test_each_header_is_aligned_as_its_column_and_attempts_sit_centred(
    window: MainWindow, qtbot: QtBot
) -> None:
    enqueue(window.outbox, "ann@example.org")
    model = window.view.model()
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    for column in Column:
        header = model.headerData(
            column, Qt.Orientation.Horizontal, Qt.ItemDataRole.TextAlignmentRole
        )
        cell = model.index(0, column).data(Qt.ItemDataRole.TextAlignmentRole)
        assert header == (cell if cell is not None else left), column
    assert model.index(0, Column.ATTEMPTS).data(Qt.ItemDataRole.TextAlignmentRole) == (
        Qt.AlignmentFlag.AlignCenter
    )


def test_the_menus_show_the_shortcuts_of_the_common_commands(window: MainWindow) -> None:
    in_menus = {
        action.objectName(): action.shortcut().toString()
        for menu in window.menuBar().findChildren(QMenu)
        for action in menu.actions()
    }
    for name in ("action_flush", "action_flush_selected", "action_retry", "action_hold",
                 "action_delete", "action_find"):  # fmt: skip
        assert in_menus.get(name), name


def test_help_about_names_the_version_the_data_folder_and_the_docs(
    window: MainWindow, qtbot: QtBot
) -> None:
    (help_menu,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"]
    (about,) = [a for a in help_menu.actions() if a.objectName() == "action_about"]
    about.trigger()
    box = modal(qtbot, "about_dialog")
    text = box.text()  # type: ignore[attr-defined]
    assert f"Outbox {__version__}" in text
    assert str(window.home) in text and "#readme" in text
    click_button_of(qtbot, box, QMessageBox.StandardButton.Close)
    qtbot.waitUntil(lambda: not box.isVisible())


def click_button_of(qtbot: QtBot, box: QWidget, which: QMessageBox.StandardButton) -> None:
    assert isinstance(box, QMessageBox)
    qtbot.mouseClick(box.button(which), Qt.MouseButton.LeftButton)
