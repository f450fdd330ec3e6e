"""Account passwords, kept only in the system keyring (service ``outbox``).

The account name is keyring's user name. There is no fallback: when no
keyring backend works (no Secret Service on the session bus, a locked
collection, keyring's "fail" backend), every call raises
``KeyringUnavailable`` with a line that says how to get one. A backend that
keeps secrets in a plain or weakly encrypted file (``keyrings.alt``) is refused
too unless a person named it in ``PYTHON_KEYRING_BACKEND``: keyring would pick
it silently when it is installed, and Outbox promises never to put a password
in a file.

A keyring backend may raise anything (keyring's own errors, D-Bus errors,
``RuntimeError`` from its set-up, ``OSError``), so every call into it is
fenced here and nowhere else. A password never appears in an exception's
text: the messages are built from the backend's error with the password
replaced, and nothing here logs.

keyring is imported lazily: ``outbox sendmail`` must not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from relay.errors import KeyringUnavailable

SERVICE = "outbox"

_HOW_TO_GET_ONE = (
    "start and unlock a Secret Service (gnome-keyring, or KeePassXC with its Secret Service"
    " integration) in this session, or name a keyring backend in PYTHON_KEYRING_BACKEND;"
    " Outbox never keeps passwords in a file"
)

_T = TypeVar("_T")


def store_password(account_name: str, password: str) -> None:
    """Keep ``password`` for ``account_name``, replacing any stored before."""
    if not password:
        raise ValueError("an empty password is not stored")
    _call(
        "store", account_name, lambda kr: kr.set_password(SERVICE, account_name, password), password
    )


def get_password(account_name: str) -> str | None:
    """The stored password of ``account_name``, or None when none is stored."""
    result: str | None = _call(
        "read", account_name, lambda kr: kr.get_password(SERVICE, account_name)
    )
    return result


def delete_password(account_name: str) -> None:
    """Forget the password of ``account_name``; nothing stored is not an error."""
    import keyring.errors

    def delete(kr: Any) -> None:
        try:
            kr.delete_password(SERVICE, account_name)
        except keyring.errors.PasswordDeleteError:
            # Backends say "no such password" this way, but may mean a real
            # failure with it too: only a password that is really gone is fine.
            if kr.get_password(SERVICE, account_name) is not None:
                raise

    _call("delete", account_name, delete)


def _call(
    action: str, account_name: str, operation: Callable[[Any], _T], password: str | None = None
) -> _T:
    backend = _backend(action, account_name)
    try:
        return operation(backend)
    except Exception as exc:  # a backend's own errors: see the module docstring
        error = _unavailable(action, account_name, exc, password)
    # Raised outside the handler so the backend's exception is not even its context.
    raise error


def _backend(action: str, account_name: str) -> Any:
    import keyring

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # PYTHON_KEYRING_BACKEND naming a backend that cannot start
        raise _unavailable(action, account_name, exc) from None
    refused = _file_backend(backend)
    if refused is not None:
        raise KeyringUnavailable(
            f"cannot {action} the password of account {account_name!r}: the keyring backend"
            f" {refused} keeps passwords in a file; {_HOW_TO_GET_ONE}"
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
    action: str, account_name: str, exc: BaseException, password: str | None = None
) -> KeyringUnavailable:
    import keyring.errors

    if isinstance(exc, keyring.errors.NoKeyringError):
        # keyring's own text recommends keyrings.alt (a file): not our advice.
        detail = "no keyring backend is available"
    elif isinstance(exc, keyring.errors.KeyringLocked):
        detail = "the keyring is locked and was not unlocked"
    else:
        detail = f"{type(exc).__name__}: {exc}".strip()
    if password:
        detail = detail.replace(password, "****")
    detail = " ".join(detail.split())
    if len(detail) > 200:
        detail = detail[:199] + "…"
    return KeyringUnavailable(
        f"cannot {action} the password of account {account_name!r} ({detail}): {_HOW_TO_GET_ONE}"
    )
