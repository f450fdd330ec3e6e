"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, port 0, with trustme certificates.

Two ways to run one, same options:

- ``async with smtp_server(...) as server`` in the test's own event loop
  (asyncio tests of the engine);
- ``with threaded_smtp_server(...) as server`` on a thread of its own
  (tests that run the command line as a subprocess, or a Qt loop).

Options: ``security`` (``Security.NONE`` plain, ``STARTTLS``, ``TLS``
implicit), ``tls`` (a ``TestCertificates``; the server's certificate is for
127.0.0.1 and localhost unless ``cert`` says otherwise), ``password`` (offers
AUTH with ``USER`` and that password; ``mechanisms`` limits which),
``smtputf8``, ``size_limit``, ``host`` (where ``smtp_server`` listens). Every
server records what it received in its ``RecordingHandler`` -- envelopes and
the message bytes exactly as un-stuffed by the server -- and
``server.account(...)`` builds an ``Account`` that points at it. Servers stop when their block ends.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from relay.accounts import Account, Security

HOST = "127.0.0.1"
USER = "alice"
SERVER_NAME = "smtp.outbox-test.invalid"  # no socket.getfqdn() in aiosmtpd: it can stall


# -- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCertificates:
    """A private CA (written to ``ca_file`` for ``Account.ca_file``) and what it signs."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    ca: trustme.CA
    ca_file: Path

    @classmethod
    def create(cls, directory: Path) -> TestCertificates:
        ca = trustme.CA()
        ca_file = directory / "outbox-test-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return cls(ca, ca_file)

    def server_context(
        self,
        *names: str,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> ssl.SSLContext:
        """A server context whose certificate is for ``names`` (default: 127.0.0.1, localhost)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf = self.ca.issue_cert(
            *(names or (HOST, "localhost")), not_before=not_before, not_after=not_after
        )
        leaf.configure_cert(context)
        return context

    def expired_context(self) -> ssl.SSLContext:
        now = datetime.datetime.now(datetime.UTC)
        return self.server_context(
            not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
        )

    def self_signed_context(self) -> ssl.SSLContext:
        """A server presenting a certificate nobody signed but itself (a fresh CA's own)."""
        stranger = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with _pem_files(stranger.cert_pem.bytes(), stranger.private_key_pem.bytes()) as (c, k):
            context.load_cert_chain(c, k)
        return context


@contextmanager
def _pem_files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        cert_path = Path(directory) / "cert.pem"
        key_path = Path(directory) / "key.pem"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        yield str(cert_path), str(key_path)


# -- recording ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message as the server received it: envelope and exact (un-stuffed) bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    body: bytes
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[str, ...] = ()


@dataclass
class RecordingHandler:
    """aiosmtpd handler keeping everything it accepted; ``refuse`` maps addresses to replies."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    reply: str = "250 2.0.0 Message accepted for delivery"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                body=content,
                mail_options=tuple(envelope.mail_options),
                rcpt_options=tuple(envelope.rcpt_options),
            )
        )
        return self.reply


# -- servers --------------------------------------------------------------------------------


@dataclass
class RunningServer:
    """A server that is listening now."""

    host: str
    port: int
    security: Security
    handler: RecordingHandler
    ca_file: Path | None
    user: str | None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def account(self, **changes: Any) -> Account:
        """An account for this server (tiny timeouts unless overridden)."""
        base = Account(
            name="test",
            host=self.host,
            port=self.port,
            security=self.security,
            user=self.user,
            ca_file=self.ca_file,
            connect_timeout_s=5.0,
            command_timeout_s=5.0,
            data_timeout_s=5.0,
        )
        return replace(base, **changes)


@dataclass(frozen=True)
class ServerOptions:
    security: Security = Security.NONE
    tls: TestCertificates | None = None
    tls_context: ssl.SSLContext | None = None  # overrides the default certificate
    password: str | None = None
    mechanisms: Sequence[str] = ("PLAIN", "LOGIN")
    smtputf8: bool = True
    size_limit: int | None = 32 * 1024 * 1024
    handler: RecordingHandler | None = None
    host: str = HOST  # where ``smtp_server`` listens (``::1`` for IPv6)

    def context(self) -> ssl.SSLContext | None:
        if self.security is Security.NONE:
            return None
        if self.tls_context is not None:
            return self.tls_context
        if self.tls is None:
            raise ValueError("a TLS server needs tls=TestCertificates")
        return self.tls.server_context()

    def smtp_kwargs(self, context: ssl.SSLContext | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "hostname": SERVER_NAME,
            "enable_SMTPUTF8": self.smtputf8,
            "data_size_limit": self.size_limit,
            "decode_data": False,
        }
        if self.security is Security.STARTTLS:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        if self.password is not None:
            password = self.password

            def authenticator(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login == USER.encode() and data.password == password.encode()
                )
                return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd says 535

            kwargs["authenticator"] = authenticator
            # STARTTLS servers offer AUTH only after it. aiosmtpd cannot tell an
            # implicit-TLS connection from a plain one, so the others offer it
            # at once (plain text is fine on loopback, where tests run).
            kwargs["auth_require_tls"] = self.security is Security.STARTTLS
            excluded = [m for m in ("PLAIN", "LOGIN") if m not in self.mechanisms]
            kwargs["auth_exclude_mechanism"] = excluded
        return kwargs


@asynccontextmanager
async def smtp_server(**options: Any) -> AsyncIterator[RunningServer]:
    """An aiosmtpd server in the running loop (``ServerOptions`` fields as keywords)."""
    opts = ServerOptions(**options)
    handler = opts.handler or RecordingHandler()
    context = opts.context()
    kwargs = opts.smtp_kwargs(context)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **kwargs),
        opts.host,
        0,
        ssl=context if opts.security is Security.TLS else None,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield RunningServer(
            opts.host,
            port,
            opts.security,
            handler,
            opts.tls.ca_file if opts.tls else None,
            USER if opts.password is not None else None,
        )
    finally:
        server.close()
        await server.wait_closed()


class _PortZeroController(Controller):
    """aiosmtpd's threaded controller, listening on a port the OS picks."""

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextmanager
def threaded_smtp_server(**options: Any) -> Iterator[RunningServer]:
    """An aiosmtpd server on its own thread and loop (``ServerOptions`` fields as keywords)."""
    opts = ServerOptions(**options)
    handler = opts.handler or RecordingHandler()
    context = opts.context()
    kwargs = opts.smtp_kwargs(context)
    controller = _PortZeroController(
        handler,
        hostname=HOST,  # where to listen; the SMTP greeting name is server_hostname
        port=0,
        ssl_context=context if opts.security is Security.TLS else None,
        server_hostname=kwargs.pop("hostname"),
        **kwargs,
    )
    controller.start()
    try:
        yield RunningServer(
            HOST,
            controller.port,
            opts.security,
            handler,
            opts.tls.ca_file if opts.tls else None,
            USER if opts.password is not None else None,
        )
    finally:
        controller.stop()
