"""Opening an SMTP session: connect, secure, greet, authenticate; a ``Session`` or why not.

``open_session`` connects to an account's server and gets it ready for mail:

1. TCP connect (our own, so a refusal, a DNS failure and a timeout each get
   their own words; TCP_NODELAY set), to each of the host's addresses in
   turn until one answers, each within ``connect_timeout_s``;
2. implicit TLS (``Security.TLS``) and the greeting, through aiosmtplib;
3. EHLO, or HELO when the server refuses EHLO;
4. STARTTLS for ``Security.STARTTLS`` -- *required*: a server that does not
   offer it gets nothing, not even our credentials -- then EHLO again
   (RFC 3207 section 4.2);
5. AUTH PLAIN (preferred) or LOGIN when the account has a user name, and
   only over TLS or to a loopback address; for an account that signs in
   with OAuth2, OAUTHBEARER (preferred) or XOAUTH2 with an access token
   from its ``TokenSource``, refreshed once when the server refuses it (the
   SASL messages themselves are ``relay.oauth.sasl``'s). Sign-in methods
   belong here and nowhere else.

Certificates are always verified: against the system's trust store, or
against the account's ``ca_file`` as the *only* trust anchor.

``open_until_auth`` does steps 1 to 4 only and returns an ``Opening``,
whose ``authenticate()`` does step 5: a flush opens an account's sessions
side by side up to AUTH and lets one log in before the others
(``relay.login_turns``), so a wrong password is tried once.

It returns a ``relay.smtp.session.Session`` -- the connection handed over to
our own ``Wire``, with what the server offered -- or a ``SessionFailure``
saying, in words a person can act on, what went wrong and at which step; no
aiosmtplib, ssl or OS exception leaves this module. It must not send mail or
say anything after AUTH: that is the session's.

Everything said is recorded in a ``Transcript`` with the credentials replaced
by ``****`` (the base64 lines of AUTH LOGIN and the initial response of AUTH
PLAIN included) before they reach it.

Timeouts come from the account: ``connect_timeout_s`` for the connection, the
TLS handshake and the greeting; ``command_timeout_s`` for each reply.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import aiosmtplib
from aiosmtplib.esmtp import parse_esmtp_extensions

from relay.accounts import Account, Security
from relay.errors import OutboxError
from relay.oauth.sasl import choose_mechanism, error_status, failure_answer, initial_response
from relay.report import FailureKind, Reply, SessionFailure, Stage
from relay.smtp.session import QUIT_TIMEOUT_S, STAGE_WORDS, ServerOffer, Session, kept_text
from relay.smtp.transcript import Transcript, printable
from relay.smtp.wire import Wire
from relay.states import Phase

if TYPE_CHECKING:
    from relay.oauth.tokens import TokenSource

_FQDN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")

PhaseCallback = Callable[[Phase], None]
_E = TypeVar("_E", bound=BaseException)


async def open_session(
    account: Account,
    password: str | TokenSource | None,
    *,
    transcript: Transcript | None = None,
    on_phase: PhaseCallback | None = None,
) -> Session | SessionFailure:
    """Connect, secure, greet and authenticate; the ready ``Session`` or why not.

    ``on_phase`` hears CONNECTING, SECURING (TLS only) and AUTHENTICATING
    (with a user name only) as they start. The transcript gets every line,
    credentials masked. Cancelling this coroutine closes the connection.
    """
    opening = await open_until_auth(account, password, transcript=transcript, on_phase=on_phase)
    if isinstance(opening, SessionFailure):
        return opening
    return await opening.authenticate()


async def open_until_auth(
    account: Account,
    password: str | TokenSource | None,
    *,
    transcript: Transcript | None = None,
    on_phase: PhaseCallback | None = None,
) -> Opening | SessionFailure:
    """Connect, secure and greet, up to AUTH: an ``Opening``, or why not.

    As ``open_session`` but for the last step, which ``Opening.authenticate``
    takes. Cancelling this coroutine closes the connection.
    """
    opener = _Opener(account, password, transcript or Transcript(), on_phase)
    failure = await opener.step(opener.open_until_auth)
    return Opening(opener) if failure is None else failure


class Opening:
    """A connection opened up to AUTH: connected, greeted, EHLO, STARTTLS and EHLO again.

    It ends by ``authenticate()`` (the ready ``Session``, or why not: then it
    is closed) or by ``quit()``; ``close()`` drops it at once, and does nothing
    once it became a ``Session``.
    """

    def __init__(self, opener: _Opener) -> None:
        self._opener = opener
        self._session: Session | None = None

    async def authenticate(self) -> Session | SessionFailure:
        """AUTH when the account has a user name; then the ready ``Session`` or why not."""
        opener = self._opener
        failure = await opener.step(opener.authenticate)
        if failure is not None:
            return failure
        self._session = opener.session()
        return self._session

    async def quit(self) -> None:
        """Say QUIT (waiting for its reply at most ``QUIT_TIMEOUT_S``), then close."""
        try:
            await self._opener.quit()
        finally:
            self._opener.close()

    def close(self) -> None:
        if self._session is None:
            self._opener.abort()


class _Refused(Exception):
    """Internal: opening stopped; ``polite`` when the server can still hear a QUIT."""

    def __init__(self, failure: SessionFailure, *, polite: bool = False) -> None:
        super().__init__(failure.text)
        self.failure = failure
        self.polite = polite


class _Opener:
    """One opening, step by step (see the module's list); used once, by ``open_until_auth``.

    Each step raises ``_Refused`` with the failure in a person's words; ``step``
    turns that into the returned ``SessionFailure`` after a QUIT when the
    server can still hear one, and closes the connection on every way out
    that does not hand it to a ``Session``.
    """

    def __init__(
        self,
        account: Account,
        password: str | TokenSource | None,
        transcript: Transcript,
        on_phase: PhaseCallback | None,
    ) -> None:
        self.account = account
        self.password = password
        self.transcript = transcript
        if isinstance(password, str) and password:
            # A server may repeat what it was sent (a 535 quoting the AUTH line):
            # nothing it says may carry the password into a transcript or an error.
            transcript.hide(*_auth_forms(account.user or "", password))
        self._on_phase = on_phase
        self._sock: socket.socket | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._address = ""
        self._local_address = ""
        self._greeting = ""
        self._esmtp = False
        self._extensions: dict[str, str] = {}
        self._auth: tuple[str, ...] = ()
        self._authenticated_as: str | None = None
        self._auth_mechanism: str | None = None

    @property
    def _where(self) -> str:
        return f"{self.account.host}:{self.account.port}"

    @property
    def _server_name(self) -> str:
        """The host to resolve and to verify the certificate for: an address literal
        written in brackets (``[::1]``, as in URLs) without them, else the host."""
        host = self.account.host
        if host.startswith("[") and host.endswith("]"):
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(host[1:-1]))
        return host

    async def step(self, step: Callable[[], Awaitable[None]]) -> SessionFailure | None:
        """Run one step of the opening: None when it went through, or why it stopped.

        A stopped opening says QUIT when the server can still hear it, and is
        closed; cancelled (stop while opening), or on a bug, it is closed too.
        """
        try:
            await step()
        except _Refused as refused:
            self.transcript.note(refused.failure.text)
            try:
                if refused.polite:
                    await self.quit()
            finally:
                self.close()  # even when cancelled during that QUIT
            return refused.failure
        except BaseException:
            self.abort()  # cancelled (stop while opening), or a bug
            raise
        return None

    async def open_until_auth(self) -> None:
        account = self.account
        self._phase(Phase.CONNECTING)
        context = await self._tls_context() if account.security is not Security.NONE else None
        await self._connect()
        if account.security is Security.TLS:
            self._phase(Phase.SECURING)
        await self._greet(context)
        await self._hello()
        if account.security is Security.STARTTLS:
            assert context is not None
            self._phase(Phase.SECURING)
            await self._starttls(context)
            await self._hello()

    async def authenticate(self) -> None:
        if self.account.user is not None:
            self._phase(Phase.AUTHENTICATING)
            await self._authenticate(self.account.user)

    def session(self) -> Session:
        """The open session, once every step went through."""
        smtp = self._smtp
        assert smtp is not None and smtp.transport is not None
        offer = self._offer()
        self.transcript.pin()
        wire = Wire(smtp.transport)  # type: ignore[arg-type]  # a stream transport
        return Session(
            account=self.account, offer=offer, transcript=self.transcript, smtp=smtp, wire=wire
        )

    def _phase(self, phase: Phase) -> None:
        if self._on_phase is not None:
            self._on_phase(phase)

    # -- steps -------------------------------------------------------------------------

    async def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.account.ca_file

        def build() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            return context

        try:
            return await asyncio.to_thread(build)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise _Refused(
                SessionFailure(
                    FailureKind.TLS,
                    f"cannot use the CA file {ca_file}: {_os_reason(exc)}; nothing was sent",
                )
            ) from None

    async def _connect(self) -> None:
        """Connect to the first of the host's addresses that answers.

        Each address gets ``connect_timeout_s`` of its own, as Postfix's
        ``smtp_connect_timeout`` does: one address that swallows the
        connection (an AAAA record over a broken IPv6 route) must not use up
        the time of the next, or the mail would wait for ever behind it.
        """
        account = self.account
        loop = asyncio.get_running_loop()
        timeout_s = account.connect_timeout_s
        errors: list[OSError] = []
        try:
            async with asyncio.timeout(timeout_s):
                infos = await loop.getaddrinfo(
                    self._server_name, account.port, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            raise _Refused(
                SessionFailure(
                    FailureKind.CONNECT,
                    f"timed out finding the server {account.host} after {timeout_s:g} s",
                )
            ) from None
        except socket.gaierror as exc:
            raise _Refused(
                SessionFailure(
                    FailureKind.CONNECT,
                    f"cannot find the server {account.host}: {exc.strerror or exc}",
                )
            ) from None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                async with asyncio.timeout(timeout_s):
                    await loop.sock_connect(sock, address)
            except OSError as exc:  # TimeoutError included
                sock.close()
                errors.append(exc)
                continue
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            break
        if self._sock is None:
            first = errors[0] if errors else OSError("no address")
            if isinstance(first, ConnectionRefusedError):
                text = (
                    f"{self._where} refused the connection"
                    " (is the server running, is the port right?)"
                )
            elif isinstance(first, TimeoutError):
                text = f"timed out connecting to {self._where} after {timeout_s:g} s"
            else:
                text = f"cannot connect to {self._where}: {_os_reason(first)}"
            raise _Refused(SessionFailure(FailureKind.CONNECT, text))
        sock = self._sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._address = str(sock.getpeername()[0])
        self._local_address = str(sock.getsockname()[0])
        self.transcript.note(f"connected to {self._where} ({self._address})")

    async def _greet(self, context: ssl.SSLContext | None) -> None:
        account = self.account
        implicit_tls = account.security is Security.TLS
        assert self._sock is not None
        self._smtp = aiosmtplib.SMTP(
            hostname=self._server_name,
            sock=self._sock,
            use_tls=implicit_tls,
            start_tls=False,
            tls_context=context if implicit_tls else None,
            local_hostname="localhost",  # unused: EHLO is ours (see _ehlo_name)
            timeout=account.command_timeout_s,
        )
        timeout_s = account.connect_timeout_s
        try:
            response = await self._smtp.connect(timeout=timeout_s)
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            if isinstance(exc.__cause__, aiosmtplib.SMTPReadTimeoutError):
                raise self._refused(
                    FailureKind.TIMEOUT, f"{account.host} did not greet within {timeout_s:g} s"
                ) from None
            raise self._refused(
                FailureKind.TLS if implicit_tls else FailureKind.CONNECT,
                f"the TLS handshake with {self._where} did not finish within {timeout_s:g} s",
            ) from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            self.transcript.server(exc.code, exc.message.split("\n"))
            reply = Reply(Stage.GREETING, exc.code, self._shown(_one_line(exc.message)))
            if exc.code == 421:
                raise self._refused(
                    FailureKind.CLOSING, f"{account.host} is not taking mail now: {reply}", reply
                ) from None
            raise self._refused(
                FailureKind.CONNECT, f"{account.host} refused the session: {reply}", reply
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, "the greeting", handshake=implicit_tls) from None
        if implicit_tls:
            self._note_tls()
        self._greeting = self._shown(_one_line(response.message))
        self.transcript.server(response.code, response.message.split("\n"))

    async def _hello(self) -> None:
        assert self._smtp is not None
        name = self._ehlo_name()
        response = await self._exchange(Stage.EHLO, [b"EHLO", name.encode()], f"EHLO {name}")
        if response.code == 250:
            self._smtp.last_ehlo_response = response
            extensions, auth = parse_esmtp_extensions(response.message)
            self._extensions = {k.upper(): v for k, v in extensions.items()}
            self._auth = tuple(dict.fromkeys(m.upper() for m in auth))
            self._esmtp = True
            return
        # RFC 5321 section 3.2: a server that refuses EHLO may still take HELO.
        refusal = response
        response = await self._exchange(Stage.EHLO, [b"HELO", name.encode()], f"HELO {name}")
        if response.code != 250:
            reply = Reply(Stage.EHLO, response.code, self._shown(_one_line(response.message)))
            raise self._refused(
                FailureKind.PROTOCOL,
                f"{self.account.host} refused both EHLO ({refusal.code}) and HELO: {reply}",
                reply,
                polite=True,
            )
        self._smtp.last_helo_response = response
        self._extensions, self._auth, self._esmtp = {}, (), False

    async def _starttls(self, context: ssl.SSLContext) -> None:
        smtp = self._smtp
        assert smtp is not None
        host = self.account.host
        if "STARTTLS" not in self._extensions:
            raise self._refused(
                FailureKind.TLS,
                f"{host} does not offer STARTTLS; nothing was sent"
                " (the account requires it: security starttls)",
                polite=True,
            )
        self.transcript.client("STARTTLS")
        try:
            response = await smtp.starttls(
                tls_context=context,
                server_hostname=self._server_name,
                timeout=self.account.command_timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:
                raise self._translate(exc, "STARTTLS") from None
            self.transcript.server(exc.code, exc.message.split("\n"))
            reply = Reply(Stage.STARTTLS, exc.code, self._shown(_one_line(exc.message)))
            if exc.code == 421:
                raise self._refused(
                    FailureKind.CLOSING, f"{host} is closing the session: {reply}", reply
                ) from None
            raise self._refused(
                FailureKind.TLS,
                f"{host} refused STARTTLS: {reply}; nothing was sent",
                reply,
                polite=True,
            ) from None
        except aiosmtplib.SMTPReadTimeoutError:
            raise self._refused(
                FailureKind.TIMEOUT,
                f"{host} did not reply to STARTTLS within {self.account.command_timeout_s:g} s",
            ) from None
        except aiosmtplib.SMTPTimeoutError:
            raise self._refused(
                FailureKind.TLS,
                f"the TLS handshake with {self._where} did not finish"
                f" within {self.account.command_timeout_s:g} s; nothing was sent",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, "STARTTLS", handshake=True) from None
        self.transcript.server(response.code, response.message.split("\n"))
        self._note_tls()

    async def _authenticate(self, user: str) -> None:
        host = self.account.host
        if self.password is not None and not isinstance(self.password, str):
            await self._authenticate_oauth2(user, self.password)
            return
        if self.password is None:
            raise self._refused(
                FailureKind.AUTH,
                f"no password for {user} (account {self.account.name}); nothing was sent",
                polite=True,
            )
        if not self._encrypted() and not self._loopback():
            raise self._refused(
                FailureKind.TLS,
                f"will not send the password for {user} to {host} without TLS;"
                " use security starttls or tls",
                polite=True,
            )
        if not self._auth:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} does not offer authentication (AUTH), but the account has user {user}",
                polite=True,
                no_mechanism=True,
            )
        secret = self.password.encode("utf-8")
        name = user.encode("utf-8")
        if "PLAIN" in self._auth:
            # RFC 4616: authorization id (empty), NUL, user, NUL, password.
            token = base64.b64encode(b"\0" + name + b"\0" + secret)
            response = await self._exchange(
                Stage.AUTH, [b"AUTH", b"PLAIN", token], "AUTH PLAIN ****"
            )
            mechanism = "PLAIN"
        elif "LOGIN" in self._auth:
            response = await self._exchange(Stage.AUTH, [b"AUTH", b"LOGIN"], "AUTH LOGIN")
            if response.code == 334:
                response = await self._exchange(Stage.AUTH, [base64.b64encode(name)], "****")
            if response.code == 334:
                response = await self._exchange(Stage.AUTH, [base64.b64encode(secret)], "****")
            mechanism = "LOGIN"
        else:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} offers only {' '.join(self._auth)} authentication;"
                " Outbox supports PLAIN and LOGIN",
                polite=True,
                no_mechanism=True,
            )
        reply = Reply(Stage.AUTH, response.code, self._shown(_one_line(response.message)))
        if 200 <= response.code < 300:
            self._authenticated_as = user
            self._auth_mechanism = mechanism
            return
        if 500 <= response.code < 600:
            raise self._refused(
                FailureKind.AUTH,
                f"{host} refused the credentials for {user}: {reply}",
                reply,
                polite=True,
            )
        raise self._refused(
            FailureKind.PROTOCOL,
            f"{host} could not check the credentials for {user} now: {reply}",
            reply,
            polite=True,
        )

    async def _authenticate_oauth2(self, user: str, source: TokenSource) -> None:
        """OAUTHBEARER or XOAUTH2 with a fresh token; one refresh and retry if refused."""
        from relay.oauth.tokens import SignInNeeded, TokenEndpointUnavailable

        host = self.account.host
        if not self._encrypted() and not self._loopback():
            raise self._refused(
                FailureKind.TLS,
                f"will not send the access token for {user} to {host} without TLS;"
                " use security starttls or tls",
                polite=True,
            )
        mechanism = choose_mechanism(self._auth)
        if mechanism is None:
            offered = " ".join(self._auth) or "no authentication"
            raise self._refused(
                FailureKind.AUTH,
                f"{host} offers {offered}; signing in with OAuth2 needs OAUTHBEARER or XOAUTH2",
                polite=True,
                no_mechanism=True,
            )
        token: str | None = None
        for attempt in (1, 2):
            try:
                token = (
                    await source.access_token() if token is None else await source.renewed(token)
                )
            except SignInNeeded as exc:
                raise self._refused(FailureKind.SIGN_IN, str(exc), polite=True) from None
            except TokenEndpointUnavailable as exc:
                raise self._refused(FailureKind.CONNECT, str(exc), polite=True) from None
            except OutboxError as exc:  # refused for another reason, keyring trouble
                raise self._refused(FailureKind.AUTH, str(exc), polite=True) from None
            response_b64 = initial_response(mechanism, user, token, host, self.account.port)
            self.transcript.hide(*source.secrets, response_b64)
            response = await self._exchange(
                Stage.AUTH,
                [b"AUTH", mechanism.encode(), response_b64.encode()],
                f"AUTH {mechanism} ****",
            )
            status = None
            if response.code == 334:  # the error challenge (RFC 7628 section 3.2.2)
                status = error_status(response.message)
                answer = failure_answer(mechanism)
                response = await self._exchange(Stage.AUTH, [answer.encode()], answer)
            if 200 <= response.code < 300:
                self._authenticated_as = user
                self._auth_mechanism = mechanism
                return
            reply = Reply(Stage.AUTH, response.code, self._shown(_one_line(response.message)))
            if not 500 <= response.code < 600:
                raise self._refused(
                    FailureKind.PROTOCOL,
                    f"{host} could not check the access token for {user} now: {reply}",
                    reply,
                    polite=True,
                )
            why = f" ({status})" if status else ""
            if attempt == 1:
                self.transcript.note(f"access token refused{why}: refreshing it once")
                continue
            raise self._refused(
                FailureKind.AUTH,
                f"{host} refused the access token for {user} even after a refresh{why}:"
                f" {reply} (sign in again with `outbox account login {self.account.name}`)",
                reply,
                polite=True,
            )

    async def _exchange(
        self, stage: Stage, args: list[bytes], shown: str
    ) -> aiosmtplib.SMTPResponse:
        """One command through aiosmtplib, recorded as ``shown``; a 421 ends the opening."""
        smtp = self._smtp
        assert smtp is not None
        timeout_s = self.account.command_timeout_s
        what = STAGE_WORDS.get(stage, str(stage))
        self.transcript.client(shown)
        try:
            response = await smtp.execute_command(*args, timeout=timeout_s)
        except aiosmtplib.SMTPTimeoutError:
            raise self._refused(
                FailureKind.TIMEOUT,
                f"{self.account.host} did not reply to {what} within {timeout_s:g} s",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._translate(exc, what) from None
        self.transcript.server(response.code, response.message.split("\n"))
        if response.code == 421:
            reply = Reply(stage, 421, self._shown(_one_line(response.message)))
            raise self._refused(
                FailureKind.CLOSING, f"{self.account.host} is closing the session: {reply}", reply
            )
        return response

    async def quit(self) -> None:
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            return
        self.transcript.client("QUIT")
        try:
            response = await smtp.execute_command(
                b"QUIT", timeout=min(self.account.command_timeout_s, QUIT_TIMEOUT_S)
            )
        except (aiosmtplib.SMTPException, OSError):
            return
        self.transcript.server(response.code, response.message.split("\n"))

    def abort(self) -> None:
        """Drop the connection at once: a cancelled opening waits for no goodbye.

        ``close`` on a TLS connection would first say goodbye in TLS and wait
        for the server's (up to 30 s), leaving the socket open meanwhile.
        """
        transport = self._smtp.transport if self._smtp is not None else None
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        if self._sock is not None and (self._smtp is None or self._smtp.transport is None):
            # Not (or no longer) owned by a transport; closing twice is harmless.
            self._sock.close()

    # -- facts ---------------------------------------------------------------------------

    def _ehlo_name(self) -> str:
        """Our name for EHLO: the host's FQDN if it knows one, else an address literal.

        No DNS lookup (``socket.getfqdn`` can stall for seconds); RFC 5321
        section 4.1.4 allows the address literal when there is no name.
        """
        name = socket.gethostname()
        if _FQDN.fullmatch(name):
            return name
        address = self._local_address.split("%", 1)[0]
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return "localhost"
        return f"[{address}]" if parsed.version == 4 else f"[IPv6:{address}]"

    def _encrypted(self) -> bool:
        smtp = self._smtp
        return (
            smtp is not None
            and smtp.transport is not None
            and (smtp.transport.get_extra_info("ssl_object") is not None)
        )

    def _loopback(self) -> bool:
        try:
            address = ipaddress.ip_address(self._address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    def _tls_facts(self) -> tuple[str | None, str | None]:
        smtp = self._smtp
        if smtp is None or smtp.transport is None:
            return None, None
        ssl_object = smtp.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None, None
        cipher = ssl_object.cipher()
        return ssl_object.version(), (cipher[0] if cipher else None)

    def _note_tls(self) -> None:
        version, cipher = self._tls_facts()
        self.transcript.note(
            f"TLS established: {version}, {cipher}; certificate verified for {self.account.host}"
        )

    def _offer(self) -> ServerOffer:
        version, cipher = self._tls_facts()
        return ServerOffer(
            host=self.account.host,
            port=self.account.port,
            address=self._address,
            greeting=self._greeting,
            esmtp=self._esmtp,
            extensions=dict(self._extensions),
            auth_mechanisms=self._auth,
            security=self.account.security,
            tls_version=version,
            tls_cipher=cipher,
            authenticated_as=self._authenticated_as,
            auth_mechanism=self._auth_mechanism,
        )

    # -- failures ---------------------------------------------------------------------

    def _shown(self, text: str) -> str:
        return kept_text(self.transcript, text)

    def _refused(
        self,
        kind: FailureKind,
        text: str,
        reply: Reply | None = None,
        *,
        polite: bool = False,
        no_mechanism: bool = False,
    ) -> _Refused:
        text = printable(self.transcript.masked(text))
        return _Refused(SessionFailure(kind, text, reply, no_mechanism), polite=polite)

    def _translate(self, exc: BaseException, what: str, *, handshake: bool = False) -> _Refused:
        """Words for an exception from aiosmtplib, ssl or the OS, at step ``what``."""
        host = self.account.host
        tls_error = _find(exc, ssl.SSLError)
        if tls_error is not None:
            return self._refused(FailureKind.TLS, self._tls_text(tls_error))
        if handshake and _find(exc, ConnectionAbortedError) is not None:
            return self._refused(
                FailureKind.TLS,
                f"the TLS handshake with {self._where} did not finish; nothing was sent",
            )
        if (
            _find(exc, aiosmtplib.SMTPServerDisconnected) is not None
            or _find(exc, ConnectionError) is not None
        ):
            during = " during the TLS handshake" if handshake else ""
            return self._refused(
                FailureKind.DROPPED,
                f"{host} closed the connection{during} (while we waited for {what})",
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return self._refused(
                FailureKind.PROTOCOL,
                f"{host} answered {what} with something that is not SMTP: {exc.message}",
            )
        if isinstance(exc, OSError):
            return self._refused(
                FailureKind.CONNECT, f"connection to {self._where} failed: {_os_reason(exc)}"
            )
        return self._refused(FailureKind.PROTOCOL, f"{host}: {exc} (at {what})")

    def _tls_text(self, exc: ssl.SSLError) -> str:
        host = self.account.host
        trust = (
            f"the account's CA file {self.account.ca_file}"
            if self.account.ca_file
            else "this system (the account has no CA file)"
        )
        if isinstance(exc, ssl.SSLCertVerificationError):
            code = exc.verify_code
            detail = exc.verify_message
            if code == 10:
                problem = "has expired"
            elif code == 9:
                problem = "is not valid yet"
            elif code == 18:
                problem = f"is self-signed and not trusted by {trust}"
            elif code == 19:
                problem = f"chains to a self-signed root not trusted by {trust}"
            elif code in (20, 21):
                problem = f"is signed by an authority not trusted by {trust}"
            elif code in (62, 64):
                problem = f"is for another name ({detail.rstrip('.')})"
            else:
                problem = f"was not accepted: {detail}"
            return f"the TLS certificate of {host} {problem}; nothing was sent"
        reason = exc.reason or str(exc)
        hint = ""
        if reason == "WRONG_VERSION_NUMBER":
            hint = " (the server does not speak TLS on this port: is it a STARTTLS or plain port?)"
        return f"TLS with {self._where} failed: {reason}{hint}; nothing was sent"


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """``exc`` or the first exception in its cause/context chain that is a ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _auth_forms(user: str, password: str) -> tuple[str, ...]:
    """The password as it travels in AUTH PLAIN and LOGIN, and as itself."""
    secret = password.encode("utf-8")
    plain = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + secret).decode()
    login = base64.b64encode(secret).decode()
    return (password, plain, plain.rstrip("="), login, login.rstrip("="))


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.split("\n") if part.strip())
