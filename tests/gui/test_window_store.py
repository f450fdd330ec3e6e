"""The window and its store: Clear Sent, and problems of the machine told in a dialog."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from gui.app import STORE_BUSY_TIMEOUT_S, main
from gui.main_window import MainWindow
from relay.states import MessageState
from relay.store.database import DB_NAME
from tests.gui.driving import click_action, click_button, click_rows, modal, shown_state
from tests.gui.messages import enqueue
from tests.support.machine import write_lock_held

FLUSH_TIMEOUT_MS = 30_000


def test_clear_sent_removes_only_sent_messages_after_asking(
    window: MainWindow, qtbot: QtBot
) -> None:
    sent = [enqueue(window.outbox, f"s{n}@example.net", f"sent {n}") for n in range(2)]
    qtbot.waitUntil(lambda: shown_state(window, sent[-1]) == "queued")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: shown_state(window, sent[-1]) == "sent")
    queued = enqueue(window.outbox, "q@example.net", "not sent yet")
    held = enqueue(window.outbox, "h@example.net", "held")
    window.outbox.hold([held])
    qtbot.waitUntil(lambda: shown_state(window, held) == "held")

    click_action(qtbot, window, window.action_clear_sent)
    box = modal(qtbot, "confirm_clear_sent")
    assert "2 messages" in box.text()  # type: ignore[attr-defined]
    click_button(qtbot, box, "cancel")
    assert window.outbox.ids() == [*sent, queued, held]

    click_action(qtbot, window, window.action_clear_sent)
    click_button(qtbot, modal(qtbot, "confirm_clear_sent"), "accept")
    qtbot.waitUntil(lambda: shown_state(window, sent[0]) is None)
    assert window.outbox.ids() == [queued, held]
    assert window.outbox.get(held).state is MessageState.HELD
    assert shown_state(window, queued) == "queued"
    qtbot.waitUntil(lambda: not window.action_clear_sent.isEnabled())


def test_a_store_locked_by_another_process_is_told_in_a_dialog_without_freezing(
    window: MainWindow, qtbot: QtBot
) -> None:
    message = enqueue(window.outbox, "a@example.net", "to hold")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    click_rows(qtbot, window, message)
    with write_lock_held(window.outbox.path):
        started = time.monotonic()
        click_action(qtbot, window, window.action_hold)
        waited = time.monotonic() - started
        box = modal(qtbot, "machine_problem")
        assert "busy" in box.text() and str(window.outbox.path) in box.text()  # type: ignore[attr-defined]
        assert waited < STORE_BUSY_TIMEOUT_S + 2  # not SQLite's minute
        box.close()
    assert window.outbox.get(message).state is MessageState.QUEUED


def test_a_damaged_store_at_start_up_is_a_dialog_and_exit_74(qtbot: QtBot, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / DB_NAME).write_bytes(b"not a database\n" * 100)
    seen: list[str] = []

    def close_the_dialog() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "machine_problem":
            seen.append(box.informativeText())
            box.done(0)
        else:
            QTimer.singleShot(20, close_the_dialog)

    QTimer.singleShot(0, close_the_dialog)
    assert main(home) == 74  # closed without choosing Repair: nothing is touched
    (text,) = seen
    assert str(home / DB_NAME) in text and "damaged" in text and "Repair" in text
    assert "`outbox" not in text  # a button to click, not a command to type
    assert (home / DB_NAME).read_bytes() == b"not a database\n" * 100


def test_a_store_that_cannot_be_opened_is_told_as_typed(qtbot: QtBot, tmp_path: Path) -> None:
    """The dialog shows the path as it is, markup and all, not as HTML."""
    home = tmp_path / "<h1>mail"
    home.mkdir(mode=0o700)
    (home / DB_NAME).symlink_to(home / DB_NAME)  # a link to itself: it cannot be opened
    seen: list[tuple[Qt.TextFormat, str]] = []

    def close_the_dialog() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "machine_problem":
            seen.append((box.textFormat(), box.informativeText()))
            box.done(0)
        else:
            QTimer.singleShot(20, close_the_dialog)

    QTimer.singleShot(0, close_the_dialog)
    assert main(home) != 0
    ((text_format, text),) = seen
    assert text_format is Qt.TextFormat.PlainText
    assert str(home) in text


def test_a_store_from_a_newer_outbox_at_start_up_is_a_dialog_and_exit_78(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Started from the desktop's menu there is no terminal: only a dialog can say it."""
    import sqlite3

    from relay.store.outbox import Outbox

    home = tmp_path / "home"
    with Outbox.open(home) as store:
        enqueue(store, "bob@example.org")
    conn = sqlite3.connect(home / DB_NAME)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    seen: list[str] = []

    def close_the_dialog() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "machine_problem":
            seen.append(box.informativeText())
            box.done(0)
        else:
            QTimer.singleShot(20, close_the_dialog)

    QTimer.singleShot(0, close_the_dialog)
    assert main(home) == 78
    (text,) = seen
    assert str(home / DB_NAME) in text and "newer Outbox" in text
