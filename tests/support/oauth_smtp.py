"""An aiosmtpd server on 127.0.0.1 that takes only access tokens an authorization server issued.

It offers OAUTHBEARER and XOAUTH2 (or those of ``mechanisms``) through
aiosmtpd's handler ``auth_<MECHANISM>`` hooks. A token is checked by asking
``is_valid`` -- the test authorization server's ``token_is_valid``, so
expiry and revocation are the authorization server's. A refused token gets
the error challenge of RFC 7628 section 3.2.2 (a 334 carrying JSON), then 535
once the client answers it, as Gmail does.

``serving_oauth_smtp`` runs it on a thread of its own (the client may be a
subprocess); every AUTH is recorded in ``attempts`` as (mechanism, user,
accepted), and the raw initial responses in ``responses`` (to show that a
token was sent, never written anywhere else).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from tests.support.smtp_servers import HOST, RecordingHandler, _PortZeroController

ERROR_CHALLENGE = json.dumps(
    {"status": "invalid_token", "schemes": "bearer", "scope": "smtp"}
).encode()


@dataclass
class OAuthHandler(RecordingHandler):
    is_valid: Callable[[str], bool] = lambda token: False
    attempts: list[tuple[str, str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: A hostile server: its refusal repeats what the client sent (token and all).
    echo: bool = False

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = _decode(args)
        user = ""
        token = ""
        if fields is not None:
            header, _, rest = fields.partition("\x01")
            if header.startswith("n,a="):
                user = header[4:].rstrip(",").replace("=2C", ",").replace("=3D", "=")
            for part in rest.split("\x01"):
                if part.startswith("auth=Bearer "):
                    token = part.removeprefix("auth=Bearer ")
        return await self._check(server, "OAUTHBEARER", user, token, args)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = _decode(args)
        user = ""
        token = ""
        for part in (fields or "").split("\x01"):
            if part.startswith("user="):
                user = part.removeprefix("user=")
            elif part.startswith("auth=Bearer "):
                token = part.removeprefix("auth=Bearer ")
        return await self._check(server, "XOAUTH2", user, token, args)

    async def _check(
        self, server: SMTP, mechanism: str, user: str, token: str, args: list[str]
    ) -> AuthResult:
        accepted = bool(token) and self.is_valid(token)
        with self.lock:
            self.attempts.append((mechanism, user, accepted))
        if accepted:
            return AuthResult(success=True, auth_data=user)
        await server.challenge_auth(ERROR_CHALLENGE)  # the client's answer is ignored
        said = f" {' '.join(args)} ({token})" if self.echo else ""
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 token refused{said}")


def _decode(args: list[str]) -> str | None:
    if len(args) < 2:
        return None
    try:
        return base64.b64decode(args[1]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class OAuthSmtpRunning:
    host: str
    port: int
    handler: OAuthHandler

    def accepted(self) -> list[tuple[str, str, bool]]:
        with self.handler.lock:
            return list(self.handler.attempts)


@contextlib.contextmanager
def serving_oauth_smtp(
    is_valid: Callable[[str], bool],
    *,
    mechanisms: Sequence[str] = ("OAUTHBEARER", "XOAUTH2"),
    echo: bool = False,
) -> Iterator[OAuthSmtpRunning]:
    """The server on its own thread, stopped on the way out; plain text (loopback)."""
    handler = OAuthHandler(is_valid=is_valid, echo=echo)
    excluded = [m for m in ("PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2") if m not in mechanisms]
    kwargs: dict[str, Any] = {
        "auth_require_tls": False,
        "auth_exclude_mechanism": excluded,
        "decode_data": False,
    }
    controller = _PortZeroController(
        handler, hostname=HOST, port=0, server_hostname="mx.test.example", **kwargs
    )
    controller.start()
    try:
        yield OAuthSmtpRunning(HOST, controller.port, handler)
    finally:
        controller.stop()
