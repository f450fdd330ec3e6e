"""File → Aliases…: a local name (``root``, ``ops``) gets its addresses in the window, and the
window's advice points there instead of quoting ``outbox alias set``."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QMessageBox, QTableWidget, QWidget
from pytestqt.qtbot import QtBot

from gui.command_hints import ACCOUNTS, ALIASES, for_window
from gui.main_window import MainWindow
from relay.accounts import Account, account_for_sender
from relay.aliases import load_aliases, set_alias
from relay.dropfolder import import_drop_folder
from relay.errors import OutboxError
from relay.localnames import LocalNames
from relay.machineproblems import explain
from relay.oauth.tokens import SignInNeeded
from tests.gui.driving import click_button, modal


def open_aliases(qtbot: QtBot, window: MainWindow) -> QWidget:
    (file_menu,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&File"]
    assert window.action_aliases in file_menu.actions()  # found where a person looks
    window.action_aliases.trigger()
    return modal(qtbot, "aliases_dialog")


def field(dialog: QWidget, name: str) -> QLineEdit:
    found = dialog.findChild(QLineEdit, name)
    assert found is not None, name
    return found


def type_into(qtbot: QtBot, dialog: QWidget, name: str, text: str) -> None:
    line = field(dialog, name)
    line.clear()
    qtbot.keyClicks(line, text)


def shown_rows(dialog: QWidget) -> list[tuple[str, str]]:
    table = dialog.findChild(QTableWidget, "aliases_table")
    assert table is not None
    return [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]


def test_a_refused_local_name_points_to_aliases_where_one_click_fixes_it(
    qtbot: QtBot, loop: object, account_home: Path
) -> None:
    from gui.app import create_main_window

    new = account_home / "drop" / "new"
    new.mkdir(parents=True)
    (new / "1.cron").write_bytes(b"From: a@example.org\nTo: ops\nSubject: job\n\nx\n")
    window = create_main_window(account_home)
    qtbot.addWidget(window)
    said = window.statusBar().currentMessage()
    assert f"add an alias for “ops” in {ALIASES}" in said
    assert "'outbox " not in said  # what to click, not a command to type

    dialog = open_aliases(qtbot, window)
    assert shown_rows(dialog) == []
    type_into(qtbot, dialog, "alias_name", "ops")
    type_into(qtbot, dialog, "alias_addresses", "ops@example.net, oncall@example.net")
    click_button(qtbot, dialog, "alias_save")
    assert load_aliases(account_home) == {"ops": ("ops@example.net", "oncall@example.net")}
    assert shown_rows(dialog) == [("ops", "ops@example.net, oncall@example.net")]

    # Mail to the name is taken from now on, as sendmail would store it.
    (new / "2.cron").write_bytes(b"From: a@example.org\nTo: ops\nSubject: job\n\nx\n")
    result = import_drop_folder(window.outbox, account_home)
    (stored,) = [window.outbox.get(i) for i in result.imported]
    assert [r.address for r in stored.recipients] == ["ops@example.net", "oncall@example.net"]
    dialog.close()


def test_a_bad_address_is_explained_and_nothing_is_stored(window: MainWindow, qtbot: QtBot) -> None:
    dialog = open_aliases(qtbot, window)
    type_into(qtbot, dialog, "alias_name", "root")
    type_into(qtbot, dialog, "alias_addresses", "admin")
    click_button(qtbot, dialog, "alias_save")
    error = dialog.findChild(QLabel, "aliases_error")
    assert error.isVisible() and "full addresses" in error.text()
    assert load_aliases(window.home) == {}


def test_picking_an_alias_fills_the_fields_and_remove_forgets_it(
    window: MainWindow, qtbot: QtBot
) -> None:
    set_alias(window.home, "root", ["admin@example.net"])
    set_alias(window.home, "default", ["me@example.org"])
    dialog = open_aliases(qtbot, window)
    assert shown_rows(dialog) == [("default", "me@example.org"), ("root", "admin@example.net")]
    table = dialog.findChild(QTableWidget, "aliases_table")
    rect = table.visualItemRect(table.item(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert (field(dialog, "alias_name").text(), field(dialog, "alias_addresses").text()) == (
        "root",
        "admin@example.net",
    )
    click_button(qtbot, dialog, "alias_remove")
    assert load_aliases(window.home) == {"default": ("me@example.org",)}
    assert shown_rows(dialog) == [("default", "me@example.org")]
    dialog.close()
    assert not dialog.isVisible()  # nothing typed and unsaved: no question


def test_closing_with_an_alias_typed_and_not_saved_asks_first(
    window: MainWindow, qtbot: QtBot
) -> None:
    dialog = open_aliases(qtbot, window)
    type_into(qtbot, dialog, "alias_name", "backup")
    type_into(qtbot, dialog, "alias_addresses", "tapes@example.net")
    click_button(qtbot, dialog, "aliases_close")
    question = modal(qtbot, "aliases_unsaved")
    assert isinstance(question, QMessageBox)
    click_button(qtbot, question, "save")
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert load_aliases(window.home) == {"backup": ("tapes@example.net",)}


def engine_advice(home: Path) -> list[str]:
    """What the engine really says when a person has something to set up or fix."""
    texts = []
    for cause in (
        lambda: LocalNames(home).expand("ops"),
        lambda: account_for_sender([], "a@example.org"),
        lambda: account_for_sender([Account(name="w", host="h", port=587)], "a@example.org"),
        lambda: LocalNames(home).sender(),
    ):
        with pytest.raises(OutboxError) as raised:
            cause()
        texts.append(str(raised.value))
    texts.append(str(SignInNeeded("work", "the grant was revoked")))
    damaged = explain(sqlite3.DatabaseError("database disk image is malformed"))
    assert damaged is not None
    texts.append(str(damaged))
    return texts


def test_no_advice_of_the_engine_reaches_the_window_as_a_command(home: Path) -> None:
    advice = engine_advice(home)
    quoted_command = re.compile(r"[`']outbox ")
    assert all(quoted_command.search(text) for text in advice)  # the command line's words
    shown = [for_window(text) for text in advice]
    assert [text for text in shown if quoted_command.search(text) or "`" in text] == []
    assert ALIASES in shown[0] and "“default”" in shown[0]
    assert shown[1].endswith(f"add one in {ACCOUNTS}")
    assert "ticking “Default account”" in shown[2]
    assert f"in {ACCOUNTS}" in shown[3]
    assert shown[4].endswith(f"sign in again in {ACCOUNTS}")
    assert "store check" in shown[5] and "Backup and repair" in shown[5]


def test_aliases_that_cannot_be_read_are_said_so_not_shown_as_none(
    window: MainWindow, qtbot: QtBot, account_home: Path
) -> None:
    config = account_home / "config.toml"
    config.write_text(config.read_text() + "\n[aliases]\nops = 42\n")  # hand-edited wrongly
    dialog = open_aliases(qtbot, window)
    error = dialog.findChild(QLabel, "aliases_error")
    assert error is not None and error.isVisible()
    assert "ops" in error.text()
    assert shown_rows(dialog) == []
