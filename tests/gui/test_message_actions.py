"""Copy a recipient's address or reply; save a message as .eml."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.message_export import suggested_name
from relay.policy import Verdict
from relay.states import RecipientState
from tests.gui.driving import click_rows, modal
from tests.gui.messages import enqueue

REPLY = "550 5.1.1 <cy@example.org>: Recipient address rejected:\r\n User unknown in table"


def test_copy_address_and_copy_reply_take_the_whole_reply(window: MainWindow, qtbot: QtBot) -> None:
    message = enqueue(window.outbox, ["bob@example.org", "cy@example.org"], "Two")
    outbox = window.outbox
    outbox.claim([message])
    attempt = outbox.start_attempt(message, account="test", server="127.0.0.1:25")
    outbox.finish_attempt(
        message, attempt,
        {"bob@example.org": Verdict(RecipientState.SENT, "250 ok"),
         "cy@example.org": Verdict(RecipientState.FAILED, REPLY)},
        outcome="partial", error=REPLY, next_attempt_at=None,
    )  # fmt: skip
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 1)
    click_rows(qtbot, window, message)
    tree = window.detail.recipients
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 2)
    window.detail.tabs.setCurrentWidget(tree)
    item = tree.topLevelItem(1)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert tree.currentItem() is item
    clipboard = QApplication.clipboard()
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clipboard.text() == "cy@example.org"
    qtbot.keyClick(
        tree,
        Qt.Key.Key_C,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert clipboard.text() == REPLY.replace("\r\n", "\n")  # whole, in its lines
    assert [a.text() for a in tree.actions()] == ["Copy Address", "Copy Reply"]


def test_save_as_eml_writes_the_stored_bytes(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    message = enqueue(window.outbox, "ann@example.org", "Q3: report/final")
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 1)
    click_rows(qtbot, window, message)
    assert window.action_save_eml in window.context_menu.actions()
    assert window.action_save_eml.isEnabled()
    window.action_save_eml.trigger()
    dialog = modal(qtbot, "save_eml_dialog")
    assert isinstance(dialog, QFileDialog)
    assert dialog.selectedFiles()[0].endswith("Q3 report final.eml")
    folder = tmp_path / "chosen"
    folder.mkdir()
    target = folder / "saved.eml"
    dialog.fileSelected.emit(str(target))  # what its Save button does
    dialog.close()
    assert target.read_bytes() == window.outbox.raw(message)
    assert [p.name for p in folder.iterdir()] == ["saved.eml"]  # no temporary left over


def test_a_suggested_file_name_is_the_subject_made_safe() -> None:
    assert suggested_name(7, "Re: a/b \x07 <c>") == "Re a b c.eml"
    assert suggested_name(7, "  ...  ") == "message 7.eml"
    # A bidirectional override would show "invoice\u202efdp.exe.eml" as "invoicelme.exe.pdf".
    assert suggested_name(7, "invoice\u202efdp.exe\u200b") == "invoice fdp.exe.eml"
