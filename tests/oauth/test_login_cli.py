"""``outbox account login`` and a flush of an OAuth2 account, as a person runs them.

Real processes; Authlib's authorization server and the token-checking SMTP
server on 127.0.0.1; the test keyring in a file outside the home (the
subprocess cannot share a dict), so that "no token in any file under the
home" can be checked by reading every file there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import listed, outbox
from tests.support.keyrings import FILE_ENV, MemoryKeyring
from tests.support.oauth_browser import approve_device, consent
from tests.support.oauth_server import CLIENT_ID, SCOPE, USER, AuthorizationServerRunning, serving
from tests.support.oauth_smtp import OAuthSmtpRunning, serving_oauth_smtp

MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject: hi\r\n"
    b"Message-ID: <oauth-1@example.test>\r\n\r\nHello.\r\n"
)


@pytest.fixture
def auth_server() -> Iterator[AuthorizationServerRunning]:
    # Real time in another process: a lifetime no loaded machine outruns. Expiry
    # itself is tested in test_oauth_session with a clock the test moves.
    with serving(access_lifetime_s=300) as running:
        yield running


@pytest.fixture
def smtp(auth_server: AuthorizationServerRunning) -> Iterator[OAuthSmtpRunning]:
    with serving_oauth_smtp(auth_server.token_is_valid) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),  # outside every home
        "BROWSER": "true",  # webbrowser runs it and it does nothing: the test is the browser
    }


def run(home: Path, *args: str, env: dict[str, str], input: bytes | None = None) -> Any:
    return outbox(home, *args, env=env, input=input)


def add_account(
    home: Path, auth: AuthorizationServerRunning, smtp: OAuthSmtpRunning, env: dict[str, str]
) -> None:
    done = run(
        home, "account", "add", "work", "--host", smtp.host, "--port", str(smtp.port),
        "--security", "none", "--user", USER, "--connect-timeout", "5",
        "--command-timeout", "5", "--data-timeout", "5",
        "--oauth2", "custom", "--oauth-client-id", CLIENT_ID,
        "--oauth-authorize-url", auth.authorize_url, "--oauth-token-url", auth.token_url,
        "--oauth-device-url", auth.device_url, "--oauth-scope", SCOPE,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert b"outbox account login work" in done.stdout


def start_login(home: Path, env: dict[str, str], *flags: str) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "account", "login", "work",
         *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def login_in_browser(home: Path, env: dict[str, str]) -> str:
    """Run the browser sign-in; returns everything it printed."""
    process = start_login(home, env)
    assert process.stdout is not None
    printed = [process.stdout.readline(), process.stdout.readline()]
    url = printed[1].strip()
    assert url.startswith("http://127.0.0.1:"), printed
    back = consent(url)
    assert back.status_code == 200 and "Signed in" in back.text
    code, out, err = finish(process)
    assert code == 0, err
    return "".join(printed) + out + err


def account_json(home: Path, env: dict[str, str]) -> dict[str, Any]:
    done = run(home, "account", "list", "--json", env=env)
    assert done.returncode == 0, done.stderr.decode()
    items: list[dict[str, Any]] = json.loads(done.stdout)
    return items[0]


def enqueue(home: Path, env: dict[str, str]) -> str:
    done = run(home, "enqueue", "-", input=MESSAGE, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return str(done.stdout.decode().strip())


def files_under(home: Path) -> Iterator[tuple[Path, bytes]]:
    for path in home.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def test_browser_login_then_flush_sends_and_no_token_is_in_any_file_under_the_home(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    before = account_json(home, env)
    assert before["auth"] == "oauth2" and before["refresh_token_stored"] is False
    assert before["oauth2"]["provider"] == "custom"

    printed = login_in_browser(home, env)
    after = account_json(home, env)
    assert after["refresh_token_stored"] is True
    tested = run(home, "account", "test", "work", "--transcript", env=env)
    assert tested.returncode == 0, tested.stderr.decode()
    assert f"authentication: {USER} (OAUTHBEARER)".encode() in tested.stdout
    printed += tested.stdout.decode() + tested.stderr.decode()
    enqueue(home, env)
    flushed = run(home, "flush", env=env)
    assert flushed.returncode == 0, flushed.stderr.decode()
    assert smtp.accepted() == [("OAUTHBEARER", USER, True)] * 2  # the test, then the flush
    assert len(smtp.handler.received) == 1

    tokens = auth_server.issued_tokens()
    assert tokens
    stored = MemoryKeyring(env[FILE_ENV]).passwords()
    assert any(value in tokens for value in stored.values())  # the keyring has it…
    for path, data in files_under(home):  # …and no file under the home does
        for token in tokens:
            assert token.encode() not in data, f"a token in {path}"
    shown = printed + json.dumps(after) + flushed.stdout.decode() + flushed.stderr.decode()
    for token in tokens:
        assert token not in shown


def test_flush_before_signing_in_keeps_the_mail_queued_and_exits_75(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    message_id = enqueue(home, env)
    flushed = run(home, "flush", env=env)
    assert flushed.returncode == 75, flushed.stderr.decode()
    lines = flushed.stderr.decode().splitlines()
    assert [line for line in lines if "outbox account login work" in line] == lines
    assert len(lines) == 1
    [item] = listed(home)
    assert item["id"] == message_id and item["state"] == "queued" and item["attempts"] == 0


def test_a_revoked_grant_keeps_the_mail_queued_stops_and_asks_to_sign_in_again(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    login_in_browser(home, env)
    auth_server.revoke_grants()  # the person changed their password at the provider
    enqueue(home, env)
    flushed = run(home, "flush", env=env)
    assert flushed.returncode == 75, flushed.stderr.decode()
    lines = flushed.stderr.decode().splitlines()
    assert len(lines) == 1 and "outbox account login work" in lines[0], lines
    [item] = listed(home)
    assert item["state"] == "queued" and item["last_error"] is None
    assert all(r["state"] == "pending" for r in item["recipients"])
    assert smtp.accepted() == [] and smtp.handler.received == []
    # Signing in again sends it.
    login_in_browser(home, env)
    again = run(home, "flush", env=env)
    assert again.returncode == 0, again.stderr.decode()
    assert len(smtp.handler.received) == 1


def test_device_login_prints_a_code_and_url_and_keeps_the_token(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    process = start_login(home, env, "--device")
    assert process.stdout is not None
    first = process.stdout.readline()
    words = first.split()
    url = words[words.index("open") + 1]
    code = words[-1]
    assert url == f"{auth_server.base_url}/device"
    approve_device(url, code)
    status, out, err = finish(process)
    assert status == 0, err
    assert "signed in" in out
    assert account_json(home, env)["refresh_token_stored"] is True
    assert "urn:ietf:params:oauth:grant-type:device_code" in auth_server.state.token_requests


def test_two_homes_with_same_named_accounts_keep_separate_tokens(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for home in (first, second):
        add_account(home, auth_server, smtp, env)
        login_in_browser(home, env)
    stored = MemoryKeyring(env[FILE_ENV]).passwords()
    tokens = set(auth_server.issued_tokens())
    kept = [value for value in stored.values() if value in tokens]
    assert len(kept) == 2 and kept[0] != kept[1]
    # Removing the account of one home leaves the other signed in and sending.
    removed = run(first, "account", "remove", "work", env=env)
    assert removed.returncode == 0, removed.stderr.decode()
    assert account_json(second, env)["refresh_token_stored"] is True
    enqueue(second, env)
    flushed = run(second, "flush", env=env)
    assert flushed.returncode == 0, flushed.stderr.decode()


def test_a_refresh_token_from_another_tool_is_imported_from_stdin_after_one_try(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    donor, home = tmp_path / "donor", tmp_path / "home"
    add_account(donor, auth_server, smtp, env)
    login_in_browser(donor, env)
    tokens = set(auth_server.issued_tokens())
    [refresh] = [v for v in MemoryKeyring(env[FILE_ENV]).passwords().values() if v in tokens]
    add_account(home, auth_server, smtp, env)

    bogus = run(home, "account", "login", "work", "--refresh-token-stdin", input=b"nope\n",
                env=env)  # fmt: skip
    assert bogus.returncode != 0
    assert "refused" in bogus.stderr.decode()
    assert account_json(home, env)["refresh_token_stored"] is False

    done = run(home, "account", "login", "work", "--refresh-token-stdin",
               input=refresh.encode() + b"\n", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert refresh not in done.stdout.decode() + done.stderr.decode()
    enqueue(home, env)
    flushed = run(home, "flush", env=env)
    assert flushed.returncode == 0, flushed.stderr.decode()


@pytest.mark.parametrize("given", [b"\xff\xfe\n", b"1//0g\x1b[31mtoken\n", b"tok\x00en"])
def test_an_imported_refresh_token_that_is_not_printable_ascii_is_refused_unsent(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
    given: bytes,
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    done = run(home, "account", "login", "work", "--refresh-token-stdin", input=given, env=env)
    assert done.returncode == 64, done.stderr.decode()
    assert "printable ASCII" in done.stderr.decode()
    assert auth_server.state.token_requests == []  # nothing went to the endpoint
    assert account_json(home, env)["refresh_token_stored"] is False


@pytest.mark.parametrize("timeout", ["0", "-5", "abc", "inf"])
def test_a_login_timeout_that_is_no_number_of_seconds_is_a_usage_error(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
    timeout: str,
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    done = run(home, "account", "login", "work", "--timeout", timeout, env=env)
    assert done.returncode == 64, done.stderr.decode()
    (line,) = done.stderr.decode().splitlines()
    assert "--timeout" in line and repr(timeout) in line
    assert auth_server.state.token_requests == []


def test_account_flags_are_checked_before_anything_is_stored(
    tmp_path: Path, env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    no_id = run(home, "account", "add", "g", "--oauth2", "google", "--user", "a@gmail.com",
                env=env)  # fmt: skip
    assert no_id.returncode == 64 and b"--oauth-client-id" in no_id.stderr
    plain = run(home, "account", "add", "c", "--host", "smtp.example.com", "--user", "a",
                "--oauth2", "custom", "--oauth-client-id", "x",
                "--oauth-token-url", "http://auth.example.com/token",
                "--oauth-authorize-url", "https://auth.example.com/a", "--oauth-scope", "s",
                env=env)  # fmt: skip
    assert plain.returncode == 78 and b"plain http" in plain.stderr
    google = run(home, "account", "add", "g", "--oauth2", "google", "--user", "a@gmail.com",
                 "--oauth-client-id", "123.apps.example", env=env)  # fmt: skip
    assert google.returncode == 0, google.stderr.decode()
    item = account_json(home, env)
    assert item["host"] == "smtp.gmail.com" and item["port"] == 587
    assert item["auth"] == "oauth2" and item["oauth2"]["client_id"] == "123.apps.example"


def test_set_switches_between_oauth2_and_a_password_and_forgets_the_other_secret(
    tmp_path: Path,
    auth_server: AuthorizationServerRunning,
    smtp: OAuthSmtpRunning,
    env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    add_account(home, auth_server, smtp, env)
    login_in_browser(home, env)
    tokens = set(auth_server.issued_tokens())

    def secrets() -> list[str]:
        return list(MemoryKeyring(env[FILE_ENV]).passwords().values())

    assert any(value in tokens for value in secrets())
    to_password = run(home, "account", "set", "work", "--no-oauth2", "--password-stdin",
                      input=b"hunter2\n", env=env)  # fmt: skip
    assert to_password.returncode == 0, to_password.stderr.decode()
    assert secrets() == ["hunter2"]  # the sign-in is forgotten with the switch
    assert account_json(home, env)["auth"] == "password"

    back = run(home, "account", "set", "work", "--oauth2", "custom", "--oauth-client-id",
               CLIENT_ID, "--oauth-authorize-url", auth_server.authorize_url,
               "--oauth-token-url", auth_server.token_url, "--oauth-scope", SCOPE,
               env=env)  # fmt: skip
    assert back.returncode == 0, back.stderr.decode()
    assert secrets() == []  # the password goes: an OAuth2 account has none
    item = account_json(home, env)
    assert item["auth"] == "oauth2" and item["refresh_token_stored"] is False
