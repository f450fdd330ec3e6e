"""The loopback redirect of a browser sign-in (RFC 8252 section 7.3).

Outbox listens on ``127.0.0.1`` on a port the system picks, for as long as
the sign-in may take and no longer; the authorization server sends the
person's browser back to ``http://127.0.0.1:PORT/`` with the code (or the
error) in the query. Only a request carrying the ``state`` this sign-in sent
ends the wait (RFC 6749 section 10.12: a page elsewhere cannot feed us its
own code); anything else gets a 400 and the wait goes on.

The listener speaks just enough HTTP/1.x for one GET: the request line, the
headers up to the blank line (bounded), one small page back, close. It binds
the IPv4 loopback literal, not ``localhost``, as RFC 8252 section 8.3 advises.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qsl, urlsplit

#: Longest request head read from the browser.
MAX_HEAD_BYTES = 16 * 1024
_DONE_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Outbox</title></head>"
    "<body><p>{text}</p></body></html>"
)


class RedirectTimedOut(Exception):
    """Nobody came back from the browser in time."""


class RedirectListener:
    """``async with RedirectListener() as listener``: ``redirect_uri`` is where to come back."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None
        self._state: str | None = None
        self.redirect_uri = ""

    async def __aenter__(self) -> RedirectListener:
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._result is not None and not self._result.done():
            self._result.cancel()

    async def wait_for(self, state: str, timeout_s: float) -> dict[str, str]:
        """The query parameters of the redirect that carries ``state``."""
        assert self._result is not None
        self._state = state
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self._result)
        except TimeoutError:
            raise RedirectTimedOut(
                f"nobody came back from the browser within {timeout_s:g} s"
            ) from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(30):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        if len(head) > MAX_HEAD_BYTES:
            await self._answer(writer, 431, "The request was too large.")
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] != "GET":
            await self._answer(writer, 405, "Outbox expected the browser's return here.")
            return
        target = urlsplit(parts[1])
        params = dict(parse_qsl(target.query))
        if target.path != "/" or self._state is None or params.get("state") != self._state:
            await self._answer(writer, 400, "This is not the sign-in Outbox is waiting for.")
            return
        if "error" in params:
            await self._answer(writer, 200, "The sign-in was not completed. Back to Outbox.")
        else:
            await self._answer(writer, 200, "Signed in. You can close this page and go back.")
        if self._result is not None and not self._result.done():
            self._result.set_result(params)

    async def _answer(self, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        body = _DONE_PAGE.format(text=text).encode("utf-8")
        reason = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed"}.get(status, "Too Large")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()
