"""What DNS says about a domain's mail: MX hosts, and RFC 6186 submission SRV records.

RFC 6186 section 3.1 names ``_submission._tcp.<domain>`` (STARTTLS, usually
587); RFC 8314 section 5.1 adds ``_submissions._tcp.<domain>`` (implicit TLS,
465) and prefers it. A target of ``.`` says the service is not offered
(RFC 2782), and so does port 0 here (no server listens there). Among
records, the lowest priority wins, then the highest weight (a person adds
one account: no need for RFC 2782's random draw).

DNS is dnspython's, through a resolver the caller may give (tests point one
at a DNS server on 127.0.0.1). A name that does not exist, a timeout, or no
answer is "nothing found", never an error: discovery goes on or says it
found nothing.
"""

from __future__ import annotations

from typing import Any

from relay.accounts import Security
from relay.discovery.table import Discovered

TIMEOUT_S = 5.0


def system_resolver() -> Any:
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = TIMEOUT_S
    return resolver


def loopback_resolver(port: int, address: str = "127.0.0.1") -> Any:
    """A resolver asking only the DNS server at ``address``:``port`` (tests)."""
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = port
    resolver.lifetime = TIMEOUT_S
    return resolver


async def mx_hosts(domain: str, resolver: Any) -> list[str]:
    """The domain's MX hosts, most preferred first; [] when there are none."""
    answer = await _query(resolver, domain, "MX")
    records = sorted(answer, key=lambda r: r.preference)
    return [str(r.exchange).rstrip(".") for r in records if str(r.exchange) not in (".", "")]


async def srv_submission(address: str, resolver: Any) -> Discovered | None:
    """The submission server RFC 6186 SRV records name, implicit TLS first."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    for service, security in (("_submissions", Security.TLS), ("_submission", Security.STARTTLS)):
        name = f"{service}._tcp.{domain}"
        answer = await _query(resolver, name, "SRV")
        records = [r for r in answer if str(r.target) != "." and int(r.port) != 0]
        if not records:
            continue
        best = min(records, key=lambda r: (r.priority, -r.weight))
        host = str(best.target).rstrip(".")
        return Discovered(
            host, int(best.port), security, address, None, f"the DNS record {name} (RFC 6186)"
        )
    return None


async def _query(resolver: Any, name: str, kind: str) -> list[Any]:
    import dns.exception
    import dns.resolver

    try:
        answer = await resolver.resolve(name, kind)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.DNSException:  # a timeout, a broken answer
        return []
    return list(answer)
