"""Checkpoints on their own thread (relay.store.checkpoint): commits never copy the log in."""

from __future__ import annotations

import os
from pathlib import Path

from relay.message import ParsedMessage
from relay.store.outbox import Outbox

PAGE = 4096
#: SQLite's automatic checkpoint threshold, in pages of the log.
AUTOCHECKPOINT_PAGES = 1000


def add_large(outbox: Outbox, count: int) -> None:
    """``count`` messages of 16 KB, each its own commit: about four log pages each."""
    body = (b"x" * 76 + b"\r\n") * 210
    for index in range(count):
        raw = b"From: a@example.org\r\nSubject: s%d\r\n\r\n" % index + body
        outbox.add_message(ParsedMessage("a@example.org", ("b@example.org",), raw, "s"))


def sizes(outbox: Outbox) -> tuple[int, int]:
    """The database file's size and the log's, in bytes."""
    return os.path.getsize(outbox.path), os.path.getsize(f"{outbox.path}-wal")


def test_commits_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "home") as outbox:
        # It checkpoints at once when nudged, then not again for an hour.
        checkpointer = outbox.checkpoint_in_background(
            interval_s=3600, restart_bytes=1 << 40, idle_s=3600
        )
        add_large(outbox, 1)
        assert checkpointer.caught_up(timeout_s=30)
        database_before, _ = sizes(outbox)
        add_large(outbox, 300)
        database_after, log = sizes(outbox)
        # Past SQLite's threshold, yet no commit copied the log into the database
        # file (with automatic checkpoints, one commit would have, and synced it).
        assert log > AUTOCHECKPOINT_PAGES * PAGE
        assert database_after == database_before
        assert checkpointer.checkpoints == 1


def test_the_checkpointer_copies_the_log_in_after_commits(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "home") as outbox:
        checkpointer = outbox.checkpoint_in_background(interval_s=0)
        add_large(outbox, 1)
        assert checkpointer.caught_up(timeout_s=30)
        database_before, _ = sizes(outbox)
        add_large(outbox, 100)
        # Nudged by those commits, it checkpoints again: in WAL mode only a
        # checkpoint writes the database file, so the messages are in it now.
        assert checkpointer.caught_up(timeout_s=30)
        assert sizes(outbox)[0] >= database_before + 100 * 16 * 1024
        assert checkpointer.checkpoints >= 2


def test_closing_stops_the_thread_and_the_store_reopens_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Outbox.open(home) as outbox:
        checkpointer = outbox.checkpoint_in_background(interval_s=3600)
        add_large(outbox, 20)
    assert not checkpointer._thread.is_alive()
    with Outbox.open(home) as again:
        assert len(again.snapshots(list(range(1, 21)))) == 20
        assert again._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
