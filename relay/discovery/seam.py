"""A TEST SEAM, for tests only: point discovery at servers on loopback.

``outbox account add … --discover`` runs discovery in its own process, so a
test of the command line cannot hand ``relay.discovery.discover.discover`` a resolver
the way a test of the function does. These environment variables do it:

- ``OUTBOX_TEST_DISCOVERY_DNS=127.0.0.1:PORT``: ask only this DNS server;
- ``OUTBOX_TEST_DISCOVERY_AUTOCONFIG=https://localhost:PORT``: fetch autoconfig
  files from this HTTPS server instead of ``https://autoconfig.<domain>`` etc.;
- ``OUTBOX_TEST_DISCOVERY_CA=PEM``: trust the certificates in PEM for that
  server (honoured only with the previous one).

Each is honoured only when it names a loopback address (``127.0.0.0/8``,
``::1``, or ``localhost`` for the HTTPS server) and is otherwise ignored, so
a stray or hostile setting can never send a real user's discovery to another
server: at worst it makes discovery ask a server on the user's own machine.
Nothing else in Outbox reads these variables.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from relay.errors import ConfigError

DNS_ENV = "OUTBOX_TEST_DISCOVERY_DNS"
AUTOCONFIG_ENV = "OUTBOX_TEST_DISCOVERY_AUTOCONFIG"
CA_ENV = "OUTBOX_TEST_DISCOVERY_CA"


def discovery_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``discover`` from the test seam; {} in normal use."""
    overrides: dict[str, Any] = {}
    dns = _loopback_host_port(environ.get(DNS_ENV, ""), allow_name=False)
    if dns is not None:
        from relay.discovery.dns import loopback_resolver

        overrides["resolver"] = loopback_resolver(dns[1], dns[0])
    base = environ.get(AUTOCONFIG_ENV, "")
    parts = urlsplit(base)
    if (
        parts.scheme == "https"
        and parts.path in ("", "/")
        and not parts.query
        and _loopback_host_port(parts.netloc, allow_name=True) is not None
    ):
        overrides["autoconfig_base"] = base.rstrip("/")
        ca = environ.get(CA_ENV, "")
        if ca:
            try:
                overrides["verify"] = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as error:
                raise ConfigError(f"{CA_ENV}: cannot read {ca}: {error}") from None
    return overrides


def _loopback_host_port(text: str, *, allow_name: bool) -> tuple[str, int] | None:
    """``(host, port)`` from ``HOST:PORT`` or ``[V6]:PORT`` when HOST is loopback."""
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if host is None or port is None or parts.username is not None:
        return None
    if allow_name and host == "localhost":
        return host, port
    try:
        return (host, port) if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None
