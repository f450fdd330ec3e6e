"""Reply timeouts when one timer serves every read of a session (relay.smtp.wire.Wire).

A session's reads arm no timer each: one timer per connection fires at the
earliest deadline still wanted and moves on when a later read is waiting.
These check both directions: a long wait after short ones is not cut at the
short deadline, and a short wait after long ones is not let run to the long one.
"""

from __future__ import annotations

import time

from relay.accounts import Account
from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage
from tests.relayer.messages import message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import Faults, FaultServer, Late

PIPELINING = (*Faults().extensions, "PIPELINING")


async def relay(account: Account, *messages: OutgoingMessage) -> RecordingObserver:
    observer = RecordingObserver()
    await ManagedRelayer(account, None, list(messages), observer).run()
    return observer


async def test_a_verdict_slower_than_the_command_timeout_but_within_the_data_timeout_is_read() -> (
    None
):
    async with FaultServer(end_of_data=Late(0.8, "250 2.0.0 Queued at last")) as server:
        observer = await relay(
            server.account(command_timeout_s=0.3, data_timeout_s=5.0),
            message(1, "a@example.net"),
            message(2, "b@example.net"),
        )
    assert observer.ended == "finished"
    for message_id in (1, 2):
        verdict = observer.reports[message_id].end_of_data
        assert verdict is not None and str(verdict) == "250 2.0.0 Queued at last"


async def test_a_pipelined_verdict_within_the_data_timeout_is_read() -> None:
    async with FaultServer(
        extensions=PIPELINING, end_of_data=Late(0.8, "250 2.0.0 Queued at last")
    ) as server:
        observer = await relay(
            server.account(command_timeout_s=0.3, data_timeout_s=5.0),
            message(1, "a@example.net"),
            message(2, "b@example.net"),
        )
    assert observer.ended == "finished"
    assert server.pipelined > 0
    assert [observer.reports[i].end_of_data is not None for i in (1, 2)] == [True, True]


async def test_a_slow_reply_after_a_long_wait_times_out_at_its_own_deadline() -> None:
    faults = {"mail": ["250 2.1.0 OK", Late(3.0, "250 2.1.0 OK, finally")]}
    async with FaultServer(**faults) as server:
        started = time.monotonic()
        observer = await relay(
            server.account(command_timeout_s=0.3, data_timeout_s=10.0),
            message(1, "a@example.net"),
            message(2, "b@example.net"),
        )
        elapsed_s = time.monotonic() - started
    assert observer.reports[1].end_of_data is not None
    assert observer.failure is not None and observer.failure.kind is FailureKind.TIMEOUT
    assert observer.failure.text == "127.0.0.1 did not reply to MAIL FROM within 0.3 s"
    assert elapsed_s < 2.5  # not the 3 s of the late reply, nor the 10 s of the data timeout
