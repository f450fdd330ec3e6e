"""Opening an SMTP session, and the open session the relayer talks through.

``open_session`` connects to an account's server and gets it ready for mail:

1. TCP connect (our own, so a refusal, a DNS failure and a timeout each get
   their own words; TCP_NODELAY set), within ``connect_timeout_s``;
2. implicit TLS (``Security.TLS``) and the greeting, through aiosmtplib;
3. EHLO, or HELO when the server refuses EHLO;
4. STARTTLS for ``Security.STARTTLS`` -- *required*: a server that does not
   offer it gets nothing, not even our credentials -- then EHLO again
   (RFC 3207 section 4.2);
5. AUTH PLAIN (preferred) or LOGIN when the account has a user name, and
   only over TLS or to a loopback address; for an account that signs in
   with OAuth2, OAUTHBEARER (preferred) or XOAUTH2 with an access token
   from its ``TokenSource``, refreshed once when the server refuses it.

Certificates are always verified: against the system's trust store, or
against the account's ``ca_file`` as the *only* trust anchor.

It returns a ``Session`` or a ``SessionFailure`` saying, in words a person
can act on, what went wrong and at which step; no aiosmtplib, ssl or OS
exception leaves this module. A ``Session``'s own methods raise
``SessionLost`` (carrying a ``SessionFailure``) when the session ends under
them: that is the end of the conversation rather than a mistake, and the
relayer turns it into reports at its edge.

Everything said is recorded in a ``Transcript`` with the credentials replaced
by ``****`` (the base64 lines of AUTH LOGIN and the initial response of AUTH
PLAIN included) before they reach it.

Timeouts come from the account: ``connect_timeout_s`` for the connection, the
TLS handshake and the greeting; ``command_timeout_s`` for each reply and for a
DATA write that makes no progress (RFC 5321 section 4.5.3.2's "data block");
``data_timeout_s`` for the verdict after the final dot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import aiosmtplib
from aiosmtplib.esmtp import parse_esmtp_extensions

from relay.accounts import Account, Security
from relay.errors import OutboxError
from relay.oauth.sasl import choose_mechanism, error_status, failure_answer, initial_response
from relay.report import BodySource, FailureKind, Reply, SessionFailure, Stage
from relay.smtp.data_encoding import CHUNK_BYTES, DataChunk, data_chunks, stream_chunks
from relay.smtp.transcript import Transcript, printable
from relay.smtp.wire import Wire, WireClosed, WireError, WireGarbled, WireTimeout
from relay.states import Phase

#: How long QUIT may take before we just close: its reply changes nothing.
QUIT_TIMEOUT_S = 5.0
#: How often ``Session.send_data`` reports progress while the kernel is not taking data.
PROGRESS_INTERVAL_S = 0.25
#: Reply text kept in a ``Reply`` (the transcript keeps its own, also bounded).
MAX_REPLY_TEXT = 2000

_FQDN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_WHAT = {
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

if TYPE_CHECKING:
    from relay.oauth.tokens import TokenSource

PhaseCallback = Callable[[Phase], None]
#: What goes out with a final dot: command lines, and whose transcript lines they are.
Then = Callable[[], tuple[Sequence[tuple[Stage, str]], int | None]]
_E = TypeVar("_E", bound=BaseException)


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


async def open_session(
    account: Account,
    password: str | TokenSource | None,
    *,
    transcript: Transcript | None = None,
    on_phase: PhaseCallback | None = None,
) -> Session | SessionFailure:
    """Connect, secure, greet and authenticate; the ready ``Session`` or why not.

    ``on_phase`` hears CONNECTING, SECURING (TLS only) and AUTHENTICATING
    (with a user name only) as they start. The transcript gets every line,
    credentials masked. Cancelling this coroutine closes the connection.
    """
    opener = _Opener(account, password, transcript or Transcript(), on_phase)
    return await opener.open()


class Session:
    """One open, secured and authenticated SMTP connection, ready for transactions.

    Lock-step: one command, then its reply. Every method but ``quit``,
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
            raise self._lost_by(exc, f"while sending {_WHAT.get(stage, stage)}") from None
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
            raise self._lost_by(exc, f"while sending {_WHAT.get(commands[0][0])}") from None

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
                what = _WHAT.get(stage, str(stage))
                raise self._lose(
                    FailureKind.TIMEOUT,
                    f"{self.account.host} did not reply to {what} within {timeout_s:g} s",
                ) from None
            except WireError as exc:
                what = _WHAT.get(stage, str(stage))
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
        waited = False
        while not await self._wire.wait_writable(PROGRESS_INTERVAL_S):
            waited = True
            estimate = max(reported, written - self._wire.buffered_bytes)
            if estimate > reported:
                deadline = loop.time() + stall_s
            reported = estimate
            progressed(reported)
            if loop.time() >= deadline:
                raise WireTimeout(f"{self.account.host} took no message data for {stall_s:g} s")
        if not waited:
            # Let the rest of the application run between chunks even when
            # the kernel takes everything at once (a window must not freeze).
            await asyncio.sleep(0)
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
        """Server text as we keep it: secrets masked, control characters escaped
        (it ends up on a person's terminal), length bounded."""
        return _clip(printable(self.transcript.masked(text)))

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


# -- opening --------------------------------------------------------------------------


class _Refused(Exception):
    """Internal: opening stopped; ``polite`` when the server can still hear a QUIT."""

    def __init__(self, failure: SessionFailure, *, polite: bool = False) -> None:
        super().__init__(failure.text)
        self.failure = failure
        self.polite = polite


class _Opener:
    def __init__(
        self,
        account: Account,
        password: str | TokenSource | None,
        transcript: Transcript,
        on_phase: PhaseCallback | None,
    ) -> None:
        self.account = account
        self.password = password
        self.transcript = transcript
        if isinstance(password, str) and password:
            # A server may repeat what it was sent (a 535 quoting the AUTH line):
            # nothing it says may carry the password into a transcript or an error.
            transcript.hide(*_auth_forms(account.user or "", password))
        self._on_phase = on_phase
        self._sock: socket.socket | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._address = ""
        self._local_address = ""
        self._greeting = ""
        self._esmtp = False
        self._extensions: dict[str, str] = {}
        self._auth: tuple[str, ...] = ()
        self._authenticated_as: str | None = None
        self._auth_mechanism: str | None = None

    @property
    def _where(self) -> str:
        return f"{self.account.host}:{self.account.port}"

    async def open(self) -> Session | SessionFailure:
        try:
            return await self._open()
        except _Refused as refused:
            self.transcript.note(refused.failure.text)
            try:
                if refused.polite:
                    await self._quit()
            finally:
                self._close()  # even when cancelled during that QUIT
            return refused.failure
        except BaseException:
            self._close()  # cancelled (stop while opening), or a bug
            raise

    async def _open(self) -> Session:
        account = self.account
        self._phase(Phase.CONNECTING)
        context = await self._tls_context() if account.security is not Security.NONE else None
        await self._connect()
        if account.security is Security.TLS:
            self._phase(Phase.SECURING)
        await self._greet(context)
        await self._hello()
        if account.security is Security.STARTTLS:
            assert context is not None
            self._phase(Phase.SECURING)
            await self._starttls(context)
            await self._hello()
        if account.user is not None:
            self._phase(Phase.AUTHENTICATING)
            await self._authenticate(account.user)
        smtp = self._smtp
        assert smtp is not None and smtp.transport is not None
        offer = self._offer()
        self.transcript.pin()
        wire = Wire(smtp.transport)  # type: ignore[arg-type]  # a stream transport
        return Session(
            account=account, offer=offer, transcript=self.transcript, smtp=smtp, wire=wire
        )

    def _phase(self, phase: Phase) -> None:
        if self._on_phase is not None:
            self._on_phase(phase)

    # -- steps -------------------------------------------------------------------------

    async def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.account.ca_file

        def build() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            return context

        try:
            return await asyncio.to_thread(build)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise _Refused(
                SessionFailure(
                    FailureKind.TLS,
                    f"cannot use the CA file {ca_file}: {_os_reason(exc)}; nothing was sent",
                )
            ) from None

    async def _connect(self) -> None:
        account = self.account
        loop = asyncio.get_running_loop()
        errors: list[OSError] = []
        try:
            async with asyncio.timeout(account.connect_timeout_s):
                infos = await loop.getaddrinfo(account.host, account.port, type=socket.SOCK_STREAM)
                for family, kind, proto, _, address in infos:
                    sock = socket.socket(family, kind, proto)
                    try:
                        sock.setblocking(False)
                        await loop.sock_connect(sock, address)
                    except OSError as exc:
                        sock.close()
                        errors.append(exc)
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    self._sock = sock
                    break
        except TimeoutError:
            raise _Refused(
                SessionFailure(
                    FailureKind.CONNECT,
                    f"timed out connecting to {self._where} after {account.connect_timeout_s:g} s",
                )
            ) from None
        except socket.gaierror as exc:
            raise _Refused(
                SessionFailure(
                    FailureKind.CONNECT,
                    f"cannot find the server {account.host}: {exc.strerror or exc}",
                )
            ) from None
        if self._sock is None:
            first = errors[0] if errors else OSError("no address")
            if isinstance(first, ConnectionRefusedError):
                text = (
                    f"{self._where} refused the connection"
                    " (is the server running, is the port right?)"
                )
            else:
                text = f"cannot connect to {self._where}: {_os_reason(first)}"
            raise _Refused(SessionFailure(FailureKind.CONNECT, text))
        sock = self._sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._address = str(sock.getpeername()[0])
        self._local_address = str(sock.getsockname()[0])
        self.transcript.note(f"connected to {self._where} ({self._address})")

    async def _greet(self, context: ssl.SSLContext | None) -> None:
        account = self.account
        implicit_tls = account.security is Security.TLS
        assert self._sock is not None
        self._smtp = aiosmtplib.SMTP(
            hostname=account.host,
            sock=self._sock,
            use_tls=implicit_tls,
            start_tls=False,
            tls_context=context if implicit_tls else None,
            local_hostname="localhost",  # unused: EHLO is ours (see _ehlo_name)
            timeout=account.command_timeout_s,
        )
        timeout_s = account.connect_timeout_s
        try:
            response = await self._smtp.connect(timeout=timeout_s)
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            if isinstance(exc.__cause__, aiosmtplib.SMTPReadTimeoutError):
                raise self._refused(
                    FailureKind.TIMEOUT, f"{account.host} did not greet within {timeout_s:g} s"
                ) from None
            raise self._refused(
                FailureKind.TLS if implicit_tls else FailureKind.CONNECT,
                f"the TLS handshake with {self._where} did not finish within {timeout_s:g} s",
            ) from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            self.transcript.server(exc.code, exc.message.split("\n"))
            reply = Reply(Stage.GREETING, exc.code, self._shown(_one_line(exc.message)))
            if exc.code == 421:
                raise self._refused(
                    FailureKind.CLOSING, f"{account.host} is not taking mail now: {reply}", reply
                ) from None
            raise self._refused(
                FailureKind.CONNECT, f"{account.host} refused the session: {reply}", reply
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, "the greeting", handshake=implicit_tls) from None
        if implicit_tls:
            self._note_tls()
        self._greeting = self._shown(_one_line(response.message))
        self.transcript.server(response.code, response.message.split("\n"))

    async def _hello(self) -> None:
        assert self._smtp is not None
        name = self._ehlo_name()
        response = await self._exchange(Stage.EHLO, [b"EHLO", name.encode()], f"EHLO {name}")
        if response.code == 250:
            self._smtp.last_ehlo_response = response
            extensions, auth = parse_esmtp_extensions(response.message)
            self._extensions = {k.upper(): v for k, v in extensions.items()}
            self._auth = tuple(dict.fromkeys(m.upper() for m in auth))
            self._esmtp = True
            return
        # RFC 5321 section 3.2: a server that refuses EHLO may still take HELO.
        refusal = response
        response = await self._exchange(Stage.EHLO, [b"HELO", name.encode()], f"HELO {name}")
        if response.code != 250:
            reply = Reply(Stage.EHLO, response.code, self._shown(_one_line(response.message)))
            raise self._refused(
                FailureKind.PROTOCOL,
                f"{self.account.host} refused both EHLO ({refusal.code}) and HELO: {reply}",
                reply,
                polite=True,
            )
        self._smtp.last_helo_response = response
        self._extensions, self._auth, self._esmtp = {}, (), False

    async def _starttls(self, context: ssl.SSLContext) -> None:
        smtp = self._smtp
        assert smtp is not None
        host = self.account.host
        if "STARTTLS" not in self._extensions:
            raise self._refused(
                FailureKind.TLS,
                f"{host} does not offer STARTTLS; nothing was sent"
                " (the account requires it: security starttls)",
                polite=True,
            )
        self.transcript.client("STARTTLS")
        try:
            response = await smtp.starttls(
                tls_context=context,
                server_hostname=host,
                timeout=self.account.command_timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:
                raise self._translate(exc, "STARTTLS") from None
            self.transcript.server(exc.code, exc.message.split("\n"))
            reply = Reply(Stage.STARTTLS, exc.code, self._shown(_one_line(exc.message)))
            if exc.code == 421:
                raise self._refused(
                    FailureKind.CLOSING, f"{host} is closing the session: {reply}", reply
                ) from None
            raise self._refused(
                FailureKind.TLS,
                f"{host} refused STARTTLS: {reply}; nothing was sent",
                reply,
                polite=True,
            ) from None
        except aiosmtplib.SMTPReadTimeoutError:
            raise self._refused(
                FailureKind.TIMEOUT,
                f"{host} did not reply to STARTTLS within {self.account.command_timeout_s:g} s",
            ) from None
        except aiosmtplib.SMTPTimeoutError:
            raise self._refused(
                FailureKind.TLS,
                f"the TLS handshake with {self._where} did not finish"
                f" within {self.account.command_timeout_s:g} s; nothing was sent",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, "STARTTLS", handshake=True) from None
        self.transcript.server(response.code, response.message.split("\n"))
        self._note_tls()

    async def _authenticate(self, user: str) -> None:
        host = self.account.host
        if self.password is not None and not isinstance(self.password, str):
            await self._authenticate_oauth2(user, self.password)
            return
        if self.password is None:
            raise self._refused(
                FailureKind.AUTH,
                f"no password for {user} (account {self.account.name}); nothing was sent",
                polite=True,
            )
        if not self._encrypted() and not self._loopback():
            raise self._refused(
                FailureKind.TLS,
                f"will not send the password for {user} to {host} without TLS;"
                " use security starttls or tls",
                polite=True,
            )
        if not self._auth:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} does not offer authentication (AUTH), but the account has user {user}",
                polite=True,
            )
        secret = self.password.encode("utf-8")
        name = user.encode("utf-8")
        if "PLAIN" in self._auth:
            # RFC 4616: authorization id (empty), NUL, user, NUL, password.
            token = base64.b64encode(b"\0" + name + b"\0" + secret)
            response = await self._exchange(
                Stage.AUTH, [b"AUTH", b"PLAIN", token], "AUTH PLAIN ****"
            )
            mechanism = "PLAIN"
        elif "LOGIN" in self._auth:
            response = await self._exchange(Stage.AUTH, [b"AUTH", b"LOGIN"], "AUTH LOGIN")
            if response.code == 334:
                response = await self._exchange(Stage.AUTH, [base64.b64encode(name)], "****")
            if response.code == 334:
                response = await self._exchange(Stage.AUTH, [base64.b64encode(secret)], "****")
            mechanism = "LOGIN"
        else:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} offers only {' '.join(self._auth)} authentication;"
                " Outbox supports PLAIN and LOGIN",
                polite=True,
            )
        reply = Reply(Stage.AUTH, response.code, self._shown(_one_line(response.message)))
        if 200 <= response.code < 300:
            self._authenticated_as = user
            self._auth_mechanism = mechanism
            return
        if 500 <= response.code < 600:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} refused the credentials for {user}: {reply}",
                reply,
                polite=True,
            )
        raise self._refused(
            FailureKind.PROTOCOL,
            f"{host} could not check the credentials for {user} now: {reply}",
            reply,
            polite=True,
        )

    async def _authenticate_oauth2(self, user: str, source: TokenSource) -> None:
        """OAUTHBEARER or XOAUTH2 with a fresh token; one refresh and retry if refused."""
        from relay.oauth.tokens import SignInNeeded, TokenEndpointUnavailable

        host = self.account.host
        if not self._encrypted() and not self._loopback():
            raise self._refused(
                FailureKind.TLS,
                f"will not send the access token for {user} to {host} without TLS;"
                " use security starttls or tls",
                polite=True,
            )
        mechanism = choose_mechanism(self._auth)
        if mechanism is None:
            offered = " ".join(self._auth) or "no authentication"
            raise self._refused(
                FailureKind.AUTH,
                f"{host} offers {offered}; signing in with OAuth2 needs OAUTHBEARER or XOAUTH2",
                polite=True,
            )
        token: str | None = None
        for attempt in (1, 2):
            try:
                token = (
                    await source.access_token() if token is None else await source.renewed(token)
                )
            except SignInNeeded as exc:
                raise self._refused(FailureKind.SIGN_IN, str(exc), polite=True) from None
            except TokenEndpointUnavailable as exc:
                raise self._refused(FailureKind.CONNECT, str(exc), polite=True) from None
            except OutboxError as exc:  # refused for another reason, keyring trouble
                raise self._refused(FailureKind.AUTH, str(exc), polite=True) from None
            response_b64 = initial_response(mechanism, user, token, host, self.account.port)
            self.transcript.hide(*source.secrets, response_b64)
            response = await self._exchange(
                Stage.AUTH,
                [b"AUTH", mechanism.encode(), response_b64.encode()],
                f"AUTH {mechanism} ****",
            )
            status = None
            if response.code == 334:  # the error challenge (RFC 7628 section 3.2.2)
                status = error_status(response.message)
                answer = failure_answer(mechanism)
                response = await self._exchange(Stage.AUTH, [answer.encode()], answer)
            if 200 <= response.code < 300:
                self._authenticated_as = user
                self._auth_mechanism = mechanism
                return
            reply = Reply(Stage.AUTH, response.code, self._shown(_one_line(response.message)))
            if not 500 <= response.code < 600:
                raise self._refused(
                    FailureKind.PROTOCOL,
                    f"{host} could not check the access token for {user} now: {reply}",
                    reply,
                    polite=True,
                )
            why = f" ({status})" if status else ""
            if attempt == 1:
                self.transcript.note(f"access token refused{why}: refreshing it once")
                continue
            raise self._refused(
                FailureKind.AUTH,
                f"{host} refused the access token for {user} even after a refresh{why}:"
                f" {reply} (sign in again with `outbox account login {self.account.name}`)",
                reply,
                polite=True,
            )

    async def _exchange(
        self, stage: Stage, args: list[bytes], shown: str
    ) -> aiosmtplib.SMTPResponse:
        """One command through aiosmtplib, recorded as ``shown``; a 421 ends the opening."""
        smtp = self._smtp
        assert smtp is not None
        timeout_s = self.account.command_timeout_s
        what = _WHAT.get(stage, str(stage))
        self.transcript.client(shown)
        try:
            response = await smtp.execute_command(*args, timeout=timeout_s)
        except aiosmtplib.SMTPTimeoutError:
            raise self._refused(
                FailureKind.TIMEOUT,
                f"{self.account.host} did not reply to {what} within {timeout_s:g} s",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, what) from None
        self.transcript.server(response.code, response.message.split("\n"))
        if response.code == 421:
            reply = Reply(stage, 421, self._shown(_one_line(response.message)))
            raise self._refused(
                FailureKind.CLOSING, f"{self.account.host} is closing the session: {reply}", reply
            )
        return response

    async def _quit(self) -> None:
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            return
        self.transcript.client("QUIT")
        try:
            response = await smtp.execute_command(
                b"QUIT", timeout=min(self.account.command_timeout_s, QUIT_TIMEOUT_S)
            )
        except (aiosmtplib.SMTPException, OSError):
            return
        self.transcript.server(response.code, response.message.split("\n"))

    def _close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        if self._sock is not None and (self._smtp is None or self._smtp.transport is None):
            # Not (or no longer) owned by a transport; closing twice is harmless.
            self._sock.close()

    # -- facts ---------------------------------------------------------------------------

    def _ehlo_name(self) -> str:
        """Our name for EHLO: the host's FQDN if it knows one, else an address literal.

        No DNS lookup (``socket.getfqdn`` can stall for seconds); RFC 5321
        section 4.1.4 allows the address literal when there is no name.
        """
        name = socket.gethostname()
        if _FQDN.fullmatch(name):
            return name
        address = self._local_address.split("%", 1)[0]
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return "localhost"
        return f"[{address}]" if parsed.version == 4 else f"[IPv6:{address}]"

    def _encrypted(self) -> bool:
        smtp = self._smtp
        return (
            smtp is not None
            and smtp.transport is not None
            and (smtp.transport.get_extra_info("ssl_object") is not None)
        )

    def _loopback(self) -> bool:
        try:
            address = ipaddress.ip_address(self._address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    def _tls_facts(self) -> tuple[str | None, str | None]:
        smtp = self._smtp
        if smtp is None or smtp.transport is None:
            return None, None
        ssl_object = smtp.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None, None
        cipher = ssl_object.cipher()
        return ssl_object.version(), (cipher[0] if cipher else None)

    def _note_tls(self) -> None:
        version, cipher = self._tls_facts()
        self.transcript.note(
            f"TLS established: {version}, {cipher}; certificate verified for {self.account.host}"
        )

    def _offer(self) -> ServerOffer:
        version, cipher = self._tls_facts()
        return ServerOffer(
            host=self.account.host,
            port=self.account.port,
            address=self._address,
            greeting=self._greeting,
            esmtp=self._esmtp,
            extensions=dict(self._extensions),
            auth_mechanisms=self._auth,
            security=self.account.security,
            tls_version=version,
            tls_cipher=cipher,
            authenticated_as=self._authenticated_as,
            auth_mechanism=self._auth_mechanism,
        )

    # -- failures ---------------------------------------------------------------------

    def _shown(self, text: str) -> str:
        """Server text as we keep it: secrets masked, control characters escaped
        (it ends up on a person's terminal), length bounded."""
        return _clip(printable(self.transcript.masked(text)))

    def _refused(
        self, kind: FailureKind, text: str, reply: Reply | None = None, *, polite: bool = False
    ) -> _Refused:
        text = printable(self.transcript.masked(text))
        return _Refused(SessionFailure(kind, text, reply), polite=polite)

    def _translate(self, exc: BaseException, what: str, *, handshake: bool = False) -> _Refused:
        """Words for an exception from aiosmtplib, ssl or the OS, at step ``what``."""
        host = self.account.host
        tls_error = _find(exc, ssl.SSLError)
        if tls_error is not None:
            return self._refused(FailureKind.TLS, self._tls_text(tls_error))
        if handshake and _find(exc, ConnectionAbortedError) is not None:
            return self._refused(
                FailureKind.TLS,
                f"the TLS handshake with {self._where} did not finish; nothing was sent",
            )
        if (
            _find(exc, aiosmtplib.SMTPServerDisconnected) is not None
            or _find(exc, ConnectionError) is not None
        ):
            during = " during the TLS handshake" if handshake else ""
            return self._refused(
                FailureKind.DROPPED,
                f"{host} closed the connection{during} (while we waited for {what})",
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return self._refused(
                FailureKind.PROTOCOL,
                f"{host} answered {what} with something that is not SMTP: {exc.message}",
            )
        if isinstance(exc, OSError):
            return self._refused(
                FailureKind.CONNECT, f"connection to {self._where} failed: {_os_reason(exc)}"
            )
        return self._refused(FailureKind.PROTOCOL, f"{host}: {exc} (at {what})")

    def _tls_text(self, exc: ssl.SSLError) -> str:
        host = self.account.host
        trust = (
            f"the account's CA file {self.account.ca_file}"
            if self.account.ca_file
            else "this system (the account has no CA file)"
        )
        if isinstance(exc, ssl.SSLCertVerificationError):
            code = exc.verify_code
            detail = exc.verify_message
            if code == 10:
                problem = "has expired"
            elif code == 9:
                problem = "is not valid yet"
            elif code == 18:
                problem = f"is self-signed and not trusted by {trust}"
            elif code == 19:
                problem = f"chains to a self-signed root not trusted by {trust}"
            elif code in (20, 21):
                problem = f"is signed by an authority not trusted by {trust}"
            elif code in (62, 64):
                problem = f"is for another name ({detail.rstrip('.')})"
            else:
                problem = f"was not accepted: {detail}"
            return f"the TLS certificate of {host} {problem}; nothing was sent"
        reason = exc.reason or str(exc)
        hint = ""
        if reason == "WRONG_VERSION_NUMBER":
            hint = " (the server does not speak TLS on this port: is it a STARTTLS or plain port?)"
        return f"TLS with {self._where} failed: {reason}{hint}; nothing was sent"


def _unsafe_line(line: str) -> bool:
    """Whether a command line holds CR, LF or NUL (three ``in`` tests: no generator)."""
    return "\r" in line or "\n" in line or "\0" in line


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """``exc`` or the first exception in its cause/context chain that is a ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _auth_forms(user: str, password: str) -> tuple[str, ...]:
    """The password as it travels in AUTH PLAIN and LOGIN, and as itself."""
    secret = password.encode("utf-8")
    plain = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + secret).decode()
    login = base64.b64encode(secret).decode()
    return (password, plain, plain.rstrip("="), login, login.rstrip("="))


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.split("\n") if part.strip())


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REPLY_TEXT else text[:MAX_REPLY_TEXT] + "…"
