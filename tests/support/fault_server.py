"""A fault-injecting SMTP server of our own (no aiosmtpd): every reply is scripted.

``Faults`` says what to answer at each stage; an answer is a reply text
(``"450 4.2.0 try later"``, lines separated by ``\\n`` for a multi-line reply)
or one of:

- ``DROP``: close the connection instead of answering;
- ``SILENCE``: never answer (the client's timeout has to end it);
- ``Late(seconds, text)``: answer, but only after ``seconds``;
- ``Raw(data)``: send exactly these bytes.

MAIL and end-of-data may take a sequence, one answer per MAIL command and
per message data respectively (the last one repeats), so a test can fail
the second message only. RCPT answers go per address.
``rcpt_limit`` takes that many recipients per transaction and answers
the rest ``452 4.5.3`` as Postfix's ``smtpd_recipient_limit`` does.
``drop_after_data_bytes`` closes the connection in the middle of the message
data; ``stall_data`` stops reading it for a while. STARTTLS is offered when
``tls_context`` is given (``implicit_tls`` uses it from the first byte
instead); PIPELINING is just an entry in ``extensions`` -- the server reads
and answers commands in order, so a pipelining client works. ``pipelined``
counts the commands that were already waiting when the server went to read
them (0 for a lock-step client); ``max_clients`` caps the connections open at
once (``turned_away`` counts the ones refused). With ``enforce_order`` the server keeps
RFC 5321's order as a real one does: RCPT without an accepted MAIL gets
``503``, DATA without an accepted RCPT gets ``554`` (a pipelining client sends
them anyway).

The server records every command line (``commands``), every DATA it saw
(``messages``: the bytes as sent on the wire and un-stuffed, and whether the
final dot arrived) and how many connections it took. ``async with
FaultServer(faults)`` runs it in the test's loop, ``threaded_fault_server``
on its own thread; either stops, connections included, when its block ends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from relay.accounts import Account, Security
from tests.support.loopback import QUIET_ENDINGS, LoopbackServer, on_own_thread


@dataclass(frozen=True)
class Drop:
    """Close the connection instead of answering."""


@dataclass(frozen=True)
class Silence:
    """Never answer; wait for the client to give up."""


@dataclass(frozen=True)
class Raw:
    """Send these bytes verbatim (two replies at once, garbage, half a line …)."""

    data: bytes


@dataclass(frozen=True)
class Late:
    """Answer ``text``, but only after ``seconds``."""

    seconds: float
    text: str


DROP = Drop()
SILENCE = Silence()
Response = str | Drop | Silence | Late | Raw


@dataclass(frozen=True)
class Faults:
    greeting: Response = "220 fault.test ESMTP ready"
    extensions: tuple[str, ...] = ("8BITMIME", "SIZE 104857600", "SMTPUTF8", "ENHANCEDSTATUSCODES")
    ehlo: Response | None = None  # None: 250 listing the extensions (+ STARTTLS, AUTH)
    helo: Response = "250 fault.test"
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    starttls: Response = "220 2.0.0 Ready to start TLS"
    auth_mechanisms: tuple[str, ...] = ()  # offered in EHLO when not empty
    auth: Response = "235 2.7.0 Authentication successful"
    mail: Response | Sequence[Response] = "250 2.1.0 OK"
    rcpt: Mapping[str, Response] = field(default_factory=dict)
    rcpt_default: Response = "250 2.1.5 OK"
    #: Recipients taken per transaction; the rest get 452 (RFC 5321 section 4.5.3.1.10).
    rcpt_limit: int | None = None
    data: Response = "354 End data with <CR><LF>.<CR><LF>"
    drop_after_data_bytes: int | None = None
    stall_data: tuple[int, float] | None = None  # after N bytes of data, read nothing for S s
    end_of_data: Response | Sequence[Response] = "250 2.0.0 Queued"
    rset: Response = "250 2.0.0 OK"
    quit: Response = "221 2.0.0 Bye"
    enforce_order: bool = False
    #: Connections open at once; one more is greeted ``421 4.7.0 … too many connections``
    #: and closed, as Postfix's ``smtpd_client_connection_count_limit`` does.
    max_clients: int | None = None


@dataclass
class ReceivedData:
    """One DATA as the server saw it."""

    mail_from: str  # the MAIL command's argument, e.g. "FROM:<a@example.org> SIZE=12"
    rcpt_tos: list[str]  # addresses whose RCPT the server accepted
    wire: bytes  # the data as sent (stuffed), the final ".\r\n" excluded
    complete: bool  # the final dot arrived

    @property
    def body(self) -> bytes:
        """The data un-stuffed (RFC 5321 section 4.5.2), as a server would store it."""
        return b"\r\n".join(
            line[1:] if line.startswith(b".") else line for line in self.wire.split(b"\r\n")
        )


class _Closed(Exception):
    """The conversation is over (the client left, or the script dropped it)."""


class _Connection:
    """One client: a byte buffer over the stream, so data and commands can share it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.filled = False  # read from the socket since this was last cleared

    async def fill(self) -> None:
        self.filled = True
        chunk = await self.reader.read(256 * 1024)
        if not chunk:
            raise _Closed
        self.buffer += chunk

    async def line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            await self.fill()

    async def data(
        self, drop_after: int | None, stall: tuple[int, float] | None = None
    ) -> tuple[bytes, bool]:
        """The message data up to the final dot line; (what came, False) if dropped."""
        searched = 0
        while True:
            if stall is not None and len(self.buffer) >= stall[0]:
                await asyncio.sleep(stall[1])  # the fault itself: a server that stops reading
                stall = None
            if self.buffer.startswith(b".\r\n"):
                del self.buffer[:3]
                return b"", True
            end = self.buffer.find(b"\r\n.\r\n", max(0, searched - 4))
            if end >= 0:
                wire = bytes(self.buffer[: end + 2])
                del self.buffer[: end + 5]
                return wire, True
            searched = len(self.buffer)
            if drop_after is not None and len(self.buffer) >= drop_after:
                return bytes(self.buffer), False
            await self.fill()

    async def say(self, text: str) -> None:
        lines = text.split("\n")
        payload = "".join(
            f"{line[:3]}-{line[4:]}\r\n" if index < len(lines) - 1 else f"{line}\r\n"
            for index, line in enumerate(lines)
        )
        self.writer.write(payload.encode("utf-8"))
        try:
            await self.writer.drain()
        except ConnectionError:
            raise _Closed from None

    async def respond(self, response: Response) -> None:
        if isinstance(response, Drop):
            self.writer.close()
            raise _Closed
        if isinstance(response, Silence):
            while True:  # until the client leaves
                await self.fill()
                self.buffer.clear()
        if isinstance(response, Late):
            await asyncio.sleep(response.seconds)
            response = response.text
        if isinstance(response, Raw):
            self.writer.write(response.data)
            try:
                await self.writer.drain()
            except ConnectionError:
                raise _Closed from None
            return
        await self.say(response)


class FaultServer(LoopbackServer):
    """The scripted server; ``async with`` it, then point an account at ``host``:``port``."""

    quiet_endings = (*QUIET_ENDINGS, _Closed)

    def __init__(self, faults: Faults | None = None, **changes: Any) -> None:
        self.faults = replace(faults or Faults(), **changes)
        super().__init__(tls=self.faults.tls_context if self.faults.implicit_tls else None)
        self.commands: list[str] = []
        self.messages: list[ReceivedData] = []
        self.connections = 0
        self.turned_away = 0  # connections refused for ``max_clients``
        self._open = 0
        self.pipelined = 0

    def account(self, **changes: Any) -> Account:
        """An account for this server (plain, small timeouts unless overridden)."""
        security = Security.NONE
        if self.faults.implicit_tls:
            security = Security.TLS
        elif self.faults.tls_context is not None:
            security = Security.STARTTLS
        base = Account(
            name="fault",
            host=self.host,
            port=self.port,
            security=security,
            connect_timeout_s=5.0,
            command_timeout_s=5.0,
            data_timeout_s=5.0,
        )
        return replace(base, **changes)

    def verbs(self) -> list[str]:
        """The command verbs received, in order (``["EHLO", "MAIL", …]``)."""
        return [command.split(" ", 1)[0].upper() for command in self.commands]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = _Connection(reader, writer)
        limit = self.faults.max_clients
        if limit is not None and self._open >= limit:
            self.turned_away += 1
            await connection.respond("421 4.7.0 fault.test Error: too many connections")
            return
        self._open += 1
        try:
            await connection.respond(self.faults.greeting)
            await self._converse(connection)
        finally:
            self._open -= 1

    async def _converse(self, connection: _Connection) -> None:
        faults = self.faults
        mails = 0  # MAIL commands so far: indexes ``faults.mail``
        transactions = 0  # DATA phases so far: indexes ``faults.end_of_data``
        mail_from = ""
        accepted: list[str] = []
        tls_active = faults.implicit_tls
        in_mail = False  # a MAIL was accepted and the transaction is open (enforce_order)
        while True:
            connection.filled = False
            raw = await connection.line()
            if not connection.filled:
                self.pipelined += 1
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(text)
            verb, _, argument = text.partition(" ")
            verb = verb.upper()
            response: Response
            if verb == "EHLO":
                response = faults.ehlo if faults.ehlo is not None else self._ehlo(tls_active)
            elif verb == "HELO":
                response = faults.helo
            elif verb == "STARTTLS":
                if faults.tls_context is None or tls_active:
                    response = "502 5.5.1 STARTTLS not offered"
                else:
                    await connection.respond(faults.starttls)
                    if isinstance(faults.starttls, str) and faults.starttls.startswith("220"):
                        connection.buffer.clear()  # RFC 3207 4.2: nothing carries over
                        await connection.writer.start_tls(faults.tls_context)
                        tls_active = True
                    continue
            elif verb == "AUTH":
                await self._auth(connection, argument)
                continue
            elif verb == "MAIL":
                response = _pick(faults.mail, mails)
                mails += 1
                mail_from, accepted = argument, []
                in_mail = not (isinstance(response, str) and not response.startswith("2"))
            elif verb == "RCPT" and faults.enforce_order and not in_mail:
                response = "503 5.5.1 Error: need MAIL command"
            elif (
                verb == "RCPT"
                and faults.rcpt_limit is not None
                and (len(accepted) >= faults.rcpt_limit)
            ):
                response = "452 4.5.3 Error: too many recipients"
            elif verb == "RCPT":
                address = argument.partition("<")[2].partition(">")[0]
                response = faults.rcpt.get(address, faults.rcpt_default)
                if isinstance(response, str) and response.startswith("2"):
                    accepted.append(address)
            elif verb == "DATA" and faults.enforce_order and not accepted:
                response = "554 5.5.1 Error: no valid recipients"
            elif verb == "DATA":
                in_mail = False
                response = faults.data
                if not (isinstance(response, str) and response.startswith("354")):
                    await connection.respond(response)
                    continue
                await connection.respond(response)
                wire, complete = await connection.data(
                    faults.drop_after_data_bytes, faults.stall_data
                )
                self.messages.append(ReceivedData(mail_from, list(accepted), wire, complete))
                if not complete:
                    await connection.respond(DROP)
                response = _pick(faults.end_of_data, transactions)
                transactions += 1
            elif verb == "RSET":
                response = faults.rset
                mail_from, accepted, in_mail = "", [], False
            elif verb == "NOOP":
                response = "250 2.0.0 OK"
            elif verb == "QUIT":
                await connection.respond(faults.quit)
                return
            else:
                response = "500 5.5.2 Command unrecognised"
            await connection.respond(response)

    def _ehlo(self, tls_active: bool) -> str:
        faults = self.faults
        lines = ["fault.test greets you", *faults.extensions]
        if faults.tls_context is not None and not tls_active:
            lines.append("STARTTLS")
        if faults.auth_mechanisms:
            lines.append("AUTH " + " ".join(faults.auth_mechanisms))
        return "\n".join(f"250 {line}" for line in lines)

    async def _auth(self, connection: _Connection, argument: str) -> None:
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() == "LOGIN":
            if not initial:
                await connection.say("334 VXNlcm5hbWU6")
                self.commands.append((await connection.line()).decode().rstrip("\r\n"))
            await connection.say("334 UGFzc3dvcmQ6")
            self.commands.append((await connection.line()).decode().rstrip("\r\n"))
        elif mechanism.upper() == "PLAIN" and not initial:
            await connection.say("334 ")
            self.commands.append((await connection.line()).decode().rstrip("\r\n"))
        await connection.respond(self.faults.auth)


def _pick(response: Response | Sequence[Response], index: int) -> Response:
    if isinstance(response, str | Drop | Silence | Late | Raw):
        return response
    return response[min(index, len(response) - 1)]


@contextmanager
def threaded_fault_server(faults: Faults | None = None, **changes: Any) -> Iterator[FaultServer]:
    """A ``FaultServer`` on its own thread and event loop (for subprocess or Qt tests)."""
    with on_own_thread(FaultServer(faults, **changes), "fault-server") as server:
        yield server
