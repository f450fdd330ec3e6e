"""A group commit waits (briefly) for every session still in it, so that sessions share commits.

Left to themselves, four sessions with one commit in flight settle into two
groups taking turns; ``CommitGroup`` holds a commit until each of its
members has joined, at most ``hold_s``, and stops holding for a while once a
wait ran out. Real store, real writer thread; the hold is given per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime

import pytest

from relay.attempts import AttemptManager, CommitGroup
from relay.report import Reply, Stage
from relay.store.outbox import Outbox
from tests.support.flushes import claimed_session
from tests.unit.conftest import enqueue

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
#: Long enough that a test waiting this long would have failed by its own timeout.
FOREVER_S = 60.0


@pytest.fixture
def commits_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every COMMIT the writer thread's connection makes, in order."""
    made: list[str] = []
    open_twin = Outbox.twin

    def traced_twin(self: Outbox) -> Outbox:
        twin = open_twin(self)
        twin._conn.set_trace_callback(
            lambda sql: made.append(sql) if sql.strip().upper() == "COMMIT" else None
        )
        return twin

    monkeypatch.setattr(Outbox, "twin", traced_twin)
    yield made


def sessions(outbox: Outbox, group: CommitGroup, count: int, each: int) -> list[AttemptManager]:
    """``count`` sessions of the group, each with ``each`` messages claimed."""
    return [
        claimed_session(
            outbox,
            [enqueue(outbox, "b@example.org") for _ in range(each)],
            lambda: NOW,
            commits=group,
        )
        for _ in range(count)
    ]


def final_dot(manager: AttemptManager, message_id: int) -> Awaitable[None]:
    """``message_id``'s transaction under way, its recipient taken: its dot's record asked for."""
    manager.transaction_started(message_id)
    manager.recipient_replied(message_id, "b@example.org", Reply(Stage.RCPT, 250, "ok"))
    pending = manager.data_completed(message_id)
    assert pending is not None
    return pending


def claimed(manager: AttemptManager) -> list[int]:
    return list(manager._owed)


async def turns(count: int) -> None:
    """Let the event loop turn ``count`` times (no time passes by design)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def one_waiting(
    outbox: Outbox, group: CommitGroup, each: int
) -> tuple[AttemptManager, AttemptManager, Awaitable[None]]:
    """Two members whose first dots shared a commit, and the first one's next dot, whose
    commit now waits for the other: (first, other, the record of that dot)."""
    steady, other = sessions(outbox, group, 2, each)
    await asyncio.gather(final_dot(steady, claimed(steady)[0]), final_dot(other, claimed(other)[0]))
    late = final_dot(steady, claimed(steady)[1])
    await turns(5)
    assert group.holding  # waiting for ``other``
    return steady, other, late


def test_sessions_reaching_their_dots_turns_apart_still_share_one_commit(
    outbox: Outbox, commits_made: list[str]
) -> None:
    group = CommitGroup(outbox, hold_s=FOREVER_S)

    async def main() -> int:
        managers = sessions(outbox, group, 4, 2)
        # The first dots come together: all four sessions are members from now on.
        await asyncio.gather(*(final_dot(m, claimed(m)[0]) for m in managers))
        first_round = len(commits_made)
        pending = []
        for manager in managers:  # the second dots, five loop turns apart
            pending.append(final_dot(manager, claimed(manager)[1]))
            await turns(5)
        await asyncio.wait_for(asyncio.gather(*pending), 10)
        return len(commits_made) - first_round

    try:
        second_round = asyncio.run(main())
    finally:
        group.close()
    assert second_round == 1


def test_a_member_that_does_not_come_holds_a_commit_no_longer_than_the_hold(
    outbox: Outbox, commits_made: list[str]
) -> None:
    group = CommitGroup(outbox, hold_s=0.5)

    async def main() -> None:
        steady, _absent, late = await one_waiting(outbox, group, 3)  # it never comes
        await asyncio.wait_for(late, 10)
        # The wait ran out: the next commit goes without waiting for ``absent``.
        again = asyncio.ensure_future(final_dot(steady, claimed(steady)[2]))
        held = False
        while not again.done():
            held = held or group.holding
            await asyncio.sleep(0)
        assert not held

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        group.close()


def test_a_commit_waiting_for_a_member_goes_as_soon_as_that_session_ends(
    outbox: Outbox, commits_made: list[str]
) -> None:
    group = CommitGroup(outbox, hold_s=FOREVER_S)

    async def main() -> None:
        _steady, ending, late = await one_waiting(outbox, group, 2)
        ending.session_finished("")  # its second message never started: handed back
        await asyncio.wait_for(late, 10)

    try:
        asyncio.run(main())
    finally:
        group.close()
