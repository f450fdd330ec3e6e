"""``outbox flush`` when the store fails under it: one line, every session ended, nothing twice.

The story of the window's test (tests/gui/test_window_store_errors.py) on the
command line: two accounts, one slow server, and when one session must
commit, either another process holds the store's write lock past the busy
timeout, or the disk (a real tmpfs of a few MB) is full, or the kernel
answers the store's writes with EIO (``strace`` injecting the error into the
running flush).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest

from relay.accounts import save_accounts
from relay.message import parse_message
from relay.states import MessageState
from relay.store.outbox import Outbox
from tests.support.gated_servers import FirstReplyHeld, GatedHandler
from tests.support.smtp_servers import RunningServer
from tests.support.store_lock import write_lock_held

WAIT_S = 30.0
BUSY_TIMEOUT_S = 0.5

#: ``outbox flush`` itself, in a process of its own, whose store waits half a
#: second for a lock instead of a minute.
FLUSH = f"""
import sys
import relay.store.database
relay.store.database.BUSY_TIMEOUT_S = {BUSY_TIMEOUT_S}
from relay.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 16 MB, mounted for the test alone."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        why = f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@contextmanager
def lock_held(db: Path, pid: int) -> Iterator[None]:
    """Another process holds the store's write lock."""
    with write_lock_held(db):
        yield


@contextmanager
def io_errors(db: Path, pid: int) -> Iterator[None]:
    """The kernel fails every write and sync of process ``pid`` with EIO, as a dying disk does.

    Only ``pwrite64`` and ``fdatasync`` (how SQLite writes and syncs); the
    sockets use other calls. ``strace`` detaches when the process ends.
    """
    if shutil.which("strace") is None:
        why = "strace is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    calls = "pwrite64,fdatasync"
    tracer = subprocess.Popen(
        [
            "strace",
            "-f",
            "-o",
            os.devnull,
            "-e",
            f"trace={calls}",
            "-e",
            f"inject={calls}:error=EIO",
            "-p",
            str(pid),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tracer.stderr is not None
    try:
        for line in tracer.stderr:  # the process's main thread (its event loop) first
            if f"Process {pid} attached" in line:
                break
        else:
            raise AssertionError(f"strace could not attach: {tracer.wait()}")
        yield
    finally:
        if tracer.poll() is None:
            tracer.terminate()
        tracer.wait(timeout=30)
        tracer.stderr.close()


@contextmanager
def disk_full(db: Path, pid: int) -> Iterator[None]:
    """Every free block of ``db``'s file system taken, the store's log emptied first.

    Emptied (a TRUNCATE checkpoint) so that the next commit must grow the log
    rather than reuse room it already has; the filler goes when the block ends.
    """
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for _ in range(100):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                break
        else:
            raise AssertionError("the store's log could not be emptied")
    filler = db.parent / "filler"
    try:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            chunk = b"\0" * 65536
            while chunk:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    chunk = chunk[: len(chunk) // 2]
        finally:
            os.close(fd)
        yield
    finally:
        filler.unlink(missing_ok=True)


def subjects(server: RunningServer) -> list[str]:
    return [str(message_from_bytes(r.body)["Subject"]) for r in server.received]


def flush(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", FLUSH, "--home", str(home), "flush"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_locked_store_ends_the_flush_with_one_line_every_session_closed_and_nothing_twice(
    tmp_path: Path,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    story(home, fast, slow, lock_held, 75, "database is locked")


def test_a_full_disk_ends_the_flush_with_one_line_every_session_closed_and_nothing_twice(
    small_disk: Path,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
) -> None:
    home = small_disk / "home"
    home.mkdir(mode=0o700)
    story(home, fast, slow, disk_full, 74, "database or disk is full")


def test_io_errors_end_the_flush_with_one_line_every_session_closed_and_nothing_twice(
    tmp_path: Path,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    story(home, fast, slow, io_errors, 74, "disk I/O error")


def story(
    home: Path,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
    fault: Callable[[Path, int], AbstractContextManager[None]],
    exit_code: int,
    reason: str,
) -> None:
    """Two accounts flush; while both await a verdict, ``fault`` strikes the store."""
    fast_server, fast_handler = fast
    slow_server, slow_handler = slow
    save_accounts(
        home,
        [
            fast_server.account(name="fast", default=True, max_connections=1),
            slow_server.account(name="slow", max_connections=1, data_timeout_s=60.0),
        ],
    )
    with Outbox.open(home) as outbox:
        ids = {
            subject: outbox.add_message(
                parse_message(
                    f"From: a@example.org\r\nTo: {subject}@example.net\r\n"
                    f"Subject: {subject}\r\n\r\nHello.\r\n".encode()
                ),
                account=account,
            ).id
            for subject, account in [
                ("a1", "fast"),
                ("a2", "fast"),
                ("b1", "slow"),
                ("b2", "slow"),
                ("b3", "slow"),
                ("b4", "slow"),
            ]
        }
        db = outbox.path

    first = flush(home)
    try:
        assert fast_handler.waiting.wait(WAIT_S) and slow_handler.waiting.wait(WAIT_S)
        with fault(db, first.pid):
            fast_handler.let_one_through()  # its session's next commit meets the fault
            _, err = first.communicate(timeout=WAIT_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    text = err.decode()
    assert "Traceback" not in text
    assert first.returncode == exit_code, text  # 75 EX_TEMPFAIL (busy), 74 EX_IOERR
    last = text.strip().splitlines()[-1]
    assert last.startswith("outbox: the flush stopped: the outbox could not be written")
    assert reason in last

    # The next flush takes up what was left; the slow server answers only now.
    fast_handler.open_gate()
    second = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
        capture_output=True,
        timeout=WAIT_S,
    )
    assert second.returncode in (0, 75), second.stderr.decode()
    slow_handler.open_gate()
    received = Counter(subjects(fast_server) + subjects(slow_server))
    assert [s for s, n in received.items() if n > 1] == []
    with Outbox.open(home) as outbox:
        states = {s: outbox.get(i).state for s, i in ids.items()}
    uncertain = {s for s, state in states.items() if state is MessageState.UNCERTAIN}
    assert uncertain <= {"a1", "b1"}  # past their final dot when the flush failed
    assert all(states[s] is MessageState.SENT for s in set(states) - uncertain)
    assert {"a2", "b2", "b3", "b4"} <= set(received)
