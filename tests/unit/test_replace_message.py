"""Replacing a held or queued message with an edited copy: all in one transaction, or nothing."""

from __future__ import annotations

import pytest

from relay.errors import NoSuchMessage, OutboxError
from relay.message import ParsedMessage
from relay.policy import Verdict
from relay.states import MessageState, RecipientState
from relay.store.outbox import Outbox
from tests.unit.conftest import enqueue

EDITED = ParsedMessage(
    "me@example.org", ("c@example.org", "d@example.org"),
    b"From: me@example.org\r\nSubject: edited\r\n\r\nnew body\r\n", "edited",
)  # fmt: skip


def test_a_queued_message_takes_the_copys_body_envelope_and_recipients(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org")
    snapshot = outbox.replace_message(message_id, EDITED)
    assert snapshot.id == message_id and snapshot.state is MessageState.QUEUED
    assert (snapshot.sender, snapshot.subject, snapshot.size) == (
        "me@example.org",
        "edited",
        len(EDITED.raw),
    )
    assert [(r.address, r.state) for r in snapshot.recipients] == [
        ("c@example.org", RecipientState.PENDING),
        ("d@example.org", RecipientState.PENDING),
    ]
    assert outbox.raw(message_id) == EDITED.raw


def test_a_held_message_stays_held(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org")
    outbox.hold([message_id])
    assert outbox.replace_message(message_id, EDITED).state is MessageState.HELD


def refused(outbox: Outbox, message_id: int) -> None:
    before = (outbox.get(message_id), outbox.raw(message_id))
    with pytest.raises(OutboxError):
        outbox.replace_message(message_id, EDITED)
    assert (outbox.get(message_id), outbox.raw(message_id)) == before


def test_a_claimed_or_deferred_message_is_not_replaced(outbox: Outbox) -> None:
    claimed = enqueue(outbox, "b@example.org")
    outbox.claim([claimed])
    refused(outbox, claimed)

    deferred = enqueue(outbox, "b@example.org")
    outbox.claim([deferred])
    outbox.finish_attempt(
        deferred, None, {"b@example.org": Verdict(RecipientState.DEFERRED, "451 later")},
        outcome="deferred", error="451 later", next_attempt_at=None,
    )  # fmt: skip
    assert outbox.get(deferred).state is MessageState.DEFERRED
    refused(outbox, deferred)


def test_a_held_message_some_recipients_already_have_is_not_replaced(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org", "c@example.org")
    outbox.claim([message_id])
    outbox.finish_attempt(
        message_id, None,
        {"b@example.org": Verdict(RecipientState.SENT, "250 ok"),
         "c@example.org": Verdict(RecipientState.DEFERRED, "451 later")},
        outcome="deferred", error="451 later", next_attempt_at=None,
    )  # fmt: skip
    outbox.hold([message_id])
    assert outbox.get(message_id).state is MessageState.HELD
    refused(outbox, message_id)


def test_a_deleted_message_is_not_there_to_replace(outbox: Outbox) -> None:
    message_id = enqueue(outbox, "b@example.org")
    outbox.delete([message_id])
    with pytest.raises(NoSuchMessage):
        outbox.replace_message(message_id, EDITED)
