"""Two outboxes with an account of the same name never share its password.

Two homes, two real AUTH servers on 127.0.0.1 (each accepts only its own
password), one keyring for both, every step a real ``outbox`` process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flush.test_flush_cli import message
from tests.support.cli import listed, outbox
from tests.support.keyrings import FILE_ENV, MemoryKeyring, stored_key
from tests.support.smtp_servers import USER, RunningServer, threaded_smtp_server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
        "OUTBOX_HOME": str(tmp_path / "the default home, unused"),
    }


@pytest.fixture
def servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    with (
        threaded_smtp_server(password="password of A") as a,
        threaded_smtp_server(password="password of B") as b,
    ):
        yield a, b


def add(home: Path, server: RunningServer, password: str, env: dict[str, str]) -> None:
    done = outbox(
        home, "account", "add", "work", "--host", "127.0.0.1", "--port", str(server.port),
        "--security", "none", "--user", USER, "--password-stdin", "--connect-timeout", "3",
        "--command-timeout", "3", "--data-timeout", "3", input=password.encode(), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def send(home: Path, n: int, env: dict[str, str]) -> int:
    queued = outbox(home, "enqueue", "-", input=message(n), env=env)
    assert queued.returncode == 0, queued.stderr.decode()
    return outbox(home, "flush", env=env).returncode


def test_two_homes_with_one_account_name_each_send_their_own_password(
    tmp_path: Path, env: dict[str, str], servers: tuple[RunningServer, RunningServer]
) -> None:
    server_a, server_b = servers
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    add(home_a, server_a, "password of A", env)
    add(home_b, server_b, "password of B", env)  # used to overwrite A's

    assert send(home_a, 1, env) == 0
    assert send(home_b, 2, env) == 0
    assert len(server_a.received) == 1 and len(server_b.received) == 1

    removed = outbox(home_b, "account", "remove", "work", env=env)
    assert removed.returncode == 0, removed.stderr.decode()

    assert send(home_a, 3, env) == 0  # B's remove left A's password alone
    assert [m["state"] for m in listed(home_a)] == ["sent", "sent"]
    assert MemoryKeyring(tmp_path / "keyring.json").passwords() == {
        stored_key(home_a, "work"): "password of A"
    }


def test_a_password_stored_by_an_older_outbox_migrates_into_its_home_without_typing(
    tmp_path: Path, env: dict[str, str], servers: tuple[RunningServer, RunningServer]
) -> None:
    server_a, server_b = servers
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    env = {**env, "OUTBOX_HOME": str(home_a)}  # A is the default home, B a --home one
    add(home_a, server_a, "password of A", env)
    add(home_b, server_b, "password of B", env)
    keyring = MemoryKeyring(tmp_path / "keyring.json")
    # What an older release left: one entry, keyed by the account name alone.
    keyring.delete_password(*stored_key(home_a, "work"))
    keyring.delete_password(*stored_key(home_b, "work"))
    keyring.set_password("outbox", "work", "password of A")

    assert send(home_b, 1, env) == 1  # B asks first: it must not take A's password
    assert server_b.received == []
    assert keyring.get_password("outbox", "work") == "password of A"

    assert send(home_a, 2, env) == 0
    assert len(server_a.received) == 1
    assert keyring.passwords() == {stored_key(home_a, "work"): "password of A"}


def test_a_sender_in_the_ascii_spelling_of_an_idn_pattern_goes_through_that_account(
    tmp_path: Path, env: dict[str, str], servers: tuple[RunningServer, RunningServer]
) -> None:
    server_a, server_b = servers
    home = tmp_path / "home"
    for name, server, password, patterns in (
        ("main", server_a, "password of A", ()),
        ("books", server_b, "password of B", ("--from", "*@bücher.example")),
    ):
        done = outbox(
            home, "account", "add", name, "--host", "127.0.0.1", "--port", str(server.port),
            "--security", "none", "--user", USER, "--password-stdin", *patterns,
            input=password.encode(), env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
    mail = b"From: me@xn--bcher-kva.example\nTo: bob@example.org\nSubject: s\n\nHi.\n"
    assert outbox(home, "enqueue", "-", input=mail, env=env).returncode == 0

    flushed = outbox(home, "flush", env=env)

    assert flushed.returncode == 0, flushed.stderr.decode()
    assert [m.mail_from for m in server_b.received] == ["me@xn--bcher-kva.example"]
    assert server_a.received == []  # used to go out through the default account
