"""Real parts of a machine that misbehaves: a small tmpfs, a read-only mount, a lock held elsewhere.

Mounting needs root (or CAP_SYS_ADMIN). Where mounting is impossible a test
is skipped with the reason -- except under ``CI=true``, where the machine is
set up for it and a skip would hide a missing check, so the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _cannot(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must be able to do this)")
    pytest.skip(reason)


@contextmanager
def small_tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (mount's syntax: ``"2m"``) at ``mountpoint``, unmounted after."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        _cannot(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def remount(mountpoint: Path, mode: str) -> None:
    """Remount the tmpfs at ``mountpoint`` ``"ro"`` or ``"rw"``."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mountpoint)], check=True)


def fill_disk(directory: Path, leave_bytes: int = 0) -> Path:
    """Fill the file system holding ``directory`` but for about ``leave_bytes``; the filler."""
    filler = directory / "filler"
    with filler.open("wb") as stream:
        block = b"\0" * 65536
        try:
            while True:
                stream.write(block)
                stream.flush()
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave_bytes))
    return filler


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held(store: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``store``'s write lock (``BEGIN IMMEDIATE``) for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
