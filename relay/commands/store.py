"""Opening the outbox the way every command does.

A command that finds the flush lock free also settles messages that a dead
process left in ``sending`` (see ``relay.attempts.recover_interrupted``), so
``list`` never shows a flush that is not running.
"""

from __future__ import annotations

from pathlib import Path

from relay.attempts import recover_interrupted
from relay.errors import NoSuchMessage
from relay.flushlock import FlushLock
from relay.home import ensure_home, resolve_home
from relay.store.outbox import Outbox, utc_now


def open_outbox(home_arg: str | None) -> tuple[Path, Outbox]:
    home = ensure_home(resolve_home(home_arg))
    outbox = Outbox.open(home)
    try:
        lock = FlushLock(home)
        if lock.try_acquire():
            try:
                recover_interrupted(outbox, utc_now)
            finally:
                lock.release()
    except BaseException:
        outbox.close()
        raise
    return home, outbox


def parse_ids(words: list[str]) -> list[int]:
    """Message ids as typed by a person; anything else is "no message …"."""
    ids = []
    for word in words:
        if not word.isascii() or not word.isdigit() or int(word) == 0:
            raise NoSuchMessage(repr(word))
        ids.append(int(word))
    return ids
