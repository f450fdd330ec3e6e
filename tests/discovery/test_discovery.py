"""Finding an account's server from an address: the table, autoconfig over HTTPS, SRV, MX.

A real DNS server (dnslib, on 127.0.0.1 UDP) answers for ``example.test``
domains, and a real HTTPS server with a trustme certificate serves
autoconfig files; ``discover`` is pointed at both.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from relay.accounts import Security
from relay.discovery.autoconfig import parse_autoconfig
from relay.discovery.discover import discover
from relay.discovery.dns import loopback_resolver
from relay.errors import ConfigError
from relay.oauth.providers import Provider
from tests.discovery.loopback_servers import dns_serving, https_serving, https_trickling

ZONE = """
_submissions._tcp.srv.example.test. 60 IN SRV 10 5 465 smtp-tls.srv.example.test.
_submissions._tcp.srv.example.test. 60 IN SRV 20 5 465 backup.srv.example.test.
_submission._tcp.srv.example.test.  60 IN SRV 10 5 587 smtp.srv.example.test.
_submission._tcp.starttls.example.test. 60 IN SRV 0 1 2525 mail.starttls.example.test.
_submissions._tcp.dot.example.test. 60 IN SRV 0 0 0 .
_submissions._tcp.zero.example.test. 60 IN SRV 0 0 0 smtp.zero.example.test.
_submission._tcp.zero.example.test. 60 IN SRV 0 0 587 smtp.zero.example.test.
workspace.example.test. 60 IN MX 1 aspmx.l.google.com.
m365.example.test. 60 IN MX 0 m365-example-test.mail.protection.outlook.com.
"""

AUTOCONFIG = b"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="auto.example.test">
    <domain>auto.example.test</domain>
    <outgoingServer type="smtp">
      <hostname>plain.auto.example.test</hostname><port>25</port>
      <socketType>plain</socketType><username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.auto.example.test</hostname><port>465</port>
      <socketType>SSL</socketType><username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


@pytest.fixture
def dns_port() -> Iterator[int]:
    with dns_serving(ZONE) as port:
        yield port


@pytest.fixture
def https() -> Iterator[tuple[str, ssl.SSLContext, list[str]]]:
    """An HTTPS server serving AUTOCONFIG at the .well-known path of auto.example.test."""
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    asked: list[str] = []
    files = {"/auto.example.test/.well-known/autoconfig/mail/config-v1.1.xml": AUTOCONFIG}
    with https_serving(ca, files, asked) as base:
        yield base, client_context, asked


def run_discover(address: str, dns_port: int, https: Any = None, **extra: Any) -> Any:
    base, context, _ = https if https is not None else (None, None, None)
    return asyncio.run(
        discover(
            address,
            resolver=loopback_resolver(dns_port),
            autoconfig_base=base or "https://127.0.0.1:9",  # nothing listens there
            verify=context,
            **extra,
        )
    )


def test_a_large_provider_is_found_in_the_table_without_asking_anyone() -> None:
    found = asyncio.run(discover("me@gmail.com", resolver=object()))  # never used
    assert (found.host, found.port, found.security, found.oauth2) == (
        "smtp.gmail.com", 465, Security.TLS, Provider.GOOGLE
    )  # fmt: skip
    assert found.user == "me@gmail.com" and "table" in found.source
    outlook = asyncio.run(discover("me@hotmail.com", resolver=object()))
    assert outlook.host == "smtp-mail.outlook.com" and outlook.oauth2 is Provider.MICROSOFT


def test_the_autoconfig_file_is_found_over_https_and_its_encrypted_server_taken(
    dns_port: int, https: Any
) -> None:
    found = run_discover("ann@auto.example.test", dns_port, https)
    assert (found.host, found.port, found.security, found.user) == (
        "smtp.auto.example.test", 465, Security.TLS, "ann"
    )  # fmt: skip
    assert ".well-known" in found.source
    # autoconfig.<domain> was asked first, then the domain's .well-known.
    assert https[2][0].startswith("/autoconfig.auto.example.test/mail/config-v1.1.xml?")


def test_srv_records_give_the_implicit_tls_server_first_by_priority(dns_port: int) -> None:
    found = run_discover("bob@srv.example.test", dns_port)
    assert (found.host, found.port, found.security) == ("smtp-tls.srv.example.test", 465,
                                                        Security.TLS)  # fmt: skip
    assert "_submissions._tcp.srv.example.test" in found.source


def test_srv_submission_means_starttls_and_a_dot_target_means_none(dns_port: int) -> None:
    found = run_discover("bob@starttls.example.test", dns_port)
    assert (found.host, found.port, found.security) == ("mail.starttls.example.test", 2525,
                                                        Security.STARTTLS)  # fmt: skip
    assert run_discover("bob@dot.example.test", dns_port) is None


@pytest.mark.parametrize(
    "address", ["me@evil.example?.gmail.com", "me@evil.example:8443", "me@evil.example/x"]
)
def test_an_address_whose_domain_is_no_host_name_is_refused_before_asking_anyone(
    dns_port: int, https: Any, address: str
) -> None:
    with pytest.raises(ConfigError, match="the domain is not a valid host name"):
        run_discover(address, dns_port, https)
    assert https[2] == []  # no autoconfig location was asked


def test_an_srv_record_with_port_0_is_passed_over_for_the_next_usable_one(dns_port: int) -> None:
    found = run_discover("me@zero.example.test", dns_port)
    assert (found.host, found.port, found.security) == (
        "smtp.zero.example.test",
        587,
        Security.STARTTLS,
    )


def test_a_google_workspace_or_microsoft_365_domain_is_found_by_its_mx(dns_port: int) -> None:
    workspace = run_discover("ceo@workspace.example.test", dns_port)
    assert workspace.host == "smtp.gmail.com" and workspace.oauth2 is Provider.GOOGLE
    assert "MX aspmx.l.google.com" in workspace.source
    m365 = run_discover("ceo@m365.example.test", dns_port)
    assert m365.host == "smtp.office365.com" and m365.oauth2 is Provider.MICROSOFT


def test_nothing_found_is_none_and_a_bad_address_is_refused(dns_port: int) -> None:
    assert run_discover("who@nothing.example.test", dns_port) is None
    with pytest.raises(ConfigError):
        run_discover("not an address", dns_port)


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig/>',
        # In UTF-16 no byte search finds "<!DOCTYPE"; the entities would be expanded.
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><clientConfig><emailProvider>'
            "<outgoingServer type='smtp'><hostname>smtp.&b;.example</hostname>"
            "<port>465</port><socketType>SSL</socketType></outgoingServer>"
            "</emailProvider></clientConfig>"
        ).encode("utf-16"),
        b"<clientConfig><emailProvider><outgoingServer type='smtp'><hostname>h</hostname>"
        b"<port>25</port><socketType>plain</socketType></outgoingServer></emailProvider>"
        b"</clientConfig>",
        b"not xml at all",
    ],
)
def test_an_autoconfig_file_with_a_dtd_or_only_plain_text_servers_gives_nothing(
    document: bytes,
) -> None:
    assert parse_autoconfig(document, "a@b.example", "test") is None


def test_an_autoconfig_server_that_trickles_its_answer_is_given_up_on_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from relay.discovery import autoconfig

    monkeypatch.setattr(autoconfig, "TIMEOUT_S", 0.5)
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with https_trickling(ca, every_s=0.1) as base:
        # Each byte comes well within the read timeout; the whole answer never does.
        fetching = autoconfig.fetch_autoconfig("a@slow.example.test", base=base, verify=context)
        assert asyncio.run(asyncio.wait_for(fetching, timeout=5)) is None


def test_an_autoconfig_file_asking_for_oauth2_at_google_says_so() -> None:
    document = (
        b"<clientConfig><emailProvider><outgoingServer type='smtp'>"
        b"<hostname>smtp.gmail.com</hostname><port>465</port><socketType>SSL</socketType>"
        b"<authentication>OAuth2</authentication></outgoingServer></emailProvider>"
        b"</clientConfig>"
    )
    found = parse_autoconfig(document, "a@corp.example", "test")
    assert found is not None and found.oauth2 is Provider.GOOGLE


def test_account_add_discover_shows_what_it_found_and_adds_it(tmp_path: Any) -> None:
    import json
    import os

    from tests.support.cli import outbox

    home = tmp_path / "home"
    env = {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        "OUTBOX_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    dry = outbox(home, "account", "add", "g", "--address", "me@gmail.com", "--discover",
                 "--oauth-client-id", "1234.apps.example", "--dry-run", env=env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr.decode()
    assert b"found for me@gmail.com: smtp.gmail.com:465 tls" in dry.stdout
    assert b"nothing was saved" in dry.stdout
    assert not os.path.exists(home / "config.toml")

    done = outbox(home, "account", "add", "g", "--address", "me@gmail.com", "--discover",
                  "--oauth-client-id", "1234.apps.example", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    listed = json.loads(outbox(home, "account", "list", "--json", env=env).stdout)
    assert [(a["host"], a["port"], a["security"], a["user"], a["auth"]) for a in listed] == [
        ("smtp.gmail.com", 465, "tls", "me@gmail.com", "oauth2")
    ]
    assert listed[0]["oauth2"]["provider"] == "google"
