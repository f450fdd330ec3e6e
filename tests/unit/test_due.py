"""What is due, for whom: a person's flush, ``flush --due`` and the window's automatic sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.errors import OutboxError
from relay.message import ParsedMessage
from relay.policy import Verdict
from relay.states import MessageState, RecipientState
from relay.store.outbox import Outbox
from tests.unit.conftest import enqueue

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
BEFORE, AFTER = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)


def scheduled(outbox: Outbox, when: datetime) -> int:
    raw = b"From: a@example.org\r\nSubject: later\r\n\r\nbody\r\n"
    parsed = ParsedMessage("a@example.org", ("b@example.org",), raw, "later")
    return outbox.add_message(parsed, not_before=when, now=NOW - timedelta(hours=1)).id


def settled(outbox: Outbox, state: RecipientState, next_at: datetime | None = None) -> int:
    message_id = enqueue(outbox, "b@example.org")
    outbox.claim([message_id])
    outbox.finish_attempt(
        message_id, None, {"b@example.org": Verdict(state, "451 4.3.0 later")},
        outcome=str(state), error="451 4.3.0 later", next_attempt_at=next_at,
    )  # fmt: skip
    return message_id


def test_new_mail_is_due_for_a_persons_flush_only(outbox: Outbox) -> None:
    new = enqueue(outbox, "b@example.org")
    assert outbox.due_ids(NOW) == [new]
    assert outbox.due_ids(NOW, unscheduled=False) == []
    assert outbox.waiting() == []


def test_a_scheduled_message_is_due_for_nobody_before_its_time(outbox: Outbox) -> None:
    later = scheduled(outbox, AFTER)
    assert outbox.get(later).state is MessageState.QUEUED
    assert outbox.get(later).next_attempt_at == AFTER
    assert outbox.due_ids(NOW) == outbox.due_ids(NOW, unscheduled=False) == []
    assert outbox.due_ids(AFTER) == outbox.due_ids(AFTER, unscheduled=False) == [later]
    (item,) = outbox.waiting()
    assert (item.message_id, item.due_at) == (later, AFTER)


def test_a_deferred_message_is_due_once_its_back_off_is_over(outbox: Outbox) -> None:
    early, late = (
        settled(outbox, RecipientState.DEFERRED, BEFORE),
        settled(outbox, RecipientState.DEFERRED, AFTER),
    )
    assert outbox.due_ids(NOW, unscheduled=False) == [early]
    assert {(w.message_id, w.due_at) for w in outbox.waiting()} == {(early, BEFORE), (late, AFTER)}


def test_held_uncertain_and_claimed_messages_never_go_by_themselves(outbox: Outbox) -> None:
    held = scheduled(outbox, BEFORE)
    outbox.hold([held])
    settled(outbox, RecipientState.UNCERTAIN)
    claimed = scheduled(outbox, BEFORE)
    outbox.claim([claimed])
    assert outbox.due_ids(NOW, unscheduled=False) == []
    assert outbox.waiting() == []


def test_send_later_moves_a_queued_or_deferred_message_and_refuses_a_sent_one(
    outbox: Outbox,
) -> None:
    new = enqueue(outbox, "b@example.org")
    deferred = settled(outbox, RecipientState.DEFERRED, BEFORE)
    outbox.schedule([new, deferred], AFTER)
    assert [outbox.get(i).next_attempt_at for i in (new, deferred)] == [AFTER, AFTER]
    assert outbox.due_ids(NOW) == []
    sent = settled(outbox, RecipientState.SENT)
    with pytest.raises(OutboxError, match="sent"):
        outbox.schedule([new, sent], NOW)
    assert outbox.get(new).next_attempt_at == AFTER  # all or nothing


def test_a_schema_3_outbox_gains_account_pauses_and_keeps_its_scheduled_mail(
    tmp_path: Path,
) -> None:
    import sqlite3

    from relay.home import ensure_home
    from relay.store.database import DB_NAME, MIGRATIONS, to_text

    home = tmp_path / "old"
    ensure_home(home)
    conn = sqlite3.connect(home / DB_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for script in MIGRATIONS[:3]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 3")
        raw = b"From: a@example.org\r\nSubject: kept\r\n\r\nbody\r\n"
        # As that release stored it (today's insert_message also writes schema 5's log).
        conn.execute(
            "INSERT INTO messages (id, created_at, sender, subject, size, state,"
            " next_attempt_at) VALUES (1, ?, 'a@example.org', 'kept', ?, 'queued', ?)",
            (to_text(NOW), len(raw), to_text(AFTER)),
        )
        conn.execute("INSERT INTO bodies (message_id, raw) VALUES (1, ?)", (raw,))
        conn.execute(
            "INSERT INTO recipients (message_id, position, address, state)"
            " VALUES (1, 0, 'b@example.org', 'pending')"
        )
    finally:
        conn.close()
    with Outbox.open(home) as outbox:
        (kept,) = outbox.waiting()
        assert kept.due_at == AFTER
        assert outbox.account_pauses() == {}  # the table of schema 4 is there
