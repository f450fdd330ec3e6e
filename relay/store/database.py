"""The outbox's SQLite file: its schema, opening it, and storing a new message.

Kept apart from ``relay.store.outbox`` (the store's API, events and snapshots) so
that ``outbox sendmail`` -- started once per message by mail clients -- can
store a message with nothing but ``sqlite3`` loaded (the benchmark's figure 5: a fresh
process in well under 50 ms). ``Outbox.add_message`` writes through
``insert_message`` too, so there is one way a message enters the file.

The file is opened in WAL mode with ``synchronous=FULL``: when a write
returns, it survives a crash of the process and a power loss.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from relay.states import MessageState, RecipientState

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

    from relay.dsn import DsnRequest
    from relay.message import ParsedMessage

DB_NAME = "outbox.sqlite3"
#: Intake holds it shared while it writes; ``outbox check --repair`` holds it
#: exclusively while it copies the store and swaps the copy in (``repair_lock``).
REPAIR_LOCK_NAME = "repair.lock"
BUSY_TIMEOUT_S = 60.0
#: The write-ahead log is cut back to this size whenever it restarts from its
#: beginning (``relay.store.checkpoint`` makes sure it does, at 4 MB, and empties it
#: when idle). Above what a restart keeps: a log cut shorter grows again block by
#: block, and each synced commit that lengthens the file syncs its metadata too
#: (a quarter more CPU a commit than one that writes over blocks the log has).
JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024

#: How many changes the log keeps (``note_changed``): a reader further behind reads
#: everything again, which costs it no more than reading that many changes would.
KEPT_CHANGES = 100_000
_TRIM_EVERY = 1000

MIGRATIONS: tuple[str, ...] = (
    # 1: the first release.
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL,
        account TEXT,
        needs_smtputf8 INTEGER NOT NULL DEFAULT 0,
        eight_bit INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        held INTEGER NOT NULL DEFAULT 0,
        sending INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        deferred_since TEXT,
        last_error TEXT
    );
    CREATE INDEX messages_by_state ON messages(state, next_attempt_at);
    CREATE TABLE bodies (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        raw BLOB NOT NULL
    );
    CREATE TABLE recipients (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        address TEXT NOT NULL,
        state TEXT NOT NULL,
        reply TEXT,
        PRIMARY KEY (message_id, position)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        account TEXT NOT NULL,
        server TEXT NOT NULL,
        outcome TEXT,
        error TEXT,
        replies TEXT NOT NULL DEFAULT '[]',
        accepted TEXT NOT NULL DEFAULT '[]',
        sent_bytes INTEGER NOT NULL DEFAULT 0,
        data_completed INTEGER NOT NULL DEFAULT 0,
        transcript TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX attempts_by_message ON attempts(message_id);
    """,
    # 2: drop-folder files stored but not yet removed (``relay.dropfolder``): a crash
    # between the commit and the unlink must not import the file a second time.
    """
    CREATE TABLE drop_imports (
        file TEXT PRIMARY KEY,
        message_id INTEGER NOT NULL
    );
    """,
    # 3: delivery status notifications a caller asked for (sendmail -N/-R/-V, RFC 3461);
    # a row only for a message that asked, so the usual message costs nothing more.
    """
    CREATE TABLE dsn_requests (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        notify TEXT,
        ret TEXT,
        envid TEXT
    );
    """,
    # 4: accounts a provider throttled (``relay.throttle``): nothing of theirs goes
    # out by itself before ``until``; ``level`` counts the pauses in a row.
    """
    CREATE TABLE account_pauses (
        account TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        limit_kind TEXT NOT NULL,
        reply TEXT NOT NULL,
        level INTEGER NOT NULL DEFAULT 1
    );
    """,
    # 5: the change log: each write names the messages it added, changed or deleted
    # (``note_changed``), under a number that only grows, so a reader (the window)
    # fetches only what changed since it last looked (``relay.store.listing.changes_since``)
    # instead of every message. Written by the writers, not by triggers: a trigger on
    # ``messages`` or ``recipients`` cost a flush about 20 us per message, even one that
    # never fired (10-20 % of the store's share of a flush); a write names its messages
    # with one more statement however many they are.
    """
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL
    );
    """,
)


def to_text(moment: datetime | None) -> str | None:
    """UTC, fixed width, so text order is time order in SQL comparisons."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def insert_message(
    conn: sqlite3.Connection,
    parsed: ParsedMessage,
    *,
    account: str | None,
    now: datetime,
    dsn: DsnRequest | None = None,
    not_before: datetime | None = None,
) -> int:
    """Insert a message, its body, its recipients (and what DSN it asks for);
    inside the caller's transaction.

    ``not_before`` schedules it (``relay.schedule``): no flush sends it
    earlier unless named, and it is then due by itself.
    """
    cursor = conn.execute(
        "INSERT INTO messages (created_at, sender, subject, size, account,"
        " needs_smtputf8, eight_bit, state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            to_text(now),
            parsed.sender,
            parsed.subject,
            len(parsed.raw),
            account,
            int(parsed.needs_smtputf8),
            int(parsed.eight_bit),
            MessageState.QUEUED.value,
            to_text(not_before),
        ),
    )
    message_id = cursor.lastrowid
    assert message_id is not None
    conn.execute("INSERT INTO bodies (message_id, raw) VALUES (?, ?)", (message_id, parsed.raw))
    conn.executemany(
        "INSERT INTO recipients (message_id, position, address, state) VALUES (?, ?, ?, ?)",
        [
            (message_id, position, address, RecipientState.PENDING.value)
            for position, address in enumerate(parsed.recipients)
        ],
    )
    if dsn:
        conn.execute(
            "INSERT INTO dsn_requests (message_id, notify, ret, envid) VALUES (?, ?, ?, ?)",
            (message_id, dsn.notify, dsn.ret, dsn.envid),
        )
    note_changed(conn, (message_id,))
    return message_id


def note_changed(conn: sqlite3.Connection, message_ids: Sequence[int]) -> None:
    """Log that ``message_ids`` were added, changed or deleted; inside the writer's transaction.

    Every write of a message or its recipients calls this (a reader that is
    not told would show the message as it was). The log keeps the last
    ``KEPT_CHANGES`` entries or so, trimmed every ``_TRIM_EVERY`` entries;
    ``seq`` keeps growing past those it forgets, since the newest entry is
    never removed. About 2.5 us for one message (a lock-step flush's
    ``start_transaction``), 6 us when the trim is checked every time.
    """
    if len(message_ids) == 1:
        last = conn.execute(
            "INSERT INTO changes (message_id) VALUES (?)", (message_ids[0],)
        ).lastrowid
    elif message_ids:
        conn.executemany("INSERT INTO changes (message_id) VALUES (?)", [(i,) for i in message_ids])
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    else:
        return
    assert last is not None
    if last // _TRIM_EVERY != (last - len(message_ids)) // _TRIM_EVERY:
        conn.execute("DELETE FROM changes WHERE seq <= ?", (last - KEPT_CHANGES,))


def record_drop_import(conn: sqlite3.Connection, file: str, message_id: int) -> None:
    """Note that drop file ``file`` (its identity, see ``relay.dropfolder``) is stored."""
    conn.execute(
        "INSERT OR REPLACE INTO drop_imports (file, message_id) VALUES (?, ?)", (file, message_id)
    )


def enqueue(
    home: Path,
    parsed: ParsedMessage,
    *,
    account: str | None = None,
    dsn: DsnRequest | None = None,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> int:
    """Store one message in ``home``'s outbox in one transaction; its id.

    For a process that only stores (``sendmail``): no events, no snapshot.
    A window or flush running elsewhere notices through ``PRAGMA data_version``.
    A store busy for longer than ``busy_timeout_s`` raises ``sqlite3.OperationalError``
    (see ``is_busy``).
    """
    from relay.home import ensure_home

    ensure_home(home)
    guard = intake_guard(home)
    try:
        conn = connect(home / DB_NAME, busy_timeout_s=busy_timeout_s)
        try:
            begin_immediate(conn)
            try:
                message_id = insert_message(
                    conn, parsed, account=account, now=datetime.now(UTC), dsn=dsn
                )
            except BaseException:
                if conn.in_transaction:  # SQLite ends it itself on a full disk or an I/O error
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
    finally:
        os.close(guard)  # releases the lock
    return message_id


class StoreBeingRepaired(sqlite3.OperationalError):
    """``outbox check --repair`` is copying the store: a write now would stay in the old file."""

    def __init__(self) -> None:
        super().__init__("database is locked: the outbox store is being repaired")


def intake_guard(home: Path) -> int:
    """Take ``home``'s repair lock shared, for intake; its descriptor (close it to release).

    A repair copies the store and puts the copy in its place: a message
    committed meanwhile to the file being copied would stay behind in the file
    set aside, though intake said it was stored. So intake does not write
    while a repair runs: ``StoreBeingRepaired`` (busy, for ``is_busy``), and
    the message goes to the drop folder like any message that finds the store busy.
    """
    fd = os.open(home / REPAIR_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreBeingRepaired() from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def repair_lock(home: Path, max_wait_s: float = BUSY_TIMEOUT_S) -> int:
    """Take ``home``'s repair lock exclusively, once the intakes under way have stored.

    An intake holds its share for a moment; one that keeps it (an ``enqueue``
    suspended with Ctrl-Z) makes the repair give up after ``max_wait_s``,
    as a busy store (``is_busy``), rather than wait for ever.
    """
    fd = os.open(home / REPAIR_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + max_wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        "database is locked: another program is storing a message"
                    ) from None
                time.sleep(0.01)
    except BaseException:
        os.close(fd)
        raise


def begin_immediate(conn: sqlite3.Connection, max_wait_s: float = BUSY_TIMEOUT_S) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock while others make progress.

    The connection's busy timeout is how long a lock may stay held *without a
    commit* before we give up: forty ``sendmail`` calls queueing for the lock
    commit one after another and keep waiting (up to ``max_wait_s`` in all),
    while a process stopped inside its transaction commits nothing and makes
    us give up after one timeout (``sqlite3.OperationalError``, see ``is_busy``).
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = conn.execute("PRAGMA data_version").fetchone()[0]
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            if conn.execute("PRAGMA data_version").fetchone()[0] == before:
                raise  # nobody committed while we waited: the holder is stuck


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says another connection held the store's lock past our wait."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return True
    return "database is locked" in str(exc)


def connect(path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating 0600) and migrate, tolerating many processes doing it at once.

    A write waits up to ``busy_timeout_s`` for another connection's write lock.
    """
    if not path.exists():
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    deadline = time.monotonic() + busy_timeout_s
    while True:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
            conn.execute("PRAGMA foreign_keys = ON")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            # Switching to WAL takes an exclusive lock without waiting on the busy
            # handler, so a crowd of first-time openers can see "locked": retry.
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        except BaseException:
            conn.close()  # a newer schema, not a database, an interrupt: closed now
            raise


def _migrate(conn: sqlite3.Connection) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current >= len(MIGRATIONS):
        if current > len(MIGRATIONS):
            from relay.machineproblems import StoreTooNew

            store = conn.execute("PRAGMA database_list").fetchone()[2]
            raise StoreTooNew(store, current, len(MIGRATIONS))
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for version in range(current, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    except BaseException:
        if conn.in_transaction:  # SQLite ends it itself on a full disk or an I/O error
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, a trigger's body (with its own ``;``) kept whole.

    Not ``executescript``: it commits first, and a migration runs inside its transaction.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending)
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending)
    return statements
