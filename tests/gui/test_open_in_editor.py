"""Open in Editor: a held or queued message edited in $VISUAL replaces the stored one only if
it still parses and is still held or queued (real editor scripts, run by the window)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import Column
from relay.message import parse_message
from relay.states import MessageState
from tests.gui.driving import click_rows, modal, row_of, shown

WITH_BCC = (
    b"From: alice@example.org\r\nTo: ann@example.org\r\nBcc: hidden@example.org\r\n"
    b"Subject: Draft\r\n\r\nHello Ann.\r\n"
)


def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Make ``script`` (sh, the copy's path in $1) the user's $VISUAL."""
    path = tmp_path / "editor.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("VISUAL", str(path))
    monkeypatch.delenv("EDITOR", raising=False)
    copies = tmp_path / "copies"  # where the window's temporary copies go
    copies.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(copies))


def click_ok(qtbot: QtBot, box: QMessageBox) -> None:
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not box.isVisible())


def open_from_context_menu(qtbot: QtBot, window: MainWindow, message_id: int) -> None:
    """Right-click the message's row and click Open in Editor in the menu that pops up."""
    click_rows(qtbot, window, message_id)
    view = window.view
    row = row_of(window, message_id)
    assert row is not None
    where = view.visualRect(view.model().index(row, Column.SUBJECT)).center()
    view.customContextMenuRequested.emit(where)  # what a right click on the viewport sends
    menu = window.context_menu
    assert isinstance(menu, QMenu)
    qtbot.waitUntil(menu.isVisible)
    action = window.action_open_editor
    assert action.isEnabled()
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def test_an_edited_subject_replaces_the_stored_message_bcc_kept(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.eml"
    editor(
        tmp_path,
        monkeypatch,
        f'cp "$1" {seen}\nsed -i "s/^Subject: Draft/Subject: Final version/" "$1"\n',
    )
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    window.outbox.hold([message_id])
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "held")

    open_from_context_menu(qtbot, window, message_id)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.SUBJECT) == "Final version")

    assert b"Bcc: hidden@example.org" in seen.read_bytes()  # the editor saw every recipient
    stored = window.outbox.get(message_id)
    assert stored.state is MessageState.HELD
    assert [r.address for r in stored.recipients] == ["ann@example.org", "hidden@example.org"]
    raw = window.outbox.raw(message_id)
    assert b"Subject: Final version\r\n" in raw and b"Bcc" not in raw
    assert stored.size == len(raw)
    assert "replaced" in window.statusBar().currentMessage()
    assert not list((tmp_path / "copies").iterdir())  # the used copy is removed


def test_an_envelope_given_apart_from_the_header_is_kept_through_an_edit(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `sendmail -f bounce@example.org ops@example.org` stores it (no -t): the header
    # names a list the caller did not send to; an edit must not start sending to it.
    editor(tmp_path, monkeypatch, 'sed -i "s/^Subject: Draft/Subject: Final/" "$1"\n')
    parsed = parse_message(
        b"From: alice@example.org\r\nTo: everyone@example.org\r\nSubject: Draft\r\n\r\nHi.\r\n",
        sender="bounce@example.org",
        recipients=["ops@example.org"],
        from_headers=False,
    )
    message_id = window.outbox.add_message(parsed).id
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")

    open_from_context_menu(qtbot, window, message_id)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.SUBJECT) == "Final")

    stored = window.outbox.get(message_id)
    assert [r.address for r in stored.recipients] == ["ops@example.org"]
    assert stored.sender == "bounce@example.org"
    assert b"Bcc" not in window.outbox.raw(message_id)


def test_a_copy_that_no_longer_parses_changes_nothing_and_says_why(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, 'printf "just some words\\n\\nand a body\\n" > "$1"\n')
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    before = window.outbox.raw(message_id)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")

    open_from_context_menu(qtbot, window, message_id)
    box = modal(qtbot, "edit_not_used")
    assert isinstance(box, QMessageBox)
    assert "not a header field" in box.text()
    kept = Path(box.informativeText().removeprefix("Your edited copy is kept in ").rstrip("."))
    assert kept.read_bytes().startswith(b"just some words")  # the edit is not lost
    click_ok(qtbot, box)
    assert window.outbox.raw(message_id) == before
    assert [r.address for r in window.outbox.get(message_id).recipients] == [
        "ann@example.org",
        "hidden@example.org",
    ]


def test_a_message_that_left_the_queue_while_edited_is_not_replaced(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    editor(
        tmp_path,
        monkeypatch,
        f'sed -i "s/^Subject: Draft/Subject: Too late/" "$1"\ncat {fifo} > /dev/null\n',
    )
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")
    open_from_context_menu(qtbot, window, message_id)

    writer: list[int] = []

    def editor_waits() -> bool:  # the editor is running, and the window is not blocked
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            assert exc.errno == errno.ENXIO
            return False
        return True

    qtbot.waitUntil(editor_waits)
    claimed = window.outbox.claim([message_id])  # a flush takes it meanwhile
    assert [m.id for m in claimed] == [message_id]
    os.close(writer[0])  # the editor exits

    box = modal(qtbot, "edit_not_used")
    assert isinstance(box, QMessageBox)
    assert "sending now" in box.text()
    click_ok(qtbot, box)
    assert b"Subject: Draft\r\n" in window.outbox.raw(message_id)
    window.outbox.release_claims([message_id])


def test_without_visual_or_editor_the_desktop_opens_it_and_the_window_asks_when_saved(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, "")
    monkeypatch.delenv("VISUAL")
    opener = tmp_path / "bin" / "xdg-open"  # hands the file to an application and returns
    opener.parent.mkdir()
    opener.write_text('#!/bin/sh\nsed -i "s/^Subject: Draft/Subject: Saved in the app/" "$1"\n')
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{opener.parent}{os.pathsep}{os.environ['PATH']}")
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")

    open_from_context_menu(qtbot, window, message_id)
    box = modal(qtbot, "use_edited_copy")
    assert shown(window, message_id, Column.SUBJECT) == "Draft"  # nothing until asked
    qtbot.mouseClick(box.findChild(QPushButton, "accept"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.SUBJECT) == "Saved in the app")


def test_declining_the_desktop_copy_keeps_it_and_the_message_can_be_opened_again(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, "")
    monkeypatch.delenv("VISUAL")
    opener = tmp_path / "bin" / "xdg-open"
    opener.parent.mkdir()
    opener.write_text('#!/bin/sh\nsed -i "s/^Subject: Draft/Subject: Not wanted/" "$1"\n')
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{opener.parent}{os.pathsep}{os.environ['PATH']}")
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")

    open_from_context_menu(qtbot, window, message_id)
    box = modal(qtbot, "use_edited_copy")
    qtbot.mouseClick(box.findChild(QPushButton, "cancel"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.editor.editing(message_id))
    (kept,) = (tmp_path / "copies").glob("*/*.eml")  # the person's edit is not thrown away
    assert b"Subject: Not wanted" in kept.read_bytes()
    assert shown(window, message_id, Column.SUBJECT) == "Draft"

    open_from_context_menu(qtbot, window, message_id)  # not "already open in your editor"
    box = modal(qtbot, "use_edited_copy")
    qtbot.mouseClick(box.findChild(QPushButton, "accept"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.SUBJECT) == "Not wanted")


def test_an_editor_that_fails_after_saving_changes_nothing_and_keeps_the_copy(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As an editor whose session ends badly after the person saved (or vim's :cq).
    editor(
        tmp_path,
        monkeypatch,
        'sed -i "s/^Subject: Draft/Subject: Half a day of work/" "$1"\nexit 3\n',
    )
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    before = window.outbox.raw(message_id)
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")

    open_from_context_menu(qtbot, window, message_id)
    box = modal(qtbot, "edit_not_used")
    assert isinstance(box, QMessageBox)
    assert "ended with status 3" in box.text()
    kept = Path(box.informativeText().removeprefix("Your edited copy is kept in ").rstrip("."))
    assert b"Subject: Half a day of work" in kept.read_bytes()
    click_ok(qtbot, box)
    assert window.outbox.raw(message_id) == before


def test_quitting_while_a_message_is_open_ends_the_editor_gently_and_keeps_the_copy(
    window: MainWindow,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # An editor that saves what it has when asked to end (as vim and emacs do on SIGTERM).
    asked = tmp_path / "asked-to-end"
    editor(
        tmp_path,
        monkeypatch,
        f"trap 'echo yes > {asked}; exit 143' TERM\n"
        'sed -i "s/^Subject: Draft/Subject: Mid-edit/" "$1"\n'
        "sleep 60 &\nwait\n",
    )
    message_id = window.outbox.add_message(parse_message(WITH_BCC)).id
    qtbot.waitUntil(lambda: shown(window, message_id, Column.STATE) == "queued")
    open_from_context_menu(qtbot, window, message_id)
    qtbot.waitUntil(lambda: b"Mid-edit" in next((tmp_path / "copies").glob("*/*.eml")).read_bytes())

    window.quit_app()  # the editor would be killed when the program ends
    assert not window.isVisible()
    assert asked.read_text() == "yes\n"  # ended, not killed
    (kept,) = (tmp_path / "copies").glob("*/*.eml")
    assert b"Subject: Mid-edit" in kept.read_bytes()
    assert str(kept) in capfd.readouterr().err
