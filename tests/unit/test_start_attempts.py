"""Attempt rows opened a group at a time, and the JSON the store writes for them."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from relay.store.outbox import AttemptStart, Outbox, _json_replies, _json_strings
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


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "address": st.none() | texts,
                "stage": st.sampled_from(["mail", "rcpt", "data", "end of data"]),
                "code": st.integers(0, 999),
                "text": texts,
            }
        ),
        max_size=6,
    )
)
def test_replies_are_written_exactly_as_json_dumps_writes_them(
    replies: list[dict[str, object]],
) -> None:
    assert _json_replies(replies) == json.dumps(replies)


@given(st.lists(texts, max_size=6))
def test_accepted_addresses_are_written_exactly_as_json_dumps_writes_them(
    addresses: list[str],
) -> None:
    assert _json_strings(addresses) == json.dumps(addresses)


def test_replies_of_another_shape_still_go_through_json_dumps() -> None:
    odd: list[dict[str, object]] = [{"address": None, "stage": "rcpt", "code": True, "text": "x"}]
    assert _json_replies(odd) == json.dumps(odd)
    extra: list[dict[str, object]] = [{"stage": "rcpt", "code": 250, "text": "x", "why": [1]}]
    assert _json_replies(extra) == json.dumps(extra)
