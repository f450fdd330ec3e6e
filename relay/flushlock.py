"""One flush at a time per outbox, across processes.

An advisory ``flock`` on ``<home>/flush.lock``: the kernel drops it when the
holder exits, however it exits, so a killed flush never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from relay.errors import FlushRunning

LOCK_NAME = "flush.lock"


class FlushLock:
    def __init__(self, home: Path) -> None:
        self._path = home / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FlushLock:
        if not self.try_acquire():
            raise FlushRunning()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
