"""A TCP server of the tests' own on 127.0.0.1, and a way to run one on its own thread.

The scripted SMTP server, the hostile servers, the STARTTLS-stripping proxy
and the benchmarks' delay proxy differ only in what they say on a
connection. What they share is here: listen on a port the system picks, run
each connection as a task, end a connection quietly when the peer goes away,
and on ``stop`` cancel every connection and wait for it -- so a test's server
never outlives the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self, TypeVar

HOST = "127.0.0.1"

#: What ends a connection without a word: the peer left, or the server is stopping.
QUIET_ENDINGS: tuple[type[BaseException], ...] = (
    ConnectionError,
    asyncio.IncompleteReadError,
    ssl.SSLError,
    asyncio.CancelledError,
)


class LoopbackServer:
    """Subclasses write ``serve``; ``async with`` (or ``start``/``stop``) runs it."""

    quiet_endings = QUIET_ENDINGS

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.host = HOST
        self.port = 0
        self._tls = tls  # TLS from the first byte (implicit TLS), else plain
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, HOST, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.serve(reader, writer)
        except self.quiet_endings:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()


Server = TypeVar("Server", bound=LoopbackServer)


@contextmanager
def on_own_thread(server: Server, name: str) -> Iterator[Server]:
    """``server`` running on a thread and event loop of its own (for subprocess or Qt tests)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
