"""PIPELINING (RFC 2920): the same outcomes as lock-step, in fewer turns.

Every scenario runs twice against the fault server offering PIPELINING and
keeping RFC 5321's command order (``enforce_order``): once with the account's
``pipelining`` on, once off (lock-step). What the relayer reported -- every
reply per message, whether the data completed, how the session ended and what
was left unfinished -- and what the server received must be the same; the
pipelined run must really have pipelined (commands waiting at the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage, Reply, TransactionReport
from tests.relayer.messages import message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import DROP, FaultServer, Raw

PIPELINING = ("PIPELINING", "8BITMIME", "SIZE 104857600", "ENHANCEDSTATUSCODES")


@dataclass
class Run:
    observer: RecordingObserver
    server: FaultServer

    def outcomes(self) -> dict[str, Any]:
        """What lock-step and pipelining must agree on (texts of our own words aside)."""
        observer = self.observer
        failure = observer.failure
        return {
            "ended": observer.ended,
            "started": observer.started,
            "reports": {i: _report(r) for i, r in observer.reports.items()},
            "replied": {
                i: {a: _reply(r) for a, r in rs.items()} for i, rs in observer.replies.items()
            },
            "completed": observer.completed,
            "failure": None if failure is None else (failure.kind, _reply(failure.reply)),
            "unfinished": observer.unfinished,
            "received": [
                (m.mail_from, m.rcpt_tos, m.body, m.complete) for m in self.server.messages
            ],
        }


def _reply(reply: Reply | None) -> tuple[str, int, str] | None:
    return None if reply is None else (str(reply.stage), reply.code, reply.text)


def _report(report: TransactionReport) -> dict[str, Any]:
    error = report.connection_error
    return {
        "mail": _reply(report.mail),
        "recipients": {a: _reply(r) for a, r in report.recipients.items()},
        "data": _reply(report.data),
        "end_of_data": _reply(report.end_of_data),
        "data_completed": report.data_completed,
        "local_error": report.local_error,
        "connection_error": None if error is None else (error.kind, _reply(error.reply)),
        "sent_bytes": report.sent_bytes,
    }


async def relay(pipelining: bool, messages: list[OutgoingMessage], **faults: Any) -> Run:
    faults.setdefault("extensions", PIPELINING)
    async with FaultServer(enforce_order=True, **faults) as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(server.account(pipelining=pipelining), None, messages, observer)
        await relayer.run()
    return Run(observer, server)


async def both(messages: list[OutgoingMessage], **faults: Any) -> tuple[Run, Run]:
    """(pipelined, lock-step), after checking they agree and only the first pipelined."""
    piped = await relay(True, messages, **faults)
    lock = await relay(False, messages, **faults)
    assert piped.outcomes() == lock.outcomes()
    assert lock.server.pipelined == 0
    assert piped.server.pipelined > 0
    return piped, lock


def three() -> list[OutgoingMessage]:
    return [
        message(1, "a@example.net", "b@example.net"),
        message(2, "c@example.net", "d@example.net", "e@example.net"),
        message(3, "f@example.net"),
    ]


async def test_a_stream_of_messages_is_sent_as_one_group_per_message() -> None:
    piped, lock = await both(three())
    assert piped.observer.ended == "finished"
    assert [m.rcpt_tos for m in piped.server.messages] == [
        ["a@example.net", "b@example.net"],
        ["c@example.net", "d@example.net", "e@example.net"],
        ["f@example.net"],
    ]
    # Every command but the first of the first group (and EHLO, QUIT) was already waiting.
    assert piped.server.verbs() == lock.server.verbs()
    assert piped.server.pipelined == len(piped.server.commands) - 3


async def test_a_refused_rcpt_inside_a_group_is_that_recipients_reply_alone() -> None:
    piped, _ = await both(three(), rcpt={"d@example.net": "550 5.1.1 no such user"})
    assert piped.observer.replies[2]["d@example.net"].code == 550
    assert piped.server.messages[1].rcpt_tos == ["c@example.net", "e@example.net"]
    assert piped.observer.ended == "finished"


async def test_every_rcpt_refused_leaves_data_unsent_and_the_next_group_starts_with_rset() -> None:
    piped, _ = await both(
        three(),
        rcpt={
            "c@example.net": "550 5.1.1 no",
            "d@example.net": "450 4.2.1 later",
            "e@example.net": "550 5.1.1 no",
        },
    )
    assert piped.observer.reports[2].data is None
    assert piped.server.verbs().count("RSET") == 1
    assert [m.rcpt_tos for m in piped.server.messages] == [
        ["a@example.net", "b@example.net"],
        ["f@example.net"],
    ]


async def test_a_refused_mail_inside_a_stream_reports_no_recipient_and_the_rest_go() -> None:
    piped, _ = await both(three(), mail=["250 2.1.0 OK", "451 4.3.0 try later", "250 2.1.0 OK"])
    assert piped.observer.reports[2].recipients == {}
    assert piped.observer.replies[2] == {}
    assert len(piped.server.messages) == 2


async def test_a_refused_data_command_is_reported_and_the_session_goes_on() -> None:
    piped, _ = await both(three(), data="451 4.3.0 not now")
    report = piped.observer.reports[1].data
    assert report is not None and report.code == 451
    assert piped.server.messages == [] and piped.observer.ended == "finished"


async def test_a_refused_end_of_data_is_reported_and_the_next_message_follows() -> None:
    piped, _ = await both(
        three(), end_of_data=["250 2.0.0 Queued", "554 5.7.1 spam", "250 2.0.0 Queued"]
    )
    end = piped.observer.reports[2].end_of_data
    assert end is not None and end.code == 554
    assert piped.observer.reports[3].end_of_data is not None


async def test_421_mid_group_ends_the_session_with_that_recipients_reply() -> None:
    piped, _ = await both(three(), rcpt={"d@example.net": "421 4.3.2 shutting down"})
    observer = piped.observer
    assert observer.ended == "failed"
    assert observer.failure is not None and observer.failure.kind is FailureKind.CLOSING
    assert observer.replies[2]["d@example.net"].code == 421
    assert observer.unfinished == [2, 3]
    assert not observer.reports[2].data_completed
    assert len(piped.server.messages) == 1


async def test_421_after_the_data_of_a_message_ends_the_session_and_it_is_not_sent() -> None:
    piped, _ = await both(three(), end_of_data=["421 4.3.2 going down"])
    observer = piped.observer
    assert observer.ended == "failed"
    assert observer.reports[1].data_completed
    assert observer.unfinished == [1, 2, 3]


async def test_a_dropped_connection_after_the_body_of_message_k_leaves_k_uncertain() -> None:
    piped, _ = await both(three(), end_of_data=["250 2.0.0 Queued", DROP])
    observer = piped.observer
    assert observer.ended == "failed"
    report = observer.reports[2]
    assert report.data_completed and report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.DROPPED
    assert observer.unfinished == [2, 3]
    assert 3 not in observer.started


async def test_a_message_too_big_for_the_server_is_skipped_in_a_stream() -> None:
    messages = three()
    messages[1] = message(2, "c@example.net", body=b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n")
    extensions = ("PIPELINING", "SIZE 4000", "8BITMIME")
    piped, _ = await both(messages, extensions=extensions)
    assert piped.observer.reports[2].local_error is not None
    assert len(piped.server.messages) == 2


async def test_a_stop_while_the_next_envelope_is_out_hands_the_rest_back_untouched() -> None:
    for pipelining in (True, False):
        async with FaultServer(enforce_order=True, extensions=PIPELINING) as server:
            observer = RecordingObserver()
            relayer = ManagedRelayer(server.account(pipelining=pipelining), None, three(), observer)
            observer.on("data_completed", lambda message_id, stop=relayer.stop: stop())
            await relayer.run()
        assert observer.ended == "finished"
        assert observer.started == [1]
        assert observer.reports[1].end_of_data is not None
        assert [m.rcpt_tos for m in server.messages] == [["a@example.net", "b@example.net"]]
        assert all(m.complete for m in server.messages)


async def test_a_reply_out_of_step_ends_the_session_before_any_data() -> None:
    piped = await relay(
        True, [message(1, "a@example.net")], mail=Raw(b"250 2.1.0 OK\r\n250 2.1.0 again\r\n")
    )
    observer = piped.observer
    assert observer.ended == "failed"
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert observer.completed == [] and piped.server.messages == []
    lock = await relay(
        False, [message(1, "a@example.net")], mail=Raw(b"250 2.1.0 OK\r\n250 2.1.0 again\r\n")
    )
    assert lock.observer.failure is not None
    assert lock.observer.failure.kind is FailureKind.PROTOCOL and lock.server.messages == []


async def test_without_pipelining_offered_the_relayer_stays_in_lock_step() -> None:
    run = await relay(True, three(), extensions=("8BITMIME", "SIZE 104857600"))
    assert run.server.pipelined == 0
    assert len(run.server.messages) == 3
