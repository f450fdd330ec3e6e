"""An OAuth2 endpoint on 127.0.0.1 that misbehaves in one way a test chooses.

Authlib's authorization server (``tests.support.oauth_server``) answers as
the RFCs say; this one answers as a broken or hostile server might, on the
test's own event loop: each request's path and form body go to ``answer``,
which writes the whole reply itself (a JSON error that echoes what it was
sent, a reply that trickles one byte at a time, ...). The server stops on
the way out of ``serving_endpoint``, and every reply writer here is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

Answer = Callable[[str, str, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving_endpoint(answer: Answer) -> AsyncIterator[str]:
    """``http://127.0.0.1:PORT`` of a server that lets ``answer`` reply to every POST."""

    serving: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        serving.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = (await reader.readexactly(length)).decode("utf-8", "replace")
            await answer(head.split(" ")[1], body, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            serving.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(serving):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def reply_json(writer: asyncio.StreamWriter, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    writer.write(
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def echo_as_error(path: str, body: str, writer: asyncio.StreamWriter) -> None:
    """A 400 ``server_error`` whose description repeats the form it was sent."""
    await reply_json(writer, 400, {"error": "server_error", "error_description": f"got {body}"})


def trickling(every_s: float, *, at_most: int = 200) -> Answer:
    """A 200 whose body comes one space every ``every_s`` (never a whole token)."""

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {at_most + 1}\r\n\r\n{{".encode()
        )
        for _ in range(at_most):
            await writer.drain()
            await asyncio.sleep(every_s)
            writer.write(b" ")

    return answer
