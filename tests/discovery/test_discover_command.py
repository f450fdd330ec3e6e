"""``outbox account add NAME --address ADDR --discover --test`` as a user runs it.

A real subprocess finds the server through a DNS server and an HTTPS server
on 127.0.0.1 (the loopback-only test seam of ``relay.discovery.seam``), shows
it, tests it against a real aiosmtpd with STARTTLS and AUTH, and saves the
account only when that test passed.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from relay.discovery.seam import AUTOCONFIG_ENV, CA_ENV, DNS_ENV
from tests.accounts.smtp_server import (
    IGNORE_AIOSMTPD_LOGIN_DATA,
    PASSWORD,
    USER,
    RunningServer,
    serving,
)
from tests.discovery.loopback_servers import dns_serving, https_serving
from tests.support.cli import outbox
from tests.support.keyrings import MemoryKeyring

pytestmark = pytest.mark.filterwarnings(IGNORE_AIOSMTPD_LOGIN_DATA)

ADDRESS = "alice@srv.example.test"


@dataclass
class Loopback:
    smtp: RunningServer
    env: dict[str, str]
    ca_file: Path
    asked: list[str]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    """An aiosmtpd (STARTTLS, localhost certificate) that SRV records for ADDRESS name."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(tls)
    asked: list[str] = []
    with serving(tls_context=tls, require_starttls=True) as smtp:
        zone = f"_submission._tcp.srv.example.test. 60 IN SRV 0 1 {smtp.port} localhost.\n"
        with dns_serving(zone) as dns_port, https_serving(ca, {}, asked) as base:
            env = {
                DNS_ENV: f"127.0.0.1:{dns_port}",
                AUTOCONFIG_ENV: base,
                CA_ENV: str(ca_file),
                "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
                "OUTBOX_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
            }
            yield Loopback(smtp, env, ca_file, asked)


def add_discovered(
    home: Path, loopback: Loopback, password: str, *extra: str
) -> tuple[int, str, str]:
    done = outbox(
        home, "account", "add", "found", "--address", ADDRESS, "--discover", "--test",
        "--user", USER, "--password-stdin", "--ca-file", str(loopback.ca_file), *extra,
        input=password.encode(), env=loopback.env,
    )  # fmt: skip
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_found_by_srv_tested_with_starttls_and_auth_then_saved(
    tmp_path: Path, loopback: Loopback
) -> None:
    home = tmp_path / "home"
    code, out, err = add_discovered(home, loopback, PASSWORD)

    assert code == 0, err
    port = loopback.smtp.port
    assert f"found for {ADDRESS}: localhost:{port} starttls" in out
    assert "_submission._tcp.srv.example.test" in out
    assert f"authentication: {USER} (PLAIN)" in out and "nothing was sent" in out
    assert out.rstrip().splitlines()[-1].startswith("added account found:")
    # autoconfig was asked first (on the loopback HTTPS server), then DNS answered.
    assert any(p.startswith("/autoconfig.srv.example.test/") for p in loopback.asked)
    assert loopback.smtp.recorder.logins == [("PLAIN", USER)]
    assert loopback.smtp.recorder.messages == []
    listed = json.loads(outbox(home, "account", "list", "--json", env=loopback.env).stdout)
    assert [(a["name"], a["host"], a["port"], a["security"], a["user"]) for a in listed] == [
        ("found", "localhost", port, "starttls", USER)
    ]
    tested = outbox(home, "account", "test", "found", env=loopback.env)
    assert tested.returncode == 0, tested.stderr.decode()  # the password was stored too


def test_a_failing_test_saves_nothing_and_exits_as_account_test_does(
    tmp_path: Path, loopback: Loopback
) -> None:
    home = tmp_path / "home"
    code, out, err = add_discovered(home, loopback, "not the password")

    assert code == 1, err
    [line] = err.splitlines()
    assert line.startswith("outbox: account found: localhost refused the credentials for alice")
    assert "not the password" not in out + err
    assert "nothing was saved" in out and "added account" not in out
    assert not (home / "config.toml").exists()
    assert MemoryKeyring(tmp_path / "keyring.json").passwords() == {}


def test_a_dry_run_test_passes_and_still_saves_nothing(tmp_path: Path, loopback: Loopback) -> None:
    home = tmp_path / "home"
    code, out, err = add_discovered(home, loopback, PASSWORD, "--dry-run")

    assert code == 0, err
    assert f"authentication: {USER} (PLAIN)" in out
    assert "nothing was saved" in out and "added account" not in out
    assert loopback.smtp.recorder.logins == [("PLAIN", USER)]
    assert not home.exists()


def test_the_seam_ignores_a_server_that_is_not_on_loopback() -> None:
    from relay.discovery.seam import discovery_overrides

    assert discovery_overrides({}) == {}
    assert discovery_overrides({DNS_ENV: "192.0.2.1:53", AUTOCONFIG_ENV: "https://example.org:1",
                                CA_ENV: "/nonexistent"}) == {}  # fmt: skip
    assert discovery_overrides({AUTOCONFIG_ENV: "http://localhost:1"}) == {}
    seamed = discovery_overrides({DNS_ENV: "127.0.0.1:5353", AUTOCONFIG_ENV: "https://[::1]:9"})
    assert seamed["resolver"].nameservers == ["127.0.0.1"] and seamed["resolver"].port == 5353
    assert seamed["autoconfig_base"] == "https://[::1]:9" and "verify" not in seamed
