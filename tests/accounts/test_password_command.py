"""``--password-command``: a password printed by a program when needed, nothing stored.

The command line runs as a subprocess whose keyring is keyring's "fail"
backend -- a machine without any keyring -- against real AUTH servers on
127.0.0.1 that accept only their own password.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relay.password_command import PasswordCommandFailed, run_password_command
from tests.accounts.conftest import RunOutbox
from tests.support.smtp_servers import USER, threaded_smtp_server

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
PASSWORD = "from the command, ünïcode"
MESSAGE = "From: ann@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def add(outbox: RunOutbox, port: int, command: str) -> None:
    done = outbox(
        "account", "add", "work", "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", "--user", USER, "--password-command", command,
        "--connect-timeout", "3", "--command-timeout", "3", env=NO_KEYRING,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_without_any_keyring_an_account_with_a_password_command_sends(
    outbox: RunOutbox, home: Path, tmp_path: Path
) -> None:
    secret_file = tmp_path / "password-store-entry"
    secret_file.write_text(PASSWORD + "\n", "utf-8")
    command = f"cat {shlex.quote(str(secret_file))}"
    with threaded_smtp_server(password=PASSWORD) as server:
        add(outbox, server.port, command)
        assert outbox("enqueue", "-", input=MESSAGE, env=NO_KEYRING).returncode == 0

        tested = outbox("account", "test", "work", "--transcript", env=NO_KEYRING)
        flushed = outbox("flush", env=NO_KEYRING)

        assert tested.returncode == 0, tested.stderr
        assert flushed.returncode == 0, flushed.stderr
        assert len(server.received) == 1
    listed = json.loads(outbox("account", "list", "--json").stdout)
    assert listed[0]["auth"] == "password-command"
    assert listed[0]["password_command"] == command
    shown = outbox("show", "1", "--json").stdout
    everything = (home / "config.toml").read_text() + shown + tested.stdout + tested.stderr
    assert PASSWORD not in everything and json.dumps(PASSWORD)[1:-1] not in everything


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("echo 'the store is locked' >&2; exit 3", "exited with status 3 (the store is locked)"),
        ("true", "printed no password"),
        ("printf 'one\\ntwo\\n'", "printed more than one line"),
        ("no-such-program-for-outbox", "exited with status 127"),
    ],
)
def test_a_failing_password_command_defers_that_accounts_mail_and_says_why(
    outbox: RunOutbox, command: str, said: str
) -> None:
    with threaded_smtp_server(password=PASSWORD) as server:
        add(outbox, server.port, command)
        assert outbox("enqueue", "-", input=MESSAGE, env=NO_KEYRING).returncode == 0

        flushed = outbox("flush", env=NO_KEYRING)

        assert server.received == []
    assert flushed.returncode == 75, flushed.stderr
    assert f"account work: the password command {said}" in flushed.stderr
    assert "Traceback" not in flushed.stderr
    (item,) = json.loads(outbox("list", "--json").stdout)
    assert item["state"] == "deferred" and item["next_attempt"] is not None
    assert said in item["last_error"]


def test_account_test_says_plainly_when_the_command_fails(outbox: RunOutbox) -> None:
    add(outbox, 9, "exit 1")

    tested = outbox("account", "test", "work", env=NO_KEYRING)

    assert tested.returncode == 75
    assert tested.stderr == "outbox: account work: the password command exited with status 1\n"


def test_set_switches_between_a_command_and_a_stored_password(
    outbox: RunOutbox, stored_passwords: object
) -> None:
    assert callable(stored_passwords)
    outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
           "--password-stdin", input="typed")  # fmt: skip
    assert len(stored_passwords()) == 1

    switched = outbox("account", "set", "work", "--password-command", "pass show work")
    assert switched.returncode == 0, switched.stderr
    assert stored_passwords() == {}  # nothing kept once the command gives it
    assert json.loads(outbox("account", "list", "--json").stdout)[0]["auth"] == ("password-command")

    back = outbox("account", "set", "work", "--password-stdin", input="typed again")
    assert back.returncode == 0, back.stderr
    (account,) = json.loads(outbox("account", "list", "--json").stdout)
    assert (account["auth"], account["password_command"]) == ("password", None)
    assert list(stored_passwords().values()) == ["typed again"]


def test_a_password_command_needs_a_user(outbox: RunOutbox) -> None:
    done = outbox("account", "add", "work", "--host", "h", "--password-command", "true")

    assert done.returncode == 78
    assert "a password command needs a user name" in done.stderr


def test_without_a_keyring_a_password_is_refused_with_both_ways_that_remain(
    outbox: RunOutbox,
) -> None:
    done = outbox("account", "add", "work", "--host", "smtp.example.org", "--user", "alice",
                  "--password-stdin", input="pw", env=NO_KEYRING)  # fmt: skip

    assert done.returncode == 78
    assert "--password-command" in done.stderr and "Secret Service" in done.stderr
    assert outbox("account", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    "script",
    [
        "sleep 60 & echo $! > {pid_file}; wait",  # the shell waits for its child
        "(sleep 60 & echo $! > {pid_file}); echo pw",  # the shell is gone, its child is not
    ],
)
def test_a_command_that_hangs_is_stopped_with_everything_it_started(
    tmp_path: Path, script: str
) -> None:
    pid_file = tmp_path / "child.pid"
    command = script.format(pid_file=shlex.quote(str(pid_file)))

    started = time.monotonic()
    with pytest.raises(PasswordCommandFailed, match=r"did not finish within 0\.5 s"):
        asyncio.run(run_password_command("work", command, timeout_s=0.5))

    assert time.monotonic() - started < 30  # not held up by the sleep's open pipe
    child = int(pid_file.read_text())
    assert not running(child)  # killed with its shell, not left behind


def running(pid: int) -> bool:
    """Whether ``pid`` is still alive 10 s from now (waited for on a pidfd, no polling).

    A killed orphan becomes a zombie for PID 1 to reap: that counts as ended.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        ready, _, _ = select.select([fd], [], [], 10)
    finally:
        os.close(fd)
    return not ready


def test_one_trailing_line_ending_is_taken_off_and_nothing_else() -> None:
    assert asyncio.run(run_password_command("w", "printf ' pw \\r\\n'")) == " pw "
    assert asyncio.run(run_password_command("w", "printf 'pw'")) == "pw"


def test_a_flush_cancelled_while_the_command_runs_leaves_nothing_of_it_running(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    command = f"sleep 60 & echo $! > {shlex.quote(str(fifo))}; wait"

    async def cancelled_midway() -> int:
        task = asyncio.create_task(run_password_command("work", command))
        pid = int(await asyncio.to_thread(fifo.read_text))  # the command is running now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    started = time.monotonic()
    child = asyncio.run(cancelled_midway())

    assert not running(child)
    assert time.monotonic() - started < 30


_BOUNDED_RUN = """
import asyncio, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from relay.password_command import PasswordCommandFailed, run_password_command
try:
    asyncio.run(run_password_command("work", sys.argv[1], timeout_s=float(sys.argv[2])))
except PasswordCommandFailed as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("script", "timeout_s", "said"),
    [
        ("yes", 30, "printed more than 65536 bytes"),
        ("yes >&2", 0.5, "did not finish within 0.5 s"),  # stopped while it prints
    ],
)
def test_a_command_that_prints_without_end_is_stopped_in_bounded_memory(
    tmp_path: Path, script: str, timeout_s: float, said: str
) -> None:
    """Its output is not all kept (it was: a gigabyte every few seconds), and stopping it
    while it still prints does not hang on the pipe nobody reads any more."""
    pid_file = tmp_path / "command.pid"
    command = f"echo $$ > {shlex.quote(str(pid_file))}; exec {script}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BOUNDED_RUN, command, str(timeout_s)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        if pid_file.exists():  # the command's own session: a hung run would leave it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert said in done.stdout, done.stdout
    assert not running(int(pid_file.read_text()))
