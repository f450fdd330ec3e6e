"""An attempt manager whose flush failed writes nothing more; a grouped write that fails is heard.

What a flush that ends on an error relies on (``relay.flush``): after
``abandon()`` the store is left as a kill would leave it, and the next
start's recovery settles the rest; a settlement written later by a timer
reports its failure to whoever runs the session instead of the event loop's log.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest

from relay.attempts import Settled, recover_interrupted
from relay.report import FailureKind, Reply, SessionFailure, Stage, TransactionReport
from relay.states import MessageState
from relay.store.outbox import Outbox
from tests.support.flushes import claimed_session
from tests.unit.conftest import enqueue

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def accepted(message_id: int, address: str) -> TransactionReport:
    ok = Reply(Stage.RCPT, 250, "ok")
    return TransactionReport(
        message_id,
        mail=Reply(Stage.MAIL, 250, "ok"),
        recipients={address: ok},
        data=Reply(Stage.DATA, 354, "go"),
        end_of_data=Reply(Stage.END_OF_DATA, 250, "queued"),
        data_completed=True,
    )


def test_an_abandoned_manager_writes_nothing_and_no_final_dot_leaves(outbox: Outbox) -> None:
    first, second, third = (enqueue(outbox, f"{n}@example.net") for n in "abc")
    settled: list[Settled] = []

    async def flush_that_fails() -> None:
        m = claimed_session(outbox, [first, second, third], lambda: NOW, on_settled=settled.append)
        assert m.transaction_may_start(first) is True
        m.transaction_started(first)
        m.recipient_replied(first, "a@example.net", Reply(Stage.RCPT, 250, "ok"))
        assert m.data_completed(first) is None  # on disk: the dot may leave
        m.transaction_finished(accepted(first, "a@example.net"))  # waits for a commit
        assert m.transaction_may_start(second) is True
        m.transaction_started(second)
        m.abandon()  # the flush failed elsewhere
        with pytest.raises(asyncio.CancelledError):
            m.data_completed(second)  # this dot must not leave
        m.transaction_finished(accepted(second, "b@example.net"))
        m.session_failed(SessionFailure(FailureKind.DROPPED, "cancelled"), [second], "")
        m.session_finished("")
        m.write_now()

    asyncio.run(flush_that_fails())
    assert settled == []  # nobody was told of an outcome that was not written
    assert [outbox.get(i).state for i in (first, second, third)] == [MessageState.SENDING] * 3

    # What the next start makes of it: the dot that left is in doubt, the one under
    # way owed, and the one whose turn never came untried, in its place.
    recover_interrupted(outbox, lambda: NOW)
    assert outbox.get(first).state is MessageState.UNCERTAIN
    assert outbox.get(second).state is MessageState.DEFERRED
    assert outbox.get(third).state is MessageState.QUEUED
    assert outbox.get(second).next_attempt_at == NOW  # due at once


def test_a_grouped_write_that_fails_is_told_to_the_session_not_the_loop(outbox: Outbox) -> None:
    message = enqueue(outbox, "a@example.net")
    failures: list[Exception] = []

    async def settle_under_a_lock() -> None:
        told = asyncio.Event()

        def write_failed(exc: Exception) -> None:
            failures.append(exc)
            told.set()

        m = claimed_session(outbox, [message], lambda: NOW, on_write_failed=write_failed)
        m.transaction_started(message)
        m.data_completed(message)
        other = sqlite3.connect(outbox.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # someone else holds the write lock
            with outbox.waiting_at_most(0):
                m.transaction_finished(accepted(message, "a@example.net"))
                await asyncio.wait_for(told.wait(), timeout=10)
            other.execute("ROLLBACK")
        finally:
            other.close()

    asyncio.run(settle_under_a_lock())
    (failure,) = failures
    assert isinstance(failure, sqlite3.OperationalError)
    assert "locked" in str(failure)
    assert outbox.get(message).state is MessageState.SENDING  # nothing half-written
