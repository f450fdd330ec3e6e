"""The tests that keep secrets in a real Secret Service (gnome-keyring).

Everything else uses the test keyring; this proves the real path works end to
end: the command line stores through keyring's Secret Service backend on a
private D-Bus session, Outbox reads it back, and ``account remove`` deletes it.
Two homes with an account of the same name get two items, each labelled with
its outbox and account, so a person browsing the keyring can tell them apart.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
import secretstorage
from keyring.backends import SecretService as secret_service_backend

from relay import credentials
from tests.accounts.conftest import RunOutbox, UseKeyring
from tests.support.secret_service import SecretService


@pytest.mark.secret_service
def test_a_password_goes_into_a_real_secret_service_and_comes_back(
    outbox: RunOutbox,
    home: Path,
    real_secret_service: SecretService,
    monkeypatch: pytest.MonkeyPatch,
    use_keyring: UseKeyring,
) -> None:
    password = "gnome keyring test pässword"

    added = outbox(
        "account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
        "--password-stdin", input=password, env=real_secret_service.env,
    )  # fmt: skip

    assert added.returncode == 0, added.stderr
    assert password.encode() not in (home / "config.toml").read_bytes()
    for key, value in real_secret_service.env.items():
        monkeypatch.setenv(key, value)
    use_keyring(secret_service_backend.Keyring())
    assert credentials.get_password(home, "work") == password

    other = home.parent / "other"
    added = outbox(
        "--home", str(other), "account", "add", "work", "--host", "smtp.example.net",
        "--user", "bob", "--password-stdin", input="the other one", env=real_secret_service.env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert credentials.get_password(home, "work") == password
    assert credentials.get_password(other, "work") == "the other one"
    with closing(secretstorage.dbus_init()) as bus:
        collection = secretstorage.get_default_collection(bus)
        items = {
            item.get_label(): item.get_attributes()
            for item in collection.search_items({"outbox-account": "work"})
        }
    assert len(items) == 2
    for label, attributes in items.items():
        assert "work" in label and ("/home" in label or "/other" in label)
        assert attributes["outbox-secret"] == "password"
        assert attributes["outbox-home-path"] in label

    removed = outbox("account", "remove", "work", env=real_secret_service.env)

    assert removed.returncode == 0, removed.stderr
    assert credentials.get_password(home, "work") is None
    assert credentials.get_password(other, "work") == "the other one"


@pytest.mark.secret_service
def test_an_imported_refresh_token_goes_into_a_real_secret_service_per_home(
    home: Path,
    tmp_path: Path,
    real_secret_service: SecretService,
    monkeypatch: pytest.MonkeyPatch,
    use_keyring: UseKeyring,
) -> None:
    from relay.oauth import store as oauth_store

    for key, value in real_secret_service.env.items():
        monkeypatch.setenv(key, value)
    use_keyring(secret_service_backend.Keyring())
    other_home = tmp_path / "other"
    for directory in (home, other_home):
        directory.mkdir(mode=0o700, exist_ok=True)
    oauth_store.store_refresh_token(home, "work", "refresh-token-of-home-one")
    oauth_store.store_refresh_token(other_home, "work", "refresh-token-of-home-two")

    assert oauth_store.get_refresh_token(home, "work") == "refresh-token-of-home-one"
    assert oauth_store.get_refresh_token(other_home, "work") == "refresh-token-of-home-two"
    oauth_store.forget_sign_in(home, "work")
    assert oauth_store.get_refresh_token(home, "work") is None
    assert oauth_store.get_refresh_token(other_home, "work") == "refresh-token-of-home-two"
