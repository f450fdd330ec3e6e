"""``outbox check [--repair]`` on real files: sound, with damaged pages, not a database at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relay.flushlock import FlushLock
from relay.message import parse_message
from relay.store.database import DB_NAME
from relay.store.outbox import Outbox
from tests.support.cli import listed, outbox
from tests.support.machine import fill_disk, remount, small_tmpfs

PAGE = 4096


def fill(home: Path, count: int = 300) -> dict[int, bytes]:
    """``count`` messages of ~2 KB; their stored bytes by id."""
    with Outbox.open(home) as store:
        for n in range(count):
            raw = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: n%d\r\n\r\n" % n
            store.add_message(parse_message(raw + b"a line of the body\r\n" * 100))
        return {i: store.raw(i) for i in store.ids()}


def damage_pages(home: Path, *pages: int) -> None:
    data = bytearray((home / DB_NAME).read_bytes())
    for page in pages:
        start = (page - 1) * PAGE + 100
        data[start : page * PAGE] = b"\xa5" * (PAGE - 100)
    (home / DB_NAME).write_bytes(bytes(data))


def test_a_sound_store_checks_ok_and_repair_leaves_it_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill(home, 5)
    done = outbox(home, "check")
    assert done.returncode == 0 and b"ok (5 messages)" in done.stdout
    done = outbox(home, "check", "--repair")
    assert done.returncode == 0 and b"nothing to repair" in done.stdout
    assert sorted(p.name for p in home.iterdir() if p.name.startswith(DB_NAME)) == [DB_NAME]


def test_repair_keeps_every_readable_message_whole_and_names_the_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = fill(home)
    damage_pages(home, 41, 101, 201)
    done = outbox(home, "check")
    assert done.returncode == 74
    assert b"damaged" in done.stderr and b"--repair" in done.stderr

    done = outbox(home, "check", "--repair")
    err = done.stderr.decode()
    assert done.returncode == 74, err  # some were lost, and it says which
    (aside,) = [p for p in home.iterdir() if p.name.startswith(f"{DB_NAME}.damaged-")]
    assert str(aside) in done.stdout.decode()
    assert outbox(home, "check").returncode == 0
    kept = {int(m["id"]) for m in listed(home)}
    lost = set(before) - kept
    assert 0 < len(lost) < 10
    assert all(str(i) in err for i in lost)
    with Outbox.open(home) as store:
        assert all(store.raw(i) == before[i] for i in kept)  # byte for byte, same ids
        new = store.add_message(parse_message(b"From: a@example.org\r\nTo: b@example.org\r\n\r\n"))
    assert new.id > max(before)  # no id of a lost message is given out again


def test_a_file_that_is_no_database_is_set_aside_for_a_fresh_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / DB_NAME).write_bytes(b"not a database at all\n" * 50)
    assert outbox(home, "list").returncode == 74
    done = outbox(home, "check", "--repair")
    assert done.returncode == 0, done.stderr.decode()
    assert outbox(home, "list").returncode == 0
    (aside,) = [p for p in home.iterdir() if p.name.startswith(f"{DB_NAME}.damaged-")]
    assert aside.read_bytes().startswith(b"not a database")


def test_repair_refuses_while_a_flush_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill(home, 3)
    damage_pages(home, 3)
    lock = FlushLock(home)
    assert lock.try_acquire()
    try:
        done = outbox(home, "check", "--repair")
    finally:
        lock.release()
    assert done.returncode == 75 and b"flush is already running" in done.stderr
    assert not [p for p in home.iterdir() if ".damaged-" in p.name]


def test_a_repair_killed_midway_leaves_the_damaged_store_in_place_not_an_empty_one(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    before = fill(home, 2000)
    damage_pages(home, 41)
    repair = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "check", "--repair"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    # Killed as soon as the repair has begun to change the home's files.
    while not [p for p in home.iterdir() if p.name.startswith(f"{DB_NAME}.")]:
        assert repair.poll() is None, "the repair ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    repair.send_signal(signal.SIGKILL)
    assert repair.wait(timeout=10) == -signal.SIGKILL

    # Not an empty outbox that every command would take for the real one.
    assert outbox(home, "check").returncode == 74
    done = outbox(home, "check", "--repair")
    assert done.returncode == 74, done.stderr.decode()
    kept = {int(m["id"]) for m in listed(home)}
    assert len(set(before) - kept) < 10


def test_mail_handed_to_sendmail_during_a_repair_is_kept_not_left_in_the_file_set_aside(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    fill(home, 3000)
    damage_pages(home, 41)
    repair = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "check", "--repair"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not [p for p in home.iterdir() if p.name.startswith(f"{DB_NAME}.")]:
        assert repair.poll() is None, "the repair ended before any mail came"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    handed = 0
    while repair.poll() is None or not handed:  # mail keeps coming while it repairs
        assert time.monotonic() < deadline
        message = b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: during\r\n\r\nhi\r\n"
        done = outbox(home, "sendmail", "-t", input=message)
        assert done.returncode == 0, done.stderr.decode()
        handed += 1
    assert repair.wait(timeout=60) == 74

    stored = [m for m in listed(home) if m["subject"] == "during"]
    waiting = list((home / "drop" / "new").glob("*")) if (home / "drop").exists() else []
    assert len(stored) + len(waiting) == handed  # each one in the outbox or its drop folder


def set_aside(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if ".damaged-" in p.name)


def test_a_sound_store_on_a_full_or_read_only_disk_is_not_called_damaged_nor_set_aside(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "mnt", "16m") as mountpoint:
        home = mountpoint / "home"
        fill(home, 3)
        filler = fill_disk(mountpoint)
        for command in (("check",), ("check", "--repair")):
            done = outbox(home, *command)
            err = done.stderr.decode()
            assert done.returncode == 75, err
            assert "disk is full" in err and "damaged" not in err and "--repair" not in err
        assert not set_aside(home)
        filler.unlink()
        assert len(listed(home)) == 3

        remount(mountpoint, "ro")
        try:
            done = outbox(home, "check", "--repair")
        finally:
            remount(mountpoint, "rw")
        err = done.stderr.decode()
        assert done.returncode == 74, err
        assert "read-only" in err and "damaged" not in err, err
        assert not set_aside(home) and len(listed(home)) == 3


@pytest.mark.parametrize("room_kb", [100, 300])  # the disk fills opening the old file / copying
def test_a_repair_that_fills_the_disk_puts_the_damaged_store_back(
    tmp_path: Path, room_kb: int
) -> None:
    with small_tmpfs(tmp_path / "mnt", "16m") as mountpoint:
        home = mountpoint / "home"
        before = fill(home)
        damage_pages(home, 41, 101)
        filler = fill_disk(mountpoint, leave_bytes=room_kb * 1024)
        done = outbox(home, "check", "--repair")
        err = done.stderr.decode()
        assert done.returncode == 75, err
        assert "Traceback" not in err and "disk is full" in err.splitlines()[-1], err
        # Not "kept 0 messages" in an outbox that now looks empty: the file is back.
        assert not set_aside(home) and (home / DB_NAME).stat().st_size > 500_000, err
        filler.unlink()
        done = outbox(home, "check", "--repair")
        assert done.returncode == 74, done.stderr.decode()  # the messages on the bad pages
        assert len(before) - 10 < len(listed(home)) < len(before)


def test_a_store_cut_short_is_not_repaired_as_if_nothing_were_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill(home, 30)
    store = home / DB_NAME
    with store.open("r+b") as stream:
        stream.truncate(store.stat().st_size // 3)  # SQLite then reads none of it
    done = outbox(home, "check", "--repair")
    err = done.stderr.decode()
    assert done.returncode == 74, err  # not 0, "repaired with nothing lost"
    (aside,) = [name for name in set_aside(home) if not name.endswith(("-wal", "-shm"))]
    assert "not one message" in err.splitlines()[-1] and aside in err, err
