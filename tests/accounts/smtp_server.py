"""A real aiosmtpd on 127.0.0.1, port 0, for ``outbox account test`` run as a subprocess.

The command under test is another process, so the server cannot share the
test's event loop: it runs on a loop of its own in a thread, and the context
manager closes it (and joins the thread) on the way out, whatever happened.
It records every AUTH attempt and every message it was given, so a test can
say "nothing was sent".

aiosmtpd 1.4 sets its own deprecated ``Session.login_data`` after every
successful AUTH, which warns; tests using AUTH must ignore that one warning
(``IGNORE_AIOSMTPD_LOGIN_DATA``), or it fails the server's AUTH handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "alice"
PASSWORD = "s3cret pässword"
SIZE_LIMIT = 12_345_678
IGNORE_AIOSMTPD_LOGIN_DATA = "ignore:Session.login_data is deprecated:DeprecationWarning"


@dataclass
class Recorder:
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login)
    messages: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # handled=False: aiosmtpd itself answers a refusal with 535.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((mechanism, auth_data.login.decode()))
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class RunningServer:
    host: str
    port: int
    recorder: Recorder


@contextlib.contextmanager
def serving(
    *, tls_context: ssl.SSLContext | None = None, require_starttls: bool = False
) -> Iterator[RunningServer]:
    """An SMTP server offering AUTH PLAIN/LOGIN (also in plain text: loopback tests)."""
    recorder = Recorder()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="aiosmtpd", daemon=True)
    thread.start()

    def make_smtp() -> SMTP:
        return SMTP(
            recorder,
            hostname="mx.test.example",
            authenticator=recorder.authenticate,
            auth_require_tls=require_starttls,
            data_size_limit=SIZE_LIMIT,
            enable_SMTPUTF8=True,
            tls_context=tls_context,
            require_starttls=require_starttls,
            loop=loop,
        )

    async def start() -> asyncio.Server:
        return await loop.create_server(make_smtp, "127.0.0.1", 0)

    async def stop(server: asyncio.Server) -> None:
        server.close()
        await server.wait_closed()

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        port = server.sockets[0].getsockname()[1]
        yield RunningServer("127.0.0.1", port, recorder)
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
