"""An account's sessions open side by side up to AUTH; one logs in before the others.

The engine alone (``relay.flush.RelayingManager``) in the test's loop, against
a real aiosmtpd with STARTTLS and AUTH. Its AUTH hook holds its verdict until
every connection has said EHLO over TLS -- which happens only if the sessions
open side by side -- so the other sessions are ready to log in when it comes.
The server counts connections, AUTH commands, QUITs and connections closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from relay.accounts import Account, Security
from relay.states import MessageState
from relay.store.outbox import Outbox
from tests.relayer.test_flush_safe_end import engine_tasks
from tests.support.flushes import flush_through, queue_notes
from tests.support.smtp_servers import (
    HOST,
    USER,
    RecordingHandler,
    ServerOptions,
    TestCertificates,
)

PASSWORD = "right"
CONNECTIONS = 3
#: How long the AUTH hook waits for every connection's EHLO over TLS (never, when they open so).
READY_TIMEOUT_S = 5.0


@dataclass
class CountingHandler(RecordingHandler):
    """Counts EHLOs over TLS, AUTHs and QUITs; AUTH answers once all sessions are ready."""

    refuse: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    tls_ehlos: int = 0
    auths: int = 0
    quits: int = 0
    closed: int = 0
    #: Whether every connection had said EHLO over TLS when each AUTH got its verdict.
    ready_at_auth: list[bool] = field(default_factory=list)
    refuse_auth: bool = False
    #: Called once every session is ready, before the first AUTH gets its verdict.
    on_ready: Callable[[], None] | None = None
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        session.host_name = hostname  # what aiosmtpd does when there is no EHLO hook
        if session.ssl is not None:
            self.tls_ehlos += 1
            if self.tls_ehlos == CONNECTIONS:
                self.all_ready.set()
        return responses

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        self.auths += 1
        try:
            await asyncio.wait_for(self.all_ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            self.ready_at_auth.append(False)
        else:
            self.ready_at_auth.append(True)
        if self.on_ready is not None:
            self.on_ready()
        if self.refuse_auth:
            return "535 5.7.8 Authentication credentials invalid"
        return MISSING  # aiosmtpd checks the password itself

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        self.quits += 1
        return MISSING


class CountingSMTP(SMTP):
    """aiosmtpd's protocol, telling its handler when a connection opens and closes."""

    def __init__(self, handler: CountingHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.counting = handler
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.counted:  # not again for the TLS layer after STARTTLS
            self.counted = True
            self.counting.connections += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.counting.closed += 1
        if self.counting.closed == self.counting.connections:
            self.counting.all_closed.set()


async def flush(tmp_path: Path, certs: TestCertificates, *, auth: str) -> None:
    """Flush 6 messages over 3 connections; check what the server saw, then the outbox.

    ``auth``: the server "refuse"s or "take"s the password, or the flush is
    stopped (``"stop"``) while the first session logs in and the others wait.
    """
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, 2 * CONNECTIONS)
    handler = CountingHandler(refuse_auth=auth == "refuse")
    options = ServerOptions(security=Security.STARTTLS, tls=certs, password=PASSWORD)
    context = options.context()
    kwargs = options.smtp_kwargs(context)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: CountingSMTP(handler, loop=loop, **kwargs), HOST, 0)
    try:
        account = Account(
            name="test",
            host=HOST,
            port=server.sockets[0].getsockname()[1],
            security=Security.STARTTLS,
            user=USER,
            ca_file=certs.ca_file,
            max_connections=CONNECTIONS,
            connect_timeout_s=10.0,
            command_timeout_s=10.0,
            data_timeout_s=10.0,
        )
        manager = flush_through(outbox, account, password=PASSWORD)
        if auth == "stop":
            handler.on_ready = manager.stop
        result = await manager.run()
        # No session of the flush outlives it, and the server sees every connection end.
        assert engine_tasks() == []
        assert manager.running_sessions == 0
        await asyncio.wait_for(handler.all_closed.wait(), 10.0)
    finally:
        server.close()
        await server.wait_closed()
    assert handler.connections == handler.closed == CONNECTIONS
    # Every connection was ready to log in (EHLO over TLS) before the first verdict.
    assert handler.ready_at_auth[0] is True
    states = [outbox.get(i).state for i in ids]
    if auth == "stop":
        # Stopped while logging in: every connection dropped, every message as it was.
        assert handler.auths == 1
        assert result.stopped
        assert states == [MessageState.QUEUED] * len(ids)
        assert handler.received == []
    elif auth == "refuse":
        # Refused once: no other connection sent the password; each one said QUIT.
        assert handler.auths == 1
        assert handler.quits == CONNECTIONS
        assert result.auth_refused
        assert states == [MessageState.QUEUED] * len(ids)  # handed back untouched
        assert handler.received == []
    else:
        assert handler.auths == CONNECTIONS
        assert handler.ready_at_auth == [True] * CONNECTIONS
        assert states == [MessageState.SENT] * len(ids)
        assert len(handler.received) == len(ids)
    outbox.close()


async def test_a_refused_password_is_tried_once_and_every_waiting_session_quits(
    tmp_path: Path, certs: TestCertificates
) -> None:
    await flush(tmp_path, certs, auth="refuse")


async def test_a_taken_password_lets_every_session_log_in(
    tmp_path: Path, certs: TestCertificates
) -> None:
    await flush(tmp_path, certs, auth="take")


async def test_stopping_while_the_others_wait_to_log_in_ends_every_session(
    tmp_path: Path, certs: TestCertificates
) -> None:
    await flush(tmp_path, certs, auth="stop")
