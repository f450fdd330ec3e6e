"""Opening the outbox the way every command does: through the engine.

``open_engine`` opens the home's ``relay.engine.Engine``, which settles
messages that a dead process left in ``sending`` when no flush runs, so
``list`` never shows a flush that is not running.
"""

from __future__ import annotations

from relay.engine import Engine
from relay.errors import NoSuchMessage
from relay.home import ensure_home, resolve_home


def open_engine(home_arg: str | None) -> Engine:
    """The engine over the home named by ``--home`` (else ``OUTBOX_HOME``, else the default)."""
    return Engine.open(ensure_home(resolve_home(home_arg)))


def parse_ids(words: list[str]) -> list[int]:
    """Message ids as typed by a person; anything else is "no message …"."""
    ids = []
    for word in words:
        # SQLite's integers stop at 2**63 - 1: a longer id is no message, not an OverflowError.
        if not word.isascii() or not word.isdigit() or not 0 < int(word) < 2**63:
            raise NoSuchMessage(repr(word))
        ids.append(int(word))
    return ids
