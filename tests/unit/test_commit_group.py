"""Sessions reaching their final dot together share one commit, and none writes its dot early."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.attempts import AttemptManager, CommitGroup, Settled
from relay.events import Event, EventBus, MessageChanged
from relay.policy import RetryPolicy
from relay.report import Reply, SessionInfo, Stage, TransactionReport
from relay.states import MessageState
from relay.store.database import DB_NAME
from relay.store.outbox import Outbox
from tests.support.flushes import session_in_transaction
from tests.unit.conftest import enqueue

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def session(
    outbox: Outbox, message_id: int, commits: CommitGroup, settled: list[Settled]
) -> AttemptManager:
    return session_in_transaction(outbox, message_id, commits, settled, lambda: NOW)


def durable_completions(path: Path) -> int:
    """What another process would find on disk: attempts marked data-completed."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts WHERE data_completed").fetchone()[0])


def test_final_dot_records_of_four_sessions_share_one_commit_made_before_any_dot(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [enqueue(outbox, f"r{n}@example.org") for n in range(4)]
    commits_made: list[str] = []
    group = CommitGroup(outbox)
    settled: list[Settled] = []
    seen_at_dot: list[int] = []

    async def final_dot(manager: AttemptManager, message_id: int) -> None:
        manager.recipient_replied(
            message_id, f"r{ids.index(message_id)}@example.org", Reply(Stage.RCPT, 250, "ok")
        )
        pending = manager.data_completed(message_id)
        assert pending is not None
        await pending
        # Where the relayer writes the dot: the record must already be on disk.
        seen_at_dot.append(durable_completions(outbox.path.parent / DB_NAME))

    def traced_twin(self: Outbox) -> Outbox:  # the writer thread's connection
        twin = open_twin(self)
        twin._conn.set_trace_callback(
            lambda sql: commits_made.append(sql) if sql.strip().upper() == "COMMIT" else None
        )
        return twin

    open_twin = Outbox.twin
    monkeypatch.setattr(Outbox, "twin", traced_twin)

    async def main() -> None:
        managers = [session(outbox, i, group, settled) for i in ids]
        try:
            await asyncio.gather(*(final_dot(m, i) for m, i in zip(managers, ids, strict=True)))
        finally:
            group.close()

    asyncio.run(main())
    assert commits_made == ["COMMIT"]
    assert seen_at_dot == [4, 4, 4, 4]


def test_a_verdict_waiting_for_a_commit_rides_with_the_next_final_dot_record(
    outbox: Outbox,
) -> None:
    first, second = enqueue(outbox, "b@example.org"), enqueue(outbox, "c@example.org")
    group = CommitGroup(outbox)
    settled: list[Settled] = []

    async def main() -> None:
        manager = AttemptManager(
            outbox,
            outbox.claim([first, second]),
            account="work",
            policy=RetryPolicy(),
            clock=lambda: NOW,
            on_settled=settled.append,
            commits=group,
        )
        manager.session_started(SessionInfo("work", "127.0.0.1", 2525), [first, second])
        for message_id, address in ((first, "b@example.org"), (second, "c@example.org")):
            manager.transaction_started(message_id)
            reply = Reply(Stage.RCPT, 250, "ok")
            manager.recipient_replied(message_id, address, reply)
            pending = manager.data_completed(message_id)
            assert pending is not None
            await pending
            if message_id == second:
                # The first message's verdict was written with this record, then announced.
                assert [s.message.id for s in settled] == [first]
                assert outbox.get(first).state is MessageState.SENT
            manager.transaction_finished(
                TransactionReport(
                    message_id,
                    mail=Reply(Stage.MAIL, 250, "ok"),
                    recipients={address: reply},
                    data=Reply(Stage.DATA, 354, "go"),
                    end_of_data=Reply(Stage.END_OF_DATA, 250, "queued"),
                    data_completed=True,
                )
            )
        manager.session_finished("")
        group.close()  # as a flush ends: what waits is written, the writer thread joined

    asyncio.run(main())
    assert [s.message.state for s in settled] == [MessageState.SENT, MessageState.SENT]


def test_settled_messages_are_published_on_the_managers_bus_once_on_disk(
    outbox: Outbox,
) -> None:
    first, second = enqueue(outbox, "b@example.org"), enqueue(outbox, "c@example.org")
    group = CommitGroup(outbox)
    bus = EventBus()
    heard: list[tuple[int, str, str]] = []

    def on_event(event: Event) -> None:
        if isinstance(event, MessageChanged):
            # What another process reads at that moment: only what is committed.
            with closing(sqlite3.connect(outbox.path)) as conn:
                (stored,) = conn.execute(
                    "SELECT state FROM messages WHERE id = ?", (event.message.id,)
                ).fetchone()
            heard.append((event.message.id, event.message.state.value, stored))

    bus.subscribe(on_event)

    async def main() -> None:
        manager = AttemptManager(
            outbox,
            outbox.claim([first, second]),
            account="work",
            policy=RetryPolicy(),
            clock=lambda: NOW,
            commits=group,
            bus=bus,
        )
        manager.session_started(SessionInfo("work", "127.0.0.1", 2525), [first, second])
        for message_id, address in ((first, "b@example.org"), (second, "c@example.org")):
            manager.transaction_started(message_id)
            reply = Reply(Stage.RCPT, 250, "ok")
            manager.recipient_replied(message_id, address, reply)
            pending = manager.data_completed(message_id)
            assert pending is not None
            await pending
            manager.transaction_finished(
                TransactionReport(
                    message_id,
                    mail=Reply(Stage.MAIL, 250, "ok"),
                    recipients={address: reply},
                    data=Reply(Stage.DATA, 354, "go"),
                    end_of_data=Reply(Stage.END_OF_DATA, 250, "queued"),
                    data_completed=True,
                )
            )
        manager.session_finished("")
        group.close()  # as a flush ends

    asyncio.run(main())
    # The first verdict rode with the second final dot's group commit; the last
    # was written as the session finished (with the group's last commit, when
    # the flush ends). Each was heard once it was on disk.
    assert heard == [(first, "sent", "sent"), (second, "sent", "sent")]
