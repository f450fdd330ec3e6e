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

A bounded log. A PASSIVE checkpoint copies what was committed when it began;
a busy flush commits again before it ends, so the log is never all copied
and SQLite never starts writing it from the beginning again: it grew by
~20 KB a message for as long as the flush ran (37 MB for 2,000 messages) and
kept that size while any connection stayed open. So:

- when the log holds more than ``restart_bytes`` (4 MB), the PASSIVE
  checkpoint is followed by a RESTART one, which takes the write lock for as
  long as it copies the few frames committed meanwhile and then lets the
  next commit write the log from its start, over the blocks it already has
  (``relay.store.database`` sets ``journal_size_limit`` above the size a
  restart keeps, so only a log that outgrew it is cut back). A writer
  waits for it (a few milliseconds); it waits for readers at most
  ``restart_wait_s``, then gives up until the next time, so a long read (a
  large body being sent) never holds a commit up for long;
- the thread checks the log's size every ``POLL_S`` while it pauses between
  checkpoints, so a fast flush cannot outrun ``interval_s``;
- after ``idle_s`` without a commit it runs a TRUNCATE checkpoint: an idle
  window (or a flush waiting on a slow server) leaves an empty log behind.

Measured (tests/bench row 1w, 10,000 x 2 KB through four connections): the
log peaked at 4.9 MB; without the restarts it reached 14 MB for 1,000.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

#: How often a pausing checkpointer looks at the log's size.
POLL_S = 0.05


class Checkpointer:
    """A daemon thread that checkpoints the store at ``path`` when nudged."""

    def __init__(
        self,
        path: Path,
        *,
        interval_s: float = 0.5,
        restart_bytes: int = 4 * 1024 * 1024,
        idle_s: float = 1.0,
        restart_wait_s: float = 0.05,
    ) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._interval_s = interval_s
        self._restart_bytes = restart_bytes
        self._idle_s = idle_s
        self._restart_wait_s = restart_wait_s
        self._nudged = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()
        self._nudges = 0  # nudges so far
        self._covered = 0  # nudges before the start of the last checkpoint that ran
        self.checkpoints = 0  # how many have run
        self.restarts = 0  # RESTART or TRUNCATE checkpoints that emptied the log
        self.truncations = 0  # of which TRUNCATE ones, when idle (the file is then empty)
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

    def truncated(self, count: int, timeout_s: float) -> bool:
        """Wait until an idle log has been truncated ``count`` times in all; false on timeout."""
        with self._progress:
            return self._progress.wait_for(lambda: self.truncations >= count, timeout_s)

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stopping.set()
        self._nudged.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(
            self._path, timeout=self._restart_wait_s, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        try:
            conn.execute("PRAGMA synchronous = FULL")
            emptied = True  # the log was emptied since the last checkpoint
            while True:
                nudged = self._nudged.wait(None if emptied else self._idle_s)
                if self._stopping.is_set():
                    return
                if not nudged:  # idle: leave an empty log behind
                    self._empty(conn, "TRUNCATE")
                    emptied = True
                    continue
                self._nudged.clear()
                with self._progress:
                    covering = self._nudges
                if self._checkpoint(conn):
                    with self._progress:
                        self.checkpoints += 1
                        self._covered = covering
                        self._progress.notify_all()
                emptied = False
                if self._pause():
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> bool:
        """PASSIVE, then RESTART if the log is long; whether the PASSIVE one ran."""
        try:
            _busy, log_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            return False  # busy, or the store went away: the next nudge tries again
        if log_frames * self._page_bytes(conn) > self._restart_bytes:
            self._empty(conn, "RESTART")
        return True

    def _empty(self, conn: sqlite3.Connection, mode: str) -> None:
        """A RESTART or TRUNCATE checkpoint (it gives up after ``restart_wait_s`` of waiting)."""
        try:
            busy, _, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            return
        if not busy:
            with self._progress:
                self.restarts += 1
                self.truncations += mode == "TRUNCATE"
                self._progress.notify_all()

    @staticmethod
    def _page_bytes(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA page_size").fetchone()[0]) + 24  # frame header

    def _pause(self) -> bool:
        """Wait ``interval_s`` (less if the log outgrows ``restart_bytes``); true when closing."""
        deadline = time.monotonic() + self._interval_s
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stopping.wait(min(remaining, POLL_S)):
                return True
            try:
                if os.stat(self._wal).st_size > self._restart_bytes:
                    return False
            except OSError:
                pass
        return self._stopping.is_set()
