"""Changes other processes make to the outbox show up in the window within a second."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import MainWindow
from gui.outbox_model import Column
from gui.store_resync import PAGE
from relay.states import MessageState
from tests.gui.driving import click_action, click_rows, row_of, shown_state
from tests.gui.messages import enqueue, message_bytes
from tests.gui.test_large_outbox import fill
from tests.support.cli import outbox
from tests.support.gated_servers import GatedHandler
from tests.support.smtp_servers import RunningServer

WITHIN_A_SECOND_MS = 1000


def test_a_message_enqueued_by_another_process_appears_within_a_second(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    draft = tmp_path / "draft.eml"
    draft.write_bytes(message_bytes("erin@example.net", "From a mail client"))
    done = outbox(window.home, "enqueue", str(draft))
    assert done.returncode == 0, done.stderr.decode()
    message_id = int(done.stdout.split()[0])
    qtbot.waitUntil(lambda: shown_state(window, message_id) == "queued", timeout=WITHIN_A_SECOND_MS)
    assert window.status.counts_label.text() == "1 queued"


def test_a_delete_on_the_command_line_disappears_from_the_window(
    window: MainWindow, qtbot: QtBot
) -> None:
    gone, kept = (enqueue(window.outbox, f"{n}@example.net", n) for n in ("gone", "kept"))
    qtbot.waitUntil(lambda: shown_state(window, kept) == "queued")
    done = outbox(window.home, "delete", str(gone))
    assert done.returncode == 0, done.stderr.decode()
    qtbot.waitUntil(lambda: shown_state(window, gone) is None, timeout=WITHIN_A_SECOND_MS)
    assert shown_state(window, kept) == "queued"
    assert window.view.model().rowCount() == 1


def test_a_flush_on_the_command_line_keeps_send_all_off_and_its_results_show_up(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    first = enqueue(window.outbox, "fay@example.net", "First")
    qtbot.waitUntil(lambda: shown_state(window, first) == "queued")
    assert window.action_flush.isEnabled()
    handler.gated = True
    started = time.monotonic()
    flush = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(window.home), "flush"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        qtbot.waitUntil(handler.waiting.is_set, timeout=30_000)
        # The command line holds the flush lock: the window says so and will not send.
        qtbot.waitUntil(lambda: window.runner.lock_busy, timeout=3000)
        assert not window.action_flush.isEnabled()
        assert window.status.lock_label.isVisible()
        assert "Another Outbox is sending" in window.status.lock_label.text()
        qtbot.waitUntil(lambda: shown_state(window, first) == "sending", timeout=3000)
        late = enqueue(window.outbox, "gus@example.net", "Late")
        qtbot.waitUntil(lambda: shown_state(window, late) == "queued")
        assert not window.action_flush.isEnabled()
        handler.open_gate()
        assert flush.wait(timeout=30) == 0, flush.stderr.read().decode() if flush.stderr else ""
    finally:
        if flush.poll() is None:
            flush.kill()
            flush.wait()
        if flush.stderr is not None:
            flush.stderr.close()
    qtbot.waitUntil(lambda: shown_state(window, first) == "sent", timeout=WITHIN_A_SECOND_MS)
    qtbot.waitUntil(lambda: not window.runner.lock_busy, timeout=3000)
    assert not window.status.lock_label.isVisible()
    assert window.outbox.get(first).state is MessageState.SENT
    assert time.monotonic() - started < 30

    # Free again: Send all works from the window.
    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: shown_state(window, late) == "sent")
    assert [r.rcpt_tos for r in server.received] == [("fay@example.net",), ("gus@example.net",)]


def test_the_drop_folder_is_imported_when_the_window_starts(
    qtbot: QtBot, loop: object, account_home: Path
) -> None:
    from gui.app import create_main_window

    new = account_home / "drop" / "new"
    new.mkdir(parents=True)
    (new / "1732450000.M1P2.laptop").write_bytes(message_bytes("olga@example.net", "Dropped"))
    window = create_main_window(account_home)
    qtbot.addWidget(window)
    (stored,) = window.outbox.messages()
    assert stored.subject == "Dropped"
    qtbot.waitUntil(lambda: shown_state(window, stored.id) == "queued")
    assert list(new.iterdir()) == []
    assert "Imported 1" in window.statusBar().currentMessage()


class RowCounter:
    """Counts every row read through a connection (its ``row_factory``), rows unchanged."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, cursor: sqlite3.Cursor, row: tuple[object, ...]) -> tuple[object, ...]:
        self.rows += 1
        return row


def test_outside_changes_to_a_large_outbox_are_read_alone_and_keep_selection_and_sort(
    qtbot: QtBot, home: Path, tmp_path: Path
) -> None:
    total = PAGE + 500  # more than a pass of the whole outbox reads at once
    fill(home, total)
    window = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.resync.loading and window.model.rowCount() == total)
    window.view.sortByColumn(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    chosen, held, gone = 8, 9, 10  # subjects "Bulk 7", "Bulk 8", "Bulk 9"
    click_rows(qtbot, window, chosen)
    resets: list[None] = []
    window.model.modelReset.connect(lambda: resets.append(None))
    counter = RowCounter()
    window.engine.table_reader.row_factory = counter

    draft = tmp_path / "draft.eml"
    draft.write_bytes(message_bytes("new@example.net", "Bulk 8 and a half"))
    for args in (("hold", str(held)), ("delete", str(gone)), ("enqueue", str(draft))):
        done = outbox(home, *args)
        assert done.returncode == 0, done.stderr.decode()
    added = total + 1
    qtbot.waitUntil(
        lambda: (
            shown_state(window, held) == "held"
            and shown_state(window, gone) is None
            and shown_state(window, added) == "queued"
        ),
        timeout=5000,
    )
    qtbot.waitUntil(lambda: not window.resync.running)
    # The three messages, their log entries and a number or two -- not 2,500 rows.
    assert 0 < counter.rows < 20
    assert window.selected_ids() == [chosen]
    assert resets == []
    proxy = window.view.model()
    assert proxy.rowCount() == total

    def in_sort_order() -> bool:
        subjects = [
            str(proxy.index(row, Column.SUBJECT).data()).casefold()
            for row in range(proxy.rowCount())
        ]
        return subjects == sorted(subjects, reverse=True)

    qtbot.waitUntil(in_sort_order, timeout=3000)  # the new row in its place
    row = row_of(window, added)
    assert row is not None and row_of(window, held) == row + 1  # just above "Bulk 8"
    assert window.selected_ids() == [chosen]
