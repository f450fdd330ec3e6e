"""The schema moves forward in place: a first-release outbox opens and keeps its mail."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.errors import OutboxError
from relay.home import ensure_home
from relay.message import parse_message
from relay.store.database import DB_NAME, MIGRATIONS, to_text
from relay.store.outbox import Outbox

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: old\r\n\r\nkept\r\n"


def first_release_store(home: Path) -> None:
    """The file as the first release wrote it: schema 1 and one queued message."""
    ensure_home(home)
    conn = sqlite3.connect(home / DB_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        store_as_released(conn, MESSAGE)
    finally:
        conn.close()


def store_as_released(conn: sqlite3.Connection, raw: bytes) -> int:
    """Store a queued message as every release before the change log did; its id.

    Not ``insert_message``: today's also writes the log, a table these schemas lack.
    """
    parsed = parse_message(raw)
    message_id = conn.execute(
        "INSERT INTO messages (created_at, sender, subject, size, state)"
        " VALUES (?, ?, ?, ?, 'queued')",
        (to_text(datetime.now(UTC)), parsed.sender, parsed.subject, len(raw)),
    ).lastrowid
    assert message_id is not None
    conn.execute("INSERT INTO bodies (message_id, raw) VALUES (?, ?)", (message_id, raw))
    conn.executemany(
        "INSERT INTO recipients (message_id, position, address, state) VALUES (?, ?, ?, 'pending')",
        [(message_id, position, address) for position, address in enumerate(parsed.recipients)],
    )
    return message_id


def test_a_first_release_outbox_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_release_store(home)
    with Outbox.open(home) as outbox:
        (message,) = outbox.messages()
        assert message.subject == "old"
        assert outbox.raw(message.id).endswith(b"\r\n\r\nkept\r\n")
        assert outbox.stored_drop_files() == set()  # a table of schema 2 is there
    conn = sqlite3.connect(home / DB_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) > 1
    finally:
        conn.close()


def test_an_outbox_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_release_store(home)
    with closing(sqlite3.connect(home / DB_NAME, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(OutboxError, match="newer Outbox"):
        Outbox.open(home)


def test_a_schema_2_outbox_gains_dsn_requests_and_its_messages_are_claimed_as_before(
    tmp_path: Path,
) -> None:
    from relay.dsn import DsnRequest

    home = tmp_path / "home"
    first_release_store(home)
    conn = sqlite3.connect(home / DB_NAME, isolation_level=None)
    try:
        conn.executescript(MIGRATIONS[1])
        conn.execute("PRAGMA user_version = 2")
    finally:
        conn.close()
    with Outbox.open(home) as outbox:
        (claimed,) = outbox.claim(outbox.ids())
        assert claimed.dsn is None
        added = outbox.add_message(parse_message(MESSAGE))
        outbox._conn.execute(
            "INSERT INTO dsn_requests (message_id, notify) VALUES (?, 'DELAY')", (added.id,)
        )
        (again,) = outbox.claim([added.id])
        assert again.dsn == DsnRequest("DELAY", None, None)
