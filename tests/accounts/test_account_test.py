"""``outbox account test`` against a real aiosmtpd on 127.0.0.1: it logs in and sends nothing."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from tests.accounts.conftest import RunOutbox
from tests.accounts.smtp_server import (
    IGNORE_AIOSMTPD_LOGIN_DATA,
    PASSWORD,
    SIZE_LIMIT,
    USER,
    RunningServer,
    serving,
)

pytestmark = pytest.mark.filterwarnings(IGNORE_AIOSMTPD_LOGIN_DATA)


def add_plain(outbox: RunOutbox, name: str, server: RunningServer, password: str) -> None:
    done = outbox(
        "account", "add", name, "--host", server.host, "--port", str(server.port),
        "--security", "none", "--user", USER, "--password-stdin", input=password,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_account_test_logs_in_reports_the_offer_and_sends_nothing(outbox: RunOutbox) -> None:
    with serving() as server:
        add_plain(outbox, "local", server, PASSWORD)

        done = outbox("account", "test", "local")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"authentication: {USER} (PLAIN); offered: LOGIN PLAIN" in out
    assert f"size limit: {SIZE_LIMIT} bytes" in out
    assert "SMTPUTF8: yes" in out and "8BITMIME: yes" in out
    assert "encryption: no (plain text)" in out
    assert out.rstrip().endswith("nothing was sent")
    assert server.recorder.logins == [("PLAIN", USER)]
    assert server.recorder.messages == []


def test_account_test_without_a_name_tests_the_default_account(outbox: RunOutbox) -> None:
    with serving() as server, serving() as other:
        add_plain(outbox, "first", server, PASSWORD)
        add_plain(outbox, "second", other, PASSWORD)
        outbox("account", "set", "second", "--default")

        done = outbox("account", "test")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("account second:")
    assert other.recorder.logins == [("PLAIN", USER)]
    assert server.recorder.logins == []


def test_a_wrong_password_is_reported_as_refused_credentials_in_one_line(
    outbox: RunOutbox,
) -> None:
    with serving() as server:
        add_plain(outbox, "local", server, "not the password")

        done = outbox("account", "test", "local")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("outbox: account local: 127.0.0.1 refused the credentials for alice")
    assert "535" in line
    assert "not the password" not in done.stdout + done.stderr
    assert server.recorder.messages == []


def test_the_transcript_masks_the_credentials(outbox: RunOutbox) -> None:
    with serving() as server:
        add_plain(outbox, "local", server, PASSWORD)

        done = outbox("account", "test", "local", "--transcript")

    assert done.returncode == 0, done.stderr
    assert "C: AUTH PLAIN ****" in done.stderr
    assert PASSWORD not in done.stderr
    assert "S: 235" in done.stderr


def test_starttls_with_the_accounts_ca_file_reports_the_tls_version(
    outbox: RunOutbox, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))

    with serving(tls_context=server_context, require_starttls=True) as server:
        done = outbox(
            "account", "add", "secure", "--host", "127.0.0.1", "--port", str(server.port),
            "--security", "starttls", "--ca-file", str(tmp_path / "ca.pem"),
            "--user", USER, "--password-stdin", input=PASSWORD,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

        done = outbox("account", "test", "secure")

    assert done.returncode == 0, done.stderr
    assert "encryption: STARTTLS, TLSv1.3" in done.stdout
    assert server.recorder.logins == [("PLAIN", USER)]


def test_a_server_that_is_not_there_is_a_temporary_failure(outbox: RunOutbox) -> None:
    with serving() as server:
        port = server.port
    done = outbox("account", "add", "gone", "--host", "127.0.0.1", "--port", str(port),
                  "--security", "none")  # fmt: skip
    assert done.returncode == 0, done.stderr

    done = outbox("account", "test", "gone")

    assert done.returncode == 75
    [line] = done.stderr.splitlines()
    assert line.startswith(f"outbox: account gone: 127.0.0.1:{port} refused the connection")


def test_a_454_to_auth_is_a_temporary_failure(outbox: RunOutbox) -> None:
    from tests.support.fault_server import threaded_fault_server

    not_now = "454 4.7.0 Temporary authentication failure"
    with threaded_fault_server(auth_mechanisms=("PLAIN",), auth=not_now) as server:
        done = outbox(
            "account", "add", "busy", "--host", "127.0.0.1", "--port", str(server.port),
            "--security", "none", "--user", USER, "--password-command", "echo x",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

        done = outbox("account", "test", "busy")

    assert done.returncode == 75, done.stderr
    [line] = done.stderr.splitlines()
    assert line.endswith(not_now)


def test_an_account_whose_password_is_missing_says_how_to_set_it(
    outbox: RunOutbox, keyring_file: Path
) -> None:
    with serving() as server:
        add_plain(outbox, "local", server, PASSWORD)
        keyring_file.unlink()

        done = outbox("account", "test", "local")

    assert done.returncode == 78
    assert "outbox account set local --password-stdin" in done.stderr
    assert server.recorder.logins == []


def test_testing_an_unknown_account_is_an_error(outbox: RunOutbox) -> None:
    done: subprocess.CompletedProcess[str] = outbox("account", "test", "nope")

    assert done.returncode == 78
    assert done.stderr.strip() == "outbox: no account 'nope' (there are no accounts yet)"
