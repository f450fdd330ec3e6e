"""A cheap listing of the outbox, for views of very many messages (the window's table).

``Outbox.messages()`` builds a ``MessageSnapshot`` per message: a dataclass,
two parsed datetimes, enums and a snapshot per recipient, about 5 µs and a
dozen objects each -- half a second and tens of megabytes for 100,000
messages. A table shows a screenful of them. ``list_messages`` returns one
plain tuple per message instead (``Listed``), straight from one query: only
the columns a table shows, strings and numbers as SQLite stores them, the
recipients packed into one string, no body. Plain tuples of strings and
numbers are also invisible to the garbage collector once it has looked at
them once, so a long-lived table of them costs a full collection nothing.
That is why a ``Listed`` is read through the ``L_*`` names rather than being
a ``NamedTuple``: CPython untracks only exact tuples, so 100,000 named rows
would stay on the collector's lists (``gc.is_tracked`` says so).

``listed(snapshot)`` makes the same tuple from a snapshot (what the engine's
events carry), so rows from either source compare equal when the store
holds the same thing: a view can tell what changed with ``==``.

Reading it (positions are the ``L_*`` constants):

- ``state``: the ``MessageState`` value, except ``WAITING`` for a message
  a flush claimed whose own transaction is not under way yet (the store
  says ``sending`` and marks the difference; a snapshot does not carry it,
  so ``listed`` says ``sending`` there: a view that merges both reads
  ``WAITING`` as ``sending`` plus a mark of its own);
- ``next_attempt_at`` (None, or the next try of a deferred message, or the
  time a scheduled one waits for) and ``created_at`` (when it was queued):
  the stored text (UTC ISO 8601, ``relay.store.database.to_text``);
- ``recipients``: ``unpack_recipients`` gives ``(address, state value)``
  pairs in envelope order;
- ``reply``: the first reply of a recipient no longer pending, in envelope
  order (what a "last result" column shows when there is no ``last_error``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Final

from relay.events import MessageSnapshot
from relay.states import MessageState, RecipientState
from relay.store.database import to_text
from relay.store.outbox import CLAIMED

#: ``(id, state, sender, subject, size, attempts, next_attempt_at, last_error,
#: recipients, reply, created_at)``
Listed = tuple[int, str, str, str, int, int, str | None, str | None, str, str | None, str]

L_ID: Final = 0
L_STATE: Final = 1
L_SENDER: Final = 2
L_SUBJECT: Final = 3
L_SIZE: Final = 4
L_ATTEMPTS: Final = 5
L_NEXT_ATTEMPT: Final = 6
L_LAST_ERROR: Final = 7
L_RECIPIENTS: Final = 8
L_REPLY: Final = 9
L_CREATED: Final = 10

#: The ``state`` of a listed message claimed by a flush and waiting for its turn: a
#: session sends one message at a time, and only that one reads ``sending``.
WAITING: Final = "waiting"

# Envelope addresses never hold control characters (relay.address validates them).
_FIELD = "\x1f"
_RECORD = "\x1e"
_PENDING = RecipientState.PENDING.value

# group_concat's order is not guaranteed before SQLite 3.44: each record
# carries its position, and unpack_recipients sorts by it.
_SELECT = (
    "SELECT m.id,"
    f" CASE WHEN m.sending = {CLAIMED} AND m.state = '{MessageState.SENDING.value}'"
    f" THEN '{WAITING}' ELSE m.state END,"
    " m.sender, m.subject, m.size, m.attempts, m.next_attempt_at,"
    " m.last_error,"
    " (SELECT group_concat(r.position || char(31) || r.address || char(31) || r.state,"
    "  char(30)) FROM recipients r WHERE r.message_id = m.id),"
    " (SELECT r.reply FROM recipients r WHERE r.message_id = m.id"
    "  AND r.state != 'pending' AND r.reply IS NOT NULL ORDER BY r.position LIMIT 1),"
    " m.created_at"
    " FROM messages m"
)


def list_messages(conn: sqlite3.Connection, *, after_id: int = 0, limit: int = -1) -> list[Listed]:
    """Messages with an id above ``after_id``, in id order, at most ``limit`` (-1: all)."""
    rows = conn.execute(
        _SELECT + " WHERE m.id > ? ORDER BY m.id LIMIT ?", (after_id, limit)
    ).fetchall()
    return [_fixed(row) for row in rows] if rows and _needs_fixing(rows) else rows


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in the outbox after change number ``since`` (``changes_since``)."""

    #: The messages changed or added, as they are now, in id order.
    rows: list[Listed]
    #: The ids of messages deleted (some may never have been seen: added, then deleted).
    removed: list[int]
    #: The change number these bring a reader to: its next ``since``.
    through: int
    #: Whether more changes wait beyond ``through`` (the ``limit`` was reached).
    more: bool


def last_change(conn: sqlite3.Connection) -> int:
    """The outbox's change number now: what a reader that has just read everything passes to
    ``changes_since`` next time. Read it in the same transaction as that reading."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])


def changes_since(conn: sqlite3.Connection, since: int, *, limit: int = -1) -> Changes | None:
    """The messages added, changed or deleted after change number ``since``, from at most
    ``limit`` entries of the change log (-1: all); None when the log no longer goes
    back that far (read everything instead).

    One read transaction, so the rows, the removals and the number agree. It
    reads the log's entries after ``since`` and the rows of the messages they
    name, no others: a window over 100,000 messages pays for the ten another
    process changed, not for the 100,000 (``relay.store.database.note_changed``
    keeps the log).
    """
    conn.execute("BEGIN")
    try:
        first = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        if first is not None and since < first - 1:
            return None
        log = conn.execute(
            "SELECT seq, message_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, limit),
        ).fetchall()
        ids = sorted({message_id for _, message_id in log})
        rows = (
            conn.execute(
                _SELECT + " WHERE m.id IN (SELECT value FROM json_each(?)) ORDER BY m.id",
                (json.dumps(ids),),
            ).fetchall()
            if ids
            else []
        )
    finally:
        conn.execute("COMMIT")
    if rows and _needs_fixing(rows):
        rows = [_fixed(row) for row in rows]
    found = {row[L_ID] for row in rows}
    return Changes(
        rows,
        [message_id for message_id in ids if message_id not in found],
        log[-1][0] if log else since,
        limit >= 0 and len(log) == limit,
    )


def listed(snapshot: MessageSnapshot) -> Listed:
    """The ``list_messages`` tuple of ``snapshot``."""
    reply = None
    for recipient in snapshot.recipients:
        if recipient.reply is not None and recipient.state is not RecipientState.PENDING:
            reply = recipient.reply
            break
    return (
        snapshot.id,
        snapshot.state.value,
        snapshot.sender,
        snapshot.subject,
        snapshot.size,
        snapshot.attempts,
        to_text(snapshot.next_attempt_at),
        snapshot.last_error,
        _RECORD.join(
            f"{position}{_FIELD}{r.address}{_FIELD}{r.state.value}"
            for position, r in enumerate(snapshot.recipients)
        ),
        reply,
        to_text(snapshot.created_at) or "",
    )


def unpack_recipients(packed: str) -> list[tuple[str, str]]:
    """``(address, state value)`` of each recipient of a ``Listed``, in envelope order."""
    if not packed:
        return []
    records = [record.split(_FIELD) for record in packed.split(_RECORD)]
    if len(records) > 1:
        records.sort(key=lambda record: int(record[0]))
    return [(address, state) for _, address, state in records]


def _needs_fixing(rows: list[Listed]) -> bool:
    """Whether any row has no recipients (group_concat gives NULL; a ``Listed`` has "")."""
    return any(row[L_RECIPIENTS] is None for row in rows)


def _fixed(row: Listed) -> Listed:
    if row[L_RECIPIENTS] is not None:
        return row
    return (*row[:L_RECIPIENTS], "", *row[L_REPLY:])
