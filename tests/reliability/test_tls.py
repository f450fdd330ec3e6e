"""TLS through ``outbox flush``: a bad certificate or a stripped STARTTLS sends nothing.

The relayer-level checks of each certificate problem live in
tests/relayer/test_session.py (expired, self-signed, another name, STARTTLS
required but not offered); here they run through the command line, side by
side with a healthy TLS account in the same flush, and the servers confirm
that nothing reached them. The STARTTLS stripping attack is a real proxy in
front of a real STARTTLS server, recording every byte the client sent.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from relay.accounts import Security
from tests.reliability.conftest import add_account, note, record_figures
from tests.reliability.stripping_proxy import threaded_stripping_proxy
from tests.support.cli import listed, outbox
from tests.support.keyrings import FILE_ENV
from tests.support.smtp_servers import USER, TestCertificates, threaded_smtp_server

PASSWORD = "stripped-Kq8-never-in-clear"


def test_bad_certificates_and_a_stripped_starttls_send_nothing_and_say_why(
    home: Path, tmp_path: Path
) -> None:
    certs = TestCertificates.create(tmp_path)
    env = {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
    }
    ca = ("--ca-file", str(certs.ca_file))
    starttls = {"security": Security.STARTTLS, "tls": certs}
    bad = {
        "expired": (
            {**starttls, "tls_context": certs.expired_context()},
            "starttls",
            "has expired",
        ),
        "self-signed": (
            {**starttls, "tls_context": certs.self_signed_context()},
            "starttls",
            "is self-signed",
        ),
        "wrong-name": (
            {**starttls, "tls_context": certs.server_context("mail.other.example")},
            "starttls",
            "is for another name",
        ),
        "implicit-expired": (
            {"security": Security.TLS, "tls": certs, "tls_context": certs.expired_context()},
            "tls",
            "has expired",
        ),
    }
    with ExitStack() as stack:
        servers = {}
        for name, (options, security, _) in bad.items():
            server = stack.enter_context(threaded_smtp_server(**options))
            servers[name] = server
            add_account(
                home,
                server.port,
                *ca,
                "--from",
                f"*@{name}.example",
                name=name,
                security=security,
                timeout=3,
            )
        behind = stack.enter_context(threaded_smtp_server(**starttls, password=PASSWORD))
        proxy = stack.enter_context(threaded_stripping_proxy(behind.port))
        add_account(
            home,
            proxy.port,
            *ca,
            "--from",
            "*@stripped.example",
            "--user",
            USER,
            "--password-stdin",
            name="stripped",
            security="starttls",
            env=env,
            password=PASSWORD,
        )
        healthy = stack.enter_context(threaded_smtp_server(**starttls))
        add_account(
            home,
            healthy.port,
            *ca,
            "--from",
            "*@healthy.example",
            name="healthy",
            security="starttls",
        )
        senders = [*bad, "stripped", "healthy"]
        files = []
        for n, name in enumerate(senders):
            path = tmp_path / f"{name}.eml"
            path.write_bytes(note(n, tag=name, sender=f"ann@{name}.example"))
            files.append(str(path))
        assert outbox(home, "enqueue", *files).returncode == 0
        flushed = outbox(home, "flush", env=env)

    items = {m["subject"].split()[0]: m for m in listed(home)}
    assert items["healthy"]["state"] == "sent"
    assert len(healthy.received) == 1
    problems = []
    for name, (_, _, words) in bad.items():
        item = items[name]
        if item["state"] not in ("deferred", "failed") or words not in (item["last_error"] or ""):
            problems.append(f"{name}: {item['state']}: {item['last_error']}")
        if servers[name].received:
            problems.append(f"{name}: the server received a message")
    assert problems == [], flushed.stderr.decode()
    # Stripping: the client noticed, said so, and sent nothing in the clear.
    stripped = items["stripped"]
    assert stripped["state"] in ("deferred", "failed")
    assert "does not offer STARTTLS; nothing was sent" in stripped["last_error"]
    assert proxy.stripped >= 1  # the attack really happened
    clear = bytes(proxy.from_client).upper()
    assert clear.startswith(b"EHLO ")
    for verb in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert verb not in clear, clear
    assert PASSWORD.encode() not in bytes(proxy.from_client)
    assert behind.received == []
    record_figures("test_tls", refused=len(bad) + 1, client_bytes_in_clear=len(proxy.from_client))


def test_no_option_turns_certificate_verification_off() -> None:
    """The way to trust a private server is ``--ca-file``; nothing disables checking."""
    for command in (["account", "add", "--help"], ["account", "set", "--help"]):
        done = outbox(Path("/nonexistent-home"), *command)
        assert done.returncode == 0
        text = done.stdout.decode().lower()
        assert "--ca-file" in text
        for word in ("insecure", "no-verify", "verify", "skip", "trust-all", "accept-any"):
            assert word not in text, word
