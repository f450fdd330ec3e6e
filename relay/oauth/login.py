"""Signing an account in with OAuth2: the browser, the device code, or an imported token.

Three ways to get the refresh token that ``relay.oauth.store`` keeps:

- ``sign_in_with_browser``: the authorization code grant with PKCE (RFC
  7636, S256) and a loopback redirect (RFC 8252): the system browser opens
  the provider's page, the person consents, the browser comes back to
  ``relay.oauth.redirect``'s listener on 127.0.0.1, and the code is exchanged.
  The whole wait is bounded (``BROWSER_TIMEOUT_S``).
- ``sign_in_with_device``: the device authorization grant (RFC 8628) for a
  machine without a browser: Outbox shows a code and a URL, the person enters
  the code on any device, Outbox polls the token endpoint at the interval the
  server asks (5 s more on ``slow_down``, section 3.5) until the code expires.
- ``check_refresh_token``: a refresh token brought from another tool, tried
  once before it is kept.

Authlib builds the authorization URL (state, PKCE challenge) and makes every
token request (``relay.oauth.tokens.request_token``); the device authorization
request is one form POST that Authlib's client has no helper for. Each
returns the refresh token; storing it is the caller's (the command line, the
window), which knows the home. Nothing here prints or logs a token.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relay.errors import OutboxError
from relay.oauth.providers import Endpoints, check_endpoint_url
from relay.oauth.tokens import (
    TOKEN_TIMEOUT_S,
    PendingAuthorization,
    SignInNeeded,
    TokenEndpointUnavailable,
    TokenRefused,
    TokenSource,
    mask_secrets,
    request_token,
)
from relay.visible import visible

#: How long the browser sign-in may take, consent included.
BROWSER_TIMEOUT_S = 300.0
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


class SignInFailed(OutboxError):
    """The sign-in did not give a refresh token; the text says why."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What the person must see to finish a device sign-in elsewhere."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in_s: float


async def sign_in_with_browser(
    endpoints: Endpoints,
    *,
    account_name: str,
    open_url: Callable[[str], object],
    client_secret: str | None = None,
    login_hint: str | None = None,
    timeout_s: float = BROWSER_TIMEOUT_S,
) -> str:
    """The refresh token from a browser sign-in; ``open_url`` shows the page."""
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    from relay.oauth.redirect import RedirectListener, RedirectTimedOut

    authorize_url = check_endpoint_url(
        endpoints.authorize_url, f"account {account_name}: the OAuth2 authorization URL"
    )
    verifier = generate_token(64)  # RFC 7636 section 4.1: 43 to 128 characters
    async with RedirectListener() as listener:
        client = AsyncOAuth2Client(
            client_id=endpoints.client_id,
            redirect_uri=listener.redirect_uri,
            scope=endpoints.scope,
            code_challenge_method="S256",
        )
        extra = dict(endpoints.authorize_params)
        if login_hint:
            extra["login_hint"] = login_hint
        url, state = client.create_authorization_url(authorize_url, code_verifier=verifier, **extra)
        await client.aclose()
        open_url(url)
        try:
            params = await listener.wait_for(state, timeout_s)
        except RedirectTimedOut as exc:
            raise SignInFailed(f"account {account_name}: {exc}; nothing was changed") from None
    if "error" in params:  # the provider's words, shown as what they are (relay.visible)
        said = visible(params["error"][:100])
        if params.get("error_description"):
            said += ": " + visible(" ".join(params["error_description"].split())[:300])
        raise SignInFailed(f"account {account_name}: the sign-in was refused ({said})")
    code = params.get("code")
    if not code:
        raise SignInFailed(f"account {account_name}: the browser came back without a code")
    token = await request_token(
        endpoints,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": listener.redirect_uri,
            "code_verifier": verifier,
        },
        account_name=account_name,
        client_secret=client_secret,
    )
    return _refresh_token_of(token, account_name)


async def request_device_code(
    endpoints: Endpoints, *, account_name: str, client_secret: str | None = None
) -> tuple[DeviceCode, str, float]:
    """RFC 8628 section 3.1-3.2: what to show, the device code, the polling interval."""
    import httpx2

    if endpoints.device_url is None:
        raise SignInFailed(
            f"account {account_name}: this provider has no device sign-in;"
            " give --oauth-device-url or sign in with the browser"
        )
    url = check_endpoint_url(endpoints.device_url, f"account {account_name}: the OAuth2 device URL")
    form = {"client_id": endpoints.client_id, "scope": endpoints.scope}
    if client_secret:
        form["client_secret"] = client_secret
    try:
        async with (
            asyncio.timeout(TOKEN_TIMEOUT_S),  # the whole answer, not each read
            httpx2.AsyncClient(timeout=TOKEN_TIMEOUT_S, follow_redirects=False) as http,
        ):
            response = await http.post(url, data=form, headers={"Accept": "application/json"})
        data = response.json()
    except TimeoutError:
        raise TokenEndpointUnavailable(
            f"account {account_name}: {url} did not answer within {TOKEN_TIMEOUT_S:g} s"
        ) from None
    except httpx2.HTTPError as exc:
        raise TokenEndpointUnavailable(
            f"account {account_name}: cannot reach {url} ({type(exc).__name__})"
        ) from None
    except ValueError:
        raise SignInFailed(
            f"account {account_name}: {url} answered HTTP {response.status_code}, not JSON"
        ) from None
    if not isinstance(data, dict) or "error" in data or "device_code" not in data:
        error = data.get("error", "no device code") if isinstance(data, dict) else "no JSON object"
        description = data.get("error_description", "") if isinstance(data, dict) else ""
        said = f"{error}: {description}" if description else str(error)
        said = visible(mask_secrets(" ".join(said.split()), [client_secret or ""])[:300])
        raise SignInFailed(f"account {account_name}: the device sign-in was refused ({said})")
    # Google says verification_url, the RFC verification_uri.
    uri = str(data.get("verification_uri") or data.get("verification_url") or "")
    complete = data.get("verification_uri_complete")
    shown = DeviceCode(
        user_code=str(data.get("user_code", "")),
        verification_uri=uri,
        verification_uri_complete=str(complete) if complete else None,
        expires_in_s=_number(data.get("expires_in"), 600.0),
    )
    return shown, str(data["device_code"]), _number(data.get("interval"), 5.0)


async def sign_in_with_device(
    endpoints: Endpoints,
    *,
    account_name: str,
    show: Callable[[DeviceCode], object],
    client_secret: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic_s: Callable[[], float] = time.monotonic,
) -> str:
    """The refresh token from a device sign-in; ``show`` tells the person the code."""
    shown, device_code, interval_s = await request_device_code(
        endpoints, account_name=account_name, client_secret=client_secret
    )
    show(shown)
    deadline = monotonic_s() + shown.expires_in_s
    trouble: TokenEndpointUnavailable | None = None
    while True:
        # The server's interval (or slow_down's growth) never outlasts the code.
        await sleep(max(0.0, min(interval_s, deadline - monotonic_s())))
        try:
            token = await request_token(
                endpoints,
                {"grant_type": DEVICE_GRANT_TYPE, "device_code": device_code},
                account_name=account_name,
                client_secret=client_secret,
            )
        except (PendingAuthorization, TokenEndpointUnavailable) as pending:
            # A poll the endpoint could not answer (a 503, a timeout) is asked
            # again at the next interval: the person may be typing the code now.
            if isinstance(pending, TokenEndpointUnavailable):
                trouble = pending
            elif pending.error == "slow_down":
                interval_s += 5.0
            if monotonic_s() >= deadline:
                if trouble is not None:
                    raise trouble from None
                raise SignInFailed(
                    f"account {account_name}: the code {visible(shown.user_code)} expired before"
                    " the sign-in was finished; run the sign-in again"
                ) from None
            continue
        except TokenRefused as exc:
            raise SignInFailed(str(exc)) from None
        return _refresh_token_of(token, account_name)


async def check_refresh_token(
    endpoints: Endpoints,
    refresh_token: str,
    *,
    account_name: str,
    client_secret: str | None = None,
) -> str:
    """The refresh token to keep after trying ``refresh_token`` once (it may rotate)."""
    rotated: list[str] = []
    source = TokenSource(
        account_name,
        endpoints,
        refresh_token,
        client_secret=client_secret,
        on_rotated=rotated.append,
    )
    try:
        await source.access_token()
    except SignInNeeded as exc:
        raise SignInFailed(
            f"account {account_name}: the refresh token was refused ({exc.reason});"
            " nothing was stored"
        ) from None
    return rotated[-1] if rotated else refresh_token


def _refresh_token_of(token: dict[str, object], account_name: str) -> str:
    from relay.oauth.store import is_token_text

    refresh = token.get("refresh_token")
    if isinstance(refresh, str) and refresh and not is_token_text(refresh):
        raise SignInFailed(
            f"account {account_name}: the provider answered with a refresh token that is"
            " not one (not printable ASCII); nothing was stored"
        )
    if not isinstance(refresh, str) or not refresh:
        raise SignInFailed(
            f"account {account_name}: the provider signed in but gave no refresh token"
            " (Microsoft needs the scope offline_access; Google needs access_type=offline)"
        )
    return refresh


def _number(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if number > 0 and math.isfinite(number) else default
