"""The change log: a reader that applies ``changes_since`` to what it read holds what the
store holds, after every kind of write, without reading the messages that did not change."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.home import ensure_home
from relay.message import parse_message
from relay.policy import Verdict
from relay.states import RecipientState
from relay.store.database import DB_NAME, KEPT_CHANGES, MIGRATIONS, connect, note_changed
from relay.store.listing import L_ID, Listed, changes_since, last_change, list_messages
from relay.store.outbox import AttemptEnd, AttemptStart, Outbox
from tests.unit.test_migrations import store_as_released

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def message(to: str, subject: str = "Hello") -> bytes:
    return f"From: a@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


_readers: list[Reader] = []


@pytest.fixture(autouse=True)
def _close_readers() -> Iterator[None]:
    """Every reader's connection is closed when its test ends, passed or failed."""
    yield
    while _readers:
        _readers.pop().conn.close()


class Reader:
    """What the window keeps: the rows it read, and the change number it stands at."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path)
        _readers.append(self)
        self.conn.execute("BEGIN")
        self.since = last_change(self.conn)
        self.rows = {row[L_ID]: row for row in list_messages(self.conn)}
        self.conn.execute("COMMIT")
        self.read = 0

    def catch_up(self, limit: int = -1) -> None:
        while True:
            changes = changes_since(self.conn, self.since, limit=limit)
            assert changes is not None
            self.read += len(changes.rows)
            for message_id in changes.removed:
                self.rows.pop(message_id, None)
            self.rows.update((row[L_ID], row) for row in changes.rows)
            self.since = changes.through
            if not changes.more:
                return

    def store_rows(self) -> dict[int, Listed]:
        return {row[L_ID]: row for row in list_messages(self.conn)}


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    with Outbox.open(tmp_path / "home") as opened:
        yield opened


def _settle(outbox: Outbox, message_id: int, state: RecipientState, reply: str) -> None:
    (attempt,) = outbox.start_attempts([AttemptStart(message_id, "acct", "mx", NOW)])
    address = outbox.get(message_id).recipients[0].address
    outbox.finish_attempts(
        [
            AttemptEnd(
                message_id,
                attempt,
                {address: Verdict(state, reply)},
                outcome=state.value,
                error=None if state is RecipientState.SENT else reply,
                next_attempt_at=NOW + timedelta(minutes=5)
                if state is RecipientState.DEFERRED
                else None,
                now=NOW,
            )
        ]
    )


def test_every_kind_of_write_reaches_a_reader_that_reads_only_what_changed(
    outbox: Outbox,
) -> None:
    ids = [outbox.add_message(parse_message(message(f"r{n}@example.net"))).id for n in range(6)]
    reader = Reader(outbox.path)
    assert len(reader.rows) == 6
    a, b, c, d, e, f = ids
    writes: list[tuple[str, Callable[[], object], set[int]]] = [
        ("add", lambda: outbox.add_message(parse_message(message("new@example.net"))), set()),
        ("hold", lambda: outbox.hold([a]), {a}),
        ("release", lambda: outbox.release([a]), {a}),
        ("schedule", lambda: outbox.schedule([b], NOW + timedelta(days=1)), {b}),
        ("claim", lambda: outbox.claim([c, d]), {c, d}),
        ("start", lambda: outbox.start_transactions([c]), {c}),
        ("deferred", lambda: _settle(outbox, c, RecipientState.DEFERRED, "451 later"), {c}),
        ("hand back", lambda: outbox.hand_back([d], "not tried"), {d}),
        ("retry", lambda: outbox.retry([c]), {c}),
        ("claim again", lambda: outbox.claim([e]), {e}),
        ("release claim", lambda: outbox.release_claims([e]), {e}),
        ("expire", lambda: outbox.expire_due(0, now=datetime.now(UTC) + timedelta(days=9)), set()),
        (
            "replace",
            lambda: outbox.replace_message(f, parse_message(message("x@example.net", "Edited"))),
            {f},
        ),
        ("claim to send", lambda: outbox.claim([a]), {a}),
        ("sent", lambda: _settle(outbox, a, RecipientState.SENT, "250 ok"), {a}),
        ("delete", lambda: outbox.delete([b]), {b}),
        ("purge", lambda: outbox.purge_sent(), {a}),
    ]
    for what, write, touched in writes:
        before = dict(reader.rows)
        write()
        reader.read = 0
        reader.catch_up()
        now = reader.store_rows()
        assert reader.rows == now, what
        differ = {i for i in before.keys() | now.keys() if before.get(i) != now.get(i)}
        assert touched <= differ, what
        # Only the messages the write touched were read (an added one is new to it).
        assert reader.read == len(set(now) - set(before)) + len(touched & set(now)), what


def test_a_reader_catches_up_a_page_at_a_time(outbox: Outbox) -> None:
    reader = Reader(outbox.path)
    ids = [outbox.add_message(parse_message(message(f"r{n}@example.net"))).id for n in range(7)]
    outbox.hold(ids[:3])
    outbox.delete([ids[5]])
    reader.catch_up(limit=2)
    assert reader.rows == reader.store_rows()
    assert set(reader.rows) == set(ids) - {ids[5]}


def test_a_reader_further_behind_than_the_log_keeps_is_told_to_read_everything(
    outbox: Outbox,
) -> None:
    first = outbox.add_message(parse_message(message("r@example.net"))).id
    reader = Reader(outbox.path)
    with outbox.batch():
        note_changed(outbox._conn, [first] * (KEPT_CHANGES + 1000))
    assert changes_since(reader.conn, reader.since) is None
    with closing(sqlite3.connect(outbox.path)) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
    assert KEPT_CHANGES <= kept <= KEPT_CHANGES + 1000
    changes = changes_since(reader.conn, last_change(reader.conn))
    assert changes is not None and changes.rows == [] and changes.removed == []


def test_an_outbox_of_the_previous_schema_gains_the_log_and_keeps_its_mail(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    ensure_home(home)
    with closing(sqlite3.connect(home / DB_NAME, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for script in MIGRATIONS[:4]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 4")
        kept = [store_as_released(conn, message(f"old{n}@example.net")) for n in range(3)]
    with Outbox.open(home) as outbox:
        assert [m.id for m in outbox.messages()] == kept
        reader = Reader(outbox.path)
        assert sorted(reader.rows) == kept and reader.since == 0
        outbox.hold([kept[1]])
        added = outbox.add_message(parse_message(message("new@example.net"))).id
        reader.catch_up()
        assert reader.read == 2
        assert reader.rows == reader.store_rows()
        assert sorted(reader.rows) == [*kept, added]
    with closing(sqlite3.connect(home / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 5
