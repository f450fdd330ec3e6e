"""The window over a large outbox: cheap rows, outside changes read a page at a time, short pauses.

The figures (100,000 messages, stalls during a flush) are measured by the
benchmark (tests/bench/window.py), not here; these tests pin the behaviour
the figures rest on.
"""

from __future__ import annotations

import gc
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.flush_runner import PRUNE_BATCH
from gui.garbage import GuiThreadCollector
from gui.main_window import MainWindow
from gui.outbox_model import ID_ROLE, Column, OutboxFilter, OutboxModel
from gui.store_resync import FIRST_PAGE, LOAD_PAGE, PAGE
from relay.message import ParsedMessage, parse_message
from relay.states import MessageState
from relay.store.database import DB_NAME, connect, insert_message, to_text
from relay.store.listing import list_messages, listed, unpack_recipients
from relay.store.outbox import Outbox
from tests.gui.messages import message_bytes


def fill(home: Path, count: int) -> None:
    """``count`` queued messages, stored in one transaction (as intake would, only faster)."""
    conn = connect(home / DB_NAME)
    try:
        conn.execute("BEGIN IMMEDIATE")
        now = datetime.now(UTC)
        for index in range(count):
            to = f"r{index}@example.net"
            raw = message_bytes(to, f"Bulk {index}")
            insert_message(
                conn,
                ParsedMessage("bulk@example.org", (to,), raw, f"Bulk {index}"),
                account=None,
                now=now,
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def shown_ids(window: MainWindow) -> list[int]:
    model = window.view.model()
    return [model.index(row, 0).data(ID_ROLE) for row in range(model.rowCount())]


def test_a_listed_row_is_the_row_made_from_the_snapshot_of_the_same_message(
    home: Path,
) -> None:
    with Outbox.open(home) as outbox:
        plain = outbox.add_message(parse_message(message_bytes("a@example.net", "Plain"))).id
        many = outbox.add_message(
            parse_message(message_bytes(["b@example.net", "c@example.net"], "Two"))
        ).id
        held = outbox.add_message(parse_message(message_bytes("d@example.net", "Held"))).id
        outbox.hold([held])
    # What a flush would have left: a deferral with a reply, a refusal after an acceptance.
    later = to_text(datetime.now(UTC) + timedelta(minutes=7))
    with closing(sqlite3.connect(home / DB_NAME)) as conn, conn:  # committed, then closed
        conn.execute(
            "UPDATE messages SET state = 'deferred', attempts = 1, next_attempt_at = ?,"
            " last_error = ? WHERE id = ?",
            (later, "451 4.7.1 try\nlater", plain),
        )
        conn.execute(
            "UPDATE recipients SET state = 'deferred', reply = '451 4.7.1 try later'"
            " WHERE message_id = ?",
            (plain,),
        )
        conn.execute(
            "UPDATE recipients SET state = 'sent', reply = '250 ok' WHERE message_id = ?"
            " AND position = 0",
            (many,),
        )
        conn.execute(
            "UPDATE recipients SET state = 'failed', reply = '550 no' WHERE message_id = ?"
            " AND position = 1",
            (many,),
        )
        conn.execute("UPDATE messages SET state = 'failed', attempts = 1 WHERE id = ?", (many,))
    with Outbox.open(home) as outbox:
        snapshots = outbox.messages()
        conn = connect(home / DB_NAME)
        try:
            rows = list_messages(conn)
            assert list_messages(conn, after_id=plain, limit=1) == rows[1:2]
        finally:
            conn.close()
    assert rows == [listed(s) for s in snapshots]
    assert unpack_recipients(rows[1][8]) == [
        ("b@example.net", "sent"),
        ("c@example.net", "failed"),
    ]


def test_changes_by_another_process_across_many_pages_show_up_row_by_row(
    qtbot: QtBot, home: Path
) -> None:
    fill(home, 2 * PAGE + 10)
    window = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.resync.loading)
    assert window.view.model().rowCount() == 2 * PAGE + 10
    resets: list[None] = []
    window.model.modelReset.connect(lambda: resets.append(None))
    with Outbox.open(home) as elsewhere:  # its own connection: "another process" to SQLite
        first, middle, last = 1, PAGE + 5, 2 * PAGE + 10
        elsewhere.delete([first, last])
        elsewhere.hold([middle])
        added = elsewhere.add_message(parse_message(message_bytes("new@example.net", "New"))).id
        with qtbot.waitSignal(window.resync.finished, timeout=5000):
            pass
        expected = [i for i in range(1, 2 * PAGE + 11) if i not in (first, last)] + [added]
        qtbot.waitUntil(lambda: shown_ids(window) == expected, timeout=5000)
    assert window.model.state_of(middle) is MessageState.HELD
    assert window.model.counts()[MessageState.HELD] == 1
    assert window.model.counts()[MessageState.QUEUED] == 2 * PAGE + 10 - 2 - 1 + 1
    assert resets == []  # rows changed one by one, never the whole table


def test_the_first_rows_show_at_once_and_the_rest_follow_with_changes_made_meanwhile(
    qtbot: QtBot, home: Path
) -> None:
    total = FIRST_PAGE + 2 * LOAD_PAGE + 3
    fill(home, total)
    window = create_main_window(home)
    qtbot.addWidget(window)
    assert window.model.rowCount() == FIRST_PAGE  # shown before the rest is read
    assert window.resync.loading
    late = total - 1  # not loaded yet: the window's own changes to it must not be lost
    window.outbox.hold([late])
    window.outbox.delete([total])
    window.show()
    with qtbot.waitSignal(window.resync.loaded, timeout=5000):
        pass
    qtbot.waitUntil(lambda: window.model.rowCount() == total - 1)
    assert shown_ids(window) == list(range(1, total))
    assert window.model.state_of(late) is MessageState.HELD
    assert window.model.counts()[MessageState.HELD] == 1
    assert window.model.counts()[MessageState.QUEUED] == total - 2


def test_rows_are_left_alone_by_the_garbage_collector(qtbot: QtBot, home: Path) -> None:
    fill(home, 50)
    model = OutboxModel()
    conn = connect(home / DB_NAME)
    try:
        model.load_listed(list_messages(conn))
    finally:
        conn.close()
    gc.collect()
    assert model.rowCount() == 50
    row = model._rows[0]
    assert not gc.is_tracked(row)  # a full collection never walks the table


def test_a_sort_that_changes_nothing_announces_no_new_layout(qtbot: QtBot, home: Path) -> None:
    fill(home, 20)
    model = OutboxModel()
    proxy = OutboxFilter(model)
    conn = connect(home / DB_NAME)
    try:
        model.load_listed(list_messages(conn))
    finally:
        conn.close()
    layouts: list[None] = []
    model.layoutChanged.connect(lambda: layouts.append(None))
    proxy.sort(-1, Qt.SortOrder.AscendingOrder)  # what the view asks at start-up
    proxy.sort(Column.SIZE, Qt.SortOrder.AscendingOrder)  # all the same size: id order
    assert layouts == []
    proxy.sort(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    assert layouts == [None]
    subjects = [proxy.index(r, Column.SUBJECT).data() for r in range(proxy.rowCount())]
    assert subjects == sorted(subjects, key=str.casefold, reverse=True)


def test_a_full_collection_freezes_its_survivors_until_everything_is_collected(
    qtbot: QtBot,
) -> None:
    collector = GuiThreadCollector()
    try:
        cycle: list[object] = []
        cycle.append(cycle)
        for _ in range(gc.get_threshold()[2] + 1):
            gc.collect(1)  # each one counts towards the next full collection
        collector.collect()  # full: the cycle survives it (still referenced) and is frozen
        assert gc.get_freeze_count() > 0
        del cycle
        assert collector.collect() == 0  # nothing due, and frozen objects are not walked
        assert collector.collect_everything() > 0  # the dropped cycle, found at last
    finally:
        collector.stop()
        gc.unfreeze()


def test_a_young_collection_freezes_its_survivors_so_the_next_walks_only_newer_objects(
    qtbot: QtBot,
) -> None:
    collector = GuiThreadCollector()
    try:
        gc.collect()
        gc.freeze()
        kept: list[object] = []
        kept.append(kept)  # a survivor of the next young collection
        for _ in range(gc.get_threshold()[0] + 10):
            garbage: list[object] = []
            garbage.append(garbage)
        del garbage
        assert collector.collect() > 0  # a young collection: the dropped cycles
        assert not any(obj is kept for obj in gc.get_objects())  # frozen, walked no more
        del kept
        for _ in range(gc.get_threshold()[0] + 10):
            [].append(None)
        gc.collect(0)  # what the collector would do now: the frozen cycle is not found
        assert collector.collect_everything() == 1  # found when everything is looked at
    finally:
        collector.stop()
        gc.unfreeze()


def test_the_full_generation_looks_at_frozen_objects_only_while_quiet(qtbot: QtBot) -> None:
    collector = GuiThreadCollector()
    sending = [True]
    collector.quiet = lambda: not sending[0]
    try:
        gc.collect()
        cycle: list[object] = []
        cycle.append(cycle)
        gc.freeze()
        del cycle  # garbage, frozen
        for _ in range(gc.get_threshold()[2] + 1):
            gc.collect(1)
        assert collector.collect() == 0  # a flush runs: no pause of a full look
        for _ in range(gc.get_threshold()[2] + 1):
            gc.collect(1)
        sending[0] = False
        assert collector.collect() == 1  # quiet: the frozen cycle is found
    finally:
        collector.stop()
        gc.unfreeze()


def test_bodies_long_sent_are_pruned_a_batch_at_a_time_after_the_window_starts(
    qtbot: QtBot, home: Path
) -> None:
    total = 2 * PRUNE_BATCH + 5
    fill(home, total + 1)
    partly = total + 1  # sent to one recipient, deferred for the other: not sent
    long_ago = to_text(datetime.now(UTC) - timedelta(days=60))
    with closing(sqlite3.connect(home / DB_NAME)) as conn, conn:
        conn.execute("UPDATE messages SET state = 'sent', created_at = ?", (long_ago,))
        conn.execute("UPDATE recipients SET state = 'sent'")
        conn.execute(
            "INSERT INTO recipients (message_id, position, address, state)"
            " VALUES (?, 1, 'later@example.net', 'deferred')",
            (partly,),
        )
        conn.execute("UPDATE messages SET state = 'deferred' WHERE id = ?", (partly,))
    window = create_main_window(home)
    qtbot.addWidget(window)
    batches: list[int] = []
    prune = window.engine.prune_expired_bodies

    def counted(limit: int | None = None) -> list[int]:
        pruned = prune(limit)
        batches.append(len(pruned))
        return pruned

    window.engine.prune_expired_bodies = counted  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: len(window.outbox.pruned()) == total, timeout=10_000)
    assert batches == [PRUNE_BATCH, PRUNE_BATCH, 5]  # never all at once on the window's loop
    assert partly not in window.outbox.pruned()
    assert window.outbox.raw(partly)
