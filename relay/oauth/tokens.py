"""Access tokens for an account that signs in with OAuth2, from its refresh token.

A ``TokenSource`` is made per account and flush and shared by that account's
sessions. It keeps the access token in memory only and gets a new one with
the refresh token (RFC 6749 section 6):

- before the one it has expires (``REFRESH_MARGIN_S`` ahead, or half its
  lifetime for a short-lived one, by its injected clock), so no session
  starts with a token about to lapse;
- once more when a server refuses a token it still thought good
  (``renewed``); sessions that were refused the same token share one refresh.

The OAuth2 protocol itself is Authlib's (``AsyncOAuth2Client`` on httpx2):
it is maintained, implements the client side of every flow Outbox uses (PKCE,
refresh, the device grant's token requests) and its server side too, which
the tests run as a real authorization server on loopback. The providers' own
libraries (msal, google-auth-oauthlib) each cover one provider, and oauthlib
needs requests and a second library for the asynchronous flush.

Outcomes of a refresh, and the words for each:

| token endpoint says | raised | what the flush does |
|---|---|---|
| a token | (returned) | sends |
| ``invalid_grant`` (revoked, expired) | ``SignInNeeded`` | mail stays queued, exit 75 |
| another OAuth2 error (``invalid_client`` …) | ``TokenRefused`` | stops for the account |
| nothing, 5xx, not JSON, timeout | ``TokenEndpointUnavailable`` | defers, as a connection failure |

A source asks an unavailable endpoint once: its later sessions (the flush's
next batches of the account's messages) get the same error at once.

No token ever reaches an exception's text: what the endpoint says is masked
first (an endpoint may echo what it was sent). A rotated refresh token (the
endpoint returns a new one) is handed to ``on_rotated`` to be stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay.errors import ConfigError, OutboxError
from relay.oauth.providers import Endpoints, check_endpoint_url, endpoints

if TYPE_CHECKING:
    from relay.accounts import Account

#: A token that lapses within this many seconds is renewed before use.
REFRESH_MARGIN_S = 60.0
#: Assumed lifetime when the endpoint gives no ``expires_in``.
DEFAULT_LIFETIME_S = 300.0
#: Time allowed for one request to the token endpoint, its whole answer included.
TOKEN_TIMEOUT_S = 30.0
#: Fields of a token request that are secret.
_SECRET_FIELDS = frozenset({"refresh_token", "code", "code_verifier", "device_code"})


class SignInNeeded(OutboxError):
    """The account's grant is gone (or never was): a person must sign in again."""

    exit_code = 75  # EX_TEMPFAIL: nothing was lost, the mail waits for the sign-in

    def __init__(self, account_name: str, reason: str) -> None:
        super().__init__(
            f"account {account_name} needs signing in again ({reason}):"
            f" run `outbox account login {account_name}`"
        )
        self.account_name = account_name
        self.reason = reason


class TokenRefused(ConfigError):
    """The token endpoint refused the request for a reason a person must fix."""


class TokenEndpointUnavailable(OutboxError):
    """The token endpoint could not be asked now (network, timeout, server error)."""

    exit_code = 75


class TokenSource:
    """Access tokens for one account, refreshed as needed; shared by its sessions."""

    def __init__(
        self,
        account_name: str,
        endpoints: Endpoints,
        refresh_token: str,
        *,
        client_secret: str | None = None,
        on_rotated: Callable[[str], None] | None = None,
        now_s: Callable[[], float] = time.time,
        timeout_s: float = TOKEN_TIMEOUT_S,
    ) -> None:
        self.account_name = account_name
        self._endpoints = endpoints
        self._refresh_token = refresh_token
        self._client_secret = client_secret
        self._on_rotated = on_rotated
        self._now_s = now_s
        self._timeout_s = timeout_s
        self._access_token: str | None = None
        self._renew_at_s = 0.0
        self._lock: asyncio.Lock | None = None
        #: The token endpoint could not be asked: said again, not asked again.
        self._unavailable: TokenEndpointUnavailable | None = None
        #: Every token this source has held: a transcript or error hides them all.
        self.secrets: list[str] = [refresh_token]
        if client_secret:
            self.secrets.append(client_secret)
        #: How many refreshes this source made (for tests and the transcript).
        self.refreshes = 0

    async def access_token(self) -> str:
        """A token good for at least ``REFRESH_MARGIN_S`` more, refreshed if needed."""
        async with self._locked():
            if self._access_token is None or self._now_s() >= self._renew_at_s:
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    async def renewed(self, refused: str) -> str:
        """A new token after a server refused ``refused`` (one refresh per refused token)."""
        async with self._locked():
            if self._access_token == refused or self._access_token is None:
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.secrets)

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _refresh(self) -> None:
        if self._unavailable is not None:
            # Asked once already: the account's next sessions of this flush would
            # each wait out the same timeout (30 s a batch of messages) to learn it.
            raise self._unavailable
        try:
            token = await request_token(
                self._endpoints,
                {"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                account_name=self.account_name,
                client_secret=self._client_secret,
                timeout_s=self._timeout_s,
                mask=self.mask,
            )
        except TokenEndpointUnavailable as exc:
            self._unavailable = exc
            raise
        self.refreshes += 1
        self._take(token)

    def _take(self, token: dict[str, Any]) -> None:
        from relay.oauth.store import is_token_text

        rotated = token.get("refresh_token")
        if isinstance(rotated, str) and rotated and not is_token_text(rotated):
            # Nothing taken; the stored refresh token stays (it may still be good).
            raise TokenRefused(
                f"account {self.account_name}: the token endpoint answered with a new"
                " refresh token that is not one (not printable ASCII)"
            )
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenRefused(
                f"account {self.account_name}: the token endpoint answered without an access token"
            )
        self.secrets.append(access)
        self._access_token = access
        lifetime = token.get("expires_in")
        try:
            lifetime_s = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME_S
        except (TypeError, ValueError):
            lifetime_s = DEFAULT_LIFETIME_S
        self._renew_at_s = self._now_s() + lifetime_s - min(REFRESH_MARGIN_S, lifetime_s / 2)
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self.secrets.append(rotated)
            self._refresh_token = rotated
            if self._on_rotated is not None:
                self._on_rotated(rotated)


async def request_token(
    endpoints: Endpoints,
    form: dict[str, str],
    *,
    account_name: str,
    client_secret: str | None = None,
    timeout_s: float = TOKEN_TIMEOUT_S,
    mask: Callable[[str], str] = lambda text: text,
) -> dict[str, Any]:
    """One request to the token endpoint through Authlib; the token, or one of our errors.

    ``form`` holds the grant (``grant_type`` and its parameters); the client
    ID and secret are added by Authlib (``client_secret_post`` with a
    secret, else the public client's ``client_id`` in the form). The OAuth2
    error ``authorization_pending`` and ``slow_down`` (RFC 8628 section
    3.5) are raised as ``PendingAuthorization`` for the device flow to wait on.
    """
    import httpx2
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

    from relay.visible import visible

    url = check_endpoint_url(endpoints.token_url, f"account {account_name}: the OAuth2 token URL")
    grant_type = form["grant_type"]
    rest = {k: v for k, v in form.items() if k != "grant_type"}
    # What was sent (a token, a code, its verifier, the client secret) never
    # comes back in our text, whatever the endpoint echoes.
    sent = [v for k, v in rest.items() if k in _SECRET_FIELDS] + [client_secret or ""]

    def hide(text: str) -> str:
        return mask_secrets(mask(text), sent)

    try:
        # httpx's timeout bounds each read, not the answer: an endpoint that
        # sends a byte now and then would hold the flush for ever.
        async with (
            asyncio.timeout(timeout_s),
            AsyncOAuth2Client(
                client_id=endpoints.client_id,
                client_secret=client_secret,
                token_endpoint_auth_method="client_secret_post" if client_secret else "none",
                timeout=timeout_s,
                follow_redirects=False,
            ) as client,
        ):
            if grant_type == "refresh_token":
                token = await client.refresh_token(url, refresh_token=rest["refresh_token"])
            else:
                token = await client.fetch_token(url, grant_type=grant_type, **rest)
    except OAuthError as exc:
        error = visible(str(exc.error or "error"))
        description = visible(hide(" ".join(str(exc.description or "").split()))[:300])
        said = f"{error}: {description}" if description else error
        if error in ("authorization_pending", "slow_down"):
            raise PendingAuthorization(error) from None
        if error == "invalid_grant":
            raise SignInNeeded(account_name, f"the sign-in was refused: {said}") from None
        raise TokenRefused(
            f"account {account_name}: {_host(url)} refused the token request: {said}"
        ) from None
    except (httpx2.TimeoutException, TimeoutError):
        raise TokenEndpointUnavailable(
            f"account {account_name}: {_host(url)} did not answer the token request"
            f" within {timeout_s:g} s"
        ) from None
    except httpx2.HTTPStatusError as exc:
        raise TokenEndpointUnavailable(
            f"account {account_name}: {_host(url)} answered the token request with"
            f" HTTP {exc.response.status_code}"
        ) from None
    except httpx2.HTTPError as exc:
        raise TokenEndpointUnavailable(
            f"account {account_name}: cannot reach {_host(url)} for a token:"
            f" {visible(hide(type(exc).__name__ + ': ' + str(exc))[:200])}"
        ) from None
    except ValueError as exc:  # not a JSON object
        raise TokenEndpointUnavailable(
            f"account {account_name}: {_host(url)} answered the token request with"
            f" something that is not a token ({visible(hide(str(exc))[:200])})"
        ) from None
    return dict(token)


def token_source_for(
    home: Path, account: Account, *, now_s: Callable[[], float] = time.time
) -> TokenSource:
    """The ``TokenSource`` of ``account`` in ``home``: its refresh token from the keyring.

    No refresh token stored means nobody signed in yet: ``SignInNeeded``.
    A rotated refresh token replaces the stored one at once.
    """
    from relay.oauth.store import get_client_secret, get_refresh_token, store_refresh_token

    assert account.oauth2 is not None
    refresh_token = get_refresh_token(home, account.name)
    if refresh_token is None:
        raise SignInNeeded(account.name, "nobody has signed in to it yet")
    name = account.name
    return TokenSource(
        name,
        endpoints(account.oauth2),
        refresh_token,
        client_secret=get_client_secret(home, name),
        on_rotated=lambda token: store_refresh_token(home, name, token),
        now_s=now_s,
    )


class PendingAuthorization(Exception):
    """The device flow's person has not finished yet (``error`` says how to wait)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``****``, as sent and as a form encodes it.

    An endpoint that echoes its request echoes the form: Google's refresh
    tokens (``1//0g…``) and client secrets with ``/``, ``+`` or ``=`` come
    back percent-encoded there.
    """
    from urllib.parse import quote, quote_plus

    for secret in secrets:
        if secret:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, "****")
    return text


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url
