"""No traceback for a problem of the machine: one line naming the file, a sysexits code.

Every case uses the real thing: a file that is not SQLite, a store cut short,
a directory where the store should be, a real tmpfs filled up or remounted
read-only, a home that cannot be a directory, a user without a home, and a
second process holding the store's write lock.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from relay.machineproblems import StoreBusy, explain
from relay.message import parse_message
from relay.store.database import DB_NAME
from relay.store.outbox import Outbox
from tests.support.cli import listed, outbox
from tests.support.machine import fill_disk, remount, small_tmpfs, write_lock_held
from tests.support.smtp_servers import threaded_smtp_server

MESSAGE = b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
NULL_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def assert_one_line(done: subprocess.CompletedProcess[bytes], code: int, *words: str) -> str:
    """The command failed with ``code`` and one stderr line holding ``words``; that line."""
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert "Traceback" not in err and "Error:" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


def numbered(n: int) -> bytes:
    return MESSAGE.replace(b"Subject: hi", b"Subject: hi %d" % n)


def stored_home(tmp_path: Path, count: int = 30) -> Path:
    home = tmp_path / "home"
    with Outbox.open(home) as store:
        for n in range(count):
            store.add_message(parse_message(numbered(n)))
    return home


# -- the store itself -------------------------------------------------------------------------


def damaged_not_sqlite(home: Path) -> None:
    (home / DB_NAME).write_bytes(b"this is not a database\n" * 100)


def damaged_truncated(home: Path) -> None:
    store = home / DB_NAME
    with store.open("r+b") as stream:
        stream.truncate(store.stat().st_size // 3)


def damaged_pages(home: Path) -> None:
    store = home / DB_NAME
    data = bytearray(store.read_bytes())
    data[4096 + 100 : len(data)] = b"\xa5" * (len(data) - 4096 - 100)
    store.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [damaged_not_sqlite, damaged_truncated, damaged_pages])
@pytest.mark.parametrize(
    "command", [("list",), ("enqueue", "-"), ("sendmail", "bob@example.org"), ("flush",)]
)
def test_a_damaged_store_is_one_line_with_exit_74_and_the_way_to_repair(
    tmp_path: Path, damage: object, command: tuple[str, ...]
) -> None:
    home = stored_home(tmp_path)
    damage(home)  # type: ignore[operator]
    done = outbox(home, *command, input=MESSAGE, env=NULL_KEYRING)
    line = assert_one_line(done, 74, str(home / DB_NAME), "outbox check")
    assert "damaged" in line


def test_a_directory_where_the_store_should_be_is_one_line_with_exit_74(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / DB_NAME).mkdir(parents=True)
    for command in (("list",), ("sendmail", "bob@example.org")):
        done = outbox(home, *command, input=MESSAGE)
        assert_one_line(done, 74, str(home / DB_NAME), "directory")


def test_a_store_from_a_newer_outbox_is_one_line_naming_it_with_exit_78(tmp_path: Path) -> None:
    home = stored_home(tmp_path, 1)
    conn = sqlite3.connect(home / DB_NAME)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = (home / DB_NAME).read_bytes()
    for command in (("list",), ("enqueue", "-"), ("sendmail", "bob@example.org"), ("flush",)):
        done = outbox(home, *command, input=MESSAGE, env=NULL_KEYRING)
        assert_one_line(done, 78, str(home / DB_NAME), "newer Outbox", "upgrade")
    assert (home / DB_NAME).read_bytes() == before


# -- the home ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["a file", "/proc/outbox-home", "/etc/passwd/outbox", "/proc/self/status/x"]
)
def test_a_home_that_cannot_be_a_directory_is_one_line_with_a_sysexits_code(
    tmp_path: Path, where: str
) -> None:
    if where == "a file":
        home = tmp_path / "home"
        home.write_text("I am a file\n")
    else:
        home = Path(where)
    for command in (("list",), ("sendmail", "bob@example.org"), ("enqueue", "-")):
        done = outbox(home, *command, input=MESSAGE)
        # 78 (EX_CONFIG) where the home is checked before use, 73 (EX_CANTCREAT) else.
        assert_one_line(done, 78 if done.returncode == 78 else 73, str(home), "--home")


def test_no_home_at_all_is_one_line_with_exit_78(tmp_path: Path) -> None:
    """HOME unset, and a user the password database does not know (so no ~ either)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "OUTBOX_HOME", "XDG_DATA_HOME")}
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to run as a user with no home")
    done = subprocess.run(
        ["unshare", "--user", "--map-user=54321", "--map-group=54321",
         sys.executable, "-m", "relay.cli", "list"],
        capture_output=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    if b"unshare:" in done.stderr:
        pytest.skip(f"user namespaces unavailable: {done.stderr.decode().strip()}")
    assert_one_line(done, 78, "HOME", "--home")


# -- a full disk, a read-only file system -----------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Path:
    with small_tmpfs(tmp_path / "mnt", "16m") as mountpoint:
        yield mountpoint


def test_sendmail_and_enqueue_on_a_full_disk_exit_75_and_store_nothing(tmpfs: Path) -> None:
    home = tmpfs / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    filler = fill_disk(tmpfs)
    big = MESSAGE + b"a line of the body to fill a few pages\r\n" * 3000
    for command in (("sendmail", "bob@example.org"), ("enqueue", "-")):
        done = outbox(home, *command, input=big)
        assert_one_line(done, 75, "disk is full")
    filler.unlink()
    assert [m["id"] for m in listed(home)] == ["1"]  # nothing half-stored


BIG = MESSAGE + b"a line of the body, many of them: three megabytes in all\r\n" * 55_000


def test_a_large_message_that_fills_the_disk_is_one_line_with_exit_75(tmpfs: Path) -> None:
    """The disk has room, but not for this message: it fills while the message is written."""
    home = tmpfs / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    filler = fill_disk(tmpfs, leave_bytes=1024 * 1024)
    for command in (("sendmail", "bob@example.org"), ("enqueue", "-")):
        done = outbox(home, *command, input=BIG)
        assert_one_line(done, 75, "disk is full", str(home))
    with write_lock_held(home / DB_NAME):  # the same into the drop folder
        for command in (("sendmail", "bob@example.org"), ("enqueue", "-")):
            done = outbox(home, *command, input=BIG)
            assert_one_line(done, 75, "disk is full", str(home))
    filler.unlink()
    assert [m["id"] for m in listed(home)] == ["1"]  # nothing half-stored
    assert not [p for p in (home / "drop").rglob("*") if p.is_file()]


def test_sendmail_bs_on_a_full_disk_answers_mail_system_full(tmpfs: Path) -> None:
    """RFC 3463's 4.3.1 with the reason, not an exception's class name: the client keeps it."""
    home = tmpfs / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    filler = fill_disk(tmpfs, leave_bytes=1024 * 1024)
    data = BIG.replace(b"\r\n.", b"\r\n..")
    dialogue = (
        b"EHLO client.example\r\nMAIL FROM:<ann@example.org>\r\n"
        b"RCPT TO:<bob@example.org>\r\nDATA\r\n" + data + b".\r\nQUIT\r\n"
    )
    done = outbox(home, "sendmail", "-bs", input=dialogue)
    filler.unlink()
    replies = [line for line in done.stdout.decode().splitlines() if line[:1] in "2345"]
    after_data = replies[replies.index(next(r for r in replies if r.startswith("354"))) + 1]
    assert after_data.startswith("452 4.3.1 "), replies
    assert "disk is full" in after_data and "Error" not in after_data
    assert [m["id"] for m in listed(home)] == ["1"]  # nothing half-stored


def test_a_flush_that_fills_the_disk_ends_in_one_line_and_sends_nothing_twice(
    tmpfs: Path,
) -> None:
    home = tmpfs / "home"
    count = 150
    with threaded_smtp_server() as server:
        done = outbox(
            home,
            "account",
            "add",
            "test",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--security",
            "none",
            env=NULL_KEYRING,
        )
        assert done.returncode == 0, done.stderr
        with Outbox.open(home) as store:
            for n in range(count):
                store.add_message(parse_message(numbered(n)))
        filler = fill_disk(tmpfs, leave_bytes=512 * 1024)  # ~25 messages' log
        done = outbox(home, "flush", env=NULL_KEYRING)
        err = done.stderr.decode()
        assert done.returncode in (74, 75), err  # the flush's own contract: 74 (EX_IOERR)
        assert "Traceback" not in err and "exception" not in err, err
        last = err.strip().splitlines()[-1]
        assert "disk is full" in last and str(home) in last, err
        first_time = len(server.received)
        assert first_time < count  # the disk really filled during the flush
        filler.unlink()
        again = outbox(home, "flush", env=NULL_KEYRING)
        assert again.returncode in (0, 75), again.stderr.decode()
        subjects = [r.body.split(b"Subject: ")[1].split(b"\r\n")[0] for r in server.received]
        # Nothing sent twice, unless honestly marked uncertain by the first flush's end.
        uncertain = [m for m in listed(home) if m["state"] == "uncertain"]
        assert len(subjects) - len(set(subjects)) <= len(uncertain)
        assert len(set(subjects)) + sum(m["state"] != "sent" for m in listed(home)) >= count


def test_a_read_only_file_system_is_one_line_with_exit_74(tmpfs: Path) -> None:
    home = tmpfs / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    remount(tmpfs, "ro")
    try:
        for command in (("sendmail", "bob@example.org"), ("enqueue", "-"), ("hold", "1")):
            done = outbox(home, *command, input=MESSAGE)
            assert_one_line(done, 74, "read-only")
    finally:
        remount(tmpfs, "rw")


def test_a_store_this_user_may_not_write_is_permission_denied_exit_77(tmp_path: Path) -> None:
    """Not "read-only file system" (74) nor a bare "unable to open": whose it is, and what to do.

    Root may write anything: the commands run as root without capabilities
    (``setpriv``), for whom a file's owner and mode count as for any user.
    Another user could not run this interpreter where it lives (a pyenv
    under root's own home).
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run without root's capabilities")
    uncapable = ["setpriv", "--bounding-set=-all", "--inh-caps=-all",
                 sys.executable, "-m", "relay.cli"]  # fmt: skip
    home = tmp_path / "home"

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*uncapable, "--home", str(home), *args], input=MESSAGE, capture_output=True,
            env={**os.environ, **NULL_KEYRING}, timeout=60,
        )  # fmt: skip

    assert run("enqueue", "-").returncode == 0
    store = home / DB_NAME
    store.chmod(0o400)
    for command in (("sendmail", "bob@example.org"), ("hold", "1"), ("flush",)):
        assert_one_line(run(*command), 77, str(store), "may not be written", "chmod")
    nobody = 65534
    os.chown(store, nobody, nobody)
    store.chmod(0o600)
    for command in (("list",), ("check",)):
        assert_one_line(run(*command), 77, str(store), f"owner uid {nobody}", "chown")


# -- a store locked by another process ----------------------------------------------------------


def test_a_store_locked_past_the_busy_timeout_is_told_as_busy_exit_75(tmp_path: Path) -> None:
    home = stored_home(tmp_path, 1)
    store = home / DB_NAME
    with write_lock_held(store):
        conn = sqlite3.connect(store, timeout=0.2, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError) as caught:
                conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.close()
    problem = explain(caught.value, store=store, home=home)
    assert isinstance(problem, StoreBusy) and problem.exit_code == 75
    assert str(store) in str(problem) and "busy" in str(problem)


def test_a_full_device_behind_standard_output_is_not_called_the_outboxs_full_disk(
    tmp_path: Path,
) -> None:
    home = stored_home(tmp_path, 3)
    for command in (("list",), ("show", "1"), ("list", "--json")):
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                [sys.executable, "-m", "relay.cli", "--home", str(home), *command],
                stdout=full, stderr=subprocess.PIPE, timeout=60,
            )  # fmt: skip
        line = assert_one_line(done, 74, "standard output", "No space left")
        assert str(home) not in line and "disk is full" not in line
