"""The bytes on the wire once a session is open: replies in, commands and DATA out.

aiosmtplib opens the session (connect, TLS, EHLO, AUTH); for the transactions
the connection's transport is handed to ``Wire``, our own protocol, because
aiosmtplib cannot do what the mail phase needs (no PIPELINING, no streamed data):

- DATA streamed in chunks with flow control, so progress means bytes the
  kernel took, not bytes queued in a buffer, and a 50 MB message is never
  copied whole;
- replies kept in arrival order, none dropped: a ``421`` sent just before the
  server hangs up is still there to explain the hang-up, and a later
  pipelining layer can match several replies to several commands;
- hard bounds: a reply may not exceed ``max_reply_bytes``, and beyond the
  replies to the commands written (``write(…, replies=n)``: however many
  recipients a message has) at most ``max_unasked_replies`` more are kept,
  whatever the server sends;
- one code per reply: a multi-line reply whose lines carry different codes
  (``550-…`` then ``250 …``) says two things at once, and RFC 5321 section
  4.2.1 requires one code; it is a protocol error, never read as its last line.

``DotStuffer`` is the DATA encoding of RFC 5321 section 4.5.2, fed the
message piece by piece and done with ``bytes.replace`` (no regular expression
on the common path): CRLF line endings, a dot doubled at the start of every
line (the first line and a line that starts exactly at a piece boundary
included: whether the last piece ended a line is carried over), a final CRLF
when the message lacks one. ``data_chunks`` (a message in memory) and
``stream_chunks`` (a message read piece by piece, e.g. from the store) turn a
message into ``DataChunk`` writes with the terminating ``.`` in the same chunk
as the last bytes of the message (no small trailing write for Nagle to hold
back). Whatever the pieces, the bytes on the wire are the same.

Costs that shaped it (CPython 3.11, per MB of message): ``bytes.replace`` of
a two-byte pattern ~0.85 ms; a ``b"." in piece`` test ~0.01 ms (``memchr``),
so a piece without a dot -- every piece of a base64 attachment -- skips the
replace; counting line endings to check they are all CRLF ~1.4 ms, which is
why a source that guarantees CRLF (the store: ``relay.message`` normalises at
intake) is fed with ``crlf=True`` and skips that check.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024
#: What one read from the connection takes at most (``Wire``'s receive buffer).
RECEIVE_BYTES = 64 * 1024
_CR = 0x0D
_LF = 0x0A
_DOT = 0x2E
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")


class WireError(Exception):
    """Base of what ``Wire`` raises: the session cannot go on (translated by its owner)."""


class WireClosed(WireError):
    """The connection is gone (closed by the server, reset, or closed by us)."""


class WireTimeout(WireError):
    """Nothing came (or nothing could be written) within the time allowed."""


class WireGarbled(WireError):
    """The server sent something that is not an SMTP reply, or far too much of it."""


class RawReply:
    """One complete reply: its code and the text of each line (code and separator removed).

    A plain class rather than a frozen dataclass: a flush makes five a
    message, and a frozen dataclass's ``__init__`` costs twice as much.
    """

    __slots__ = ("code", "lines")

    def __init__(self, code: int, lines: tuple[str, ...]) -> None:
        self.code = code
        self.lines = lines

    @property
    def text(self) -> str:
        lines = self.lines
        if len(lines) == 1:
            return lines[0]
        return " ".join(line for line in lines if line)

    def __repr__(self) -> str:
        return f"RawReply({self.code!r}, {self.lines!r})"


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Bytes to write for the DATA phase, and how far into the message they reach."""

    wire: bytes
    end: int  # offset in the message body just after this chunk
    last: bool  # carries the terminating "." line


class DotStuffer:
    """The DATA encoding of one message, fed piece by piece (RFC 5321 section 4.5.2).

    ``feed`` returns the wire bytes for a piece of the message, ``end`` what
    closes the data (a CRLF if the message did not end a line, then ``.``).
    Any split of a message into pieces gives the same bytes in total as
    feeding it whole. With ``crlf=True`` the caller guarantees the message
    uses CRLF line endings only, and they are not checked; otherwise bare CR
    and LF become CRLF, and a CR ending a piece is held back (``held``) until
    the next piece shows whether a LF follows it.
    """

    __slots__ = ("_crlf", "_held_cr", "_line_start")

    def __init__(self, *, crlf: bool = False) -> None:
        self._crlf = crlf
        self._line_start = True  # the next byte starts a line
        self._held_cr = False

    @property
    def held(self) -> int:
        """Message bytes fed but not yet returned (a CR waiting for its LF): 0 or 1."""
        return int(self._held_cr)

    def feed(self, piece: bytes) -> bytes:
        if not self._crlf:
            if self._held_cr:
                piece = b"\r" + piece
            self._held_cr = piece[-1:] == b"\r"
            if self._held_cr:
                piece = piece[:-1]
            piece = _crlf(piece)
        if not piece:
            return b""
        wire = piece.replace(b"\n.", b"\n..") if b"." in piece else piece
        if self._line_start and piece[0] == _DOT:
            wire = b"." + wire
        self._line_start = piece[-1] == _LF
        return wire

    def end(self) -> bytes:
        if self._held_cr or not self._line_start:
            return b"\r\n.\r\n"
        return b".\r\n"


def data_chunks(body: bytes, chunk_bytes: int = CHUNK_BYTES) -> Iterator[DataChunk]:
    """Encode ``body`` for DATA, chunk by chunk; the last chunk ends with ``.\\r\\n``.

    Each chunk covers at most ``chunk_bytes`` (at least 2) bytes of the
    message; its wire bytes can be longer by the dots doubled.
    """
    if len(body) <= chunk_bytes:  # the common case, a few KB: one chunk, no stuffer
        return iter((DataChunk(_encode_whole(body), len(body), True),))
    return stream_chunks(_pieces(body, chunk_bytes))


def _encode_whole(body: bytes) -> bytes:
    """``DotStuffer`` fed ``body`` in one piece, then ended (the same bytes, less overhead)."""
    piece = _crlf(body)
    wire = piece.replace(b"\n.", b"\n..") if b"." in piece else piece
    if piece[:1] == b".":
        wire = b"." + wire
    return wire + (b".\r\n" if not piece or piece[-1] == _LF else b"\r\n.\r\n")


def stream_chunks(pieces: Iterable[bytes], *, crlf: bool = False) -> Iterator[DataChunk]:
    """Encode a message given as ``pieces`` for DATA: one chunk per piece, the last with the dot.

    The next piece is taken before a chunk is handed out (to know whether it
    is the last), so at most two pieces are held at a time. ``crlf``: see
    ``DotStuffer``.
    """
    stuffer = DotStuffer(crlf=crlf)
    iterator = iter(pieces)
    piece = next(iterator, None)
    if piece is None:
        yield DataChunk(stuffer.end(), 0, True)
        return
    end = 0
    while piece is not None:
        following = next(iterator, None)
        end += len(piece)
        wire = stuffer.feed(piece)
        if following is None:
            yield DataChunk(wire + stuffer.end(), end, True)
            return
        yield DataChunk(wire, end - stuffer.held, False)
        piece = following


def _pieces(body: bytes, chunk_bytes: int) -> Iterator[bytes]:
    total = len(body)
    start = 0
    while start < total:
        end = min(start + chunk_bytes, total)
        if end < total and body[end - 1] == _CR:
            # Never split a CR from a LF after it: the pair is one line ending.
            # One step back is enough: a CR left last is then followed by a CR.
            end -= 1
        yield body[start:end]
        start = end


def _crlf(piece: bytes) -> bytes:
    """``piece`` with every line ending as CRLF (stored messages already are: fast path)."""
    crlf = piece.count(b"\r\n")
    if crlf == piece.count(b"\r") == piece.count(b"\n"):
        return piece
    return _LINE_ENDING.sub(b"\r\n", piece)


class Wire(asyncio.BufferedProtocol):
    """An SMTP client's end of an open connection, after aiosmtplib handed it over.

    Create it with the transport to take over; from then on every byte the
    server sends is parsed here. Replies queue in order; ``read_reply`` takes
    the oldest. Writing never blocks; ``wait_writable`` waits while the
    transport's buffer is over its high-water mark.

    Replies come in groups (PIPELINING: four or five a message in one
    segment), so the reading side is built for that: every complete reply in
    what arrived is parsed in one pass, a reply already queued is handed out
    without waiting, and a reader that must wait arms no timer of its own:
    one timer per wire, moved only forwards (``_arm``), fires at the earliest
    deadline still wanted and re-arms itself if the deadline has moved on.

    It is a ``BufferedProtocol``: the transport reads into one buffer of ours
    (``RECEIVE_BYTES``) instead of allocating 256 KiB for every read and
    shrinking it, which costs more than everything else a read does (an
    mmap and munmap each time: ~12 us a read, one or two reads a message).
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        *,
        max_reply_bytes: int = 64 * 1024,
        max_unasked_replies: int = 64,
    ) -> None:
        self._transport = transport
        self._max_reply_bytes = max_reply_bytes
        self._max_unasked_replies = max_unasked_replies
        self._awaited = 0  # replies owed to commands written and not yet received
        self._unasked = 0  # replies received beyond those
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._receiving = memoryview(bytearray(RECEIVE_BYTES))
        self._replies: deque[RawReply] = deque()
        self._reply_waiter: asyncio.Future[None] | None = None
        self._writable_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._closed: WireError | None = None
        self._garbled: WireGarbled | None = None
        self._deadline: float | None = None  # of the reader waiting now, if it has one
        self._timed_out = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        transport.set_protocol(self)
        if transport.is_closing():
            self._closed = WireClosed("the connection was already closed")

    # -- asyncio.BufferedProtocol ----------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receiving

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._receiving[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """What the server sent next (called by ``buffer_updated``)."""
        if self._garbled is not None:
            return
        buffer = self._buffer
        if buffer:
            buffer += data
            if b"\n" not in data:  # nothing new is complete
                if len(buffer) > self._max_reply_bytes:
                    self._garble(_too_long(self._max_reply_bytes))
                    self._wake_reader()
                return
            data = bytes(buffer)
            buffer.clear()
        try:
            used = self._parse(data)
            if used < len(data):
                if len(data) - used > self._max_reply_bytes:
                    raise _too_long(self._max_reply_bytes)
                buffer += data[used:]
        except WireGarbled as exc:
            self._garble(exc)
        self._wake_reader()

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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

    def next_reply(self) -> RawReply | None:
        """Take the oldest reply already here, if there is one (no waiting, no timer)."""
        return self._replies.popleft() if self._replies else None

    def write(self, data: bytes, *, replies: int = 0) -> None:
        """Write ``data``, which holds ``replies`` commands that each earn a reply."""
        if self._closed is not None:
            raise _again(self._closed)
        if self._transport.is_closing():
            raise WireClosed("the connection is closing")
        self._awaited += replies
        self._transport.write(data)

    async def read_reply(self, timeout_s: float | None) -> RawReply:
        """The next reply; ``WireTimeout`` if none within ``timeout_s``."""
        replies = self._replies
        if replies:
            return replies.popleft()
        loop = self._loop
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            if self._closed is not None:
                raise _again(self._closed)
            waiter = self._reply_waiter = loop.create_future()
            self._deadline = deadline
            self._timed_out = False
            if deadline is not None:
                self._arm(deadline)
            try:
                await waiter
            finally:
                self._reply_waiter = None
                self._deadline = None
            if replies:
                return replies.popleft()
            if self._timed_out:
                raise WireTimeout(f"no reply within {timeout_s:g} s")

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
        self._disarm()
        self._transport.close()

    def abort(self) -> None:
        """Close now, dropping whatever is still buffered."""
        self._disarm()
        self._transport.abort()

    # -- the reply timer -------------------------------------------------------------

    def _arm(self, deadline: float) -> None:
        """Have the timer fire no later than ``deadline`` (it is never moved later)."""
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first and re-arms for the rest (``_on_timer``)
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_timer)
        self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._reply_waiter is None:
            return  # nobody is waiting (the reply came): no timer until the next wait
        if self._timer_at >= deadline:  # armed for this very deadline: it is due
            self._timed_out = True
            self._wake_reader()
        else:  # armed for an earlier reader's deadline: on to this one's
            self._arm(deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- parsing -----------------------------------------------------------------------

    def _parse(self, data: bytes) -> int:
        """Queue every complete reply in ``data``; the bytes they took.

        RFC 5321 section 4.2: ``ddd-text`` continues a reply, ``ddd text`` (or
        a bare ``ddd``) ends it, and every line of one reply carries the same
        code (section 4.2.1). A bare LF is accepted as a line ending. One
        pass over the complete lines, however many replies they hold.
        """
        complete = data.rfind(b"\n") + 1
        if not complete:
            return 0
        replies = self._replies
        used = offset = 0
        texts: list[str] = []
        first_code = b""
        for line in data[:complete].split(b"\n")[:-1]:
            offset += len(line) + 1
            if line[-1:] == b"\r":
                line = line.rstrip(b"\r")
            code_text, separator = line[:3], line[3:4]
            if not (code_text.isdigit() and separator in _SEPARATORS):
                shown = line[:80].decode("utf-8", "replace")
                raise WireGarbled(f"the server sent a line that is not an SMTP reply: {shown!r}")
            if texts and code_text != first_code:
                raise WireGarbled(
                    "the server sent a reply whose lines carry different codes"
                    f" ({first_code.decode()} then {code_text.decode()}): it says two"
                    " things at once (RFC 5321 section 4.2.1 allows one code a reply)"
                )
            first_code = code_text
            texts.append(line[4:].decode("utf-8", "replace"))
            if separator != b"-":
                replies.append(RawReply(int(code_text), tuple(texts)))
                texts = []
                used = offset
                if self._awaited:
                    self._awaited -= 1
                else:
                    self._unasked += 1
                    if self._unasked > self._max_unasked_replies:
                        raise WireGarbled(
                            f"the server sent more than {self._max_unasked_replies} replies"
                            " to commands it was never sent"
                        )
        return used

    def _garble(self, exc: WireGarbled) -> None:
        self._garbled = exc
        self._closed = exc  # a write after this says why, not just "closed"
        self._buffer.clear()
        self._disarm()
        self._transport.abort()

    def _wake_reader(self) -> None:
        if self._reply_waiter is not None and not self._reply_waiter.done():
            self._reply_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._writable_waiter is not None and not self._writable_waiter.done():
            self._writable_waiter.set_result(None)


_SEPARATORS = (b"", b" ", b"-")


def _too_long(max_reply_bytes: int) -> WireGarbled:
    return WireGarbled(f"the server sent a reply longer than {max_reply_bytes} bytes")


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
