"""The large providers' outgoing servers, known without asking anyone.

Looked up first by the address's domain, then by where the domain's mail goes
(its MX hosts: a company on Google Workspace or Microsoft 365 keeps its own
domain, but its MX names the provider). Each row is the provider's
submission server as its own documentation gives it: implicit TLS (RFC 8314)
where offered, else STARTTLS on 587, the full address as the user name, and
OAuth2 where the provider wants it (Google, Microsoft); the others take app
passwords.

Pure data and two pure functions: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.accounts import Security
from relay.oauth.providers import Provider


@dataclass(frozen=True, slots=True)
class Discovered:
    """Settings found for an address, and where they came from (shown to the person)."""

    host: str
    port: int
    security: Security
    user: str
    oauth2: Provider | None
    source: str

    def describe(self) -> str:
        auth = f"sign in with {self.oauth2.value}" if self.oauth2 else "password"
        return (
            f"{self.host}:{self.port} {self.security.value}, user {self.user}, {auth}"
            f" (from {self.source})"
        )


@dataclass(frozen=True, slots=True)
class KnownProvider:
    name: str
    host: str
    port: int
    security: Security
    oauth2: Provider | None
    domains: tuple[str, ...] = ()
    mx_suffixes: tuple[str, ...] = ()


_OUTLOOK_DOMAINS = tuple(
    [
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "hotmail.it",
        "outlook.de",
        "outlook.fr",
        "live.co.uk",
    ]
)

KNOWN_PROVIDERS: tuple[KnownProvider, ...] = (
    KnownProvider(
        "Gmail / Google Workspace",
        "smtp.gmail.com",
        465,
        Security.TLS,
        Provider.GOOGLE,
        domains=("gmail.com", "googlemail.com"),
        mx_suffixes=(".google.com", ".googlemail.com"),
    ),
    KnownProvider(
        "Outlook.com",
        "smtp-mail.outlook.com",
        587,
        Security.STARTTLS,
        Provider.MICROSOFT,
        domains=_OUTLOOK_DOMAINS,
    ),
    KnownProvider(
        "Microsoft 365",
        "smtp.office365.com",
        587,
        Security.STARTTLS,
        Provider.MICROSOFT,
        mx_suffixes=(".mail.protection.outlook.com",),
    ),
    KnownProvider(
        "Fastmail",
        "smtp.fastmail.com",
        465,
        Security.TLS,
        None,
        domains=("fastmail.com", "fastmail.fm", "fastmail.net", "messagingengine.com"),
        mx_suffixes=(".messagingengine.com",),
    ),
    KnownProvider(
        "iCloud",
        "smtp.mail.me.com",
        587,
        Security.STARTTLS,
        None,
        domains=("icloud.com", "me.com", "mac.com"),
    ),
    KnownProvider(
        "Yahoo",
        "smtp.mail.yahoo.com",
        465,
        Security.TLS,
        None,
        domains=("yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr"),
    ),
    KnownProvider(
        "GMX",
        "mail.gmx.net",
        465,
        Security.TLS,
        None,
        domains=("gmx.de", "gmx.net", "gmx.at", "gmx.ch"),
    ),
    KnownProvider("GMX", "mail.gmx.com", 465, Security.TLS, None, domains=("gmx.com", "gmx.us")),
    KnownProvider(
        "mailbox.org",
        "smtp.mailbox.org",
        465,
        Security.TLS,
        None,
        domains=("mailbox.org",),
        mx_suffixes=(".mailbox.org",),
    ),
)


def by_domain(address: str) -> Discovered | None:
    domain = address.rpartition("@")[2].lower().rstrip(".")
    for provider in KNOWN_PROVIDERS:
        if domain in provider.domains:
            return _found(provider, address, f"Outbox's table ({provider.name})")
    return None


def by_mx(address: str, mx_hosts: list[str]) -> Discovered | None:
    for host in mx_hosts:
        name = "." + host.lower().rstrip(".")
        for provider in KNOWN_PROVIDERS:
            if any(name.endswith(suffix) for suffix in provider.mx_suffixes):
                return _found(provider, address, f"Outbox's table ({provider.name}, by MX {host})")
    return None


def _found(provider: KnownProvider, address: str, source: str) -> Discovered:
    return Discovered(
        provider.host, provider.port, provider.security, address, provider.oauth2, source
    )
