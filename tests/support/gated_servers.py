"""A real aiosmtpd server on its own thread, with a gate, for a flush on another loop.

The window runs the engine on the Qt loop, and ``outbox flush`` runs in a
process of its own, so the server runs on a thread and loop of its own
(``tests.support.smtp_servers`` records what it received; this module adds
ways to hold a message in flight, without any sleep):

- ``gated``: each message's end of data waits until the test lets it through,
  so the test sees a message *sending*, its bytes all out, awaiting the
  verdict, for as long as it needs;
- ``freeze_in_data``: the next DATA (after ``freeze_after`` more) freezes the
  server's loop right after its 354, so it reads nothing more; the client's
  bytes stop when the kernel's buffers are full, and the test sees a message
  *part* sent until it thaws the server;
- ``FirstReplyHeld``: only the first message's verdict waits for the gate (a
  slow server, while a later connection is served at once).

The fixtures ``fast`` and ``slow`` are the two servers of the store-error
stories (the window's and the command line's): import them into the test
module that uses them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.accounts import Security
from tests.support.smtp_servers import (
    HOST,
    USER,
    RecordingHandler,
    RunningServer,
    ServerOptions,
)

GATE_TIMEOUT_S = 30.0


@dataclass
class GatedHandler(RecordingHandler):
    """Records like ``RecordingHandler``; while ``gated``, each DATA waits for ``open_gate``."""

    gated: bool = False
    #: Set each time a message's data has fully arrived and waits at the gate.
    waiting: threading.Event = field(default_factory=threading.Event)
    freeze_in_data: bool = False
    #: DATA commands to let through before the one ``freeze_in_data`` freezes in.
    freeze_after: int = 0
    #: Set while the server's loop is frozen inside a DATA.
    frozen: threading.Event = field(default_factory=threading.Event)
    #: Connections open now (the server's side of them).
    open_connections: int = 0
    _gate: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    _thaw: threading.Event = field(default_factory=threading.Event)

    def thaw(self) -> None:
        self._thaw.set()

    def freeze(self) -> None:
        """Runs on the server's loop: block it until ``thaw`` (or a generous timeout)."""
        self.frozen.set()
        self._thaw.wait(GATE_TIMEOUT_S)
        self.frozen.clear()

    def let_one_through(self) -> None:
        self._gate.release()

    def open_gate(self) -> None:
        self.gated = False
        for _ in range(1000):
            self._gate.release()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.gated:
            self.waiting.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._gate.acquire, True, GATE_TIMEOUT_S)
            self.waiting.clear()
        return await super().handle_DATA(server, session, envelope)


@dataclass
class FirstReplyHeld(GatedHandler):
    """Holds the verdict on the first message it gets until ``open_gate``; not the others.

    Its first connection is a slow server; a later one (the next flush's) is
    served at once.
    """

    held: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.held:
            self.held = True
            self.waiting.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._gate.acquire, True, GATE_TIMEOUT_S)
        return await RecordingHandler.handle_DATA(self, server, session, envelope)


class _TestSMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if isinstance(self.event_handler, GatedHandler):
            self.event_handler.open_connections += 1

    def connection_lost(self, error: Exception | None) -> None:
        if isinstance(self.event_handler, GatedHandler):
            self.event_handler.open_connections -= 1
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        if isinstance(handler, GatedHandler) and handler.freeze_in_data and handler.freeze_after:
            handler.freeze_after -= 1
        elif isinstance(handler, GatedHandler) and handler.freeze_in_data:
            handler.freeze_in_data = False
            # Runs when this coroutine first waits for data, i.e. after the 354 went out.
            self.loop.call_soon(handler.freeze)
        await super().smtp_DATA(arg)


class _PortZeroController(Controller):
    def factory(self) -> SMTP:
        return _TestSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def gated_server(
    handler: RecordingHandler | None = None, *, password: str | None = None
) -> Iterator[RunningServer]:
    """A plain-text server on 127.0.0.1 and a free port; stops when the block ends.

    With ``password``, it offers AUTH (PLAIN, LOGIN) for ``tests.support``'s
    ``USER`` and that password (plain text is fine: it is loopback).
    """
    chosen = handler if handler is not None else GatedHandler()
    kwargs = ServerOptions(password=password, size_limit=64 * 1024 * 1024).smtp_kwargs(None)
    server_name = kwargs.pop("hostname")
    controller = _PortZeroController(
        chosen, hostname=HOST, port=0, server_hostname=server_name, **kwargs
    )
    controller.start()
    try:
        yield RunningServer(
            HOST, controller.port, Security.NONE, chosen, None, USER if password else None
        )
    finally:
        if isinstance(chosen, GatedHandler):
            chosen.open_gate()
            chosen.thaw()
        controller.stop()


@pytest.fixture
def fast() -> Iterator[tuple[RunningServer, GatedHandler]]:
    """A server that holds each verdict at its gate, until the test opens it."""
    handler = GatedHandler(gated=True)
    with gated_server(handler) as server:
        yield server, handler


@pytest.fixture
def slow() -> Iterator[tuple[RunningServer, FirstReplyHeld]]:
    """A server that holds only its first verdict (one slow session), until the gate opens."""
    handler = FirstReplyHeld()
    with gated_server(handler) as server:
        yield server, handler
