"""Write-ahead-log checkpoints on a thread of their own, so that no commit waits for one.

By default SQLite checkpoints from inside a ``COMMIT`` once the log holds
1,000 pages: it copies them into the database file and syncs that file,
tens of milliseconds on this machine's disk and more on a slow one. A flush
commits on the event loop it shares with the window, so that one commit
froze the window for as long (it was the worst stall of the window's
benchmark, 20-25 ms, once every few thousand messages).

A long-lived ``Outbox`` (the window's, a flush's) therefore turns automatic
checkpoints off for its own connection and has a ``Checkpointer`` do them:
after a commit it is nudged, and its thread runs a PASSIVE checkpoint over a
connection of its own, at most once per ``interval_s``. A PASSIVE checkpoint
never blocks a writer or a reader, and durability does not depend on it: a
commit is on disk once the log is synced, before any checkpoint. Other
processes (``sendmail``, the command line) keep SQLite's automatic ones.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Checkpointer:
    """A daemon thread that checkpoints the store at ``path`` when nudged."""

    def __init__(self, path: Path, *, interval_s: float = 0.5) -> None:
        self._path = path
        self._interval_s = interval_s
        self._nudged = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()
        self._nudges = 0  # nudges so far
        self._covered = 0  # nudges before the start of the last checkpoint that ran
        self.checkpoints = 0  # how many have run
        self._thread = threading.Thread(target=self._run, name="outbox-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Something was committed: checkpoint soon (cheap; call after every commit)."""
        with self._progress:
            self._nudges += 1
        self._nudged.set()

    def caught_up(self, timeout_s: float) -> bool:
        """Wait for a checkpoint begun after the last nudge; false if none within ``timeout_s``."""
        with self._progress:
            wanted = self._nudges
            return self._progress.wait_for(lambda: self._covered >= wanted, timeout_s)

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stopping.set()
        self._nudged.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            while True:
                self._nudged.wait()
                if self._stopping.is_set():
                    return
                self._nudged.clear()
                with self._progress:
                    covering = self._nudges
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy, or the store went away: the next nudge tries again
                else:
                    with self._progress:
                        self.checkpoints += 1
                        self._covered = covering
                        self._progress.notify_all()
                if self._stopping.wait(self._interval_s):
                    return
        finally:
            conn.close()
