"""Byte progress during DATA: often enough for a real progress bar, and honest about stalls."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from relay.accounts import Account, Security
from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage
from relay.smtp.session import ServerOffer, Session
from relay.smtp.transcript import Transcript
from tests.relayer.messages import large_body, message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import FaultServer
from tests.support.smtp_servers import smtp_server


async def relay(account: Account, *messages: OutgoingMessage) -> RecordingObserver:
    observer = RecordingObserver()
    await ManagedRelayer(account, None, list(messages), observer).run()
    return observer


async def test_progress_comes_at_least_every_64_kib_and_ends_at_the_total() -> None:
    body = large_body(4 * 1024 * 1024)
    async with smtp_server() as server:
        observer = await relay(server.account(), message(1, "a@example.net", body=body))
    sent = observer.sent_bytes(1)
    assert sent == sorted(sent)
    assert sent[-1] == len(body)
    steps = [later - earlier for earlier, later in zip([0, *sent], sent, strict=False)]
    assert max(steps) <= 64 * 1024
    assert {total for _, _, total in observer.progress[1]} == {len(body)}
    assert observer.reports[1].sent_bytes == len(body)
    assert [r.body for r in server.received] == [body]


async def test_progress_keeps_coming_four_times_a_second_while_the_server_stalls() -> None:
    body = large_body(32 * 1024 * 1024)  # more than the socket buffers: the stall is felt
    async with FaultServer(stall_data=(64 * 1024, 1.5)) as server:
        observer = await relay(server.account(), message(1, "a@example.net", body=body))
    assert observer.reports[1].end_of_data is not None
    assert server.messages[0].body == body
    times = [at for at, _, _ in observer.progress[1]]
    assert times[-1] - times[0] >= 1.5
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) < 0.45  # PROGRESS_INTERVAL_S is 0.25 s; slack for a busy machine


async def test_a_server_that_stops_taking_data_longer_than_the_timeout_ends_the_session() -> None:
    body = large_body(32 * 1024 * 1024)
    async with FaultServer(stall_data=(64 * 1024, 30.0)) as server:
        observer = await relay(
            server.account(command_timeout_s=0.5), message(1, "a@example.net", body=body)
        )
    report = observer.reports[1]
    assert not report.data_completed and observer.completed == []
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.TIMEOUT
    assert "took no message data for 0.5 s" in report.connection_error.text
    assert observer.failure is not None and observer.failure.kind is FailureKind.TIMEOUT
    assert 0 < report.sent_bytes < len(body)
    assert [m.complete for m in server.messages] == []


class KernelTakesEverything:
    """A wire whose every write is taken at once, so the session never waits to write.

    A real socket cannot promise that for 32 MB (its buffers fill, and the
    waiting lets the loop turn anyway): this stands in for the wire only.
    """

    closed = False
    buffered_bytes = 0

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes, *, replies: int = 0) -> None:
        self.written += len(data)

    async def wait_writable(self, timeout_s: float) -> bool:
        return True


async def test_the_application_runs_while_the_kernel_takes_every_chunk_at_once() -> None:
    body = large_body(32 * 1024 * 1024)
    wire: Any = KernelTakesEverything()
    offer = ServerOffer("127.0.0.1", 25, "127.0.0.1", "220 ready", esmtp=True)
    account = Account(name="a", host="127.0.0.1", port=25, security=Security.NONE)
    smtp: Any = None  # not used while sending data
    session = Session(account=account, offer=offer, transcript=Transcript(), smtp=smtp, wire=wire)
    turns = 0
    sending = True

    async def another_task() -> None:
        nonlocal turns
        while sending:
            turns += 1
            await asyncio.sleep(0)  # one turn of the loop, and again

    task = asyncio.create_task(another_task())
    await asyncio.sleep(0)
    before = turns
    await session.send_data(body, progressed=lambda sent: None, completing=lambda: None)
    during = turns - before
    sending = False
    await task
    assert wire.written >= len(body)
    assert during >= 1  # 512 chunks: the loop turned at least every LOOP_TURN_S
