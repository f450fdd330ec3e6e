"""A provider's published settings: Thunderbird's autoconfig file (``config-v1.1.xml``).

Where it is looked for, in Thunderbird's order, HTTPS only (a settings file
fetched in the clear could send the password anywhere):

1. ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>``
2. ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``

From the file Outbox takes the first ``outgoingServer type="smtp"`` that is
encrypted (``socketType`` SSL or STARTTLS; ``plain`` is skipped), fills in
``%EMAILADDRESS%``, ``%EMAILLOCALPART%`` and ``%EMAILDOMAIN%`` in the user
name, and notes OAuth2 when the file asks for it and the host is one of the
presets' (Google, Microsoft).

``parse_autoconfig`` is pure. The file comes from a stranger: it is read up
to ``MAX_BYTES``, and a document type declaration is refused outright (no
DTD, no entity expansion). The refusal is expat's own report of a DOCTYPE,
not a search of the bytes: a file in UTF-16 (which its XML declaration may
say) hides ``<!DOCTYPE`` from any byte search but not from the parser.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from urllib.parse import quote

from relay.accounts import Security
from relay.discovery.table import Discovered
from relay.oauth.providers import Provider

MAX_BYTES = 256 * 1024
TIMEOUT_S = 10.0

_SOCKET_TYPES = {"SSL": Security.TLS, "STARTTLS": Security.STARTTLS}


def autoconfig_urls(address: str, *, base: str | None = None) -> list[str]:
    """Where the file may be, in order; ``base`` (tests) replaces ``https://HOST``."""
    domain = address.rpartition("@")[2].lower()
    query = f"?emailaddress={quote(address, safe='@')}"
    if base is not None:
        return [
            f"{base}/autoconfig.{domain}/mail/config-v1.1.xml{query}",
            f"{base}/{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
        ]
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml{query}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


def parse_autoconfig(data: bytes, address: str, source: str) -> Discovered | None:
    """The SMTP settings of an autoconfig document, or None when it has none usable."""
    import xml.etree.ElementTree as ET

    if len(data) > MAX_BYTES or _declares_a_dtd(data):
        return None
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    local, _, domain = address.rpartition("@")
    for server in root.iter("outgoingServer"):
        if server.get("type") != "smtp":
            continue
        host = (server.findtext("hostname") or "").strip()
        socket_type = (server.findtext("socketType") or "").strip().upper()
        security = _SOCKET_TYPES.get(socket_type)
        port_text = (server.findtext("port") or "").strip()
        if not host or security is None or not port_text.isdigit():
            continue
        port = int(port_text)
        if not 1 <= port <= 65535 or any(c.isspace() or c == "/" for c in host):
            continue
        user = (server.findtext("username") or "%EMAILADDRESS%").strip()
        user = (
            user.replace("%EMAILADDRESS%", address)
            .replace("%EMAILLOCALPART%", local)
            .replace("%EMAILDOMAIN%", domain)
        )
        methods = {(m.text or "").strip() for m in server.findall("authentication")}
        return Discovered(host, port, security, user, _oauth2(host, methods), source)
    return None


class _DoctypeFound(Exception):
    pass


def _declares_a_dtd(data: bytes) -> bool:
    """True when ``data`` has a document type declaration (or is not XML at all)."""
    from xml.parsers import expat

    def refuse(*_: object) -> None:
        raise _DoctypeFound

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except (_DoctypeFound, expat.ExpatError):
        return True
    return False


def _oauth2(host: str, methods: set[str]) -> Provider | None:
    if "OAuth2" not in methods:
        return None
    name = host.lower()
    if name.endswith((".gmail.com", ".google.com", ".googlemail.com")):
        return Provider.GOOGLE
    if name.endswith((".outlook.com", ".office365.com")):
        return Provider.MICROSOFT
    return None


async def fetch_autoconfig(
    address: str,
    *,
    base: str | None = None,
    verify: ssl.SSLContext | None = None,
    urls: Sequence[str] | None = None,
) -> Discovered | None:
    """The first usable autoconfig file's settings, or None (nothing found, or unreachable)."""
    import asyncio

    import httpx2

    for url in urls if urls is not None else autoconfig_urls(address, base=base):
        # httpx's timeout bounds each read, not the whole answer: a server that
        # trickles a byte now and then would hold discovery for hours. Bound it all.
        try:
            async with (
                asyncio.timeout(TIMEOUT_S),
                httpx2.AsyncClient(
                    timeout=TIMEOUT_S, follow_redirects=False, verify=verify or True
                ) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    continue
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        break
        except (httpx2.HTTPError, TimeoutError):
            continue
        found = parse_autoconfig(data, address, f"the provider's autoconfig file {url}")
        if found is not None:
            return found
    return None
