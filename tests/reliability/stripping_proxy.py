"""A man in the middle that strips STARTTLS from the server's EHLO reply.

It relays a real server byte for byte in both directions, except that it
removes the ``STARTTLS`` line from every multi-line 250 reply (mending the
continuation marks), so a client that "uses TLS when offered" would carry on
in the clear. Everything the client sent is recorded, so a test can show that
nothing -- no AUTH, no MAIL, no message -- crossed the network unencrypted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"


def strip_starttls(lines: list[bytes]) -> list[bytes]:
    """One complete reply (its lines, CRLF included) without a STARTTLS line."""
    kept = [line for line in lines if line[4:].strip().upper() != b"STARTTLS"]
    if not kept:
        return lines
    return [
        line[:3] + (b" " if index == len(kept) - 1 else b"-") + line[4:]
        for index, line in enumerate(kept)
    ]


class StrippingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.from_client = bytearray()
        self.stripped = 0  # STARTTLS offers removed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        try:
            await asyncio.gather(
                self._client_to_server(reader, up_writer),
                self._server_to_client(up_reader, writer),
            )
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await w.wait_closed()

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while chunk := await reader.read(65536):
            self.from_client += chunk
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def _server_to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        reply: list[bytes] = []
        while line := await reader.readline():
            reply.append(line)
            if len(line) >= 4 and line[3:4] == b"-":
                continue  # more lines of this reply to come
            out = strip_starttls(reply) if reply[0].startswith(b"250") else reply
            self.stripped += len(reply) - len(out)
            writer.write(b"".join(out))
            await writer.drain()
            reply = []
        writer.close()


@contextmanager
def threaded_stripping_proxy(upstream_port: int) -> Iterator[StrippingProxy]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="stripping-proxy", daemon=True)
    thread.start()
    proxy = StrippingProxy(upstream_port)
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
        try:
            yield proxy
        finally:
            asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
