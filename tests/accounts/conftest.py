"""Fixtures for the accounts tests: a home, the command line as a subprocess, keyrings.

Subprocesses get the test-only ``MemoryKeyring`` through
``PYTHON_KEYRING_BACKEND`` and a JSON file of their own
(``OUTBOX_TEST_KEYRING_FILE``), never the user's keyring: no D-Bus session
address reaches them unless a test hands one over on purpose.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from tests.support import secret_service
from tests.support.keyrings import FILE_ENV, MemoryKeyring

REPO = Path(__file__).resolve().parents[2]

RunOutbox = Callable[..., subprocess.CompletedProcess[str]]
UseKeyring = Callable[[KeyringBackend], None]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def stored_passwords(keyring_file: Path) -> Callable[[], dict[tuple[str, str], str]]:
    """What the subprocesses' test keyring holds now."""
    return lambda: MemoryKeyring(keyring_file).passwords()


@pytest.fixture
def outbox(home: Path, keyring_file: Path) -> RunOutbox:
    """Run ``outbox --home HOME ARGS…`` as a user would; stdin is not a terminal."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
    base_env.update(
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND="tests.support.keyrings.MemoryKeyring",
        **{FILE_ENV: str(keyring_file)},
    )

    def run(
        *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "relay.cli", "--home", str(home), *args],
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            env={**base_env, **(env or {})},
            cwd=REPO,
            timeout=60,
        )

    return run


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """The test process's own keyring, swapped for a dict for one test."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def use_keyring() -> Iterator[UseKeyring]:
    """Swap the test process's keyring for a given backend for one test."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


@pytest.fixture
def real_secret_service() -> Iterator[secret_service.SecretService]:
    """gnome-keyring on a private D-Bus session, stopped after the test.

    Skipped where the programs are missing, except under CI, where a missing
    gnome-keyring is a broken set-up (``.ci/run``) and fails.
    """
    missing = secret_service.missing_programs()
    if missing:
        reason = f"needs {', '.join(missing)} (Debian: apt-get install gnome-keyring dbus)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {reason}; .ci/run installs them")
        pytest.skip(reason)
    with secret_service.running_secret_service() as service:
        yield service
