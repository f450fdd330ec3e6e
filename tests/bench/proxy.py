"""A loopback TCP proxy that delays every byte by a fixed time each way and counts client turns.

A *client turn* is a burst of bytes from the client that follows bytes from
the server: the client had to wait for the server before it could go on. In
lock-step SMTP every command is one turn; with PIPELINING a whole group (or a
message body with the next envelope) is one. Bytes keep their order and
their timing relative to each other: each direction is one queue released
``delay_s`` after the bytes arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.loopback import LoopbackServer


@dataclass
class TurnCounter:
    """Turns and bytes; ``first_at``/``last_at``: the loop's time of the first and last bytes."""

    turns: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    #: Summed over the turns: from the server's last bytes to the client's next ones,
    #: as both reached the proxy -- the delay one way plus the client's time to answer.
    client_waited_s: float = 0.0
    #: Likewise from the client's last bytes to the server's answer (one delay plus
    #: the server's time to answer).
    server_waited_s: float = 0.0
    server_answers: int = 0
    #: Summed over the turns: how late the proxy passed on the server's bytes the
    #: client answered (its timer fired late), which ``client_waited_s`` includes.
    client_late_s: float = 0.0
    _last_from_server: bool = True  # the greeting comes first: the first command is a turn
    _server_at: float | None = None
    _client_at: float | None = None
    _released_late_s: float = 0.0

    def client_sent(self, size: int) -> None:
        now = self._stamp(size)
        if size and self._last_from_server:
            self.turns += 1
            self._last_from_server = False
            if self._server_at is not None:
                self.client_waited_s += now - self._server_at
                self.client_late_s += self._released_late_s
        if size:
            self._client_at = now
        self.client_bytes += size

    def released_to_client(self, late_s: float) -> None:
        """The proxy passed bytes of the server on to the client ``late_s`` after their time."""
        self._released_late_s = late_s

    def server_sent(self, size: int) -> None:
        now = self._stamp(size)
        if size and not self._last_from_server and self._client_at is not None:
            self.server_answers += 1
            self.server_waited_s += now - self._client_at
        if size:
            self._last_from_server = True
            self._server_at = now
        self.server_bytes += size

    def _stamp(self, size: int) -> float:
        now = asyncio.get_running_loop().time()
        if size:
            self.first_at = now if self.first_at is None else self.first_at
            self.last_at = now
        return now


class Tee:
    """Counts into several counters at once: the proxy's in all and one connection's own."""

    def __init__(self, *counters: TurnCounter) -> None:
        self._counters = counters

    def client_sent(self, size: int) -> None:
        for counter in self._counters:
            counter.client_sent(size)

    def server_sent(self, size: int) -> None:
        for counter in self._counters:
            counter.server_sent(size)

    def released_to_client(self, late_s: float) -> None:
        for counter in self._counters:
            counter.released_to_client(late_s)


class DelayProxy(LoopbackServer):
    """``async with DelayProxy(target_port, delay_s)``: listen on 127.0.0.1:``port``.

    ``counter`` counts every connection's bytes together (its turns mean
    something only while one connection runs at a time); ``sessions`` holds
    one counter per connection, in the order they were accepted.
    """

    def __init__(self, target_host: str, target_port: int, delay_s: float) -> None:
        super().__init__()
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.counter = TurnCounter()
        self.sessions: list[TurnCounter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = TurnCounter()
        self.sessions.append(session)
        both = Tee(self.counter, session)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, both.client_sent),
                self._pipe(up_reader, writer, both.server_sent, both.released_to_client),
                return_exceptions=True,
            )
        finally:
            up_writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        count: Callable[[int], None],
        released: Callable[[float], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if released is not None:
                    released(max(0.0, loop.time() - due))
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

        releaser = asyncio.create_task(release())
        try:
            while True:
                data = await reader.read(256 * 1024)
                count(len(data))  # counted on arrival: what the sender did, not the delay
                queue.put_nowait((loop.time() + self.delay_s, data))
                if not data:
                    break
            await releaser
        finally:
            releaser.cancel()


class SharedRate:
    """A link's capacity, shared by every connection through it: ``take`` waits its turn.

    Bytes are released in the order they were offered, each ``size / bytes_per_s``
    after the previous ones, whichever connection they came from. A token
    bucket ``burst_s`` deep: what a timer's lateness cost is made up at once,
    so the rate holds over a run instead of losing a little at every piece;
    the link's first and last bytes are stamped (``first_at``, ``last_at``).
    """

    def __init__(self, bytes_per_s: float, *, burst_s: float = 0.05) -> None:
        self.bytes_per_s = bytes_per_s
        self.burst_s = burst_s
        self._free_at = 0.0
        self.first_at: float | None = None
        self.last_at: float | None = None

    async def take(self, size: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.first_at is None:
            self.first_at = now
        self._free_at = max(now - self.burst_s, self._free_at) + size / self.bytes_per_s
        if self._free_at > now:
            await asyncio.sleep(self._free_at - now)
        self.last_at = loop.time()


class RateProxy(LoopbackServer):
    """A server that reads its clients at ``bytes_per_s`` in all: a slow link to a fast sink.

    The client-to-server direction is read a little at a time, each piece only
    when the shared rate allows; the kernel's buffers hold the rest and slow
    the clients down, as a real slow link does. Replies pass untouched.
    """

    PIECE_BYTES = 16 * 1024

    def __init__(self, target_host: str, target_port: int, bytes_per_s: float) -> None:
        super().__init__()
        self.target = (target_host, target_port)
        self.rate = SharedRate(bytes_per_s)
        self.counter = TurnCounter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(
                self._upstream(reader, up_writer),
                self._downstream(up_reader, writer),
                return_exceptions=True,
            )
        finally:
            up_writer.close()

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(self.PIECE_BYTES):
            await self.rate.take(len(data))
            self.counter.client_sent(len(data))
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(64 * 1024):
            self.counter.server_sent(len(data))
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
