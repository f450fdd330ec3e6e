"""Account secrets, kept only in the system keyring (service ``outbox``).

Every secret is keyed by the home *and* the account (``SecretKey``): keyring's
user name is ``ACCOUNT/KIND/HOME-ID``, where the home id comes from
``relay.home.home_identity`` (why an id and not a path is said there). Two
outboxes with an account of the same name thus never share, overwrite or
delete each other's password. A person browsing their keyring (Seahorse,
KeePassXC) sees a label naming the outbox and the account, and on the
Secret Service the item also carries ``outbox-home``, ``outbox-account`` and
``outbox-secret`` attributes (``secret-tool search outbox-account work``).

Older Outbox releases keyed a password by the account name alone
(``outbox`` / ``work``). Such a legacy entry is moved to the new key the first
time a home needs it, without asking anybody to type it again, but only into
the home it most likely belonged to (``_claims_legacy``) and only once: it is
deleted from its old place as it moves, so a second home can never pick it up
and send it to its own server.

There is no fallback: when no keyring backend works (no Secret Service on the
session bus, a locked collection, keyring's "fail" backend), every call raises
``KeyringUnavailable`` with a line that says what remains (installing a
keyring, or ``--password-command``). A backend that keeps secrets in a plain
or weakly encrypted file (``keyrings.alt``) is refused too unless a person
named it in ``PYTHON_KEYRING_BACKEND``: keyring would pick it silently when it
is installed, and Outbox promises never to put a password in a file.

A keyring backend may raise anything (keyring's own errors, D-Bus errors,
``RuntimeError`` from its set-up, ``OSError``), so every call into it is
fenced here and nowhere else. A secret never appears in an exception's
text: the messages are built from the backend's error with the secret
replaced, and nothing here logs.

keyring is imported lazily: ``outbox sendmail`` must not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from relay.errors import KeyringUnavailable

SERVICE = "outbox"
PASSWORD = "password"

_HOW_TO_GET_ONE = (
    "start and unlock a Secret Service (gnome-keyring, or KeePassXC with its Secret Service"
    " integration) in this session, or name a keyring backend in PYTHON_KEYRING_BACKEND"
)
#: A password has a way around the keyring; OAuth2's tokens and client secret have none.
_WITHOUT_A_KEYRING = (
    "; or, without a keyring, give the account --password-command CMD (a program that"
    " prints the password, e.g. 'pass show mail/work'). Outbox never keeps passwords"
    " in a file"
)
_ONLY_IN_A_KEYRING = ". Outbox keeps OAuth2 sign-ins only in a keyring, never in a file"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SecretKey:
    """Where one secret (``kind``) of one account of one home lives in the keyring."""

    home: Path
    home_id: str
    account: str
    kind: str = PASSWORD

    @property
    def service(self) -> str:
        return SERVICE

    @property
    def username(self) -> str:
        # "/" is never part of an account name (relay.accounts), so no two keys collide,
        # and none looks like a legacy key (the bare account name).
        return f"{self.account}/{self.kind}/{self.home_id}"

    @property
    def label(self) -> str:
        return f"Outbox {self.kind} of account {self.account} (outbox at {self.home})"

    @property
    def attributes(self) -> dict[str, str]:
        return {
            "outbox-home": self.home_id,
            "outbox-home-path": str(self.home),
            "outbox-account": self.account,
            "outbox-secret": self.kind,
        }

    def describe(self) -> str:
        return f"the {self.kind} of account {self.account!r}"


def secret_key(home: Path, account_name: str, kind: str = PASSWORD) -> SecretKey:
    """The keyring key of secret ``kind`` of account ``account_name`` in the outbox at ``home``.

    Creates the home's id file on first use (``relay.home.home_identity``).
    """
    from relay.home import home_identity

    return SecretKey(Path(os.path.realpath(home)), home_identity(home), account_name, kind)


def store_secret(key: SecretKey, secret: str) -> None:
    """Keep ``secret`` under ``key``, replacing any stored before."""
    if not secret:
        raise ValueError("an empty secret is not stored")
    _call("store", key, lambda kr: _set_labelled(kr, key, secret), secret)


def get_secret(key: SecretKey) -> str | None:
    """The secret stored under ``key``, or None when none is."""
    result: str | None = _call("read", key, lambda kr: kr.get_password(key.service, key.username))
    return result


def delete_secret(key: SecretKey) -> None:
    """Forget the secret under ``key``; nothing stored is not an error."""
    _call("delete", key, lambda kr: _delete(kr, key.service, key.username))


def store_password(home: Path, account_name: str, password: str) -> None:
    """Keep ``password`` for account ``account_name`` of the outbox at ``home``."""
    if not password:
        raise ValueError("an empty password is not stored")
    store_secret(secret_key(home, account_name), password)


def get_password(home: Path, account_name: str) -> str | None:
    """The stored password of ``account_name`` in ``home``, or None when none is stored.

    A legacy entry (keyed by the account name alone) this home may claim is
    moved to this home's key first.
    """
    key = secret_key(home, account_name)
    password = get_secret(key)
    if password is not None:
        return password
    legacy: str | None = _call("read", key, lambda kr: kr.get_password(SERVICE, account_name))
    if legacy is None or not _claims_legacy(home, account_name):
        return None
    store_secret(key, legacy)
    # Only once the new entry holds it does the old one go: a keyring failing in
    # between leaves the legacy entry for the next try, never nothing.
    _call("delete", key, lambda kr: _delete(kr, SERVICE, account_name))
    return legacy


def delete_password(home: Path, account_name: str) -> None:
    """Forget the password of ``account_name`` in ``home`` (and a legacy entry it claims)."""
    key = secret_key(home, account_name)
    delete_secret(key)
    legacy = _call("read", key, lambda kr: kr.get_password(SERVICE, account_name))
    if legacy is not None and _claims_legacy(home, account_name):
        _call("delete", key, lambda kr: _delete(kr, SERVICE, account_name))


def _claims_legacy(home: Path, account_name: str) -> bool:
    """Whether a legacy entry for ``account_name`` is taken to be the one of ``home``.

    An older Outbox shared one entry among all homes with an account of that
    name, and the entry does not say which home wrote it last. It is given to
    the default home (``OUTBOX_HOME``, else the user data dir: where most
    people have their only outbox) when that home has such an account that
    logs in; only when it has not may another home that asks first claim it.
    So a second outbox made with ``--home`` (a test, a second identity) never
    takes the main outbox's password to its own server.
    """
    from relay.accounts import load_accounts
    from relay.errors import ConfigError
    from relay.home import resolve_home

    default = Path(os.path.realpath(resolve_home(None)))
    if Path(os.path.realpath(home)) == default:
        return True
    try:
        accounts = load_accounts(default)
    except ConfigError:
        return False  # the default home's config cannot be read: leave its entry alone
    return not any(a.name == account_name and a.user is not None for a in accounts)


def _set_labelled(backend: Any, key: SecretKey, secret: str) -> None:
    """Store through keyring, with a readable label and attributes on the Secret Service.

    keyring's own ``set_password`` labels every item "Password for 'USER' on
    'outbox'"; on the Secret Service the item is made here instead, with
    keyring's attributes (so keyring finds it) plus ours, after removing any
    item keyring would find under the key (a relabelled or moved home).
    """
    from keyring.backends import SecretService

    chosen = backend
    parts = getattr(backend, "backends", None)
    if parts:
        chosen = parts[0]  # keyring's chainer writes to its first backend
    if not isinstance(chosen, SecretService.Keyring):
        backend.set_password(key.service, key.username, secret)
        return
    from contextlib import closing

    collection = chosen.get_preferred_collection()  # type: ignore[no-untyped-call]
    with closing(collection.connection):
        query = chosen._query(key.service, key.username)
        for item in list(collection.search_items(query)):
            item.delete()
        attributes = {
            **chosen._query(key.service, key.username, application=chosen.appid),
            **key.attributes,
        }
        collection.create_item(key.label, attributes, secret, replace=True)


def _delete(backend: Any, service: str, username: str) -> None:
    import keyring.errors

    try:
        backend.delete_password(service, username)
    except keyring.errors.PasswordDeleteError:
        # Backends say "no such password" this way, but may mean a real
        # failure with it too: only a password that is really gone is fine.
        if backend.get_password(service, username) is not None:
            raise


def _call(
    action: str, key: SecretKey, operation: Callable[[Any], _T], secret: str | None = None
) -> _T:
    """``operation`` on the keyring for the secret under ``key``, named in errors."""
    backend = _backend(action, key)
    try:
        return operation(backend)
    except Exception as exc:  # a backend's own errors: see the module docstring
        error = _unavailable(action, key, exc, secret)
    # Raised outside the handler so the backend's exception is not even its context.
    raise error


def _backend(action: str, key: SecretKey) -> Any:
    import keyring

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # PYTHON_KEYRING_BACKEND naming a backend that cannot start
        raise _unavailable(action, key, exc) from None
    refused = _file_backend(backend)
    if refused is not None:
        raise KeyringUnavailable(
            f"cannot {action} {key.describe()}: the keyring backend"
            f" {refused} keeps passwords in a file; {_how_to_get_one(key)}"
        )
    return backend


def _file_backend(backend: Any) -> str | None:
    """The name of a file-keeping backend keyring chose by itself, if it did."""
    parts = list(getattr(backend, "backends", None) or [backend])
    for part in parts:
        cls = type(part)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.startswith("keyrings.alt"):
            chosen = os.environ.get("PYTHON_KEYRING_BACKEND", "")
            if chosen != name:
                return name
    return None


def _unavailable(
    action: str, key: SecretKey, exc: BaseException, secret: str | None = None
) -> KeyringUnavailable:
    import keyring.errors

    if isinstance(exc, keyring.errors.NoKeyringError):
        # keyring's own text recommends keyrings.alt (a file): not our advice.
        detail = "no keyring backend is available"
    elif isinstance(exc, keyring.errors.KeyringLocked):
        detail = "the keyring is locked and was not unlocked"
    else:
        detail = f"{type(exc).__name__}: {exc}".strip()
    if secret:
        detail = detail.replace(secret, "****")
    detail = " ".join(detail.split())
    if len(detail) > 200:
        detail = detail[:199] + "…"
    return KeyringUnavailable(
        f"cannot {action} {key.describe()} ({detail}): {_how_to_get_one(key)}"
    )


def _how_to_get_one(key: SecretKey) -> str:
    """How to make a keyring available, and the way around it where there is one."""
    return _HOW_TO_GET_ONE + (_WITHOUT_A_KEYRING if key.kind == PASSWORD else _ONLY_IN_A_KEYRING)
