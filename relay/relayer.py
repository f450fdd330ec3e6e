"""The managed relayer: one SMTP session that sends a batch and reports every outcome.

After Twisted's ``SMTPManagedRelayer``: it is handed messages and an observer
(the attempt manager), sends the messages over one connection, and *reports*;
it never decides what a reply means and never writes the store. Unlike
Twisted's, every recipient's reply is reported on its own, and so is the
moment the final dot left (RFC 1047's duplicate window).

Per message, one code path whether the commands go pipelined or in
lock-step (``relay.smtp.pipelining``: only *when* a command is written differs):

| step | sent when | on a refusal |
|---|---|---|
| (may start?) | before anything of it is written | held since claimed: not started, |
| | | handed back (``transaction_may_start``) |
| local checks | always | too big for SIZE, or needs SMTPUTF8 / 8BITMIME |
| | | the server lacks: ``local_error``, nothing sent |
| MAIL FROM | checks passed, with ``SIZE=``, | report; RSET |
| | ``BODY=8BITMIME``, ``SMTPUTF8`` as offered and needed | |
| RCPT TO | once per recipient | that recipient's reply is reported; go on |
| DATA | some RCPT accepted | report; RSET |
| message data | 354 | streamed and stuffed by ``Session.send_data`` |
| end-of-data reply | final dot written, within ``data_timeout_s`` | report; RSET |

RSET follows a failed transaction only when another message follows (QUIT
discards a transaction as well). Recipients refused with 452 only for the
server's limit on recipients per transaction (RFC 5321 section 4.5.3.1.10),
when the transaction took others, go in a further transaction of the same
message right after it: its report lists them as ``continued``, and the next
transaction reports them again, once each. Once such a 452 has come, no
further RCPT goes into that transaction (those not yet written wait for the
next one, unreported): a server counts RCPTs over its limit against the
client, and Postfix ends the session past ``smtpd_recipient_overshoot_limit``.
Each transaction's stored transcript is the session's opening and its own
lines only (the transcript's ``owner``), even where pipelining interleaves two
on the wire.

A 421, a lost connection or a timeout at any point ends the session: the
transaction in flight is reported with what is known (its
``connection_error``, and ``data_completed`` telling whether the server may
have it), then ``session_failed`` names every message not finished.
``run()`` never raises for anything the network or the server does.

A server that turns a new connection away at its greeting (``421``: Postfix's
``smtpd_client_connection_count_limit``, Exim's ``smtp_accept_max_per_host``)
while another session of the same account opened and is still sending
(``others_open``, which waits for an opening under way to end) limits
connections, not mail: that session hands its messages back untouched
(``turned_away``, ``session_finished``) for the open one to take, and no reply
of it is reported -- a 421 ``4.7.0`` would otherwise pause the whole account as
a rate limit (``relay.throttle``), the open session included. When every
session is turned away, none is open: each fails as any 421 greeting does.

Stopping: ``stop()`` lets the transaction in flight finish, sends QUIT and
hands the rest back untouched (``session_finished``); ``stop(abort=True)``
drops the connection at once and reports the transaction in flight as it
stood (after the final dot that makes its recipients *uncertain*: the truth).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from relay.accounts import Account
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
from relay.smtp.opening import open_until_auth
from relay.smtp.pipelining import Command, Dialogue, Lockstep, Pipeline, envelope
from relay.smtp.session import ServerOffer, Session, SessionLost
from relay.smtp.transcript import Transcript
from relay.states import Phase

if TYPE_CHECKING:
    from relay.login_turns import LoginTurns
    from relay.oauth.tokens import TokenSource

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # C0 controls and DEL: never in a command line


@dataclass(slots=True)
class _Transaction:
    """What is known about the transaction in flight, turned into a report at its end."""

    message: OutgoingMessage
    serial: int  # the transaction's number in the session: its transcript lines' owner
    mark: int = 0  # no line of it comes before this (its group may go with the last dot)
    mail: Reply | None = None
    recipients: dict[str, Reply] = field(default_factory=dict)
    data: Reply | None = None
    end_of_data: Reply | None = None
    data_completed: bool = False
    local_error: str | None = None
    connection_error: SessionFailure | None = None
    sent_bytes: int = 0
    #: Recipients whose RCPT was never written: the server's limit was reached first.
    withheld: tuple[str, ...] = ()
    #: The same message for the recipients over the server's limit (``_continuation``).
    continuation: OutgoingMessage | None = None
    continued: tuple[str, ...] = ()

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
            continued=self.continued,
        )


class ManagedRelayer:
    """Sends ``messages`` over one session to ``account``'s server, reporting to ``observer``.

    Create, ``await run()`` once; ``stop()`` from anywhere on the same loop.
    With ``login_turns`` (shared by the account's sessions of one flush) the
    session opens up to AUTH and logs in only when it is its turn; when the
    credentials were refused on another session it says QUIT instead, and
    hands every message back untouched.
    """

    def __init__(
        self,
        account: Account,
        password: str | TokenSource | None,
        messages: Sequence[OutgoingMessage],
        observer: RelayObserver,
        *,
        login_turns: LoginTurns | None = None,
        others_open: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._account = account
        self._login_turns = login_turns
        self._others_open = others_open
        #: The server turned this session away at its greeting while another was open.
        self.turned_away = False
        self._password = password
        self._messages = tuple(messages)
        self._observer = observer
        self._transcript = Transcript()
        self._stopping = False
        self._aborting = False
        self._opening: asyncio.Task[Session | SessionFailure | None] | None = None
        self._session: Session | None = None
        self._finished: set[int] = set()
        self._broken: int | None = None
        self._current_address: str | None = None
        self._mail_lines: dict[int, tuple[str | None, str]] = {}  # see ``_mail``
        self._last_start: int | None = None  # the transcript's mark as the last one began
        self._serial = 0  # numbers the transactions (a message may take more than one)
        self._held_back: set[int] = set()  # not allowed to start: held since claimed
        self._ran = False
        self._ended = False

    @property
    def transcript(self) -> Transcript:
        return self._transcript

    async def opened(self) -> bool:
        """Whether this session opened and has not ended; waits for its opening to end."""
        opening = self._opening
        if opening is None or self._ended:
            return False
        if not opening.done():
            await asyncio.wait({opening})
        if opening.cancelled() or opening.exception() is not None:
            return False
        return isinstance(opening.result(), Session) and not self._ended

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

        self._opening = asyncio.create_task(self._opened(phase))
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
        if result is None:  # another session's login was refused: this one said QUIT
            self._end(None)
            return None
        if isinstance(result, SessionFailure):
            if await self._is_turned_away(result):
                self.turned_away = True
                self._transcript.note(
                    "turned away while another connection to the server is open:"
                    " its messages are handed back for that one"
                )
                self._end(None)
                return None
            self._end(result)
            return None
        if self._stopping:  # stop() while opening: nothing was started
            await result.quit()
            self._end(None)
            return None
        return result

    async def _is_turned_away(self, failure: SessionFailure) -> bool:
        """A 421 greeting while another session of the account is open (module docstring)."""
        reply = failure.reply
        if reply is None or reply.stage is not Stage.GREETING or reply.code != 421:
            return False
        return self._others_open is not None and await self._others_open()

    async def _opened(self, phase: Callable[[Phase], None]) -> Session | SessionFailure | None:
        """Open up to AUTH, then log in when it is this session's turn (``login_turns``).

        None when another session's credentials were refused: the server heard
        QUIT instead of them, and the connection is closed.
        """
        opening = await open_until_auth(
            self._account, self._password, transcript=self._transcript, on_phase=phase
        )
        if isinstance(opening, SessionFailure):
            return opening
        try:
            if self._login_turns is None:
                return await opening.authenticate()
            async with self._login_turns.turn() as may_log_in:
                if not may_log_in:
                    self._transcript.note(
                        "the server refused these credentials on another connection:"
                        " not sending them again"
                    )
                    await opening.quit()
                    return None
                result = await opening.authenticate()
                if isinstance(result, Session):
                    self._login_turns.credentials_taken()
                elif result.kind in (FailureKind.AUTH, FailureKind.SIGN_IN):
                    self._login_turns.credentials_refused()
                return result
        finally:
            opening.close()  # cancelled while waiting: once open, the Session owns it

    async def _send_all(self, session: Session) -> None:
        dialogue: Dialogue = (
            Pipeline(session)
            if session.offer.pipelining and self._account.pipelining
            else Lockstep(session)
        )
        waiting = deque(self._messages)
        while waiting:
            message = waiting.popleft()
            if self._stopping:
                if dialogue.ahead is not None:
                    self._transcript.note(
                        "stopped: the next message's commands were already sent;"
                        " dropping the connection so that it goes no further"
                    )
                    session.abort()
                return
            tx = _Transaction(message, self._next_serial(), self._next_mark())
            self._transcript.owner = tx.serial
            if not await self._open_group(dialogue, tx):
                self._transcript.owner = None
                continue  # held since it was claimed: handed back untouched
            try:
                await self._transact(session, dialogue, tx, waiting)
            except asyncio.CancelledError:
                tx.connection_error = SessionFailure(
                    FailureKind.DROPPED,
                    "stopped: the transaction was cancelled"
                    + (" after the end of the data" if tx.data_completed else ""),
                )
                self._broken = message.id
                self._finish(tx)
                raise
            except SessionLost as lost:
                failure = lost.failure
                if self._aborting:
                    failure = SessionFailure(
                        FailureKind.DROPPED,
                        "stopped: the transaction was aborted"
                        + (" after the end of the data" if tx.data_completed else ""),
                    )
                    self._transcript.note(failure.text)
                elif failure.kind is FailureKind.CLOSING and failure.reply is not None:
                    tx.record(failure.reply, self._current_address)
                    if failure.reply.stage is Stage.RCPT and self._current_address:
                        self._observer.recipient_replied(
                            message.id, self._current_address, failure.reply
                        )
                tx.connection_error = failure
                self._broken = message.id
                self._finish(tx)
                if self._aborting:
                    return
                raise
            if tx.continuation is not None and not self._stopping:
                tx.continued = tx.continuation.recipients
                waiting.appendleft(tx.continuation)
            self._finish(tx)
            self._transcript.owner = None
            if dialogue.unsettled:
                await dialogue.settle()

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _next_mark(self) -> int:
        """Where the next transaction's lines may start: with the last transaction, whose
        final dot may have carried its group (its ``render`` picks its own lines)."""
        now = self._transcript.mark()
        mark = now if self._last_start is None else self._last_start
        self._last_start = now
        return mark

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

    async def _may_start(self, message: OutgoingMessage) -> bool:
        """Whether the attempt manager lets ``message``'s transaction start (not held)."""
        answer = self._observer.transaction_may_start(message.id)
        allowed = answer if isinstance(answer, bool) else await answer
        if not allowed:
            self._hold_back(message)
        return allowed

    def _hold_back(self, message: OutgoingMessage) -> None:
        """``message`` may not start (held since it was claimed): it is handed back untouched."""
        self._held_back.add(message.id)
        self._transcript.note(
            f"message {message.id} was held before its transaction started: not sent"
        )

    async def _open_group(self, dialogue: Dialogue, tx: _Transaction) -> bool:
        """Put the envelope on the wire unless it already went with the last dot; false
        when the message may not start (held since it was claimed).

        A due RSET goes first, and its reply is read here, before the
        transaction starts, as lock-step reads it after the last one.
        """
        message = tx.message
        if dialogue.ahead == tx.serial:
            dialogue.ahead = None
            return True
        dialogue.ahead = None
        if message.id in self._held_back or not await self._may_start(message):
            return False
        problem, mail_line = self._mail(message, dialogue.session.offer)
        if problem is not None:
            return True  # reported by the transaction; nothing is sent
        rcpt_parameters = _rcpt_parameters(message, dialogue.session.offer)
        if dialogue.send_envelope(envelope(message, mail_line, rcpt_parameters)):
            self._check_reset(await dialogue.read(Stage.RSET))
        return True

    async def _send_body(self, session: Session, tx: _Transaction, following: _Following) -> None:
        """The data and its final dot (with the next group, pipelining), progress reported."""
        observer = self._observer
        message = tx.message

        def progressed(sent_bytes: int) -> None:
            tx.sent_bytes = sent_bytes
            observer.data_progressed(message.id, sent_bytes, message.size)

        def completing() -> Awaitable[None] | None:
            recorded = observer.data_completed(message.id)
            if following.message is None:
                return recorded
            answer = observer.transaction_may_start(following.message.id)
            if isinstance(answer, bool):
                following.allowed = answer
                return recorded
            return following.wait(recorded, answer)

        def then() -> tuple[list[Command], int | None]:
            return self._following_commands(following), following.serial

        await session.send_data(
            message.body, progressed=progressed, completing=completing, then=then
        )
        # Only now has the final dot left. The durable record came first (a
        # crash while it was written must count as "may have it"), but a session
        # lost while that record was awaited never sent the dot: deferred, not
        # uncertain.
        tx.data_completed = True
        observer.phase_changed(Phase.AWAITING_VERDICT, message.id)

    async def _transact(
        self,
        session: Session,
        dialogue: Dialogue,
        tx: _Transaction,
        waiting: deque[OutgoingMessage],
    ) -> None:
        """One transaction, pipelined or not: the same reports, read in the same order."""
        observer = self._observer
        message = tx.message
        if self._begin(tx, session.offer) is None:
            return
        tx.mail = await dialogue.read(Stage.MAIL)
        if not tx.mail.positive:
            dialogue.leave_unclaimed([Stage.RCPT] * len(message.recipients) + [Stage.DATA])
            return
        recipients = message.recipients
        offered = len(recipients)  # shrinks once the server's recipient limit is reached
        accepted = False
        for index, address in enumerate(recipients):
            if index == offered:
                break
            self._current_address = address
            reply = await dialogue.read(Stage.RCPT)
            tx.recipients[address] = reply
            observer.recipient_replied(message.id, address, reply)
            if reply.positive:
                accepted = True
            elif accepted and offered == len(recipients) and _over_limit(reply):
                # No more RCPTs into a full transaction: a server counts them against
                # the client (Postfix hangs up past smtpd_recipient_overshoot_limit),
                # and each further transaction would be offered them all again.
                offered -= dialogue.withhold_recipients()
        tx.withheld = recipients[offered:]
        self._current_address = None
        if not any(reply.positive for reply in tx.recipients.values()):
            dialogue.leave_unclaimed([Stage.DATA])
            return
        tx.continuation = _continuation(tx)
        tx.data = await dialogue.read(Stage.DATA)
        if tx.data.code != 354:  # a refusal (anything else positive ended the session)
            dialogue.reset_pending = True
            return
        following = _Following()
        if dialogue.pipelining and not self._stopping:
            upcoming = tx.continuation or (waiting[0] if waiting else None)
            if upcoming is not None and upcoming.id not in self._held_back:
                self._plan_following(following, upcoming, dialogue)
        await self._send_body(session, tx, following)
        dialogue.ahead = following.serial if following.sent else None
        tx.end_of_data = await dialogue.read(
            Stage.END_OF_DATA, timeout_s=self._account.data_timeout_s
        )
        if not tx.end_of_data.positive and not following.sent:
            dialogue.reset_pending = True

    def _check_reset(self, reply: Reply) -> None:
        if not reply.positive:
            raise SessionLost(
                SessionFailure(
                    FailureKind.PROTOCOL,
                    f"{self._account.host} refused RSET after a failed transaction: {reply}",
                    reply,
                )
            )

    def _plan_following(
        self, following: _Following, message: OutgoingMessage, dialogue: Dialogue
    ) -> None:
        """Make ``message``'s group ready to go with this final dot (PIPELINING)."""
        offer = dialogue.session.offer
        problem, mail_line = self._mail(message, offer)
        if problem is not None:
            return  # refused before MAIL: it goes its own way, and sends nothing
        following.message = message
        following.serial = self._serial + 1  # the next transaction's number
        following.dialogue = dialogue
        following.group = envelope(message, mail_line, _rcpt_parameters(message, offer))

    def _following_commands(self, following: _Following) -> list[Command]:
        """What to write with the dot: the next group's first slice, or nothing."""
        message, dialogue = following.message, following.dialogue
        if message is None or dialogue is None or self._stopping:
            return []
        if not following.allowed:
            self._hold_back(message)
            return []
        following.sent = True
        return dialogue.for_the_dot(following.group)

    def _mail(self, message: OutgoingMessage, offer: ServerOffer) -> tuple[str | None, str]:
        """``_mail_command``, worked out once per message (pipelining asks twice)."""
        known = self._mail_lines.get(message.id)
        if known is None:
            known = self._mail_lines[message.id] = _mail_command(message, offer)
        return known

    # -- reporting ---------------------------------------------------------------------

    def _finish(self, tx: _Transaction) -> None:
        self._mail_lines.pop(tx.message.id, None)
        self._finished.add(tx.message.id)
        transcript = self._transcript.render(since=tx.mark, owner=tx.serial)
        self._observer.transaction_finished(tx.report(transcript))

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


def _mail_command(message: OutgoingMessage, offer: ServerOffer) -> tuple[str | None, str]:
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
    if offer.offers("SIZE"):
        parts.append(f"SIZE={message.size}")
    if message.eight_bit and offer.eight_bit_mime:
        parts.append("BODY=8BITMIME")
    if utf8:
        parts.append("SMTPUTF8")
    line = " ".join(parts)
    if message.dsn and offer.offers("DSN"):
        line += message.dsn.mail_parameters()
    return None, line


class _Following:
    """The next transaction's group, to go out with this one's final dot (PIPELINING).

    It goes only if the attempt manager lets that message start (it may have
    been held since it was claimed: asked in the same commit as this message's
    final-dot record) and the relayer is not stopping; otherwise it waits for
    its own turn, or is handed back. The relayer plans it
    (``_plan_following``) and writes it (``_following_commands``).
    """

    __slots__ = ("allowed", "dialogue", "group", "message", "sent", "serial")

    def __init__(self) -> None:
        self.dialogue: Dialogue | None = None
        self.group: list[Command] = []
        self.message: OutgoingMessage | None = None
        self.serial: int | None = None
        self.allowed = False
        self.sent = False

    async def wait(self, recorded: Awaitable[None] | None, answer: Awaitable[bool]) -> None:
        if recorded is not None:
            await recorded
        self.allowed = await answer


def _continuation(tx: _Transaction) -> OutgoingMessage | None:
    """The same message for the recipients refused only for the server's recipient limit.

    RFC 5321 section 4.5.3.1.10: a server that takes only so many recipients
    per transaction answers the rest 452 (552 in RFC 821's day); section
    4.5.3.1.8: the client sends the message again, in a further transaction,
    to those, and to those it withheld once the limit was reached (``withheld``:
    their RCPT never went). Only when this transaction took someone: each
    further one then owes fewer recipients, so a message takes at most one
    transaction per recipient, and a 452 that means "not now" for everyone is
    a deferral.
    """
    over = tuple(a for a, reply in tx.recipients.items() if _over_limit(reply)) + tx.withheld
    if not over or not any(reply.positive for reply in tx.recipients.values()):
        return None
    return replace(tx.message, recipients=over)


def _over_limit(reply: Reply) -> bool:
    """A RCPT reply that may mean the transaction holds all the recipients it can."""
    return reply.code in (452, 552)
