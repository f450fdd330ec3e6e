"""Another process holding the outbox's write lock, as any ``sqlite3`` shell or backup tool can.

``write_lock_held(db)`` starts a separate Python process that opens the store
and runs ``BEGIN IMMEDIATE``; the block runs once the lock is taken, and the
process commits nothing, rolls back and exits when the block ends (or when
this process dies: its standard input closes). A real second process, not a
second connection in this one: the lock is SQLite's own, across processes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def write_lock_held(db: Path) -> Iterator[None]:
    """The store at ``db`` write-locked by another process for the duration of the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        if holder.stdout.readline().strip() != "locked":  # waits for the lock, or the exit
            raise RuntimeError(f"the lock holder ended without the lock: {holder.wait()}")
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
