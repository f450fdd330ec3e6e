"""Any number of recipients: in bounded slices, and over a server's per-transaction limit.

A message may have a thousand recipients; a server may take only a hundred
per transaction and answer the rest ``452 4.5.3`` (RFC 5321 section
4.5.3.1.10). Once it has, no further recipient is offered to that
transaction; the rest go in further transactions of the same session, and the
message behind it is not held up.
"""

from __future__ import annotations

import pytest

from relay.relayer import ManagedRelayer
from relay.report import OutgoingMessage
from tests.relayer.messages import message
from tests.relayer.observer import RecordingObserver
from tests.relayer.test_pipelining import PIPELINING, both
from tests.support.fault_server import FaultServer
from tests.support.postfix_sink import postfix_sink


def crowd(message_id: int, count: int) -> OutgoingMessage:
    return message(message_id, *(f"r{n}@example.net" for n in range(count)))


async def test_a_thousand_recipients_reach_smtp_sink_once_each_and_the_next_message_follows() -> (
    None
):
    big, after = crowd(1, 1000), message(2, "after@example.net")
    with postfix_sink() as sink:
        observer = RecordingObserver()
        await ManagedRelayer(sink.account(), None, [big, after], observer).run()
        received = sink.received()
    assert observer.ended == "finished", observer.failure
    # smtp-sink names its files at random: compare in a fixed order.
    assert sorted((m.rcpt_tos for m in received), key=len) == [
        ["after@example.net"],
        list(big.recipients),
    ]
    assert all(reply.code == 250 for reply in observer.replies[1].values())
    for report in observer.reports.values():
        assert report.end_of_data is not None and report.end_of_data.code == 250


@pytest.mark.parametrize("count", [62, 150, 1000])
async def test_many_recipients_go_pipelined_as_in_lock_step(count: int) -> None:
    piped, _ = await both([crowd(1, count), message(2, "after@example.net")])
    assert piped.observer.ended == "finished"
    assert [len(m.rcpt_tos) for m in piped.server.messages] == [count, 1]


async def test_over_a_limit_of_100_a_300_recipient_message_goes_in_three_transactions() -> None:
    big = crowd(1, 300)
    piped, lock = await both([big, message(2, "after@example.net")], rcpt_limit=100)
    for run in (piped, lock):
        observer = run.observer
        assert observer.ended == "finished"
        received = [m.rcpt_tos for m in run.server.messages]
        assert received == [
            list(big.recipients[:100]),
            list(big.recipients[100:200]),
            list(big.recipients[200:]),
            ["after@example.net"],
        ]
        assert observer.started == [1, 1, 1, 2]
        # Each transaction reports the recipients it offered, and hands on the ones
        # over the limit. After the first 452 no further RCPT goes into it: none in
        # lock-step; pipelined, only those already written in the same slice.
        reports = [args[0] for name, args in observer.calls if name == "transaction_finished"]
        offered = [199, 199, 100, 1] if run is piped else [101, 101, 100, 1]
        assert [len(r.recipients) for r in reports] == offered
        assert run.server.verbs().count("RCPT") == sum(offered)
        assert [len(r.continued) for r in reports] == [200, 100, 0, 0]
        assert all(r.end_of_data is not None and r.end_of_data.code == 250 for r in reports)
        assert run.server.verbs().count("RSET") == 0


async def test_a_452_for_every_recipient_is_a_deferral_not_a_loop() -> None:
    async with FaultServer(extensions=PIPELINING, rcpt_limit=0) as server:
        observer = RecordingObserver()
        await ManagedRelayer(server.account(), None, [crowd(1, 3)], observer).run()
    assert observer.started == [1]
    assert observer.reports[1].continued == ()
    assert {reply.code for reply in observer.replies[1].values()} == {452}
    assert server.messages == []
