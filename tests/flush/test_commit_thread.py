"""The flush's shared commits are synced on a writer thread, and no flush leaves it running.

The event loop hands a commit's rows to the thread and goes on (a window
repaints while SQLite waits and syncs); what the commit holds is announced,
and the final dot leaves, only once it is durable. However a flush ends --
all sent, cancelled, the store locked by another process, the disk full --
``run()`` returns or raises only after the thread has been joined.

The engine (``relay.flush.RelayingManager``) runs in the test's loop against
the project's scripted SMTP server; the faults are real: a second process
holding SQLite's write lock, a full tmpfs (the fixtures of
``test_flush_store_errors.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.attempts import WRITER_THREAD, CommitGroup, Settled
from relay.errors import StoreFailed
from relay.events import AttemptStarted, Event, EventBus, PhaseChanged
from relay.report import Reply, Stage
from relay.states import MessageState, Phase
from relay.store.outbox import Outbox
from tests.flush.test_flush_store_errors import disk_full, small_disk  # noqa: F401
from tests.support.fault_server import SILENCE, FaultServer
from tests.support.flushes import flush_through, queue_notes, session_in_transaction
from tests.support.store_lock import write_lock_held

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WAIT_S = 30.0


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WRITER_THREAD)]


@pytest.fixture
def writers_opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The threads in which a writer's connection was opened (``Outbox.twin``)."""
    opened: list[str] = []
    open_twin = Outbox.twin

    def twin(self: Outbox) -> Outbox:
        opened.append(threading.current_thread().name)
        return open_twin(self)

    monkeypatch.setattr(Outbox, "twin", twin)
    yield opened
    assert writer_threads() == []


def at_each_final_dot(act: Callable[[], None]) -> EventBus:
    """A bus that calls ``act`` whenever a session has sent a final dot (awaits its verdict)."""
    bus = EventBus()
    bus.subscribe(
        lambda event: (
            act()
            if isinstance(event, PhaseChanged) and event.phase is Phase.AWAITING_VERDICT
            else None
        )
    )
    return bus


def test_a_flush_that_sends_everything_joins_its_writer_thread(
    tmp_path: Path, writers_opened: list[str]
) -> None:
    asyncio.run(all_sent(tmp_path, writers_opened))


async def all_sent(tmp_path: Path, writers_opened: list[str]) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, 6)
    seen_during: list[int] = []
    bus = at_each_final_dot(lambda: seen_during.append(len(writer_threads())))
    async with FaultServer() as server:
        result = await flush_through(outbox, server.account(max_connections=2), bus=bus).run()
    assert [s.message.state for s in result.settled] == [MessageState.SENT] * 6
    assert [outbox.get(i).state for i in ids] == [MessageState.SENT] * 6
    # The final dots' records were committed in the writer thread, alive while they left.
    assert writers_opened == [WRITER_THREAD]
    assert seen_during and all(n == 1 for n in seen_during)
    assert writer_threads() == []
    outbox.close()


def test_a_cancelled_flush_joins_its_writer_thread(
    tmp_path: Path, writers_opened: list[str]
) -> None:
    asyncio.run(cancelled(tmp_path, writers_opened))


async def cancelled(tmp_path: Path, writers_opened: list[str]) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, 2)
    awaiting = asyncio.Event()
    bus = at_each_final_dot(awaiting.set)
    async with FaultServer(end_of_data=SILENCE) as server:
        flush = asyncio.ensure_future(
            flush_through(outbox, server.account(data_timeout_s=60.0), bus=bus).run()
        )
        await asyncio.wait_for(awaiting.wait(), WAIT_S)  # past a final dot: the writer ran
        assert len(writer_threads()) == 1
        flush.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flush
    assert writers_opened == [WRITER_THREAD]
    assert writer_threads() == []
    assert outbox.get(ids[0]).state is not MessageState.SENT  # no verdict came
    outbox.close()


def filled(db: Path) -> AbstractContextManager[None]:
    """The disk under ``db`` full (``disk_full`` of ``test_flush_store_errors.py``)."""
    return disk_full(db, 0)


def store_fault_strikes_at_first_transaction(
    outbox: Outbox,
    bus: EventBus,
    fault: Callable[[Path], AbstractContextManager[None]],
    stack: ExitStack,
) -> None:
    """``fault`` takes hold when the first transaction starts (claimed, before its dot)."""

    struck: list[Path] = []

    def strike(event: Event) -> None:
        if isinstance(event, AttemptStarted) and not struck:
            struck.append(outbox.path)
            stack.enter_context(fault(outbox.path))

    bus.subscribe(strike)


@pytest.mark.parametrize("fault", ["locked", "full"])
def test_a_flush_ended_by_its_store_joins_its_writer_thread_and_says_why(
    tmp_path: Path, request: pytest.FixtureRequest, writers_opened: list[str], fault: str
) -> None:
    strike: Callable[[Path], AbstractContextManager[None]] = write_lock_held
    home, reason, exit_code = tmp_path / "home", "database is locked", 75
    if fault == "full":
        home = request.getfixturevalue("small_disk") / "home"
        strike, reason, exit_code = filled, "database or disk is full", 74
    home.mkdir(mode=0o700)
    asyncio.run(store_failed(home, strike, reason, exit_code, writers_opened))


async def store_failed(
    home: Path,
    strike: Callable[[Path], AbstractContextManager[None]],
    reason: str,
    exit_code: int,
    writers_opened: list[str],
) -> None:
    outbox = Outbox.open(home, busy_timeout_s=0.5)
    ids = queue_notes(outbox, 3)
    bus = EventBus()
    with ExitStack() as stack:
        store_fault_strikes_at_first_transaction(outbox, bus, strike, stack)
        async with FaultServer() as server:
            with pytest.raises(StoreFailed) as raised:
                await flush_through(outbox, server.account(max_connections=1), bus=bus).run()
            # No final dot left without its record.
            assert [m for m in server.messages if m.complete] == []
    assert reason in str(raised.value)
    assert raised.value.exit_code == exit_code  # 75 busy, 74 otherwise
    assert writers_opened == [WRITER_THREAD]  # the failed commit was the writer's
    assert writer_threads() == []
    # Nothing was lost: the next flush sends every message once.
    async with FaultServer() as server:
        await flush_through(outbox, server.account()).run()
        assert len(server.messages) == 3
    assert [outbox.get(i).state for i in ids] == [MessageState.SENT] * 3
    outbox.close()


def test_the_loop_runs_while_a_commit_waits_for_another_process(
    tmp_path: Path, writers_opened: list[str]
) -> None:
    """A slow commit -- here another process holds SQLite's write lock -- stalls no loop.

    Made on the loop, the commit would block it in SQLite's busy handler
    until the lock came free or the busy timeout passed; in the writer
    thread, a callback the loop was given meanwhile runs while the commit
    waits, and the final dot's future is done only once the record is on disk.
    """
    outbox = Outbox.open(tmp_path / "home", busy_timeout_s=20.0)
    (message_id,) = queue_notes(outbox, 1)
    group = CommitGroup(outbox)
    settled: list[Settled] = []

    async def main() -> None:
        manager = session_in_transaction(outbox, message_id, group, settled, lambda: NOW)
        manager.recipient_replied(message_id, "r0@example.net", Reply(Stage.RCPT, 250, "ok"))
        try:
            with write_lock_held(outbox.path):
                recorded = manager.data_completed(message_id)
                assert isinstance(recorded, asyncio.Future)
                for _ in range(100):  # a few loop turns: the group gathers, then hands over
                    if group.committing:
                        break
                    await asyncio.sleep(0)
                assert group.committing
                ran = asyncio.Event()
                asyncio.get_running_loop().call_soon(ran.set)
                await asyncio.wait_for(ran.wait(), WAIT_S)
                assert not recorded.done()  # the loop ran; the commit still waits
                assert durable_final_dots(outbox.path) == 0
            await asyncio.wait_for(recorded, WAIT_S)  # the lock is free: it commits
            assert durable_final_dots(outbox.path) == 1
        finally:
            group.close()

    try:
        asyncio.run(main())
    finally:
        outbox.close()
    assert writers_opened == [WRITER_THREAD]


def durable_final_dots(db: Path) -> int:
    """What another process finds on disk: attempts whose final dot was recorded."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts WHERE data_completed").fetchone()[0])
