"""Opening a session: plain, STARTTLS, implicit TLS, AUTH, and every way it can fail."""

from __future__ import annotations

import base64
import socket

import pytest

from relay.accounts import Account, Security
from relay.relayer import ManagedRelayer
from relay.report import FailureKind, OutgoingMessage, SessionFailure
from relay.smtp.opening import open_session
from relay.smtp.session import Session
from relay.smtp.transcript import Transcript
from relay.states import Phase
from tests.relayer.messages import SENDER, message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import SILENCE, FaultServer, Late
from tests.support.smtp_servers import (
    USER,
    TestCertificates,
    smtp_server,
    threaded_smtp_server,
)

PASSWORD = "correct horse battery staple"


async def relay(
    account: Account, password: str | None, *messages: OutgoingMessage
) -> RecordingObserver:
    observer = RecordingObserver()
    await ManagedRelayer(account, password, list(messages), observer).run()
    return observer


def assert_nothing_sent(observer: RecordingObserver, failure_kind: FailureKind) -> SessionFailure:
    assert observer.ended == "failed"
    assert observer.failure is not None and observer.failure.kind is failure_kind
    assert observer.started == []
    assert observer.unfinished == observer.handed
    return observer.failure


# -- delivery over each kind of connection ----------------------------------------------


async def test_a_plain_session_delivers_each_message_once_byte_exact() -> None:
    bodies = [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\nsecond\r\n"]
    async with smtp_server() as server:
        observer = await relay(
            server.account(),
            None,
            message(1, "a@example.net", "b@example.net", body=bodies[0]),
            message(2, "c@example.net", body=bodies[1]),
        )
    assert observer.ended == "finished"
    assert [(r.mail_from, r.rcpt_tos, r.body) for r in server.received] == [
        (SENDER, ("a@example.net", "b@example.net"), bodies[0]),
        (SENDER, ("c@example.net",), bodies[1]),
    ]
    assert {a: r.code for a, r in observer.replies[1].items()} == {
        "a@example.net": 250,
        "b@example.net": 250,
    }
    assert observer.completed == [1, 2]
    for message_id in (1, 2):
        report = observer.reports[message_id]
        assert report.end_of_data is not None and report.end_of_data.code == 250
        assert report.data_completed and report.connection_error is None
        assert report.sent_bytes == len(bodies[message_id - 1])
    assert observer.phases == [
        (Phase.CONNECTING, None),
        (Phase.SENDING, 1),
        (Phase.AWAITING_VERDICT, 1),
        (Phase.SENDING, 2),
        (Phase.AWAITING_VERDICT, 2),
        (Phase.DONE, None),
    ]
    assert "C: QUIT" in observer.transcript


async def test_starttls_secures_the_session_with_the_accounts_ca_file(
    certs: TestCertificates,
) -> None:
    async with smtp_server(security=Security.STARTTLS, tls=certs) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert len(server.received) == 1
    assert [p for p, _ in observer.phases[:2]] == [Phase.CONNECTING, Phase.SECURING]
    assert "C: STARTTLS" in observer.transcript
    assert "TLS established" in observer.transcript


async def test_implicit_tls_secures_the_session_from_the_first_byte(
    certs: TestCertificates,
) -> None:
    async with smtp_server(security=Security.TLS, tls=certs) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert len(server.received) == 1
    assert "STARTTLS" not in observer.transcript
    assert "TLS established" in observer.transcript


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.TLS])
async def test_an_ipv6_address_in_brackets_is_reached_and_its_certificate_verified(
    certs: TestCertificates, security: Security
) -> None:
    """``[::1]`` is how an address literal is written in a URL, and the config takes it."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    context = certs.server_context("::1")
    async with smtp_server(host="::1", security=security, tls=certs, tls_context=context) as server:
        observer = await relay(server.account(host="[::1]"), None, message(1, "a@example.net"))
    assert observer.ended == "finished", observer.failure
    assert len(server.received) == 1
    assert "TLS established" in observer.transcript


async def test_the_server_offer_is_printable_for_account_test(certs: TestCertificates) -> None:
    async with smtp_server(security=Security.STARTTLS, tls=certs, password=PASSWORD) as server:
        session = await open_session(server.account(), PASSWORD)
        assert isinstance(session, Session)
        await session.quit()
    offer = session.offer
    assert offer.size_limit == 32 * 1024 * 1024
    assert offer.eight_bit_mime and offer.smtputf8 and not offer.pipelining
    assert offer.tls_version is not None and offer.tls_version.startswith("TLSv1.")
    assert offer.authenticated_as == USER and offer.auth_mechanism == "PLAIN"
    text = str(offer)
    assert f"127.0.0.1:{server.port}" in text
    assert "STARTTLS, TLSv1." in text
    assert "size limit: 33554432 bytes" in text
    assert f"authentication: {USER} (PLAIN)" in text
    assert "PIPELINING: no" in text


async def test_a_server_on_its_own_thread_works_the_same() -> None:
    with threaded_smtp_server() as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert len(server.received) == 1


# -- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_the_right_password_authenticates_and_the_transcript_hides_it(
    certs: TestCertificates, mechanism: str
) -> None:
    async with smtp_server(
        security=Security.STARTTLS, tls=certs, password=PASSWORD, mechanisms=(mechanism,)
    ) as server:
        observer = await relay(server.account(), PASSWORD, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert len(server.received) == 1
    assert (Phase.AUTHENTICATING, None) in observer.phases
    transcripts = [observer.transcript, observer.reports[1].transcript]
    secrets = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
        base64.b64encode(USER.encode()).decode(),
    ]
    for text in transcripts:
        assert f"C: AUTH {mechanism}" in text
        assert "S: 235" in text
        for secret in secrets:
            assert secret not in text
    if mechanism == "LOGIN":
        assert observer.transcript.count("C: ****") == 2
    else:
        assert "C: AUTH PLAIN ****" in observer.transcript


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_a_wrong_password_fails_the_session_as_auth_and_sends_nothing(
    certs: TestCertificates, mechanism: str
) -> None:
    async with smtp_server(
        security=Security.TLS, tls=certs, password=PASSWORD, mechanisms=(mechanism,)
    ) as server:
        observer = await relay(
            server.account(), "wrong", message(1, "a@example.net"), message(2, "b@example.net")
        )
    failure = assert_nothing_sent(observer, FailureKind.AUTH)
    assert "refused the credentials for alice" in failure.text
    assert failure.reply is not None and failure.reply.code == 535
    assert server.received == []
    assert "wrong" not in observer.transcript
    assert observer.transcript.endswith("S: 221 Bye")


async def test_auth_over_plain_text_to_loopback_is_allowed() -> None:
    async with smtp_server(password=PASSWORD) as server:
        observer = await relay(server.account(), PASSWORD, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert "C: AUTH PLAIN ****" in observer.transcript


async def test_an_account_with_a_user_but_no_password_fails_as_auth_before_sending_it() -> None:
    async with smtp_server(password=PASSWORD) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.AUTH)
    assert "no password for alice" in failure.text
    assert "AUTH" not in observer.transcript.replace("AUTH LOGIN PLAIN", "")


# -- TLS refusals ---------------------------------------------------------------------------


async def test_starttls_required_but_not_offered_sends_nothing() -> None:
    async with FaultServer() as server:
        observer = await relay(
            server.account(security=Security.STARTTLS, user=USER),
            PASSWORD,
            message(1, "a@example.net"),
        )
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "does not offer STARTTLS; nothing was sent" in failure.text
    assert server.verbs() == ["EHLO", "QUIT"]
    assert server.messages == []


async def test_a_certificate_for_another_host_is_refused(certs: TestCertificates) -> None:
    async with FaultServer(
        tls_context=certs.server_context("mail.other.example"), auth_mechanisms=("PLAIN",)
    ) as server:
        observer = await relay(
            server.account(ca_file=certs.ca_file, user=USER), PASSWORD, message(1, "a@example.net")
        )
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "certificate of 127.0.0.1 is for another name" in failure.text
    assert "not valid for '127.0.0.1'" in failure.text
    assert "nothing was sent" in failure.text
    assert server.verbs() == ["EHLO", "STARTTLS"]


async def test_an_expired_certificate_is_refused_as_expired(certs: TestCertificates) -> None:
    async with smtp_server(
        security=Security.TLS, tls=certs, tls_context=certs.expired_context()
    ) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "certificate of 127.0.0.1 has expired" in failure.text


async def test_a_self_signed_certificate_is_refused_as_self_signed(
    certs: TestCertificates,
) -> None:
    async with smtp_server(
        security=Security.STARTTLS, tls=certs, tls_context=certs.self_signed_context()
    ) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "self-signed" in failure.text
    assert str(certs.ca_file) in failure.text


async def test_without_a_ca_file_the_system_trust_store_decides(certs: TestCertificates) -> None:
    async with smtp_server(security=Security.TLS, tls=certs) as server:
        observer = await relay(server.account(ca_file=None), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "is signed by an authority not trusted by this system" in failure.text


async def test_implicit_tls_to_a_plain_server_says_the_port_does_not_speak_tls() -> None:
    async with FaultServer() as server:
        observer = await relay(
            server.account(security=Security.TLS, connect_timeout_s=2.0),
            None,
            message(1, "a@example.net"),
        )
    failure = assert_nothing_sent(observer, FailureKind.TLS)
    assert "does not speak TLS on this port" in failure.text


# -- connection refusals -----------------------------------------------------------------


async def test_a_refused_connection_is_a_connect_failure_naming_host_and_port() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with FaultServer() as server:
        account = server.account(port=port)
    observer = await relay(account, None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.CONNECT)
    assert f"127.0.0.1:{port} refused the connection" in failure.text


async def test_an_unknown_host_name_is_a_connect_failure_naming_it() -> None:
    async with FaultServer() as server:
        account = server.account(host="no-such-host.invalid")
    observer = await relay(account, None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.CONNECT)
    assert "cannot find the server no-such-host.invalid" in failure.text


async def test_a_server_that_never_greets_times_out_at_the_greeting() -> None:
    async with FaultServer(greeting=SILENCE) as server:
        observer = await relay(
            server.account(connect_timeout_s=0.3), None, message(1, "a@example.net")
        )
    failure = assert_nothing_sent(observer, FailureKind.TIMEOUT)
    assert failure.text == "127.0.0.1 did not greet within 0.3 s"


async def test_a_421_greeting_fails_the_session_as_closing() -> None:
    async with FaultServer(greeting="421 4.3.2 too busy, try later") as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.CLOSING)
    assert "421 4.3.2 too busy, try later" in failure.text
    assert server.commands == []


async def test_a_554_greeting_is_a_refused_session() -> None:
    async with FaultServer(greeting="554 5.7.1 no service for you") as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.CONNECT)
    assert "refused the session: 554 5.7.1 no service for you" in failure.text


async def test_a_slow_ehlo_reply_times_out_naming_the_command() -> None:
    async with FaultServer(ehlo=Late(3.0, "250 too late")) as server:
        observer = await relay(
            server.account(command_timeout_s=0.3), None, message(1, "a@example.net")
        )
    failure = assert_nothing_sent(observer, FailureKind.TIMEOUT)
    assert failure.text == "127.0.0.1 did not reply to EHLO within 0.3 s"


async def test_an_endless_ehlo_reply_is_a_protocol_failure_not_a_memory_leak() -> None:
    endless = "\n".join(["250 " + "x" * 500] * 20_000)  # about 10 MB
    async with FaultServer(ehlo=endless) as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    failure = assert_nothing_sent(observer, FailureKind.PROTOCOL)
    assert "too long" in failure.text.lower()
    assert len(observer.transcript) < 300_000


async def test_ehlo_refused_falls_back_to_helo_and_still_delivers() -> None:
    async with FaultServer(ehlo="502 5.5.1 EHLO not implemented") as server:
        observer = await relay(server.account(), None, message(1, "a@example.net"))
    assert observer.ended == "finished"
    assert server.verbs() == ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert server.commands[2] == f"MAIL FROM:<{SENDER}>"  # no SIZE=: no extensions
    assert len(server.messages) == 1


async def test_open_session_returns_a_failure_value_rather_than_raising() -> None:
    async with FaultServer(greeting="421 4.3.2 not now") as server:
        transcript = Transcript()
        result = await open_session(server.account(), None, transcript=transcript)
    assert isinstance(result, SessionFailure)
    assert result.kind is FailureKind.CLOSING
    assert "S: 421 4.3.2 not now" in transcript.render()
