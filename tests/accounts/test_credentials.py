"""Passwords through keyring only, and a clear error when there is no keyring."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from relay import credentials
from relay.errors import KeyringUnavailable
from tests.accounts.conftest import UseKeyring
from tests.support.keyrings import LeakyBrokenKeyring, MemoryKeyring


def test_a_password_is_stored_under_service_outbox_and_the_account_name(
    memory_keyring: MemoryKeyring,
) -> None:
    credentials.store_password("work", "s3cret")

    assert memory_keyring.passwords() == {("outbox", "work"): "s3cret"}
    assert credentials.get_password("work") == "s3cret"
    assert credentials.get_password("other") is None


def test_storing_again_replaces_the_password(memory_keyring: MemoryKeyring) -> None:
    credentials.store_password("work", "old")
    credentials.store_password("work", "new")

    assert credentials.get_password("work") == "new"


def test_deleting_forgets_the_password_and_deleting_nothing_is_fine(
    memory_keyring: MemoryKeyring,
) -> None:
    credentials.store_password("work", "s3cret")

    credentials.delete_password("work")
    credentials.delete_password("work")

    assert memory_keyring.passwords() == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda: credentials.store_password("work", "s3cret"),
        lambda: credentials.get_password("work"),
        lambda: credentials.delete_password("work"),
    ],
)
def test_without_a_keyring_every_call_says_how_to_get_one(
    use_keyring: UseKeyring, call: Callable[[], object]
) -> None:
    use_keyring(fail.Keyring())

    with pytest.raises(KeyringUnavailable) as caught:
        call()

    message = str(caught.value)
    assert "no keyring backend is available" in message
    assert "Secret Service" in message and "PYTHON_KEYRING_BACKEND" in message
    # keyring's own advice (keyrings.alt, a file) is not passed on.
    assert "keyrings.alt" not in message
    assert "\n" not in message


def test_a_backend_error_never_carries_the_password_into_the_message(
    use_keyring: UseKeyring,
) -> None:
    use_keyring(LeakyBrokenKeyring())
    password = "-".join(["hunter2", "secret"])  # not spelled out: tracebacks quote source

    with pytest.raises(KeyringUnavailable) as caught:
        credentials.store_password("work", password)

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
    use_keyring: UseKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    use_keyring(_FileKeyring())

    with pytest.raises(KeyringUnavailable, match="keeps passwords in a file"):
        credentials.store_password("work", "s3cret")


def test_an_empty_password_is_a_mistake_not_a_secret(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(ValueError):
        credentials.store_password("work", "")
    assert memory_keyring.passwords() == {}
