"""The bytes on the wire once a session is open: replies in, commands and DATA out.

aiosmtplib opens the session (connect, TLS, EHLO, AUTH); for the transactions
the connection's transport is handed to ``Wire``, our own protocol, because
aiosmtplib cannot do what the mail phase needs (STACK-NOTES.md, issue 6):

- DATA streamed in chunks with flow control, so progress means bytes the
  kernel took, not bytes queued in a buffer, and a 50 MB message is never
  copied whole;
- replies kept in arrival order, none dropped: a ``421`` sent just before the
  server hangs up is still there to explain the hang-up, and a later
  pipelining layer can match several replies to several commands;
- hard bounds: a reply may not exceed ``max_reply_bytes`` and at most
  ``max_queued_replies`` unanswered replies are kept, whatever the server sends.

``data_chunks`` is the DATA encoding of RFC 5321 section 4.5.2 done with
``bytes.replace`` (no regular expression on the common path): CRLF line
endings, a dot doubled at the start of every line (the first line and a line
that starts exactly at a chunk boundary included), a final CRLF when the
message lacks one, and the terminating ``.`` in the same chunk as the last
bytes of the message (no small trailing write for Nagle to hold back).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024
_CR = 0x0D
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")


class WireError(Exception):
    """Base of what ``Wire`` raises: the session cannot go on (translated by its owner)."""


class WireClosed(WireError):
    """The connection is gone (closed by the server, reset, or closed by us)."""


class WireTimeout(WireError):
    """Nothing came (or nothing could be written) within the time allowed."""


class WireGarbled(WireError):
    """The server sent something that is not an SMTP reply, or far too much of it."""


@dataclass(frozen=True, slots=True)
class RawReply:
    """One complete reply: its code and the text of each line (code and separator removed)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(line for line in self.lines if line)


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Bytes to write for the DATA phase, and how far into the message they reach."""

    wire: bytes
    end: int  # offset in the message body just after this chunk
    last: bool  # carries the terminating "." line


def data_chunks(body: bytes, chunk_bytes: int = CHUNK_BYTES) -> Iterator[DataChunk]:
    """Encode ``body`` for DATA, chunk by chunk; the last chunk ends with ``.\\r\\n``.

    Each chunk covers at most ``chunk_bytes`` (at least 2) bytes of the
    message; its wire bytes can be longer by the dots doubled.
    """
    total = len(body)
    if total == 0:
        yield DataChunk(b".\r\n", 0, True)
        return
    start = 0
    at_line_start = True
    while start < total:
        end = min(start + chunk_bytes, total)
        if end < total and body[end - 1] == _CR:
            # Never split a CR from a LF after it: the pair is one line ending.
            # One step back is enough: a CR left last is then followed by a CR.
            end -= 1
        piece = _crlf(body[start:end])
        wire = piece.replace(b"\n.", b"\n..")
        if at_line_start and piece[:1] == b".":
            wire = b"." + wire
        at_line_start = piece.endswith(b"\n")
        last = end == total
        if last:
            wire += b".\r\n" if at_line_start else b"\r\n.\r\n"
        yield DataChunk(wire, end, last)
        start = end


def _crlf(piece: bytes) -> bytes:
    """``piece`` with every line ending as CRLF (stored messages already are: fast path)."""
    crlf = piece.count(b"\r\n")
    if crlf == piece.count(b"\r") == piece.count(b"\n"):
        return piece
    return _LINE_ENDING.sub(b"\r\n", piece)


class Wire(asyncio.Protocol):
    """An SMTP client's end of an open connection, after aiosmtplib handed it over.

    Create it with the transport to take over; from then on every byte the
    server sends is parsed here. Replies queue in order; ``read_reply`` takes
    the oldest. Writing never blocks; ``wait_writable`` waits while the
    transport's buffer is over its high-water mark.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        *,
        max_reply_bytes: int = 64 * 1024,
        max_queued_replies: int = 64,
    ) -> None:
        self._transport = transport
        self._max_reply_bytes = max_reply_bytes
        self._max_queued_replies = max_queued_replies
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._replies: deque[RawReply] = deque()
        self._reply_waiter: asyncio.Future[None] | None = None
        self._writable_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._closed: WireError | None = None
        self._garbled: WireGarbled | None = None
        transport.set_protocol(self)
        if transport.is_closing():
            self._closed = WireClosed("the connection was already closed")

    # -- asyncio.Protocol ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._garbled is not None:
            return
        self._buffer += data
        try:
            self._parse()
        except WireGarbled as exc:
            self._garbled = exc
            self._closed = exc  # a write after this says why, not just "closed"
            self._buffer.clear()
            self._transport.abort()
        self._wake_reader()

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is None:
            if exc is None:
                self._closed = WireClosed("the server closed the connection")
            else:
                self._closed = WireClosed(f"the connection was lost ({_describe_os_error(exc)})")
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    # -- for the session -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None or self._transport.is_closing()

    @property
    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel (0 once the connection is gone)."""
        if self._closed is not None:
            return 0
        return self._transport.get_write_buffer_size()

    def queued_reply(self) -> RawReply | None:
        """The oldest reply nobody has read yet, without taking it."""
        return self._replies[0] if self._replies else None

    def write(self, data: bytes) -> None:
        if self._closed is not None:
            raise _again(self._closed)
        if self._transport.is_closing():
            raise WireClosed("the connection is closing")
        self._transport.write(data)

    async def read_reply(self, timeout_s: float | None) -> RawReply:
        """The next reply; ``WireTimeout`` if none within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    if self._replies:
                        return self._replies.popleft()
                    if self._closed is not None:
                        raise _again(self._closed)
                    self._reply_waiter = self._loop.create_future()
                    try:
                        await self._reply_waiter
                    finally:
                        self._reply_waiter = None
        except TimeoutError:
            raise WireTimeout(f"no reply within {timeout_s:g} s") from None

    async def wait_writable(self, timeout_s: float) -> bool:
        """Wait until the write buffer drains below its mark: false if ``timeout_s`` passed."""
        if self._closed is not None:
            raise _again(self._closed)
        if not self._paused:
            return True
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._writable_waiter = waiter
        try:
            done, _ = await asyncio.wait({waiter}, timeout=timeout_s)
        finally:
            self._writable_waiter = None
        if not done:
            return False
        if self._closed is not None:
            raise _again(self._closed)
        return True

    def close(self) -> None:
        """Close now (buffered bytes are still flushed first by asyncio)."""
        self._transport.close()

    def abort(self) -> None:
        """Close now, dropping whatever is still buffered."""
        self._transport.abort()

    # -- parsing -----------------------------------------------------------------------

    def _parse(self) -> None:
        while True:
            reply, used = _parse_reply(self._buffer)
            if reply is None:
                break
            del self._buffer[:used]
            self._replies.append(reply)
            if len(self._replies) > self._max_queued_replies:
                raise WireGarbled(
                    f"the server sent more than {self._max_queued_replies} replies nobody asked for"
                )
        if len(self._buffer) > self._max_reply_bytes:
            raise WireGarbled(f"the server sent a reply longer than {self._max_reply_bytes} bytes")

    def _wake_reader(self) -> None:
        if self._reply_waiter is not None and not self._reply_waiter.done():
            self._reply_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._writable_waiter is not None and not self._writable_waiter.done():
            self._writable_waiter.set_result(None)


def _parse_reply(buffer: bytearray) -> tuple[RawReply | None, int]:
    """The first complete reply in ``buffer`` and the bytes it took, or ``(None, 0)``.

    RFC 5321 section 4.2: ``ddd-text`` continues a reply, ``ddd text`` (or a
    bare ``ddd``) ends it. A bare LF is accepted as a line ending.
    """
    offset = 0
    lines: list[str] = []
    while True:
        newline = buffer.find(b"\n", offset)
        if newline == -1:
            return None, 0
        line = bytes(buffer[offset:newline]).rstrip(b"\r")
        offset = newline + 1
        code_text, separator = line[:3], line[3:4]
        if not (code_text.isdigit() and separator in (b"", b" ", b"-")):
            shown = line[:80].decode("utf-8", "replace")
            raise WireGarbled(f"the server sent a line that is not an SMTP reply: {shown!r}")
        lines.append(line[4:].decode("utf-8", "replace"))
        if separator != b"-":
            return RawReply(int(code_text), tuple(lines)), offset


def _again(error: WireError) -> WireError:
    """A fresh exception like ``error`` (re-raising one instance piles up tracebacks)."""
    return type(error)(str(error))


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "reset by the server"
    if isinstance(exc, BrokenPipeError):
        return "the server stopped reading"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
