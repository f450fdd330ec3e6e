"""Replies that disagree with themselves or with the dialogue: one behaviour, never ``sent``.

A 3xx other than 354 to DATA invites nothing we know: the session ends,
pipelined or not. A multi-line reply whose lines carry different codes says
two things at once (RFC 5321 section 4.2.1 allows one code a reply): a
protocol error, and after the final dot the server may have the message, so
its recipients are *uncertain*, never *sent*.
"""

from __future__ import annotations

import pytest

from relay.policy import recipient_verdicts
from relay.relayer import ManagedRelayer
from relay.report import FailureKind
from relay.states import RecipientState
from tests.relayer.messages import message
from tests.relayer.observer import RecordingObserver
from tests.relayer.test_pipelining import PIPELINING, both, three
from tests.support.fault_server import FaultServer, Raw


@pytest.mark.parametrize("reply", ["334 VXNlcm5hbWU6", "399 carry on", "250 2.0.0 OK"])
async def test_a_positive_reply_other_than_354_to_data_ends_the_session_on_both_paths(
    reply: str,
) -> None:
    piped, lock = await both(three(), data=reply)
    for run in (piped, lock):
        observer = run.observer
        assert observer.ended == "failed"
        assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
        assert observer.unfinished == [1, 2, 3]
        assert not observer.reports[1].data_completed
        assert run.server.messages == []
        assert "RSET" not in run.server.verbs()


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_final_reply_mixing_550_and_250_leaves_the_recipients_uncertain(
    pipelining: bool,
) -> None:
    mixed = Raw(b"550-5.7.1 rejected\r\n250 2.0.0 Queued as 12345\r\n")
    async with FaultServer(extensions=PIPELINING, end_of_data=mixed) as server:
        observer = RecordingObserver()
        sending = [message(1, "a@example.net"), message(2, "b@example.net")]
        relayer = ManagedRelayer(server.account(pipelining=pipelining), None, sending, observer)
        await relayer.run()
    report = observer.reports[1]
    assert report.data_completed and report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.PROTOCOL
    assert "different codes (550 then 250)" in report.connection_error.text
    verdicts = recipient_verdicts(report, ["a@example.net"])
    assert verdicts["a@example.net"].state is RecipientState.UNCERTAIN
    assert observer.unfinished == [1, 2]  # 2 never started: owed, not sent


async def test_a_rcpt_reply_mixing_codes_accepts_nobody() -> None:
    mixed = Raw(b"550-5.1.1 no such user\r\n250 2.1.5 OK\r\n")
    async with FaultServer(extensions=PIPELINING, rcpt={"a@example.net": mixed}) as server:
        observer = RecordingObserver()
        await ManagedRelayer(server.account(), None, [message(1, "a@example.net")], observer).run()
    assert observer.replies[1] == {}
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert server.messages == []
