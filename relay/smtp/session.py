"""The open SMTP session: the transactions' side of a connection, after the opening.

``relay.smtp.opening`` connects, secures, greets and authenticates, and hands
over a ``Session``: the account, what the server offered (``ServerOffer``),
the transcript so far, and the connection's transport, now driven by
``relay.smtp.wire.Wire``. The relayer talks through it and through nothing
else: a command and its reply (``command``), several commands in one write
for PIPELINING (``send_commands``, then ``read_reply`` for each), the
message data with progress and the final dot (``send_data``), QUIT.

What it must do:

- end the session, rather than guess, whenever replies could no longer be
  paired with commands: a reply nobody asked for, a reply timeout, bytes that
  are not SMTP, a 421 (the server leaving). Its methods then raise
  ``SessionLost`` carrying a ``SessionFailure`` in words a person can act on;
  that is the end of the conversation, not a mistake, and the relayer turns it
  into reports at its edge. No ``Wire``, OS or ssl exception leaves it.
- record everything said in the ``Transcript``, and keep reply texts as a
  person may read them (secrets masked, control characters escaped, bounded);
- call ``completing`` immediately before the write that carries the final
  dot (RFC 1047's window: see ``send_data``).

What it must not do: decide what a reply means for a message (the relayer
reports, the attempt manager decides), open or secure a connection, or know
about accounts' credentials.

Timeouts come from the account: ``command_timeout_s`` for each reply and for a
DATA write that makes no progress (RFC 5321 section 4.5.3.2's "data block");
``data_timeout_s`` for the verdict after the final dot (the caller passes it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import aiosmtplib

from relay.accounts import Account, Security
from relay.report import BodySource, FailureKind, Reply, SessionFailure, Stage
from relay.smtp.data_encoding import CHUNK_BYTES, DataChunk, data_chunks, stream_chunks
from relay.smtp.transcript import Transcript, printable
from relay.smtp.wire import Wire, WireClosed, WireError, WireGarbled, WireTimeout

#: How long QUIT may take before we just close: its reply changes nothing.
QUIT_TIMEOUT_S = 5.0
#: How often ``Session.send_data`` reports progress while the kernel is not taking data.
PROGRESS_INTERVAL_S = 0.25
#: The longest ``Session.send_data`` keeps the event loop while the kernel takes every
#: chunk at once: then it lets the rest of the application run (a window must not freeze).
#: Not after every chunk: a turn of the loop costs about as much as a quarter of a
#: 64 KiB chunk's own work (measured: 0.25 ms per MB of a 50 MB message).
LOOP_TURN_S = 0.001
#: Reply text kept in a ``Reply`` (the transcript keeps its own, also bounded).
MAX_REPLY_TEXT = 2000

#: Each stage as a person reads it in a failure ("did not reply to RCPT TO …").
STAGE_WORDS = {
    Stage.GREETING: "the greeting",
    Stage.EHLO: "EHLO",
    Stage.STARTTLS: "STARTTLS",
    Stage.AUTH: "AUTH",
    Stage.MAIL: "MAIL FROM",
    Stage.RCPT: "RCPT TO",
    Stage.DATA: "DATA",
    Stage.END_OF_DATA: "the end of the message data",
    Stage.RSET: "RSET",
    Stage.QUIT: "QUIT",
}

#: What goes out with a final dot: command lines, and whose transcript lines they are.
Then = Callable[[], tuple[Sequence[tuple[Stage, str]], int | None]]


@dataclass(frozen=True, slots=True)
class ServerOffer:
    """What a server offered once the session was secured: printable for ``account test``.

    ``extensions`` maps each EHLO keyword (upper case) to its parameters; it
    is empty when the server only took HELO (``esmtp`` false).
    """

    host: str
    port: int
    address: str
    greeting: str
    esmtp: bool
    extensions: Mapping[str, str] = field(default_factory=dict)
    auth_mechanisms: tuple[str, ...] = ()
    security: Security = Security.NONE
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated_as: str | None = None
    auth_mechanism: str | None = None

    def offers(self, keyword: str) -> bool:
        return keyword.upper() in self.extensions

    @property
    def size_limit(self) -> int | None:
        """The SIZE limit in bytes (RFC 1870), or None: no SIZE, or SIZE without a limit."""
        value = self.extensions.get("SIZE", "").strip()
        return int(value) if value.isdigit() and int(value) > 0 else None

    @property
    def eight_bit_mime(self) -> bool:
        return self.offers("8BITMIME")

    @property
    def smtputf8(self) -> bool:
        return self.offers("SMTPUTF8")

    @property
    def pipelining(self) -> bool:
        return self.offers("PIPELINING")

    @property
    def chunking(self) -> bool:
        return self.offers("CHUNKING")

    @property
    def encrypted(self) -> bool:
        return self.tls_version is not None

    def __str__(self) -> str:
        def yes(flag: bool) -> str:
            return "yes" if flag else "no"

        if self.encrypted:
            how = "implicit TLS" if self.security is Security.TLS else "STARTTLS"
            secured = f"{how}, {self.tls_version}, {self.tls_cipher}"
        else:
            secured = "no (plain text)"
        limit = self.size_limit
        size = (
            f"{limit} bytes"
            if limit is not None
            else ("offered, no limit" if self.offers("SIZE") else "not offered")
        )
        auth = (
            f"{self.authenticated_as} ({self.auth_mechanism})"
            if self.authenticated_as
            else "not authenticated"
        )
        lines = [
            f"server: {self.host}:{self.port} ({self.address})",
            f"greeting: {self.greeting}",
            f"encryption: {secured}",
            f"authentication: {auth}; offered: {' '.join(self.auth_mechanisms) or 'none'}",
            f"size limit: {size}",
            f"8BITMIME: {yes(self.eight_bit_mime)}  SMTPUTF8: {yes(self.smtputf8)}"
            f"  PIPELINING: {yes(self.pipelining)}  CHUNKING: {yes(self.chunking)}",
        ]
        if self.esmtp:
            listed = ", ".join(f"{k} {v}".strip() for k, v in sorted(self.extensions.items()))
            lines.append(f"extensions: {listed or 'none'}")
        else:
            lines.append("extensions: none (the server refused EHLO; HELO only)")
        return "\n".join(lines)


class SessionLost(Exception):
    """The session ended under a ``Session`` method; ``failure`` says how and why."""

    def __init__(self, failure: SessionFailure) -> None:
        super().__init__(failure.text)
        self.failure = failure


class Session:
    """One open, secured and authenticated SMTP connection, ready for transactions.

    A command and then its reply (``command``), or, when the server offers
    PIPELINING, several commands in one write and their replies read in order
    (``send_commands``, ``read_reply``). Every method but ``quit``,
    ``close`` and ``abort`` raises ``SessionLost`` when the session ends
    (connection lost, reply timeout, a reply that is not SMTP, or a 421),
    after which the connection is closed.
    """

    def __init__(
        self,
        *,
        account: Account,
        offer: ServerOffer,
        transcript: Transcript,
        smtp: aiosmtplib.SMTP,
        wire: Wire,
    ) -> None:
        self.account = account
        self.offer = offer
        self.transcript = transcript
        self._smtp = smtp
        self._wire = wire

    @property
    def closed(self) -> bool:
        return self._wire.closed

    async def command(self, stage: Stage, line: str, *, timeout_s: float | None = None) -> Reply:
        """Send one command line and return its reply (421 raises ``SessionLost``).

        ``line`` must not contain CR, LF or NUL: that would be a bug in the
        caller (addresses are checked before they get here).
        """
        if _unsafe_line(line):
            raise ValueError(f"an SMTP command may not contain CR, LF or NUL: {line!r}")
        self._refuse_stray_reply()
        self.transcript.client(line)
        try:
            self._wire.write(line.encode("utf-8") + b"\r\n", replies=1)
        except WireError as exc:
            raise self._lost_by(exc, f"while sending {STAGE_WORDS.get(stage, stage)}") from None
        return await self.read_reply(stage, timeout_s=timeout_s)

    def send_commands(self, commands: Sequence[tuple[Stage, str]]) -> None:
        """Write several command lines in one write, reading nothing (RFC 2920 PIPELINING).

        The caller reads their replies, in order, with ``read_reply``; it must
        only do this when the server offered PIPELINING. A reply already
        waiting is a stray one (nothing was outstanding): the session ends.
        """
        self._refuse_stray_reply()
        wire = self._encode_commands(commands)
        try:
            self._wire.write(wire, replies=len(commands))
        except WireError as exc:
            raise self._lost_by(exc, f"while sending {STAGE_WORDS.get(commands[0][0])}") from None

    async def read_reply(self, stage: Stage, *, timeout_s: float | None = None) -> Reply:
        """The reply to what was last sent (``command_timeout_s`` unless told otherwise)."""
        # A reply already here needs no waiting: pipelined replies come in groups.
        raw = self._wire.next_reply()
        if raw is None:
            if timeout_s is None:
                timeout_s = self.account.command_timeout_s
            try:
                raw = await self._wire.read_reply(timeout_s)
            except WireTimeout:
                what = STAGE_WORDS.get(stage, str(stage))
                raise self._lose(
                    FailureKind.TIMEOUT,
                    f"{self.account.host} did not reply to {what} within {timeout_s:g} s",
                ) from None
            except WireError as exc:
                what = STAGE_WORDS.get(stage, str(stage))
                raise self._lost_by(exc, f"while waiting for the reply to {what}") from None
        transcript = self.transcript
        transcript.server(raw.code, raw.lines)
        text = raw.text
        if transcript.hides or len(text) > MAX_REPLY_TEXT or not text.isprintable():
            text = self._shown(text)
        reply = Reply(stage, raw.code, text)
        if raw.code == 421:
            raise self._lose(
                FailureKind.CLOSING,
                f"{self.account.host} is closing the session: {reply}",
                reply,
                close=True,
            )
        return reply

    async def send_data(
        self,
        body: bytes | BodySource,
        *,
        progressed: Callable[[int], None],
        completing: Callable[[], Awaitable[None] | None],
        then: Then | None = None,
    ) -> None:
        """Stream ``body`` after a 354, stuffed, ending with the final dot.

        A ``BodySource`` is read piece by piece as the kernel takes the data,
        so a large message is never held whole (at most two pieces of
        ``CHUNK_BYTES``, plus the transport's buffer).

        ``then()``, asked once ``completing`` is done, gives command lines to
        write in the same write as the final dot (PIPELINING: the next
        message's envelope) and the transcript owner they are recorded for;
        their replies follow the end-of-data reply.

        ``progressed(sent_bytes)`` is called after every chunk (at most 64 KiB
        of the message) and, while the kernel takes nothing, every
        ``PROGRESS_INTERVAL_S``. ``completing()`` is called immediately before
        the write that carries the final dot, in the same event-loop step (or,
        when it returns an awaitable, the write follows as soon as that is
        done): a durable "the server may have it" record (RFC 1047) must
        precede the dot, so that a process dying right after it errs towards
        *uncertain* and never towards a duplicate. A DATA write that makes no progress for
        ``command_timeout_s`` ends the session.
        """
        if isinstance(body, bytes):
            total = len(body)
            self.transcript.client(f"[message data: {total} bytes]")
            await self._send_chunks(data_chunks(body), total, progressed, completing, then)
            return
        total = body.size
        self.transcript.client(f"[message data: {total} bytes]")
        # The store holds CRLF line endings only (relay.message normalises at intake).
        with contextlib.closing(body.pieces(CHUNK_BYTES)) as pieces:
            chunks = stream_chunks(pieces, crlf=True)
            await self._send_chunks(chunks, total, progressed, completing, then)

    async def _send_chunks(
        self,
        chunks: Iterator[DataChunk],
        total: int,
        progressed: Callable[[int], None],
        completing: Callable[[], Awaitable[None] | None],
        then: Then | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        turn_at = loop.time() + LOOP_TURN_S
        reported = 0
        for chunk in chunks:
            if chunk.last:
                if self._wire.closed:
                    raise self._lost_in_data(WireClosed("the connection was lost"), reported, total)
                pending = completing()
                if pending is not None:  # the record joins a commit shared with other sessions
                    await pending
                    if self._wire.closed:
                        raise self._lost_in_data(
                            WireClosed("the connection was lost"), reported, total
                        )
                commands, owner = then() if then is not None else ((), None)
                following = self._encode_commands(commands, record=False) if commands else b""
                try:
                    self._wire.write(
                        chunk.wire + following if following else chunk.wire,
                        replies=1 + len(commands),
                    )
                except WireError as exc:  # only if ``completing`` itself closed the session
                    raise self._lost_in_data(exc, reported, total) from None
                self.transcript.client(".")
                if commands:
                    self.transcript.clients([line for _, line in commands], owner=owner)
                progressed(total)
                return
            try:
                self._wire.write(chunk.wire)
                reported = await self._drain(chunk.end, reported, progressed)
            except WireError as exc:
                raise self._lost_in_data(exc, reported, total) from None
            reported = chunk.end
            progressed(reported)
            if loop.time() >= turn_at:
                await asyncio.sleep(0)  # the rest of the application runs (LOOP_TURN_S)
                turn_at = loop.time() + LOOP_TURN_S

    async def quit(self) -> None:
        """Say QUIT (briefly waiting for its reply) and close; never raises."""
        if not self._wire.closed:
            timeout_s = min(self.account.command_timeout_s, QUIT_TIMEOUT_S)
            with contextlib.suppress(SessionLost):
                await self.command(Stage.QUIT, "QUIT", timeout_s=timeout_s)
        self.close()

    def close(self) -> None:
        self._wire.close()
        self._smtp.close()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included."""
        self._wire.abort()
        self._smtp.close()

    # -- internals ---------------------------------------------------------------

    def _encode_commands(
        self, commands: Sequence[tuple[Stage, str]], *, record: bool = True
    ) -> bytes:
        lines = [line for _, line in commands]
        if not lines:
            return b""
        for line in lines:
            if _unsafe_line(line):
                raise ValueError(f"an SMTP command may not contain CR, LF or NUL: {line!r}")
        if record:
            self.transcript.clients(lines)
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def _refuse_stray_reply(self) -> None:
        """In lock-step every reply was read: one waiting now was never asked for.

        Sending on would pair it with the next command and give a recipient
        another's verdict, so the session ends (a stray 421 is the server
        leaving, the one unsolicited reply RFC 5321 section 3.8 allows).
        """
        stray = self._wire.queued_reply()
        if stray is None:
            return
        self.transcript.server(stray.code, stray.lines)
        said = f"{stray.code} {self._shown(stray.text)}".strip()  # answers no command: no Reply
        host = self.account.host
        if stray.code == 421:
            raise self._lose(
                FailureKind.CLOSING, f"{host} is closing the session: {said}", close=True
            )
        raise self._lose(FailureKind.PROTOCOL, f"{host} sent a reply nobody asked for: {said}")

    async def _drain(self, written: int, reported: int, progressed: Callable[[int], None]) -> int:
        """Wait until the transport takes more; report progress while waiting."""
        loop = asyncio.get_running_loop()
        stall_s = self.account.command_timeout_s
        deadline = loop.time() + stall_s
        while not await self._wire.wait_writable(PROGRESS_INTERVAL_S):
            estimate = max(reported, written - self._wire.buffered_bytes)
            if estimate > reported:
                deadline = loop.time() + stall_s
            reported = estimate
            progressed(reported)
            if loop.time() >= deadline:
                raise WireTimeout(f"{self.account.host} took no message data for {stall_s:g} s")
        return reported

    def _lost_in_data(self, exc: WireError, sent: int, total: int) -> SessionLost:
        where = f"while sending the message data ({sent} of {total} bytes sent)"
        if isinstance(exc, WireTimeout):
            return self._lose(FailureKind.TIMEOUT, f"{exc} {where}")
        return self._lost_by(exc, where)

    def _lost_by(self, exc: WireError, where: str) -> SessionLost:
        host = self.account.host
        if isinstance(exc, WireGarbled):
            return self._lose(FailureKind.PROTOCOL, f"{host}: {exc}, {where}")
        if isinstance(exc, WireTimeout):
            return self._lose(FailureKind.TIMEOUT, f"{host}: {exc}, {where}")
        last_words = self._wire.queued_reply()
        reply = None
        text = f"{host}: {exc} {where}"
        if last_words is not None:
            self.transcript.server(last_words.code, last_words.lines)
            reply = Reply(Stage.DATA, last_words.code, self._shown(last_words.text))
            text += f"; its last reply: {reply}"
        return self._lose(FailureKind.DROPPED, text, reply)

    def _shown(self, text: str) -> str:
        return kept_text(self.transcript, text)

    def _lose(
        self, kind: FailureKind, text: str, reply: Reply | None = None, *, close: bool = False
    ) -> SessionLost:
        text = printable(self.transcript.masked(text))
        self.transcript.note(text)
        if close:
            self.close()
        else:
            self.abort()  # after a timeout or garbage, replies can no longer be matched
        return SessionLost(SessionFailure(kind, text, reply))


def kept_text(transcript: Transcript, text: str) -> str:
    """Server text as we keep it outside the transcript: secrets masked, control
    characters escaped (it ends up on a person's terminal), length bounded."""
    text = printable(transcript.masked(text))
    return text if len(text) <= MAX_REPLY_TEXT else text[:MAX_REPLY_TEXT] + "…"


def _unsafe_line(line: str) -> bool:
    """Whether a command line holds CR, LF or NUL (three ``in`` tests: no generator)."""
    return "\r" in line or "\n" in line or "\0" in line
