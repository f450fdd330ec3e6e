"""An account's outgoing server, found from an e-mail address (as Thunderbird does).

In order, the first that answers wins:

1. Outbox's table of the large providers, by the address's domain
   (``relay.discovery.table``);
2. the provider's autoconfig file over HTTPS (``relay.discovery.autoconfig``);
3. RFC 6186 SRV records (``relay.discovery.dns``);
4. the table again, by the domain's MX hosts (Google Workspace, Microsoft
   365 and Fastmail keep a customer's own domain but name themselves in MX).

What was found says where it came from, so the person can judge it before
saving. The resolver and the autoconfig location are parameters: tests
point them at servers on 127.0.0.1 (tests of the command line through the
loopback-only test seam of ``relay.discovery.seam``).
"""

from __future__ import annotations

import ssl
from typing import Any

from relay.discovery.table import Discovered, by_domain, by_mx
from relay.errors import ConfigError

__all__ = ["Discovered", "discover"]


async def discover(
    address: str,
    *,
    resolver: Any = None,
    autoconfig_base: str | None = None,
    verify: ssl.SSLContext | None = None,
) -> Discovered | None:
    """Settings for ``address``, or None when nothing was found."""
    from relay.address import address_problem
    from relay.discovery.autoconfig import fetch_autoconfig
    from relay.discovery.dns import mx_hosts, srv_submission, system_resolver

    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise ConfigError(f"{address!r} is not an e-mail address (name@domain)")
    address = address.strip()
    # The domain goes into URLs and DNS names: ``me@evil.example?.gmail.com``
    # would ask autoconfig.evil.example, then say only that nothing was found.
    if (problem := address_problem(address)) is not None:
        raise ConfigError(f"{address!r} is not an e-mail address: {problem}")
    found = by_domain(address)
    if found is not None:
        return found
    found = await fetch_autoconfig(address, base=autoconfig_base, verify=verify)
    if found is not None:
        return found
    resolver = resolver if resolver is not None else system_resolver()
    found = await srv_submission(address, resolver)
    if found is not None:
        return found
    return by_mx(address, await mx_hosts(domain.lower(), resolver))
