"""A connection's batch is claimed a page at a time, the event loop running between, and still once.

The engine alone (``relay.flush.RelayingManager``) in the test's loop, with a
real SMTP server on loopback and an account that takes thousands of messages
per connection (``max_messages_per_connection``): claiming them all in one
transaction froze the loop for as long. A task that counts the loop's turns
shows that other work ran between the pages; the server shows that every
message went exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from relay.events import Event, MessageChanged, MessageSnapshot
from relay.flush import CLAIM_PAGE, SELECT_PAGE, RelayingManager
from relay.policy import RetryPolicy
from relay.states import MessageState
from relay.store.outbox import Outbox, utc_now
from tests.support.fault_server import FaultServer
from tests.support.flushes import flush_through, queue_notes

COUNT = 2 * CLAIM_PAGE + 7  # three pages, the last one short


class Turns:
    """Counts the event loop's turns while it runs (one ``sleep(0)`` each)."""

    def __init__(self) -> None:
        self.count = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_a_large_batch_is_claimed_a_page_at_a_time_and_every_message_sent_once(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, COUNT)
    # The loop turn at which each message was claimed (its "sending" event).
    claimed_at: dict[int, int] = {}
    turns = Turns()

    def note_claim(event: Event) -> None:
        if isinstance(event, MessageChanged) and event.message.state is MessageState.SENDING:
            claimed_at.setdefault(event.message.id, turns.count)

    async with FaultServer() as server:
        account = server.account(max_connections=1, max_messages_per_connection=5000)
        manager = flush_through(outbox, account)
        manager.bus.subscribe(note_claim)
        result = await manager.run()
    await turns.stop()
    assert result.errors == []
    assert sorted(claimed_at) == ids
    # Claimed in three transactions, the loop turning between them, in queue order.
    pages = [claimed_at[i] for i in ids]
    assert len(set(pages)) == 3 and pages == sorted(pages)
    # Every message once, in queue order; all sent.
    assert [m.rcpt_tos for m in server.messages] == [[f"r{n}@example.net"] for n in range(COUNT)]
    assert all(outbox.get(i).state is MessageState.SENT for i in ids)
    outbox.close()


async def test_a_flush_stopped_while_claiming_claims_no_more_and_hands_back_what_it_claimed(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, COUNT)
    async with FaultServer() as server:
        account = server.account(max_connections=1, max_messages_per_connection=5000)
        manager = flush_through(outbox, account)
        claimed: list[int] = []

        def stop_after_the_first_page(event: Event) -> None:
            if isinstance(event, MessageChanged) and event.message.state is MessageState.SENDING:
                claimed.append(event.message.id)
                if len(claimed) == CLAIM_PAGE:
                    manager.stop()

        manager.bus.subscribe(stop_after_the_first_page)
        await manager.run()
    assert claimed == ids[:CLAIM_PAGE]  # no second page
    assert server.messages == []
    # Nothing stays claimed; every message is queued as before, no attempt counted.
    assert outbox.waiting_ids() == set()
    assert {outbox.get(i).state for i in ids} == {MessageState.QUEUED}
    assert {outbox.get(i).attempts for i in ids} == {0}
    outbox.close()


async def test_a_timer_due_while_the_due_messages_are_read_runs_before_their_next_page(
    tmp_path: Path,
) -> None:
    """Between two pages of the due messages the flush waits on a timer, not the next
    turn: a timer that came due meanwhile (a window's repaint, its 10 ms tick) runs
    first, instead of after the page that was already queued in front of it."""
    outbox = Outbox.open(tmp_path / "home")
    queue_notes(outbox, 2 * SELECT_PAGE + 1)
    loop = asyncio.get_running_loop()
    pages_read: list[int] = []
    pages_when_timer_ran: list[int] = []
    snapshots = outbox.snapshots

    def counted(ids: Sequence[int]) -> list[MessageSnapshot]:
        pages_read.append(len(ids))
        if len(pages_read) == 1:  # a timer comes due while the first page is read
            loop.call_later(0, lambda: pages_when_timer_ran.append(len(pages_read)))
        return snapshots(ids)

    outbox.snapshots = counted  # type: ignore[method-assign,assignment]
    manager = RelayingManager(
        outbox,
        choose_account=lambda _message: None,  # type: ignore[arg-type,return-value]
        password_for=lambda _account: None,
        policy=RetryPolicy(),
        clock=utc_now,
    )
    selected = await manager._select(None, utc_now())
    assert len(selected) == 2 * SELECT_PAGE + 1
    assert pages_read == [SELECT_PAGE, SELECT_PAGE, 1]
    assert pages_when_timer_ran == [1]
    outbox.close()
