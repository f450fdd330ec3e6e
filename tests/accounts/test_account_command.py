"""``outbox account …`` run as a user runs it: a subprocess, a real home, a test keyring."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from relay.accounts import config_path
from tests.accounts.conftest import REPO, RunOutbox
from tests.support.keyrings import FILE_ENV, stored_key

Passwords = Callable[[], dict[tuple[str, str], str]]


def accounts_json(outbox: RunOutbox) -> list[dict[str, object]]:
    done = outbox("account", "list", "--json")
    assert done.returncode == 0, done.stderr
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("outbox: ")
    assert text in lines[0]


def test_a_password_from_stdin_lands_in_the_keyring_and_nowhere_else(
    outbox: RunOutbox, home: Path, stored_passwords: Passwords
) -> None:
    password = "correct horse battery staple"

    done = outbox(
        "account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
        "--password-stdin", input=password + "\n",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert stored_passwords() == {stored_key(home, "work"): password}
    for path in home.rglob("*"):
        assert password.encode() not in path.read_bytes(), path
    assert password not in done.stdout + done.stderr
    assert password not in outbox("account", "list", "--json").stdout


@pytest.mark.parametrize(
    "flags",
    [
        ("--user", "alice", "--password-stdin"),
        ("--user", "alice@gmail.com", "--oauth2", "google", "--oauth-client-id", "id.example",
         "--oauth-client-secret-stdin"),
    ],
)  # fmt: skip
def test_a_secret_on_stdin_that_is_not_utf8_is_refused_in_one_line_and_nothing_is_stored(
    home: Path, keyring_file: Path, stored_passwords: Passwords, flags: tuple[str, ...]
) -> None:
    from tests.support.cli import outbox as run_bytes

    env = {"PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
           FILE_ENV: str(keyring_file)}  # fmt: skip
    latin1 = "pässwörd\n".encode("latin-1")  # a password file saved as Latin-1
    done = run_bytes(home, "account", "add", "work", "--host", "smtp.example.org", *flags,
                     input=latin1, env=env)  # fmt: skip
    assert done.returncode == 64, done.stderr
    assert done.stderr.decode().startswith("outbox: ") and b"not UTF-8" in done.stderr
    assert b"Traceback" not in done.stderr
    assert stored_passwords() == {}
    assert not config_path(home).exists()


def test_account_list_json_shows_the_settings_with_defaults_filled_in(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--from", "*@example.org")
    outbox("account", "add", "relay", "--host", "mx.example.net", "--security", "tls",
           "--max-connections", "4", "--data-timeout", "90", "--pipelining", "off",
           "--address", "me@example.net")  # fmt: skip

    listed = accounts_json(outbox)

    assert listed == [
        {
            "name": "work", "default": True, "host": "smtp.example.org", "port": 587,
            "security": "starttls", "user": None, "ca_file": None, "from": ["*@example.org"],
            "max_connections": 2, "max_messages_per_connection": 100,
            "connect_timeout": 30.0, "command_timeout": 120.0, "data_timeout": 600.0,
            "pipelining": True, "address": None, "auth": None,
            "password_command": None,
            "oauth2": None, "refresh_token_stored": None,
        },
        {
            "name": "relay", "default": False, "host": "mx.example.net", "port": 465,
            "security": "tls", "user": None, "ca_file": None, "from": [],
            "max_connections": 4, "max_messages_per_connection": 100,
            "connect_timeout": 30.0, "command_timeout": 120.0, "data_timeout": 90.0,
            "pipelining": False, "address": "me@example.net", "auth": None,
            "password_command": None,
            "oauth2": None, "refresh_token_stored": None,
        },
    ]  # fmt: skip


def test_account_list_prints_a_table_marking_the_default(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--from", "*@example.org")
    outbox("account", "add", "home", "--host", "127.0.0.1", "--port", "2525",
           "--security", "none", "--default")  # fmt: skip

    done = outbox("account", "list")

    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SERVER", "SECURITY", "USER", "FROM"]
    assert lines[1].split() == ["work", "smtp.example.org:587", "starttls", "-", "*@example.org"]
    assert lines[2].split() == ["*", "home", "127.0.0.1:2525", "none", "-", "-"]


def test_account_list_without_accounts_says_how_to_add_one(outbox: RunOutbox) -> None:
    done = outbox("account", "list")

    assert done.returncode == 0
    assert done.stdout == ""
    assert "outbox account add" in done.stderr
    assert outbox("account", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--host", "h", "--port", "0"],
            78,
            "port must be a whole number, at least 1 and at most 65535, not '0'",
        ),
        (
            ["--host", "h", "--port", "smtp"],
            78,
            "port must be a whole number, at least 1 and at most 65535, not 'smtp'",
        ),
        (["--host", "h", "--security", "ssl"], 78, "unknown security 'ssl'"),
        (["--host", ""], 78, "the host is empty"),
        (["--host", "h", "--ca-file", "/no/such.pem"], 78, "CA file /no/such.pem does not exist"),
        (["--host", "h", "--max-connections", "0"], 78, "max connections must be a whole number"),
        (
            ["--host", "h", "--max-messages-per-connection", "-3"],
            78,
            "at least 1 and at most 1000000, not '-3'",
        ),
        (["--host", "h", "--command-timeout", "soon"], 78, "command timeout must be a number"),
        (["--host", "h", "--connect-timeout", "nan"], 78, "connect timeout must be a number"),
        (["--host", "h", "--data-timeout", "1e300"], 78, "at most 86400, not '1e300'"),
        (["--host", "h", "--data-timeout", "-1"], 78, "data timeout must be a number"),
        (
            ["--host", "mail.example.org", "--security", "none", "--user", "bob"],
            78,
            "refusing to send the password for 'bob' without TLS to mail.example.org",
        ),
        (["--host", "h", "--password-stdin"], 64, "--password-stdin needs --user"),
        (["--host", "h", "--user", "bob"], 64, "give it on standard input with --password-stdin"),
    ],
)
def test_a_bad_account_gets_one_line_a_nonzero_exit_and_changes_nothing(
    outbox: RunOutbox, home: Path, args: list[str], code: int, message: str
) -> None:
    outbox("account", "add", "keep", "--host", "smtp.example.org")
    before = config_path(home).read_bytes()

    done = outbox("account", "add", "bad", *args)

    assert_one_line_error(done, code, message)
    assert config_path(home).read_bytes() == before


def test_an_account_name_cannot_be_added_twice(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org")

    done = outbox("account", "add", "work", "--host", "other.example.org")

    assert_one_line_error(done, 78, "an account 'work' already exists")
    assert [a["host"] for a in accounts_json(outbox)] == ["smtp.example.org"]


def test_a_password_in_plain_text_to_loopback_is_allowed(
    outbox: RunOutbox, home: Path, stored_passwords: Passwords
) -> None:
    done = outbox(
        "account", "add", "local", "--host", "127.0.0.1", "--port", "2525", "--security", "none",
        "--user", "me", "--password-stdin", input="pw",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert stored_passwords() == {stored_key(home, "local"): "pw"}


def test_without_a_keyring_the_password_is_refused_with_advice_and_nothing_is_saved(
    outbox: RunOutbox, home: Path
) -> None:
    done = outbox(
        "account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
        "--password-stdin", input="s3cret\n",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )  # fmt: skip

    assert_one_line_error(done, 78, "cannot store the password of account 'work'")
    assert "Secret Service" in done.stderr and "PYTHON_KEYRING_BACKEND" in done.stderr
    assert not config_path(home).exists()
    assert not any(b"s3cret" in p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_a_leaky_keyring_error_does_not_repeat_the_password(outbox: RunOutbox) -> None:
    done = outbox(
        "account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
        "--password-stdin", input="s3cret-value\n",
        env={
            "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.LeakyBrokenKeyring",
            "OUTBOX_TEST_BROKEN_KEYRING": "1",
        },
    )  # fmt: skip

    assert_one_line_error(done, 78, "D-Bus said no to storing '****'")
    assert "s3cret-value" not in done.stderr + done.stdout


def test_an_account_without_a_user_needs_no_keyring(outbox: RunOutbox) -> None:
    done = outbox(
        "account", "add", "mx", "--host", "mx.example.org", "--security", "none",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert [a["name"] for a in accounts_json(outbox)] == ["mx"]


def test_set_changes_only_the_settings_given(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--from", "*@example.org",
           "--max-connections", "3")  # fmt: skip
    before = accounts_json(outbox)[0]

    done = outbox("account", "set", "work", "--port", "2587", "--connect-timeout", "7.5")

    assert done.returncode == 0, done.stderr
    assert accounts_json(outbox)[0] == {**before, "port": 2587, "connect_timeout": 7.5}


def test_set_default_moves_the_default(outbox: RunOutbox) -> None:
    outbox("account", "add", "one", "--host", "a.example")
    outbox("account", "add", "two", "--host", "b.example")

    outbox("account", "set", "two", "--default")

    assert [(a["name"], a["default"]) for a in accounts_json(outbox)] == [
        ("one", False),
        ("two", True),
    ]


def test_set_with_a_new_password_replaces_the_stored_one(
    outbox: RunOutbox, home: Path, stored_passwords: Passwords
) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
           "--password-stdin", input="old")  # fmt: skip

    done = outbox("account", "set", "work", "--password-stdin", input="new\n")

    assert done.returncode == 0, done.stderr
    assert stored_passwords() == {stored_key(home, "work"): "new"}


def test_set_no_user_forgets_the_password(outbox: RunOutbox, stored_passwords: Passwords) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
           "--password-stdin", input="pw")  # fmt: skip

    done = outbox("account", "set", "work", "--no-user")

    assert done.returncode == 0, done.stderr
    assert stored_passwords() == {}
    assert accounts_json(outbox)[0]["user"] is None


def test_set_to_plain_text_with_a_user_off_loopback_is_refused(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
           "--password-stdin", input="pw")  # fmt: skip

    done = outbox("account", "set", "work", "--security", "none")

    assert_one_line_error(done, 78, "without TLS")
    assert accounts_json(outbox)[0]["security"] == "starttls"


def test_set_a_ca_file_stores_its_absolute_path(outbox: RunOutbox, tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    outbox("account", "add", "work", "--host", "smtp.example.org")

    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(tmp_path / "home"),
         "account", "set", "work", "--ca-file", "ca.pem"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert accounts_json(outbox)[0]["ca_file"] == str(tmp_path / "ca.pem")


def test_remove_deletes_the_account_and_its_password(
    outbox: RunOutbox, home: Path, stored_passwords: Passwords
) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
           "--password-stdin", input="pw")  # fmt: skip
    outbox("account", "add", "other", "--host", "smtp.example.net", "--user", "bob",
           "--password-stdin", input="pw2")  # fmt: skip

    done = outbox("account", "remove", "work")

    assert done.returncode == 0, done.stderr
    assert stored_passwords() == {stored_key(home, "other"): "pw2"}
    assert [(a["name"], a["default"]) for a in accounts_json(outbox)] == [("other", True)]


def test_removing_an_unknown_account_is_an_error(outbox: RunOutbox) -> None:
    outbox("account", "add", "work", "--host", "smtp.example.org")

    done = outbox("account", "remove", "wrok")

    assert_one_line_error(done, 78, "no account 'wrok' (accounts: work)")


def test_accounts_added_by_many_processes_at_once_all_land(outbox: RunOutbox, home: Path) -> None:
    home.mkdir(mode=0o700)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}

    def add(i: int) -> subprocess.Popen[bytes]:
        command = ["account", "add", f"a{i}", "--host", f"smtp{i}.example.org"]
        return subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )

    processes = [add(i) for i in range(8)]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err

    listed = accounts_json(outbox)

    assert sorted(a["name"] for a in listed) == [f"a{i}" for i in range(8)]  # type: ignore[type-var]
    assert sum(1 for a in listed if a["default"]) == 1


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout_s: float = 30) -> None:
    """Read the terminal's output until ``marker`` shows up (select: no sleeping)."""
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        assert ready, f"no {marker!r} on the terminal; got {bytes(seen)!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            chunk = b""
        assert chunk, f"the terminal closed before {marker!r}; got {bytes(seen)!r}"
        seen += chunk


def test_on_a_terminal_the_password_is_asked_for_without_echo(
    home: Path, keyring_file: Path, stored_passwords: Passwords
) -> None:
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(keyring_file),
    }

    def take_the_terminal() -> None:  # in the child: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "account", "add", "work",
         "--host", "smtp.example.org", "--user", "alice"],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO,
        start_new_session=True, preexec_fn=take_the_terminal,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"Password for alice (account work): ", seen)
        os.write(master, b"typed secret\n")
        _read_until(master, b"added account work", seen)
        assert process.wait(timeout=60) == 0, bytes(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)

    assert b"typed secret" not in seen  # not echoed
    assert stored_passwords() == {stored_key(home, "work"): "typed secret"}


def test_a_malformed_from_pattern_is_refused_and_nothing_is_saved(outbox: RunOutbox) -> None:
    done = outbox("account", "add", "work", "--host", "smtp.example.org", "--from", "example.org")

    assert_one_line_error(done, 78, "bad from pattern 'example.org'")
    assert "'*@example.org'" in done.stderr
    assert accounts_json(outbox) == []
