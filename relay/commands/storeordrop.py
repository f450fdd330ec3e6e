"""Intake that never waits long on a busy store: store the message, or drop it.

``outbox sendmail`` and ``outbox enqueue`` wait at most
``relay.dropdelivery.INTAKE_BUSY_S`` for the store's write lock. When another
process holds it longer, the message goes into the drop folder instead
(``relay.dropdelivery.deliver_to_drop``: durable before this returns), its
place is said on standard error, and intake succeeds: the next flush or the
window imports it exactly once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from relay.dropdelivery import INTAKE_BUSY_S, deliver_to_drop

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    from datetime import datetime

    from relay.dsn import DsnRequest
    from relay.message import ParsedMessage


def store_or_drop(
    home: Path, parsed: ParsedMessage, *, account: str | None, dsn: DsnRequest | None = None
) -> int | Path:
    """The stored message's id, or the drop file it waits in when the store stayed busy."""
    from relay.store.database import enqueue, is_busy

    try:
        return enqueue(home, parsed, account=account, dsn=dsn, busy_timeout_s=INTAKE_BUSY_S)
    except Exception as exc:
        if not is_busy(exc):
            raise
    return drop(home, parsed, account=account, dsn=dsn)


def drop(
    home: Path,
    parsed: ParsedMessage,
    *,
    account: str | None,
    dsn: DsnRequest | None = None,
    not_before: datetime | None = None,
) -> Path:
    """Put the message in the drop folder and say where (the store is busy)."""
    place = deliver_to_drop(home, parsed, account=account, dsn=dsn, not_before=not_before)
    print(
        f"outbox: the outbox store is busy (another program holds it); the message waits"
        f" in {place} and is taken in at the next flush or by the window",
        file=sys.stderr,
    )
    return place
