"""Intake never waits long on a busy store, and a flush never holds the store while it waits.

A real second process holds the store's write lock; ``sendmail`` and
``enqueue`` then put the message into the drop folder (with its envelope),
say where, and succeed; the next flush imports it exactly once. A flush
waiting on a slow server -- even one suspended with SIGSTOP right then --
holds no write lock, so another process writes at once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.dropdelivery import INTAKE_BUSY_S
from relay.store.database import BUSY_TIMEOUT_S, DB_NAME
from tests.support.cli import listed, outbox
from tests.support.machine import write_lock_held
from tests.support.smtp_servers import RecordingHandler, threaded_smtp_server

MESSAGE = (
    b"From: Cron Daemon <root@example.org>\nTo: ann@example.org\nBcc: hidden@example.org\n"
    b"Subject: nightly report\n\nAll is well.\n"
)
NULL_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def add_account(home: Path, port: int, *extra: str) -> None:
    done = outbox(
        home, "account", "add", "test", "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", *extra, env=NULL_KEYRING,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def drop_files(home: Path) -> list[Path]:
    new = home / "drop" / "new"
    return sorted(new.iterdir()) if new.exists() else []


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert outbox(home, "list").returncode == 0  # the store exists
    return home


def test_sendmail_on_a_locked_store_drops_the_message_and_the_next_flush_sends_it_once(
    home: Path,
) -> None:
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        with write_lock_held(home / DB_NAME):
            started = time.monotonic()
            done = outbox(home, "sendmail", "-t", "-i", "boss@example.org", input=MESSAGE)
            waited = time.monotonic() - started
            assert done.returncode == 0, done.stderr.decode()
            assert waited < BUSY_TIMEOUT_S / 2
            (dropped,) = drop_files(home)
            assert str(dropped) in done.stderr.decode()
            assert b"Bcc" not in dropped.read_bytes()
        first = outbox(home, "flush", env=NULL_KEYRING)
        assert first.returncode == 0, first.stderr.decode()
        second = outbox(home, "flush", env=NULL_KEYRING)
        assert second.returncode == 0, second.stderr.decode()
    (received,) = server.received
    # The envelope survived: header recipients, the Bcc one and the command line's.
    assert set(received.rcpt_tos) == {"ann@example.org", "hidden@example.org", "boss@example.org"}
    assert received.mail_from == "root@example.org"
    assert b"Bcc" not in received.body and b"All is well." in received.body
    assert drop_files(home) == []
    assert [m["state"] for m in listed(home)] == ["sent"]


def test_enqueue_on_a_locked_store_prints_where_each_message_waits(home: Path) -> None:
    message_file = home.parent / "m.eml"
    message_file.write_bytes(MESSAGE)
    with write_lock_held(home / DB_NAME):
        started = time.monotonic()
        done = outbox(home, "enqueue", str(message_file), str(message_file))
        waited = time.monotonic() - started
    assert done.returncode == 0, done.stderr.decode()
    places = done.stdout.decode().split()
    assert sorted(places) == [str(p) for p in drop_files(home)] and len(places) == 2
    assert waited < 2 * INTAKE_BUSY_S + 5  # one wait, not one per message
    # The window's start-up (and any flush) imports them: here through `list` after a flush
    # that has no account -- the import happens before the account is looked for.
    outbox(home, "flush", env=NULL_KEYRING)
    assert len(listed(home)) == 2 and drop_files(home) == []


def test_a_drop_folder_that_is_a_file_is_said_with_its_fix_and_exit_73(home: Path) -> None:
    (home / "drop").mkdir()
    (home / "drop" / "new").write_bytes(b"")  # say, a stray `touch` or a copy gone wrong
    with write_lock_held(home / DB_NAME):
        done = outbox(home, "sendmail", "-t", "-i", input=MESSAGE)
    # Not 0: the message is nowhere, so the caller must keep it (and may try again).
    assert done.returncode == 73, done.stderr.decode()
    said = done.stderr.decode()
    assert str(home / "drop" / "new") in said and "move it away" in said
    assert "Traceback" not in said and len(said.strip().splitlines()) == 1
    flushed = outbox(home, "flush", env=NULL_KEYRING)  # the import meets it too
    assert flushed.returncode == 73 and "move it away" in flushed.stderr.decode()


def test_enqueue_at_on_a_locked_store_keeps_its_time_through_the_drop_folder(home: Path) -> None:
    message_file = home.parent / "m.eml"
    message_file.write_bytes(MESSAGE)
    with write_lock_held(home / DB_NAME):
        done = outbox(home, "enqueue", "--at", "2999-01-02T03:04:00+00:00", str(message_file))
    assert done.returncode == 0, done.stderr.decode()
    assert [str(p) for p in drop_files(home)] == done.stdout.decode().split()
    # The flush that imports it does not send it: it is scheduled, and stays so.
    outbox(home, "flush", env=NULL_KEYRING)
    (message,) = listed(home)
    assert drop_files(home) == []
    assert message["state"] == "queued" and message["attempts"] == 0
    assert message["next_attempt"].startswith("2999-01-02T03:04:00")


class _SlowVerdict(RecordingHandler):
    """Holds its reply to the end of the data until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.data_arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_arrived.set()
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_server() -> Iterator[tuple[_SlowVerdict, int]]:
    handler = _SlowVerdict()
    with threaded_smtp_server(handler=handler) as server:
        try:
            yield handler, server.port
        finally:
            handler.release.set()


def write_at_once(store: Path) -> None:
    """Another process takes the write lock without waiting (busy timeout 0) and commits."""
    script = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute('CREATE TABLE IF NOT EXISTS probe (x)')\n"
        "c.execute('COMMIT')\n"
        "c.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(store)], capture_output=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("suspended", [False, True], ids=["running", "stopped-with-SIGSTOP"])
def test_a_flush_waiting_on_a_slow_server_holds_no_write_lock(
    home: Path, slow_server: tuple[_SlowVerdict, int], suspended: bool
) -> None:
    handler, port = slow_server
    # One connection: when the server has the data, the flush's one session waits for
    # the verdict (a second session could be inside a commit of its own right then).
    add_account(home, port, "--max-connections", "1")
    for _ in range(3):
        assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    flush = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
        env={**os.environ, **NULL_KEYRING},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert handler.data_arrived.wait(30)  # the flush now waits for the server's verdict
        if suspended:
            flush.send_signal(signal.SIGSTOP)
        write_at_once(home / DB_NAME)
        done = outbox(home, "sendmail", "carl@example.org", input=MESSAGE)
        assert done.returncode == 0 and drop_files(home) == [], done.stderr.decode()
        if suspended:
            flush.send_signal(signal.SIGCONT)
        handler.release.set()
        assert flush.wait(60) == 0, flush.stderr.read().decode() if flush.stderr else ""
    finally:
        if flush.poll() is None:
            flush.send_signal(signal.SIGCONT)
            flush.kill()
            flush.wait()
        if flush.stderr:
            flush.stderr.close()
    states = [m["state"] for m in listed(home)]
    assert states.count("sent") == 3 and states.count("queued") == 1


def test_a_message_with_a_broken_envelope_line_is_refused_not_guessed(home: Path) -> None:
    new = home / "drop" / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / "1.bad").write_bytes(b"X-Outbox-Envelope: {not json\r\n" + MESSAGE)
    outbox(home, "flush", env=NULL_KEYRING)
    assert listed(home) == []
    assert (home / "drop" / "rejected" / "1.bad").exists()


def test_sqlite_says_busy_as_is_busy_expects(home: Path) -> None:
    from relay.store.database import is_busy

    with write_lock_held(home / DB_NAME):
        conn = sqlite3.connect(home / DB_NAME, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError) as caught:
                conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.close()
    assert is_busy(caught.value)


def test_sendmail_bs_on_a_locked_store_answers_250_once_the_message_is_in_the_drop_folder(
    home: Path,
) -> None:
    dialogue = (
        b"EHLO client.example.org\r\nMAIL FROM:<ann@example.org>\r\n"
        b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
        + MESSAGE.replace(b"\n", b"\r\n")
        + b".\r\nQUIT\r\n"
    )
    with write_lock_held(home / DB_NAME):
        done = outbox(home, "sendmail", "-bs", input=dialogue)
    assert done.returncode == 0, done.stderr.decode()
    (dropped,) = drop_files(home)
    assert f"queued as drop/new/{dropped.name}".encode() in done.stdout
    outbox(home, "flush", env=NULL_KEYRING)
    (stored,) = listed(home)
    assert [r["address"] for r in stored["recipients"]] == ["bob@example.org"]
