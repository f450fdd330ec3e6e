"""Attempt rows opened a group at a time, and the replies the store keeps with them."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from relay.policy import Verdict
from relay.report import Reply, Stage
from relay.states import RecipientState
from relay.store.outbox import AttemptEnd, AttemptReply, AttemptStart, Outbox
from tests.unit.conftest import enqueue

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_a_group_of_attempts_gets_one_row_each_in_the_order_given(outbox: Outbox) -> None:
    ids = [enqueue(outbox, f"r{n}@example.org") for n in range(5)]
    order = [ids[3], ids[0], ids[4], ids[1]]
    starts = [
        AttemptStart(
            message_id,
            "work",
            "127.0.0.1:25",
            NOW,
            data_completed=[f"r{ids.index(message_id)}@example.org"],
        )
        for message_id in order
    ]
    attempt_ids = outbox.start_attempts(starts)
    with closing(sqlite3.connect(outbox.path)) as conn:
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, message_id, data_completed, accepted, started_at FROM attempts"
            )
        }
        counts = dict(conn.execute("SELECT id, attempts FROM messages"))
    assert sorted(rows) == sorted(attempt_ids)
    for message_id, attempt_id in zip(order, attempt_ids, strict=True):
        assert rows[attempt_id] == (
            message_id,
            1,
            json.dumps([f"r{ids.index(message_id)}@example.org"]),
            "2026-11-24T12:00:00+00:00",
        )
    assert counts == {ids[0]: 1, ids[1]: 1, ids[2]: 0, ids[3]: 1, ids[4]: 1}
    assert [record.id for record in outbox.attempts(ids[3])] == [attempt_ids[0]]


def test_an_attempt_started_before_its_final_dot_is_not_marked(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "r@example.org")
    (attempt_id,) = outbox.start_attempts([AttemptStart(message_id, "work", "h:25", NOW)])
    with closing(sqlite3.connect(outbox.path)) as conn:
        row = conn.execute(
            "SELECT data_completed, accepted FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
    assert row == (0, "[]")


texts = st.text(alphabet=st.characters(codec="utf-8") | st.characters(), max_size=40)

#: ``attempts.replies`` as every release so far wrote it (``json.dumps`` of these objects).
STORED_REPLIES = (
    '[{"address": "b@example.org", "stage": "rcpt", "code": 550, "text": "5.1.1 no such user"},'
    ' {"address": "c@example.org", "stage": "rcpt", "code": 250, "text": "2.1.5 ok"},'
    ' {"address": null, "stage": "mail", "code": 250, "text": "2.1.0 ok"},'
    ' {"address": null, "stage": "end of data", "code": 250, "text": "2.0.0 queued as 1A"}]'
)
REPLIES = (
    AttemptReply("b@example.org", Reply(Stage.RCPT, 550, "5.1.1 no such user")),
    AttemptReply("c@example.org", Reply(Stage.RCPT, 250, "2.1.5 ok")),
    AttemptReply(None, Reply(Stage.MAIL, 250, "2.1.0 ok")),
    AttemptReply(None, Reply(Stage.END_OF_DATA, 250, "2.0.0 queued as 1A")),
)


def _stored_replies(outbox: Outbox, attempt_id: int) -> str:
    with closing(sqlite3.connect(outbox.path)) as conn:
        (text,) = conn.execute(
            "SELECT replies FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
    return str(text)


def test_replies_are_stored_in_the_format_earlier_releases_wrote(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org")
    outbox.claim([message_id])
    (attempt_id,) = outbox.start_attempts([AttemptStart(message_id, "work", "h:25", NOW)])
    verdicts = {"b@example.org": Verdict(RecipientState.FAILED, "550 5.1.1 no such user")}
    outbox.finish_attempt(
        message_id, attempt_id, verdicts, outcome="failed", error=None, next_attempt_at=None,
        replies=REPLIES, now=NOW,
    )  # fmt: skip
    assert _stored_replies(outbox, attempt_id) == STORED_REPLIES
    (record,) = outbox.attempts(message_id)
    assert record.replies == REPLIES


def test_replies_an_earlier_release_stored_read_back_as_records(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org")
    (attempt_id,) = outbox.start_attempts([AttemptStart(message_id, "work", "h:25", NOW)])
    with closing(sqlite3.connect(outbox.path)) as conn, conn:
        conn.execute("UPDATE attempts SET replies = ? WHERE id = ?", (STORED_REPLIES, attempt_id))
    (record,) = outbox.attempts(message_id)
    assert record.replies == REPLIES
    assert record.replies[0].reply.code == 550
    assert record.to_json()["replies"] == json.loads(STORED_REPLIES)


@given(
    st.lists(
        st.builds(
            AttemptReply,
            st.none() | texts,
            st.builds(Reply, st.sampled_from(list(Stage)), st.integers(0, 999), texts),
        ),
        max_size=6,
    )
)
def test_any_reply_record_survives_its_json(replies: list[AttemptReply]) -> None:
    stored = json.dumps([reply.to_json() for reply in replies])
    assert [AttemptReply.from_json(item) for item in json.loads(stored)] == replies


def _settling_steps(outbox: Outbox, recipients: int) -> int:
    """SQLite's steps (in thousands) to settle one message to ``recipients``, each sent."""
    addresses = [f"r{n}@example.org" for n in range(recipients)]
    message_id = enqueue(outbox, *addresses)
    (attempt,) = outbox.start_attempts([AttemptStart(message_id, "work", "mx", NOW)])
    verdicts = {address: Verdict(RecipientState.SENT, "250 ok") for address in addresses}
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0  # go on

    outbox._conn.set_progress_handler(step, 1000)
    try:
        outbox.finish_attempts(
            [
                AttemptEnd(
                    message_id,
                    attempt,
                    verdicts,
                    outcome="sent",
                    error=None,
                    next_attempt_at=None,
                    now=NOW,
                )
            ]
        )
    finally:
        outbox._conn.set_progress_handler(None, 0)
    assert {r.state for r in outbox.get(message_id).recipients} == {RecipientState.SENT}
    return steps[0]


def test_settling_a_message_costs_in_proportion_to_its_recipients(outbox: Outbox) -> None:
    # Each verdict found its row by address, scanning all the message's recipients:
    # 5,000 recipients took seconds, with a window blocked waiting for the commit.
    small = _settling_steps(outbox, 400)
    large = _settling_steps(outbox, 1600)
    assert large < 6 * small  # four times the recipients: not sixteen times the work
