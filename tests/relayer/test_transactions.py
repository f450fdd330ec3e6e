"""Transactions: per-recipient replies, refusals at each stage, and sessions that break."""

from __future__ import annotations

from relay.accounts import Account
from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage, Stage
from tests.relayer.messages import SENDER, large_body, message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import DROP, SILENCE, FaultServer, Late, Raw
from tests.support.smtp_servers import smtp_server


async def relay(account: Account, *messages: OutgoingMessage) -> RecordingObserver:
    observer = RecordingObserver()
    await ManagedRelayer(account, None, list(messages), observer).run()
    return observer


def codes(observer: RecordingObserver, message_id: int) -> dict[str, int]:
    return {address: reply.code for address, reply in observer.replies[message_id].items()}


# -- refusals the session survives --------------------------------------------------------


async def test_450_at_mail_is_reported_and_reset_before_the_next_message() -> None:
    async with FaultServer(mail=["450 4.2.0 mailbox busy", "250 2.1.0 OK"]) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    assert observer.ended == "finished"
    first = observer.reports[1]
    assert first.mail is not None and (first.mail.stage, first.mail.code) == (Stage.MAIL, 450)
    assert first.recipients == {} and not first.data_completed
    assert observer.replies[1] == {}
    assert server.verbs() == ["EHLO", "MAIL", "RSET", "MAIL", "RCPT", "DATA", "QUIT"]
    assert [m.rcpt_tos for m in server.messages] == [["b@example.net"]]


async def test_550_for_one_of_two_recipients_still_delivers_to_the_other() -> None:
    async with FaultServer(rcpt={"bad@example.net": "550 5.1.1 no such user"}) as server:
        observer = await relay(server.account(), message(1, "bad@example.net", "good@example.net"))
    assert codes(observer, 1) == {"bad@example.net": 550, "good@example.net": 250}
    report = observer.reports[1]
    assert str(report.recipients["bad@example.net"]) == "550 5.1.1 no such user"
    assert report.end_of_data is not None and report.end_of_data.code == 250
    assert len(server.messages) == 1
    assert server.messages[0].rcpt_tos == ["good@example.net"]
    assert server.messages[0].complete


async def test_452_for_one_recipient_is_that_recipients_reply_alone() -> None:
    async with FaultServer(rcpt={"full@example.net": "452 4.2.2 mailbox full"}) as server:
        observer = await relay(server.account(), message(1, "ok@example.net", "full@example.net"))
    assert codes(observer, 1) == {"ok@example.net": 250, "full@example.net": 452}
    assert observer.reports[1].recipients["full@example.net"].temporary
    assert server.messages[0].rcpt_tos == ["ok@example.net"]


async def test_when_no_recipient_is_accepted_there_is_no_data() -> None:
    async with FaultServer(rcpt_default="550 5.1.1 nobody here") as server:
        observer = await relay(
            server.account(), message(1, "a@example.net", "b@example.net"), message(2, "c@x.net")
        )
    assert codes(observer, 1) == {"a@example.net": 550, "b@example.net": 550}
    assert observer.reports[1].data is None and observer.completed == []
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "RCPT", "RSET", "MAIL", "RCPT", "QUIT"]
    assert server.messages == []


async def test_554_after_the_data_is_the_end_of_data_reply_and_the_next_message_follows() -> None:
    async with FaultServer(end_of_data=["554 5.7.1 looks like spam", "250 2.0.0 Queued"]) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    first = observer.reports[1]
    assert first.end_of_data is not None and str(first.end_of_data) == "554 5.7.1 looks like spam"
    assert first.data_completed and first.connection_error is None
    assert observer.reports[2].end_of_data is not None
    assert observer.reports[2].end_of_data.code == 250
    assert server.verbs() == [
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "MAIL",
        "RCPT",
        "DATA",
        "QUIT",
    ]
    assert observer.ended == "finished"


async def test_no_rset_follows_a_successful_transaction() -> None:
    async with smtp_server() as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    assert "RSET" not in observer.transcript
    assert len(server.received) == 2


# -- local refusals: nothing is sent for the message ---------------------------------------


async def test_a_message_over_the_size_limit_gets_a_local_error_and_no_mail() -> None:
    small = message(2, "b@example.net", body=b"Subject: s\r\n\r\nsmall\r\n")
    big = message(1, "a@example.net", body=b"x" * 5000 + b"\r\n")
    async with FaultServer(extensions=("8BITMIME", "SIZE 1000")) as server:
        observer = await relay(server.account(), big, small)
    report = observer.reports[1]
    assert report.local_error == (
        "the message is 5002 bytes and 127.0.0.1 accepts at most 1000 bytes (SIZE)"
    )
    assert report.mail is None
    assert server.commands[1] == f"MAIL FROM:<{SENDER}> SIZE={small.size}"
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]


async def test_a_message_needing_smtputf8_gets_a_local_error_when_the_server_lacks_it() -> None:
    async with FaultServer(extensions=("8BITMIME",)) as server:
        observer = await relay(
            server.account(), message(1, "jörg@exämple.de", needs_smtputf8=True, eight_bit=True)
        )
    error = observer.reports[1].local_error
    assert error is not None and "needs SMTPUTF8" in error and "does not offer it" in error
    assert "MAIL" not in server.verbs()


async def test_an_8bit_message_gets_a_local_error_when_the_server_lacks_8bitmime() -> None:
    async with FaultServer(extensions=("SIZE 100000",)) as server:
        observer = await relay(server.account(), message(1, "a@example.net", eight_bit=True))
    assert observer.reports[1].local_error == (
        "the message has 8-bit content and 127.0.0.1 does not offer 8BITMIME"
    )
    assert "MAIL" not in server.verbs()


async def test_mail_from_asks_for_size_8bitmime_and_smtputf8_when_offered_and_needed() -> None:
    body = "Subject: grüße\r\n\r\nçà\r\n".encode()
    async with FaultServer() as server:
        observer = await relay(
            server.account(),
            message(1, "jörg@exämple.de", body=body, eight_bit=True, needs_smtputf8=True),
            message(2, "plain@example.net"),
        )
    assert observer.ended == "finished"
    assert server.commands[1] == (f"MAIL FROM:<{SENDER}> SIZE={len(body)} BODY=8BITMIME SMTPUTF8")
    assert server.commands[2] == "RCPT TO:<jörg@exämple.de>"
    assert server.messages[0].body == body
    plain_mail = [c for c in server.commands if c.startswith("MAIL")][1]
    assert plain_mail.endswith(f"SIZE={message(2, 'plain@example.net').size}")


async def test_an_aiosmtpd_server_receives_an_international_message_byte_exact() -> None:
    body = "Subject: grüße\r\n\r\nçà\r\n".encode()
    async with smtp_server() as server:
        observer = await relay(
            server.account(),
            message(1, "jörg@exämple.de", body=body, eight_bit=True, needs_smtputf8=True),
        )
    assert observer.ended == "finished"
    assert [(r.rcpt_tos, r.body) for r in server.received] == [(("jörg@exämple.de",), body)]
    assert "BODY=8BITMIME" in server.received[0].mail_options


# -- sessions that break --------------------------------------------------------------------


async def test_a_reply_slower_than_the_timeout_ends_the_session_with_what_is_known() -> None:
    async with FaultServer(mail=Late(3.0, "250 2.1.0 OK, finally")) as server:
        observer = await relay(
            server.account(command_timeout_s=0.3),
            message(1, "a@example.net"),
            message(2, "b@example.net"),
        )
    report = observer.reports[1]
    assert report.mail is None and not report.data_completed
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.TIMEOUT
    assert observer.ended == "failed"
    assert observer.failure is not None
    assert observer.failure.text == "127.0.0.1 did not reply to MAIL FROM within 0.3 s"
    assert observer.unfinished == [1, 2]
    assert observer.started == [1]


async def test_a_421_at_rcpt_ends_the_session_and_is_that_recipients_reply() -> None:
    async with FaultServer(rcpt={"b@example.net": "421 4.3.0 shutting down"}) as server:
        observer = await relay(
            server.account(),
            message(1, "a@example.net", "b@example.net", "c@example.net"),
            message(2, "d@example.net"),
        )
    assert codes(observer, 1) == {"a@example.net": 250, "b@example.net": 421}
    report = observer.reports[1]
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.CLOSING
    assert report.data is None
    assert observer.failure is not None and observer.failure.kind is FailureKind.CLOSING
    assert "421 4.3.0 shutting down" in observer.failure.text
    assert observer.unfinished == [1, 2]
    assert "DATA" not in server.verbs() and "QUIT" not in server.verbs()


async def test_a_421_after_the_data_is_a_reply_rather_than_silence() -> None:
    async with FaultServer(end_of_data="421 4.3.0 going down now") as server:
        observer = await relay(server.account(), message(1, "a@example.net"))
    report = observer.reports[1]
    assert report.data_completed
    assert report.end_of_data is not None and report.end_of_data.code == 421
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.CLOSING


async def test_a_connection_dropped_in_the_middle_of_the_data_leaves_the_data_incomplete() -> None:
    body = large_body(32 * 1024 * 1024)  # far more than the socket buffers hold
    async with FaultServer(drop_after_data_bytes=256 * 1024) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net", body=body), message(2, "b@example.net")
        )
    report = observer.reports[1]
    assert not report.data_completed and observer.completed == []
    assert report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.DROPPED
    assert "while sending the message data" in report.connection_error.text
    assert 0 < report.sent_bytes < len(body)
    assert observer.failure is not None and observer.failure.kind is FailureKind.DROPPED
    assert observer.unfinished == [1, 2]
    assert [m.complete for m in server.messages] == [False]


async def test_a_drop_after_the_final_dot_reports_the_data_as_completed() -> None:
    async with FaultServer(end_of_data=DROP) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    report = observer.reports[1]
    assert report.data_completed and observer.completed == [1]
    assert report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.DROPPED
    assert observer.unfinished == [1, 2]
    assert len(server.messages) == 1 and server.messages[0].complete


async def test_no_verdict_within_the_data_timeout_reports_the_data_as_completed() -> None:
    async with FaultServer(end_of_data=SILENCE) as server:
        observer = await relay(
            server.account(data_timeout_s=0.3, command_timeout_s=5.0),
            message(1, "a@example.net"),
        )
    report = observer.reports[1]
    assert report.data_completed and report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.TIMEOUT
    assert report.connection_error.text == (
        "127.0.0.1 did not reply to the end of the message data within 0.3 s"
    )


async def test_a_refused_rset_ends_the_session_after_reporting_the_transaction() -> None:
    async with FaultServer(mail="451 4.3.0 later", rset="500 5.5.1 what?") as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    assert 1 in observer.reports and 2 not in observer.reports
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert "refused RSET" in observer.failure.text
    assert observer.unfinished == [2]


async def test_an_endless_reply_in_a_transaction_is_a_protocol_failure() -> None:
    endless = "\n".join(["250 " + "y" * 500] * 2_000)  # about 1 MB
    async with FaultServer(mail=endless) as server:
        observer = await relay(server.account(), message(1, "a@example.net"))
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert "longer than" in observer.failure.text
    assert len(observer.transcript) < 300_000


async def test_a_server_offering_pipelining_is_still_served_in_lock_step() -> None:
    async with FaultServer(extensions=("PIPELINING", "8BITMIME", "SIZE 100000")) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net", "b@example.net"), message(2, "c@x.net")
        )
    assert observer.ended == "finished"
    assert len(server.messages) == 2
    assert observer.transcript.count("S: 354") == 2


async def test_each_transaction_transcript_holds_the_preamble_and_only_its_own_commands() -> None:
    async with FaultServer() as server:
        observer = await relay(
            server.account(), message(1, "first@example.net"), message(2, "second@example.net")
        )
    second = observer.reports[2].transcript
    assert "S: 220 fault.test ESMTP ready" in second
    assert "RCPT TO:<second@example.net>" in second
    assert "first@example.net" not in second


async def test_a_reply_nobody_asked_for_ends_the_session_before_it_is_mismatched() -> None:
    two_replies = Raw(b"250 2.1.0 OK\r\n250 2.1.0 and once more\r\n")
    async with FaultServer(mail=two_replies) as server:
        observer = await relay(server.account(), message(1, "a@example.net"))
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert observer.failure.text == (
        "127.0.0.1 sent a reply nobody asked for: 250 2.1.0 and once more"
    )
    assert observer.replies[1] == {}
    assert "RCPT" not in server.verbs()


async def test_a_421_sent_between_transactions_ends_the_session_before_the_next() -> None:
    goodbye = Raw(b"250 2.0.0 Queued\r\n421 4.3.2 shutting down\r\n")
    async with FaultServer(end_of_data=goodbye) as server:
        observer = await relay(
            server.account(), message(1, "a@example.net"), message(2, "b@example.net")
        )
    first = observer.reports[1]
    assert first.end_of_data is not None and first.end_of_data.code == 250
    second = observer.reports[2]
    assert second.mail is None
    assert second.connection_error is not None
    assert second.connection_error.kind is FailureKind.CLOSING
    assert observer.unfinished == [2]
    assert server.verbs().count("MAIL") == 1


async def test_an_empty_batch_connects_to_nobody() -> None:
    async with FaultServer() as server:
        observer = await relay(server.account())
    assert observer.names == ["session_started", "phase_changed", "session_finished"]
    assert server.connections == 0


async def test_a_line_that_is_not_an_smtp_reply_is_a_protocol_failure_quoting_it() -> None:
    async with FaultServer(mail=Raw(b"HTTP/1.1 400 Bad Request\r\n")) as server:
        observer = await relay(server.account(), message(1, "a@example.net"))
    assert observer.failure is not None and observer.failure.kind is FailureKind.PROTOCOL
    assert "not an SMTP reply: 'HTTP/1.1 400 Bad Request'" in observer.failure.text
    report = observer.reports[1]
    assert report.connection_error is not None and report.mail is None
