"""The managed relayer: one SMTP session that sends a batch and reports every outcome.

After Twisted's ``SMTPManagedRelayer``: it is handed messages and an observer
(the attempt manager), sends the messages over one connection, and *reports*;
it never decides what a reply means and never writes the store. Unlike
Twisted's, every recipient's reply is reported on its own, and so is the
moment the final dot left (RFC 1047's duplicate window).

Per message, lock-step:

| step | sent when | on a refusal |
|---|---|---|
| local checks | always | too big for SIZE, or needs SMTPUTF8 / 8BITMIME |
| | | the server lacks: ``local_error``, nothing sent |
| MAIL FROM | checks passed, with ``SIZE=``, | report; RSET |
| | ``BODY=8BITMIME``, ``SMTPUTF8`` as offered and needed | |
| RCPT TO | once per recipient | that recipient's reply is reported; go on |
| DATA | some RCPT accepted | report; RSET |
| message data | 354 | streamed and stuffed by ``Session.send_data`` |
| end-of-data reply | final dot written, within ``data_timeout_s`` | report; RSET |

RSET follows a failed transaction only when another message follows (QUIT
discards a transaction as well). A 421, a lost connection or a timeout at any
point ends the session: the transaction in flight is reported with what is
known (its ``connection_error``, and ``data_completed`` telling whether the
server may have it), then ``session_failed`` names every message not
finished. ``run()`` never raises for anything the network or the server does.

Stopping: ``stop()`` lets the transaction in flight finish, sends QUIT and
hands the rest back untouched (``session_finished``); ``stop(abort=True)``
drops the connection at once and reports the transaction in flight as it
stood (after the final dot that makes its recipients *uncertain*: the truth).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from relay.accounts import Account
from relay.connection import ServerOffer, Session, SessionLost, open_session
from relay.pipeline import Command, Pipeline, envelope
from relay.report import (
    FailureKind,
    OutgoingMessage,
    RelayObserver,
    Reply,
    SessionFailure,
    SessionInfo,
    Stage,
    TransactionReport,
)
from relay.states import Phase
from relay.transcript import Transcript

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # C0 controls and DEL: never in a command line


@dataclass(slots=True)
class _Transaction:
    """What is known about the transaction in flight, turned into a report at its end."""

    message: OutgoingMessage
    mark: int
    mail: Reply | None = None
    recipients: dict[str, Reply] = field(default_factory=dict)
    data: Reply | None = None
    end_of_data: Reply | None = None
    data_completed: bool = False
    local_error: str | None = None
    connection_error: SessionFailure | None = None
    sent_bytes: int = 0

    def record(self, reply: Reply, address: str | None = None) -> None:
        if reply.stage is Stage.MAIL:
            self.mail = reply
        elif reply.stage is Stage.RCPT and address is not None:
            self.recipients[address] = reply
        elif reply.stage is Stage.DATA:
            self.data = reply
        elif reply.stage is Stage.END_OF_DATA:
            self.end_of_data = reply

    @property
    def succeeded(self) -> bool:
        return self.end_of_data is not None and self.end_of_data.positive

    def report(self, transcript: str) -> TransactionReport:
        return TransactionReport(
            message_id=self.message.id,
            mail=self.mail,
            recipients=dict(self.recipients),
            data=self.data,
            end_of_data=self.end_of_data,
            data_completed=self.data_completed,
            local_error=self.local_error,
            connection_error=self.connection_error,
            sent_bytes=self.sent_bytes,
            transcript=transcript,
        )


class ManagedRelayer:
    """Sends ``messages`` over one session to ``account``'s server, reporting to ``observer``.

    Create, ``await run()`` once; ``stop()`` from anywhere on the same loop.
    """

    def __init__(
        self,
        account: Account,
        password: str | None,
        messages: Sequence[OutgoingMessage],
        observer: RelayObserver,
    ) -> None:
        self._account = account
        self._password = password
        self._messages = tuple(messages)
        self._observer = observer
        self._transcript = Transcript()
        self._stopping = False
        self._aborting = False
        self._opening: asyncio.Task[Session | SessionFailure] | None = None
        self._session: Session | None = None
        self._finished: set[int] = set()
        self._broken: int | None = None
        self._current_address: str | None = None
        self._mail_lines: dict[int, tuple[str | None, str]] = {}  # see ``_mail``
        self._offer_facts: _OfferFacts | None = None
        self._ran = False
        self._ended = False

    @property
    def transcript(self) -> Transcript:
        return self._transcript

    def stop(self, *, abort: bool = False) -> None:
        """Start no new transaction; with ``abort``, also drop the connection now.

        While the session is still opening there is nothing to finish: the
        opening is cancelled either way.
        """
        self._stopping = True
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if abort:
            self._aborting = True
            if self._session is not None:
                self._session.abort()

    async def run(self) -> None:
        """The whole session; every outcome goes to the observer, nothing is raised for it.

        Cancelling ``run()`` itself (not the way to stop it: see ``stop``)
        drops the connection, still reports the transaction in flight and
        ends with ``session_finished``, then lets the cancellation through.
        """
        if self._ran:
            raise RuntimeError("a ManagedRelayer runs once")
        self._ran = True
        account = self._account
        self._observer.session_started(
            SessionInfo(account.name, account.host, account.port),
            [message.id for message in self._messages],
        )
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self._ended:
                self._transcript.note("cancelled")
                self._end(None)
            raise

    async def _run(self) -> None:
        if self._stopping or not self._messages:
            self._end(None)
            return
        session = await self._open()
        if session is None:
            return
        self._session = session
        try:
            await self._send_all(session)
        except SessionLost as lost:
            session.abort()
            self._end(lost.failure)
            return
        except BaseException:
            session.abort()  # run() cancelled, or a bug: never leave the connection open
            raise
        finally:
            self._session = None
        await session.quit()  # after stop(abort=True) the connection is already gone
        self._end(None)

    # -- session -------------------------------------------------------------------

    async def _open(self) -> Session | None:
        """The open session, or None after reporting why there is none."""

        def phase(value: Phase) -> None:
            self._observer.phase_changed(value, None)

        self._opening = asyncio.create_task(
            open_session(self._account, self._password, transcript=self._transcript, on_phase=phase)
        )
        try:
            await asyncio.wait({self._opening})
        finally:
            if not self._opening.done():
                self._opening.cancel()  # run() itself is being cancelled
        if self._opening.cancelled():  # stop() while opening
            self._transcript.note("stopped while opening the session")
            self._end(None)
            return None
        result = self._opening.result()
        if isinstance(result, SessionFailure):
            self._end(result)
            return None
        if self._stopping:  # stop() while opening: nothing was started
            await result.quit()
            self._end(None)
            return None
        return result

    async def _send_all(self, session: Session) -> None:
        messages = self._messages
        pipeline = (
            Pipeline(session) if session.offer.pipelining and self._account.pipelining else None
        )
        for index, message in enumerate(messages):
            if self._stopping:
                if pipeline is not None and pipeline.ahead is not None:
                    self._transcript.note(
                        "stopped: the next message's commands were already sent;"
                        " dropping the connection so that it goes no further"
                    )
                    session.abort()
                return
            following = messages[index + 1] if index + 1 < len(messages) else None
            transaction = _Transaction(message, self._transcript.mark())
            if pipeline is not None:
                await self._open_group(pipeline, message)
            try:
                if pipeline is None:
                    await self._transact(session, transaction)
                else:
                    await self._transact_pipelined(session, pipeline, transaction, following)
            except asyncio.CancelledError:
                transaction.connection_error = SessionFailure(
                    FailureKind.DROPPED,
                    "stopped: the transaction was cancelled"
                    + (" after the end of the data" if transaction.data_completed else ""),
                )
                self._broken = message.id
                self._finish(transaction)
                raise
            except SessionLost as lost:
                failure = lost.failure
                if self._aborting:
                    failure = SessionFailure(
                        FailureKind.DROPPED,
                        "stopped: the transaction was aborted"
                        + (" after the end of the data" if transaction.data_completed else ""),
                    )
                    self._transcript.note(failure.text)
                elif failure.kind is FailureKind.CLOSING and failure.reply is not None:
                    transaction.record(failure.reply, self._current_address)
                    if failure.reply.stage is Stage.RCPT and self._current_address:
                        self._observer.recipient_replied(
                            message.id, self._current_address, failure.reply
                        )
                transaction.connection_error = failure
                self._broken = message.id
                self._finish(transaction)
                if self._aborting:
                    return
                raise
            self._finish(transaction)
            if pipeline is not None:
                if pipeline.unsettled:
                    await pipeline.settle()
                continue
            more = index + 1 < len(messages) and not self._stopping
            if more and not transaction.succeeded and transaction.local_error is None:
                await self._reset(session)

    def _begin(self, tx: _Transaction, offer: ServerOffer) -> str | None:
        """Report the transaction's start; its MAIL line, or None if it is refused here."""
        message = tx.message
        self._observer.transaction_started(message.id)
        self._observer.phase_changed(Phase.SENDING, message.id)
        self._current_address = None
        problem, mail_line = self._mail(message, offer)
        if problem is not None:
            tx.local_error = problem
            self._transcript.note(f"message {message.id} not sent: {problem}")
            return None
        if message.dsn and not offer.offers("DSN"):
            self._transcript.note(_dsn_not_offered(message, offer.host))
        return mail_line

    async def _send_body(
        self, session: Session, tx: _Transaction, then: Sequence[Command] = ()
    ) -> None:
        """The data and its final dot (``then`` in the same write), progress reported."""
        observer = self._observer
        message = tx.message

        def progressed(sent_bytes: int) -> None:
            tx.sent_bytes = sent_bytes
            observer.data_progressed(message.id, sent_bytes, message.size)

        def completing() -> Awaitable[None] | None:
            tx.data_completed = True
            return observer.data_completed(message.id)

        await session.send_data(
            message.body, progressed=progressed, completing=completing, then=then
        )
        observer.phase_changed(Phase.AWAITING_VERDICT, message.id)

    async def _transact(self, session: Session, tx: _Transaction) -> None:
        observer = self._observer
        message = tx.message
        mail_line = self._begin(tx, session.offer)
        if mail_line is None:
            return
        tx.mail = await session.command(Stage.MAIL, mail_line)
        if not tx.mail.positive:
            return
        for address in message.recipients:
            self._current_address = address
            reply = await session.command(
                Stage.RCPT, f"RCPT TO:<{address}>{_rcpt_parameters(message, session.offer)}"
            )
            tx.recipients[address] = reply
            observer.recipient_replied(message.id, address, reply)
        self._current_address = None
        if not any(reply.positive for reply in tx.recipients.values()):
            return
        tx.data = await session.command(Stage.DATA, "DATA")
        if tx.data.code != 354:
            if tx.data.positive:
                # Only 354 invites the data. A server that says 250 (or 3xx) here is not
                # where we are in the dialogue: nothing further can be paired with it.
                raise SessionLost(
                    SessionFailure(
                        FailureKind.PROTOCOL,
                        f"{self._account.host} answered DATA with {tx.data} instead of 354;"
                        " the message data was not sent",
                        tx.data,
                    )
                )
            return
        await self._send_body(session, tx)
        tx.end_of_data = await session.read_reply(
            Stage.END_OF_DATA, timeout_s=self._account.data_timeout_s
        )

    async def _open_group(self, pipeline: Pipeline, message: OutgoingMessage) -> None:
        """Put ``message``'s envelope on the wire unless it already went with the last dot.

        A due RSET goes first, and its reply is read here, before the
        transaction starts, as lock-step reads it after the last one.
        """
        if pipeline.ahead == message.id:
            pipeline.ahead = None
            return
        pipeline.ahead = None
        problem, mail_line = self._mail(message, pipeline.session.offer)
        if problem is not None:
            return  # reported by the transaction; nothing is sent
        rcpt_parameters = _rcpt_parameters(message, pipeline.session.offer)
        if pipeline.send_envelope(envelope(message, mail_line, rcpt_parameters)):
            self._check_reset(await pipeline.read(Stage.RSET))

    async def _transact_pipelined(
        self,
        session: Session,
        pipeline: Pipeline,
        tx: _Transaction,
        following: OutgoingMessage | None,
    ) -> None:
        """``_transact`` with the envelope already on the wire: the same reports, read in order."""
        observer = self._observer
        message = tx.message
        if self._begin(tx, session.offer) is None:
            return
        tx.mail = await pipeline.read(Stage.MAIL)
        if not tx.mail.positive:
            pipeline.leave_unclaimed([Stage.RCPT] * len(message.recipients) + [Stage.DATA])
            return
        for address in message.recipients:
            self._current_address = address
            reply = await pipeline.read(Stage.RCPT)
            tx.recipients[address] = reply
            observer.recipient_replied(message.id, address, reply)
        self._current_address = None
        if not any(reply.positive for reply in tx.recipients.values()):
            pipeline.leave_unclaimed([Stage.DATA])
            return
        tx.data = await pipeline.read(Stage.DATA)
        if tx.data.code != 354:
            pipeline.reset_pending = True
            return
        then: list[Command] = []
        if following is not None and not self._stopping:
            follow_problem, follow_mail = self._mail(following, session.offer)
            if follow_problem is None:
                then = envelope(
                    following, follow_mail, _rcpt_parameters(following, session.offer)
                )
        await self._send_body(session, tx, then)
        if then:
            assert following is not None
            pipeline.ahead = following.id
        tx.end_of_data = await pipeline.read(
            Stage.END_OF_DATA, timeout_s=self._account.data_timeout_s
        )
        if not tx.end_of_data.positive and not then:
            pipeline.reset_pending = True

    async def _reset(self, session: Session) -> None:
        self._check_reset(await session.command(Stage.RSET, "RSET"))

    def _check_reset(self, reply: Reply) -> None:
        if not reply.positive:
            raise SessionLost(
                SessionFailure(
                    FailureKind.PROTOCOL,
                    f"{self._account.host} refused RSET after a failed transaction: {reply}",
                    reply,
                )
            )

    def _mail(self, message: OutgoingMessage, offer: ServerOffer) -> tuple[str | None, str]:
        """``_mail_command``, worked out once per message (pipelining asks twice)."""
        known = self._mail_lines.get(message.id)
        if known is None:
            facts = self._offer_facts
            if facts is None or facts.offer is not offer:
                facts = self._offer_facts = _OfferFacts(offer)
            known = self._mail_lines[message.id] = _mail_command(message, facts)
        return known

    # -- reporting ---------------------------------------------------------------------

    def _finish(self, tx: _Transaction) -> None:
        self._mail_lines.pop(tx.message.id, None)
        self._finished.add(tx.message.id)
        self._observer.transaction_finished(tx.report(self._transcript.render(since=tx.mark)))

    def _end(self, failure: SessionFailure | None) -> None:
        """The last words: DONE, then exactly one of session_finished / session_failed."""
        self._ended = True
        self._observer.phase_changed(Phase.DONE, None)
        transcript = self._transcript.render()
        if failure is None or self._aborting:
            self._observer.session_finished(transcript)
            return
        # Never finished, or broken mid-transaction (after its transaction_finished).
        unfinished = [
            message.id
            for message in self._messages
            if message.id not in self._finished or message.id == self._broken
        ]
        self._observer.session_failed(failure, unfinished, transcript)


def _rcpt_parameters(message: OutgoingMessage, offer: ServerOffer) -> str:
    """`` NOTIFY=…`` when the message asked for it and the server offers DSN (RFC 3461)."""
    dsn = message.dsn
    return dsn.rcpt_parameters() if dsn and offer.offers("DSN") else ""


def _dsn_not_offered(message: OutgoingMessage, host: str) -> str:
    return (
        f"message {message.id}: {host} does not offer DSN; sent without the delivery"
        f" status notifications it asked for ({message.dsn.describe() if message.dsn else ''})"
    )


def _needs_smtputf8(message: OutgoingMessage) -> bool:
    return message.needs_smtputf8 or not all(
        address.isascii() for address in (message.sender, *message.recipients)
    )


class _OfferFacts:
    """What ``_mail_command`` asks of a session's offer, worked out once per session."""

    __slots__ = ("dsn", "eight_bit_mime", "host", "offer", "size", "size_limit", "smtputf8")

    def __init__(self, offer: ServerOffer) -> None:
        self.offer = offer
        self.host = offer.host
        self.smtputf8 = offer.smtputf8
        self.eight_bit_mime = offer.eight_bit_mime
        self.size_limit = offer.size_limit
        self.size = offer.offers("SIZE")
        self.dsn = offer.offers("DSN")


def _mail_command(message: OutgoingMessage, offer: _OfferFacts) -> tuple[str | None, str]:
    """Why the message cannot go to this server (or None), and its MAIL FROM line."""
    host = offer.host
    for address in (message.sender, *message.recipients):
        if _CONTROL.search(address):
            return f"the address {address!r} contains a control character", ""
    utf8 = _needs_smtputf8(message)
    if utf8 and not offer.smtputf8:
        return (
            f"the message needs SMTPUTF8 (non-ASCII addresses or headers)"
            f" and {host} does not offer it",
            "",
        )
    if message.eight_bit and not offer.eight_bit_mime:
        return f"the message has 8-bit content and {host} does not offer 8BITMIME", ""
    limit = offer.size_limit
    if limit is not None and message.size > limit:
        return (
            f"the message is {message.size} bytes and {host} accepts at most {limit} bytes (SIZE)",
            "",
        )
    parts = [f"MAIL FROM:<{message.sender}>"]
    if offer.size:
        parts.append(f"SIZE={message.size}")
    if message.eight_bit and offer.eight_bit_mime:
        parts.append("BODY=8BITMIME")
    if utf8:
        parts.append("SMTPUTF8")
    line = " ".join(parts)
    if message.dsn and offer.dsn:
        line += message.dsn.mail_parameters()
    return None, line
