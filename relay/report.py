"""What the managed relayer reports to the attempt manager, and how.

The relayer *reports*; the attempt manager *decides* (Twisted's vocabulary).
Everything here is a plain value: a 451 is data, not an exception. The relayer
translates aiosmtplib's exceptions into these values at its edge and nothing
beyond it ever sees them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from relay.dsn import DsnRequest
from relay.states import Phase


class Stage(StrEnum):
    """The SMTP step a reply answered."""

    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    END_OF_DATA = "end of data"
    RSET = "rset"
    QUIT = "quit"


@dataclass(frozen=True, slots=True)
class Reply:
    """A server's reply to one command (``code`` 0: no reply, see ``text``)."""

    stage: Stage
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip() if self.code else self.text

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


class FailureKind(StrEnum):
    """Why a whole session ended early."""

    CONNECT = "connect"  # refused, DNS, unreachable, connect timeout
    TLS = "tls"  # handshake or certificate failure, STARTTLS required but missing
    AUTH = "auth"  # credentials refused (5xx to AUTH)
    SIGN_IN = "sign-in"  # an OAuth2 grant refused (revoked, expired): a person must sign in
    TIMEOUT = "timeout"  # a reply did not come in time
    DROPPED = "dropped"  # the server closed the connection
    CLOSING = "closing"  # 421: the server is shutting the session down
    PROTOCOL = "protocol"  # a reply we cannot parse, or another unexpected answer
    PASSWORD = "password"  # no session at all: the account's password command gave none


@dataclass(frozen=True, slots=True)
class SessionFailure:
    kind: FailureKind
    text: str
    reply: Reply | None = None
    #: ``AUTH`` only: the server offers no mechanism Outbox speaks (or no AUTH at
    #: all), so the credentials were never tried and changing them would not help.
    no_mechanism: bool = False

    def __str__(self) -> str:
        return self.text


class BodySource(Protocol):
    """A message body read piece by piece rather than held whole (a large stored message).

    Its line endings are CRLF throughout, as the store keeps them.
    """

    @property
    def size(self) -> int:
        """The body's length in bytes, known without reading it (for SIZE= and progress)."""
        ...

    def pieces(self, piece_bytes: int) -> Generator[bytes, None, None]:
        """The body in order, at most ``piece_bytes`` a piece; ``close()`` it when done."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message as handed to a relayer: the envelope still owed and its bytes.

    ``body`` is the exact message as stored (CRLF line endings, no dot-stuffing):
    the relayer stuffs it on the wire. A large one comes as a ``BodySource``,
    streamed from the store while it is sent.
    """

    id: int
    sender: str
    recipients: tuple[str, ...]
    body: bytes | BodySource
    needs_smtputf8: bool = False
    eight_bit: bool = False
    #: Delivery status notifications asked for (RFC 3461), passed on where DSN is offered.
    dsn: DsnRequest | None = None

    @property
    def size(self) -> int:
        body = self.body
        return len(body) if isinstance(body, bytes) else body.size


@dataclass(frozen=True, slots=True)
class TransactionReport:
    """Everything that happened to one message in one session.

    ``recipients`` holds the RCPT reply of each address that was tried.
    ``data_completed`` is true once the final ``.`` was written: from then on a
    lost connection leaves the accepted recipients *uncertain* (RFC 1047).
    ``local_error`` is set when the relayer refused the message before its
    DATA (too big for the server's SIZE, needs SMTPUTF8 the server lacks …).
    ``connection_error`` is set when the session broke during this transaction.
    ``continued`` are recipients the server refused only for its limit on
    recipients per transaction (452, RFC 5321 section 4.5.3.1.10): the relayer
    offers them again in a further transaction of the same message, reported
    as a transaction of its own, right after this one; they have no verdict yet.
    """

    message_id: int
    mail: Reply | None = None
    recipients: Mapping[str, Reply] = field(default_factory=dict)
    data: Reply | None = None
    end_of_data: Reply | None = None
    data_completed: bool = False
    local_error: str | None = None
    connection_error: SessionFailure | None = None
    sent_bytes: int = 0
    transcript: str = ""
    continued: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    account: str
    host: str
    port: int


class RelayObserver(Protocol):
    """The attempt manager's side of the conversation, as the relayer sees it.

    Calls come in this order for one session: ``session_started``, then for
    each message ``transaction_started`` … ``transaction_finished``, with
    ``phase_changed``, ``recipient_replied``, ``data_progressed`` and
    ``data_completed`` in between; finally exactly one of ``session_finished``
    or ``session_failed``. ``session_failed`` lists the ids it was handed and
    never finished (not started, or broken mid-transaction after its
    ``transaction_finished``). ``data_completed`` may return an awaitable: the
    final dot is written once it is done (a durable record sharing a commit).

    ``transaction_may_start`` is the one question: asked before anything of a
    message's transaction goes on the wire (with PIPELINING, while the final
    dot of the one before it waits for its record), it says whether the
    message may still be sent -- false when a person held it after it was
    claimed. A message refused there is not started, and handed back.
    """

    def session_started(self, session: SessionInfo, message_ids: Sequence[int]) -> None: ...

    def phase_changed(self, phase: Phase, message_id: int | None) -> None: ...

    def transaction_may_start(self, message_id: int) -> bool | Awaitable[bool]: ...

    def transaction_started(self, message_id: int) -> None: ...

    def recipient_replied(self, message_id: int, address: str, reply: Reply) -> None: ...

    def data_progressed(self, message_id: int, sent_bytes: int, total_bytes: int) -> None: ...

    def data_completed(self, message_id: int) -> Awaitable[None] | None: ...

    def transaction_finished(self, report: TransactionReport) -> None: ...

    def session_finished(self, transcript: str) -> None: ...

    def session_failed(
        self, failure: SessionFailure, unfinished: Sequence[int], transcript: str
    ) -> None: ...
