"""Passwords through keyring only, keyed by home and account; a clear error without a keyring."""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from relay import credentials
from relay.accounts import make_account, save_accounts
from relay.errors import KeyringUnavailable
from relay.home import ensure_home, home_identity
from tests.accounts.conftest import UseKeyring
from tests.support.keyrings import HangingKeyring, LeakyBrokenKeyring, MemoryKeyring


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return ensure_home(tmp_path / "home")


@pytest.fixture
def other_home(tmp_path: Path) -> Path:
    return ensure_home(tmp_path / "other")


def test_a_password_is_stored_under_a_key_naming_the_home_and_the_account(
    memory_keyring: MemoryKeyring, home: Path
) -> None:
    credentials.store_password(home, "work", "s3cret")

    key = credentials.secret_key(home, "work")
    assert memory_keyring.passwords() == {("outbox", f"work/password/{key.home_id}"): "s3cret"}
    assert key.home_id == home_identity(home)
    assert "work" in key.label and str(home) in key.label
    assert credentials.get_password(home, "work") == "s3cret"
    assert credentials.get_password(home, "other") is None


def test_two_homes_with_an_account_of_the_same_name_keep_two_passwords(
    memory_keyring: MemoryKeyring, home: Path, other_home: Path
) -> None:
    credentials.store_password(home, "work", "password of A")
    credentials.store_password(other_home, "work", "password of B")

    assert credentials.get_password(home, "work") == "password of A"
    assert credentials.get_password(other_home, "work") == "password of B"

    credentials.delete_password(other_home, "work")

    assert credentials.get_password(home, "work") == "password of A"
    assert credentials.get_password(other_home, "work") is None


def test_other_secrets_of_an_account_have_keys_of_their_own(
    memory_keyring: MemoryKeyring, home: Path
) -> None:
    token = credentials.secret_key(home, "work", "oauth2-refresh-token")
    credentials.store_secret(token, "a refresh token")
    credentials.store_password(home, "work", "s3cret")

    assert credentials.get_secret(token) == "a refresh token"
    credentials.delete_secret(token)
    assert credentials.get_password(home, "work") == "s3cret"


def test_a_moved_home_keeps_its_identity_and_a_copied_one_gets_its_own(
    tmp_path: Path, home: Path
) -> None:
    original = home_identity(home)
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    assert home_identity(copy) != original  # the original still holds that id
    assert home_identity(home) == original

    moved = tmp_path / "moved"
    home.rename(moved)
    assert home_identity(moved) == original
    assert home_identity(moved) == original  # and it stays so


def _with_account(home: Path, name: str = "work") -> Path:
    save_accounts(home, [make_account(name, "smtp.example.org", user="alice")])
    return home


def test_a_legacy_entry_moves_into_the_default_home_once_and_leaves_its_old_place(
    memory_keyring: MemoryKeyring,
    home: Path,
    other_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTBOX_HOME", str(_with_account(home)))
    _with_account(other_home)
    memory_keyring.set_password("outbox", "work", "the old password")

    # Another home asking first does not take the default home's password ...
    assert credentials.get_password(other_home, "work") is None
    credentials.delete_password(other_home, "work")  # ... nor delete it.
    assert memory_keyring.get_password("outbox", "work") == "the old password"

    assert credentials.get_password(home, "work") == "the old password"
    key = credentials.secret_key(home, "work")
    assert memory_keyring.passwords() == {("outbox", key.username): "the old password"}
    assert credentials.get_password(other_home, "work") is None


def test_a_legacy_entry_the_default_home_cannot_own_goes_to_the_first_home_that_asks(
    memory_keyring: MemoryKeyring,
    home: Path,
    other_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTBOX_HOME", str(tmp_path / "default, never made"))
    memory_keyring.set_password("outbox", "work", "the old password")

    assert credentials.get_password(_with_account(other_home), "work") == "the old password"
    assert credentials.get_password(_with_account(home), "work") is None
    assert memory_keyring.get_password("outbox", "work") is None


def test_removing_the_account_in_the_home_owning_a_legacy_entry_removes_that_entry(
    memory_keyring: MemoryKeyring, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOX_HOME", str(_with_account(home)))
    memory_keyring.set_password("outbox", "work", "the old password")

    credentials.delete_password(home, "work")

    assert memory_keyring.passwords() == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda home: credentials.store_password(home, "work", "s3cret"),
        lambda home: credentials.get_password(home, "work"),
        lambda home: credentials.delete_password(home, "work"),
    ],
)
def test_without_a_keyring_every_call_says_what_remains(
    use_keyring: UseKeyring, call: Callable[[Path], object], home: Path
) -> None:
    use_keyring(fail.Keyring())

    with pytest.raises(KeyringUnavailable) as caught:
        call(home)

    message = str(caught.value)
    assert "no keyring backend is available" in message
    assert "Secret Service" in message and "PYTHON_KEYRING_BACKEND" in message
    assert "--password-command" in message
    # keyring's own advice (keyrings.alt, a file) is not passed on.
    assert "keyrings.alt" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "call",
    [
        lambda key: credentials.store_secret(key, "a-refresh-token"),
        lambda key: credentials.get_secret(key),
        lambda key: credentials.delete_secret(key),
    ],
)
def test_without_a_keyring_an_oauth2_secret_is_not_offered_a_password_command(
    use_keyring: UseKeyring, call: Callable[[credentials.SecretKey], object], home: Path
) -> None:
    """An OAuth2 sign-in has no way around the keyring: the advice says so."""
    use_keyring(fail.Keyring())

    with pytest.raises(KeyringUnavailable) as caught:
        call(credentials.secret_key(home, "work", "OAuth2 refresh token"))

    message = str(caught.value)
    assert "the OAuth2 refresh token of account 'work'" in message
    assert "Secret Service" in message and "PYTHON_KEYRING_BACKEND" in message
    assert "--password-command" not in message
    assert "OAuth2 sign-ins only in a keyring" in message


def test_a_backend_error_never_carries_the_password_into_the_message(
    use_keyring: UseKeyring, home: Path
) -> None:
    use_keyring(LeakyBrokenKeyring())
    password = "-".join(["hunter2", "secret"])  # not spelled out: tracebacks quote source

    with pytest.raises(KeyringUnavailable) as caught:
        credentials.store_password(home, "work", password)

    assert "OSError" in str(caught.value)
    everything = "".join(traceback.format_exception(caught.value))
    assert password not in everything
    assert caught.value.__context__ is None and caught.value.__cause__ is None


class _FileKeyring(KeyringBackend):
    """Stands in for keyrings.alt's file backends, which must never be installed here."""

    __module__ = "keyrings.alt.file"
    priority = 0.5

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("a file backend must not even be asked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("a file backend must not be given a password")

    def delete_password(self, service: str, username: str) -> None:
        raise AssertionError("a file backend must not be asked")


def test_a_file_keeping_backend_that_keyring_picked_by_itself_is_refused(
    use_keyring: UseKeyring, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    use_keyring(_FileKeyring())

    with pytest.raises(KeyringUnavailable, match="keeps passwords in a file"):
        credentials.store_password(home, "work", "s3cret")


def test_an_empty_password_is_a_mistake_not_a_secret(
    memory_keyring: MemoryKeyring, home: Path
) -> None:
    with pytest.raises(ValueError):
        credentials.store_password(home, "work", "")
    assert memory_keyring.passwords() == {}


def test_a_keyring_that_never_answers_cannot_hold_a_flush_past_a_stop(
    tmp_path: Path, home: Path
) -> None:
    """SIGTERM (twice: stop, then abort) ends the flush; the mail stays queued, untried."""
    import os
    import select
    import signal
    import subprocess
    import sys

    from tests.support.cli import listed, outbox

    message = b"From: ann@example.org\r\nTo: bob@example.org\r\n\r\nhi\r\n"
    assert outbox(home, "enqueue", "-", input=message).returncode == 0
    added = outbox(
        home, "account", "add", "work", "--host", "127.0.0.1", "--port", "9",
        "--security", "none", "--user", "alice", "--password-command", "true",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    config = home / "config.toml"  # the account now reads its password from the keyring
    config.write_text(
        "\n".join(line for line in config.read_text().splitlines() if "password" not in line)
    )
    asked = tmp_path / "asked"
    os.mkfifo(asked)
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.HangingKeyring",
        "OUTBOX_TEST_HANGING_KEYRING": str(asked),
    }
    flush = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert asked.read_text() == "asked\n"  # the flush waits on the keyring now
        flush.send_signal(signal.SIGTERM)
        assert flush.stderr is not None
        said, _, _ = select.select([flush.stderr], [], [], 30)
        assert said, "SIGTERM went unanswered: the keyring holds the flush's loop"
        first = flush.stderr.readline()  # stopping after the message in flight
        flush.send_signal(signal.SIGTERM)  # only now: two at once would merge into one
        _, rest = flush.communicate(timeout=30)
        err = first + rest
    finally:
        flush.kill()
        flush.wait()
    assert flush.returncode == 75, err
    assert b"Traceback" not in err and b"not sent yet" in err.splitlines()[-1], err
    assert [(m["state"], m["attempts"]) for m in listed(home)] == [("queued", 0)]


def test_a_keyring_that_never_answers_is_given_up_on_with_one_line(
    use_keyring: UseKeyring, home: Path
) -> None:
    import asyncio
    import threading

    from relay.flush import keyring_password

    ensure_home(home)
    release = threading.Event()
    use_keyring(HangingKeyring(until=release))
    try:
        with pytest.raises(KeyringUnavailable, match="did not give the password of account work"):
            asyncio.run(keyring_password(home, "work", timeout_s=0.2))
    finally:
        release.set()
