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

The replies themselves are parsed by ``relay.smtp.replies.ReplyParser``
(no I/O); ``Wire`` feeds it what arrives, counts what it hands back against
the commands written, and wakes whoever waits. The message data is encoded by
``relay.smtp.data_encoding``; ``Wire`` only writes it.

Its errors are ``OSError``s, as aiosmtplib's are: ``WireClosed`` is a
``ConnectionError`` and ``WireTimeout`` a ``TimeoutError``, so code that
catches those (or ``OSError``) around I/O catches these too. ``WireGarbled``
(the server broke the protocol) is neither.
"""

from __future__ import annotations

import asyncio
from collections import deque

from relay.smtp.replies import MAX_REPLY_BYTES, RawReply, ReplyParser

#: What one read from the connection takes at most (``Wire``'s receive buffer).
RECEIVE_BYTES = 64 * 1024


class WireError(Exception):
    """Base of what ``Wire`` raises: the session cannot go on (translated by its owner)."""


class WireClosed(WireError, ConnectionError):
    """The connection is gone (closed by the server, reset, or closed by us)."""


class WireTimeout(WireError, TimeoutError):
    """Nothing came (or nothing could be written) within the time allowed."""


class WireGarbled(WireError):
    """The server sent something that is not an SMTP reply, or far too much of it."""


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
        max_reply_bytes: int = MAX_REPLY_BYTES,
        max_unasked_replies: int = 64,
    ) -> None:
        self._transport = transport
        self._parser = ReplyParser(max_reply_bytes=max_reply_bytes)
        self._max_unasked_replies = max_unasked_replies
        self._awaited = 0  # replies owed to commands written and not yet received
        self._unasked = 0  # replies received beyond those
        self._loop = asyncio.get_running_loop()
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
        parser = self._parser
        replies = parser.feed(data)
        if replies:
            self._queue(replies)
        if parser.error is not None and self._garbled is None:
            self._garble(WireGarbled(str(parser.error)))
        if replies or self._garbled is not None:
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

    # -- replies -----------------------------------------------------------------------

    def _queue(self, replies: list[RawReply]) -> None:
        """Queue what the parser completed, counting it against the commands written.

        Beyond the replies owed, at most ``max_unasked_replies`` more are
        kept: the one over that bound ends the session.
        """
        awaited = self._awaited
        if len(replies) <= awaited:  # the common case: every one was asked for
            self._awaited = awaited - len(replies)
            self._replies.extend(replies)
            return
        queue = self._replies
        for reply in replies:
            queue.append(reply)
            if self._awaited:
                self._awaited -= 1
                continue
            self._unasked += 1
            if self._unasked > self._max_unasked_replies:
                self._garble(
                    WireGarbled(
                        f"the server sent more than {self._max_unasked_replies} replies"
                        " to commands it was never sent"
                    )
                )
                return

    def _garble(self, exc: WireGarbled) -> None:
        self._garbled = exc
        self._closed = exc  # a write after this says why, not just "closed"
        self._disarm()
        self._transport.abort()

    def _wake_reader(self) -> None:
        if self._reply_waiter is not None and not self._reply_waiter.done():
            self._reply_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._writable_waiter is not None and not self._writable_waiter.done():
            self._writable_waiter.set_result(None)


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
