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
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.loopback import HOST, LoopbackServer, on_own_thread


def strip_starttls(lines: list[bytes]) -> list[bytes]:
    """One complete reply (its lines, CRLF included) without a STARTTLS line."""
    kept = [line for line in lines if line[4:].strip().upper() != b"STARTTLS"]
    if not kept:
        return lines
    return [
        line[:3] + (b" " if index == len(kept) - 1 else b"-") + line[4:]
        for index, line in enumerate(kept)
    ]


class StrippingProxy(LoopbackServer):
    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.from_client = bytearray()
        self.stripped = 0  # STARTTLS offers removed

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        try:
            await asyncio.gather(
                self._client_to_server(reader, up_writer),
                self._server_to_client(up_reader, writer),
            )
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await up_writer.wait_closed()

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
    with on_own_thread(StrippingProxy(upstream_port), "stripping-proxy") as proxy:
        yield proxy
