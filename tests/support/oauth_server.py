"""A real OAuth2 authorization server on 127.0.0.1, built from Authlib's server classes.

Authlib's ``AuthorizationServer`` with its own grants does the protocol:
authorization code with PKCE (``CodeChallenge(required=True)``), refresh
tokens (rotated on every refresh, as Microsoft does), the device grant (RFC
8628) and its device authorization endpoint. What is ours is only what
Authlib leaves to an application: storage (dicts), the HTTP adapter over
``http.server``, and a consent page and a device verification page with one
"Allow" button each, which a test's HTTP client presses as a person's browser
would.

Access tokens expire after ``access_lifetime_s`` by the server's clock
(``clock``, injectable: a test moves time instead of sleeping);
``token_is_valid`` is what the test SMTP server asks. ``revoke_grants``
revokes every refresh token, as a password change does at a real provider.

The server runs on a thread of its own (the client under test may be another
process) and ``serving`` stops it on the way out.
"""

from __future__ import annotations

import contextlib
import html
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonRequest
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc8628.models import DeviceCredentialDict

CLIENT_ID = "outbox-test-client"
USER = "alice@example.test"
SCOPE = "smtp offline_access"


@dataclass
class Issued:
    """A token the server handed out."""

    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float
    expires_in: int
    revoked: bool = False

    # -- Authlib's TokenMixin, for the refresh grant ---------------------------------
    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == CLIENT_ID)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return False  # refresh tokens live until revoked

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return USER

    def get_client(self) -> Client:
        return Client()


class Client:
    """The one registered client: public (no secret), loopback redirects on any port."""

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 section 7.3: any port of a loopback IP literal, http.
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname == "127.0.0.1"

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return True


@dataclass
class AuthorizationCode:
    code: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> None:
        return None


@dataclass
class State:
    """Everything the server holds, guarded by one lock (the server has threads)."""

    clock: Callable[[], float]
    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    tokens: list[Issued] = field(default_factory=list)
    devices: dict[str, DeviceCredentialDict] = field(default_factory=dict)
    approved_user_codes: set[str] = field(default_factory=set)
    token_requests: list[str] = field(default_factory=list)  # grant types, in order


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, state: State, access_lifetime_s: int) -> None:
        super().__init__(scopes_supported=None)
        self.state = state
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=_random_token(42),
                refresh_token_generator=_random_token(48),
                expires_generator=lambda client, grant_type: access_lifetime_s,
            ),
        )

    def query_client(self, client_id: str) -> Client | None:
        return Client() if client_id == CLIENT_ID else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        with self.state.lock:
            self.state.tokens.append(
                Issued(
                    access_token=token["access_token"],
                    refresh_token=token.get("refresh_token"),
                    scope=token.get("scope", SCOPE),
                    issued_at=self.state.clock(),
                    expires_in=int(token["expires_in"]),
                )
            )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self,
        method: str,
        uri: str,
        headers: dict[str, str],
        values: dict[str, str],
        query: dict[str, str],
        form: dict[str, str],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(values)
        self._query = query
        self._form = form

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        with self.server.state.lock:
            self.server.state.codes[code] = AuthorizationCode(
                code=code,
                redirect_uri=data.get("redirect_uri", ""),
                scope=data.get("scope", ""),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        with self.server.state.lock:
            return self.server.state.codes.get(code)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        with self.server.state.lock:
            self.server.state.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> str:
        return USER


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Issued | None:
        with self.server.state.lock:
            for issued in self.server.state.tokens:
                if issued.refresh_token == refresh_token and not issued.revoked:
                    return issued
        return None

    def authenticate_user(self, credential: Issued) -> str:
        return USER

    def revoke_old_credential(self, credential: Issued) -> None:
        with self.server.state.lock:
            credential.revoked = True


class _DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
    def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
        with self.server.state.lock:
            return self.server.state.devices.get(device_code)

    def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
        with self.server.state.lock:
            if user_code in self.server.state.approved_user_codes:
                return USER, True
        return None

    def should_slow_down(self, credential: Any) -> bool:
        return False


class _DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    INTERVAL = 1

    def __init__(self, server: _Server, base_url: str) -> None:
        super().__init__(server)
        self.base_url = base_url

    def get_verification_uri(self) -> str:
        return f"{self.base_url}/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        with self.server.state.lock:
            self.server.state.devices[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id, scope=scope, **data
            )


def _random_token(length: int) -> Callable[..., str]:
    from authlib.common.security import generate_token

    return lambda *args, **kwargs: generate_token(length)


@dataclass
class AuthorizationServerRunning:
    base_url: str
    state: State
    access_lifetime_s: int

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def device_url(self) -> str:
        return f"{self.base_url}/device_authorization"

    def token_is_valid(self, access_token: str) -> bool:
        """Whether ``access_token`` was issued here and has not expired or been revoked."""
        now = self.state.clock()
        with self.state.lock:
            for issued in self.state.tokens:
                if issued.access_token == access_token:
                    return not issued.revoked and now < issued.issued_at + issued.expires_in
        return False

    def revoke_grants(self) -> None:
        with self.state.lock:
            for issued in self.state.tokens:
                issued.revoked = True

    def refresh_requests(self) -> int:
        with self.state.lock:
            return self.state.token_requests.count("refresh_token")

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out (for 'no token in any file')."""
        with self.state.lock:
            return [
                t
                for issued in self.state.tokens
                for t in (issued.access_token, issued.refresh_token)
                if t
            ]


@contextlib.contextmanager
def serving(
    *, access_lifetime_s: int = 5, clock: Callable[[], float] = time.time
) -> Iterator[AuthorizationServerRunning]:
    """The authorization server on 127.0.0.1 (a free port), stopped on the way out."""
    # Authlib's server refuses plain http unless told: this one is loopback only.
    previous = os.environ.get("AUTHLIB_INSECURE_TRANSPORT")
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    state = State(clock=clock)
    server = _Server(state, access_lifetime_s)
    server.register_grant(_CodeGrant, [CodeChallenge(required=True)])
    server.register_grant(_RefreshGrant)
    server.register_grant(_DeviceGrant)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            form: dict[str, str] = {}
            if method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
            values = {**query, **form}
            request = _Request(
                method, base_url + self.path, dict(self.headers.items()), values, query, form
            )
            try:
                status, body, headers = route(parts.path, method, request, query, form)
            except OAuth2Error as exc:
                status, body, headers = exc.status_code, dict(exc.get_body()), exc.get_headers()
            self._reply(status, body, headers)

        def _reply(self, status: int, body: Any, headers: Any) -> None:
            import json

            if isinstance(body, dict):
                data = json.dumps(body).encode()
                content_type = "application/json"
            else:
                data = str(body or "").encode()
                content_type = "text/html; charset=utf-8"
            self.send_response(status)
            sent_type = False
            for name, value in headers or []:
                self.send_header(name, value)
                sent_type = sent_type or name.lower() == "content-type"
            if not sent_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def route(
        path: str, method: str, request: _Request, query: dict[str, str], form: dict[str, str]
    ) -> tuple[int, Any, Any]:
        if path == "/authorize" and method == "GET":
            server.get_consent_grant(request=request, end_user=USER)
            action = html.escape(f"/authorize?{urlencode(query)}")
            page = (
                "<html><body><h1>Outbox test wants to send mail as you</h1>"
                f'<form method="post" action="{action}">'
                '<button name="confirm" value="yes">Allow</button></form></body></html>'
            )
            return 200, page, []
        if path == "/authorize" and method == "POST":
            user = USER if form.get("confirm") == "yes" else None
            grant = server.get_consent_grant(request=request, end_user=USER)
            return server.create_authorization_response(
                request=request, grant_user=user, grant=grant
            )
        if path == "/token" and method == "POST":
            with state.lock:
                state.token_requests.append(form.get("grant_type", ""))
            return server.create_token_response(request)
        if path == "/device_authorization" and method == "POST":
            return server.create_endpoint_response("device_authorization", request)
        if path == "/device" and method == "GET":
            code = html.escape(query.get("user_code", ""))
            page = (
                '<html><body><form method="post" action="/device">'
                f'<input name="user_code" value="{code}">'
                '<button name="confirm" value="yes">Allow</button></form></body></html>'
            )
            return 200, page, []
        if path == "/device" and method == "POST":
            with state.lock:
                known = any(d["user_code"] == form.get("user_code") for d in state.devices.values())
                if known and form.get("confirm") == "yes":
                    state.approved_user_codes.add(form["user_code"])
            return (200 if known else 404), "<html><body>Done.</body></html>", []
        return 404, "not found", []

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    server.register_endpoint(_DeviceEndpoint(server, base_url))
    thread = threading.Thread(target=httpd.serve_forever, name="oauth-server", daemon=True)
    thread.start()
    try:
        yield AuthorizationServerRunning(base_url, state, access_lifetime_s)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        if previous is None:
            os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["AUTHLIB_INSECURE_TRANSPORT"] = previous
