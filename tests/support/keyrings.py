"""Keyring backends for tests only. Never use them for real passwords.

``MemoryKeyring`` keeps passwords in a dict. Two ways to use it:

- in the test's own process: ``keyring.set_keyring(MemoryKeyring())``;
- in a subprocess (the ``outbox`` command line):
  ``PYTHON_KEYRING_BACKEND=tests.support.keyrings.MemoryKeyring`` plus
  ``OUTBOX_TEST_KEYRING_FILE=<a path in the test's tmp dir>``. A subprocess
  cannot share a dict with the test, so with that variable set the "memory"
  is a JSON file, in the clear, which the test reads back through
  ``MemoryKeyring(path).passwords()``. That is why this class lives under
  ``tests/`` and refuses to be picked by keyring's own detection: its
  ``priority`` raises unless the variable is set.

``stored_key(home, account)`` is the ``(service, username)`` pair under which
Outbox keeps that account's password, for comparing with ``passwords()``.

``LeakyBrokenKeyring`` fails every call with an error whose text contains the
password it was given, to prove that Outbox's messages never repeat it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.compat import properties

FILE_ENV = "OUTBOX_TEST_KEYRING_FILE"


def stored_key(home: Path, account: str, kind: str = "password") -> tuple[str, str]:
    from relay.credentials import secret_key

    key = secret_key(home, account, kind)
    return key.service, key.username


class MemoryKeyring(KeyringBackend):
    """Passwords in a dict, or in the JSON file ``path`` / ``$OUTBOX_TEST_KEYRING_FILE``."""

    @properties.classproperty
    def priority(cls) -> float:
        if not os.environ.get(FILE_ENV):
            raise RuntimeError(f"test-only keyring: set {FILE_ENV} to use it in a subprocess")
        return 0.1

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        chosen = path if path is not None else os.environ.get(FILE_ENV) or None
        self._path = Path(chosen) if chosen is not None else None
        self._memory: dict[str, dict[str, str]] = {}

    def passwords(self) -> dict[tuple[str, str], str]:
        """Everything stored, as ``{(service, username): password}``."""
        with self._state() as state:
            return {
                (service, user): password
                for service, users in state.items()
                for user, password in users.items()
            }

    def get_password(self, service: str, username: str) -> str | None:
        with self._state() as state:
            return state.get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._state(write=True) as state:
            state.setdefault(service, {})[username] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        with self._state(write=True) as state:
            users = state.get(service, {})
            if username not in users:
                raise PasswordDeleteError("no such password")
            del users[username]

    @contextlib.contextmanager
    def _state(self, write: bool = False) -> Iterator[dict[str, dict[str, str]]]:
        if self._path is None:
            yield self._memory
            return
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                state = json.loads(self._path.read_text("utf-8"))
            except FileNotFoundError:
                state = {}
            yield state
            if write:
                tmp = self._path.with_name(self._path.name + ".tmp")
                tmp.write_text(json.dumps(state), "utf-8")
                os.replace(tmp, self._path)
        finally:
            os.close(fd)


class LeakyBrokenKeyring(KeyringBackend):
    """Fails every call with an ``OSError`` that repeats the password (a careless backend)."""

    @properties.classproperty
    def priority(cls) -> float:
        if not os.environ.get("OUTBOX_TEST_BROKEN_KEYRING"):
            raise RuntimeError("test-only keyring: set OUTBOX_TEST_BROKEN_KEYRING=1 to use it")
        return 0.1

    def get_password(self, service: str, username: str) -> str | None:
        raise OSError(f"D-Bus said no while reading {username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise OSError(f"D-Bus said no to storing {password!r} for {username}")

    def delete_password(self, service: str, username: str) -> None:
        raise OSError(f"D-Bus said no while deleting {username}")


class HangingKeyring(KeyringBackend):
    """Never answers (a locked collection whose unlock prompt nobody sees).

    In a subprocess: ``OUTBOX_TEST_HANGING_KEYRING=<a FIFO>``; each call writes
    a line to the FIFO once it is blocked, so a test knows when to act.
    """

    @properties.classproperty
    def priority(cls) -> float:
        if not os.environ.get("OUTBOX_TEST_HANGING_KEYRING"):
            raise RuntimeError("test-only keyring: set OUTBOX_TEST_HANGING_KEYRING to use it")
        return 0.1

    def __init__(self, until: threading.Event | None = None) -> None:
        super().__init__()
        self._until = until or threading.Event()  # in a test's own process: set it after

    def _hang(self) -> None:
        signal_path = os.environ.get("OUTBOX_TEST_HANGING_KEYRING")
        if signal_path:
            with open(signal_path, "w") as fifo:
                fifo.write("asked\n")
        self._until.wait()

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()

    def delete_password(self, service: str, username: str) -> None:
        self._hang()
