"""OAuth2 sign-in settings of an account, and the providers Outbox knows.

An account that signs in with OAuth2 keeps an ``OAuth2Settings`` in its
config: which provider (``google``, ``microsoft`` or ``custom``), the client
ID the person registered, and any endpoint or scope they override. A preset's
endpoints are not copied into the config: they are looked up here when they
are used (``endpoints``), so a release that corrects a preset corrects every
account that uses it.

Outbox ships no client ID. A client ID names an application to the provider,
and borrowing another program's (Thunderbird's, say) would be passing off as
it; the person registers their own (README: "Signing in with OAuth2").

Rules kept here:

- Token, authorization and device endpoints must be ``https``; plain ``http``
  is accepted only to a loopback address (a test's authorization server),
  because a refresh token sent in the clear can be replayed by anyone on the
  way (RFC 6749 section 10.3 / RFC 8252 section 8.3). A URL with a user
  name or a backslash is refused too: a browser and Python may read another
  host in it, and the loopback rule would then hold for one of them only.
- ``custom`` needs a token URL, an authorization URL and a scope: there is no
  guess to make.

No I/O and nothing heavy imported: every ``outbox`` command reads accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from relay.errors import ConfigError


class Provider(StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider's endpoints and the scope that lets its SMTP server take a token.

    ``smtp_host`` is where its mail goes out (port 587, STARTTLS), offered
    as the default host of a new account that names the provider.
    ``authorize_params`` go into the authorization URL: Google hands out a
    refresh token only with ``access_type=offline``.
    """

    label: str
    authorize_url: str
    token_url: str
    device_url: str | None
    scope: str
    smtp_host: str
    authorize_params: tuple[tuple[str, str], ...] = ()


PRESETS: dict[Provider, Preset] = {
    Provider.GOOGLE: Preset(
        label="Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        # Google's device flow does not grant the Gmail scope: the browser flow is the way.
        device_url="https://oauth2.googleapis.com/device/code",
        scope="https://mail.google.com/",
        smtp_host="smtp.gmail.com",
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
    # "common" takes work or school accounts and personal (Outlook.com) ones
    # alike, when the application was registered for both.
    Provider.MICROSOFT: Preset(
        label="Microsoft",
        authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        device_url="https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
        scope="https://outlook.office.com/SMTP.Send offline_access",
        smtp_host="smtp.office365.com",
    ),
}


@dataclass(frozen=True, slots=True)
class OAuth2Settings:
    """What an account's config says about its OAuth2 sign-in (no secret here)."""

    provider: Provider
    client_id: str
    authorize_url: str | None = None
    token_url: str | None = None
    device_url: str | None = None
    scope: str | None = None

    @property
    def label(self) -> str:
        """The provider's name for a person ("Sign in with Google")."""
        preset = PRESETS.get(self.provider)
        if preset is not None:
            return preset.label
        host = urlsplit(self.authorize_url or self.token_url or "").hostname
        return host or "OAuth2"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The settings with the preset filled in: everything a flow needs."""

    client_id: str
    authorize_url: str
    token_url: str
    device_url: str | None
    scope: str
    authorize_params: tuple[tuple[str, str], ...] = ()


def parse_provider(value: str) -> Provider:
    try:
        return Provider(value.strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise ConfigError(f"unknown OAuth2 provider {value!r} (choose one of {choices})") from None


def endpoints(settings: OAuth2Settings) -> Endpoints:
    """The endpoints and scope in force for ``settings`` (overrides beat the preset)."""
    preset = PRESETS.get(settings.provider)
    authorize_url = settings.authorize_url or (preset.authorize_url if preset else None)
    token_url = settings.token_url or (preset.token_url if preset else None)
    scope = settings.scope or (preset.scope if preset else None)
    device_url = settings.device_url or (preset.device_url if preset else None)
    if authorize_url is None or token_url is None or scope is None:
        raise ConfigError(
            "an OAuth2 provider 'custom' needs --oauth-authorize-url, --oauth-token-url"
            " and --oauth-scope"
        )
    return Endpoints(
        client_id=settings.client_id,
        authorize_url=authorize_url,
        token_url=token_url,
        device_url=device_url,
        scope=scope,
        authorize_params=preset.authorize_params if preset else (),
    )


def validate_oauth2(settings: OAuth2Settings, where: str) -> OAuth2Settings:
    """``settings`` if usable, else ``ConfigError`` naming the problem."""
    client_id = settings.client_id
    if not client_id.strip() or any(c.isspace() or not c.isprintable() for c in client_id):
        raise ConfigError(
            f"{where}: the OAuth2 client ID is empty or holds spaces"
            " (register one with the provider: see the README)"
        )
    for what, url in (
        ("authorization URL", settings.authorize_url),
        ("token URL", settings.token_url),
        ("device URL", settings.device_url),
    ):
        if url is not None:
            check_endpoint_url(url, f"{where}: the OAuth2 {what}")
    if settings.scope is not None and (not settings.scope.strip() or "\n" in settings.scope):
        raise ConfigError(f"{where}: the OAuth2 scope is empty or spans lines")
    try:
        endpoints(settings)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return settings


def check_endpoint_url(url: str, what: str) -> str:
    """``url`` if it is https, or http to a loopback address; else ``ConfigError``."""
    from relay.accounts import is_loopback_host

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or not host or parts.scheme not in ("https", "http"):
        raise ConfigError(f"{what} {url!r} is not an https:// URL")
    if any(c.isspace() for c in url):
        raise ConfigError(f"{what} {url!r} holds spaces")
    if "\\" in url or "@" in parts.netloc:
        # Browsers read "http://evil.example\\@127.0.0.1/" as a page on evil.example
        # (a backslash ends the host there), Python as one on 127.0.0.1: no URL
        # whose host two readers could disagree on.
        raise ConfigError(f"{what} {url!r} holds a user name or a backslash")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"{what} {url!r} is plain http: tokens go only over https"
            " (plain http is allowed only to a loopback address)"
        )
    return url
