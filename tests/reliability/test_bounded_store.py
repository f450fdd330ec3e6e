"""A bounded store: the write-ahead log restarts during a flush and empties when idle."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from relay.flush import RelayingManager
from relay.message import parse_message
from relay.policy import RetryPolicy
from relay.states import MessageState
from relay.store.outbox import Outbox, utc_now
from tests.support.fault_server import FaultServer

RESTART_BYTES = 256 * 1024


def add_messages(outbox: Outbox, count: int) -> None:
    with outbox.batch():
        for n in range(count):
            raw = b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: n%d\r\n\r\nHi.\r\n" % n
            outbox.add_message(parse_message(raw))


def wal_bytes(outbox: Outbox) -> int:
    try:
        return os.path.getsize(f"{outbox.path}-wal")
    except FileNotFoundError:
        return 0


def test_the_log_restarts_during_a_flush_and_is_emptied_when_idle(tmp_path: Path) -> None:
    count = 600  # 8-12 MB of log if it never restarted (14-20 KB a message)
    with Outbox.open(tmp_path / "home") as outbox:
        add_messages(outbox, count)
        checkpointer = outbox.checkpoint_in_background(restart_bytes=RESTART_BYTES, idle_s=0.2)
        peaks: list[int] = []

        async def flush() -> None:
            async with FaultServer() as server:
                manager = RelayingManager(
                    outbox,
                    choose_account=lambda _: server.account(max_connections=4),
                    password_for=lambda _: None,
                    policy=RetryPolicy(),
                    clock=utc_now,
                    on_settled=lambda _: peaks.append(wal_bytes(outbox)),
                )
                await manager.run()

        asyncio.run(flush())
        assert outbox.counts()[MessageState.SENT] == count
        assert checkpointer.restarts >= 1
        # Bounded by the restart threshold, the file's cut-back size after a
        # restart, and what the flush commits before the checkpointer's thread
        # gets its turn (on a loaded machine, a few MB).
        assert max(peaks) < 5 * 1024 * 1024, max(peaks)
        # Idle: a TRUNCATE checkpoint leaves an empty log.
        assert checkpointer.truncated(checkpointer.truncations + 1, timeout_s=30)
        assert wal_bytes(outbox) == 0
