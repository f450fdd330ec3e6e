"""Byte progress during DATA: often enough for a real progress bar, and honest about stalls."""

from __future__ import annotations

import itertools

from relay.accounts import Account
from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage
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
