"""Checking the store file, and starting afresh from a damaged one with what can be read.

``check_store`` runs SQLite's ``integrity_check`` (and notices a file that
is not a database at all). ``repair_store`` moves a damaged file aside --
renamed, with its ``-wal`` and ``-shm``, never deleted -- and puts in its
place a fresh store holding, message by message, everything still readable:
a message is kept only whole (its row, its recipients and its body), with
the same id, state and history; its attempts come along when they can be
read. What could not be read is named, so a person can look for it in the
file set aside.

The fresh store is built beside the damaged one (``outbox.sqlite3.repairing``)
and renamed over it only once it is whole and closed: a repair killed on
the way leaves the damaged store in place (and a hard link to it under its
name aside), never an empty store where the outbox was -- which every
command would then take for an outbox with nothing in it.

Reading a damaged file must not stop at its first bad page: a full scan is
tried first and, if it fails, every id up to the highest one the file still
knows of is asked for on its own, so one bad page costs the messages on it,
not the rest.

The caller holds the flush lock: nothing may be sending while the file
changes under it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from relay.store.database import DB_NAME, connect, repair_lock

#: How many ids past the last one found a probe tries before it stops.
PROBE_GAP = 10_000
#: Tables copied message by message (their ``message_id``, or ``id`` for messages).
_PER_MESSAGE = ("recipients", "bodies")


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``integrity_check`` found: ``problems`` is empty when the store is sound."""

    path: Path
    problems: tuple[str, ...]
    messages: int | None  # None when they cannot be counted

    @property
    def sound(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RepairReport:
    """What ``repair_store`` did."""

    set_aside: Path
    kept: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    attempts_kept: int = 0
    attempts_lost: int = 0
    #: No message of the file could even be listed (a file cut short): how many
    #: were lost is unknown, so this is never "nothing lost".
    unlisted: bool = False


def check_store(home: Path, *, max_problems: int = 20) -> CheckReport:
    """Run ``PRAGMA integrity_check`` on ``home``'s store (which must exist)."""
    path = home / DB_NAME
    if path.is_dir():
        return CheckReport(path, ("a directory, not a file",), None)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return CheckReport(path, (_damage(exc, home),), None)
    try:
        try:
            rows = conn.execute(f"PRAGMA integrity_check({max_problems})").fetchall()
            problems = tuple(str(row[0]) for row in rows if row[0] != "ok")
        except sqlite3.Error as exc:
            return CheckReport(path, (_damage(exc, home),), None)
        try:
            count = int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        except sqlite3.Error:
            count = None
        return CheckReport(path, problems, count)
    finally:
        conn.close()


def _damage(exc: sqlite3.Error, home: Path) -> str:
    """What ``exc`` says is wrong with the file; raised instead when it is the machine's fault.

    A full disk, a read-only file system, a lock held by another program or
    a failing disk keep SQLite from reading a sound file too: that is no
    damage, and ``--repair`` must not set such a store aside.
    """
    _raise_if_not_damage(exc, home / DB_NAME)
    return str(exc)


def _raise_if_not_damage(exc: sqlite3.Error, path: Path) -> None:
    """Raise the machine's problem ``exc`` reveals, unless it is damage to the file itself."""
    from relay.machineproblems import StoreDamaged, explain

    problem = explain(exc, store=path, home=path.parent)
    if problem is not None and not isinstance(problem, StoreDamaged):
        raise problem from None


def repair_store(home: Path, *, now: datetime | None = None) -> RepairReport:
    """Set the damaged store aside and put a fresh one holding every message still readable.

    Intake waits for no repair: while one runs, it delivers to the drop folder
    (``relay.store.database.intake_guard``).
    """
    guard = repair_lock(home)
    try:
        return _repair(home, now)
    finally:
        os.close(guard)


def _repair(home: Path, now: datetime | None) -> RepairReport:
    path = home / DB_NAME
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{DB_NAME}.damaged-{stamp}")
    number = 1
    while aside.exists():
        aside = path.with_name(f"{DB_NAME}.damaged-{stamp}.{number}")
        number += 1
    building = path.with_name(f"{DB_NAME}.repairing")
    for leftover in _with_side_files(building):  # a repair killed before
        leftover.unlink(missing_ok=True)
    # Named aside at once (the same file: nothing is copied, nothing can be lost),
    # yet still in place until the fresh store is whole.
    os.link(path, aside)
    _sync_directory(home)
    report = RepairReport(aside)
    try:
        fresh = connect(building)
        try:
            old = _open_damaged(path)
            if old is not None:
                try:
                    _copy(old, fresh, report)
                finally:
                    old.close()
            else:
                report.unlisted = _is_sqlite(path)  # a store once, not some other file
        finally:
            fresh.close()  # its log checkpointed and removed: one file to rename
    except BaseException:
        # A repair that fails (the disk fills while the fresh store is written) leaves
        # the outbox as it was: no fresh store begun, no second name for the damaged
        # one -- not "kept 0 messages" with the messages in a file set aside.
        for leftover in _with_side_files(building):
            leftover.unlink(missing_ok=True)
        aside.unlink(missing_ok=True)
        raise
    # The damaged store's log and shared memory go with it, then the fresh store
    # takes its place in one rename: no log of the old file is left to be
    # replayed into the new one.
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.rename(side, Path(f"{aside}{suffix}"))
    os.replace(building, path)
    _sync_directory(home)
    return report


def _with_side_files(path: Path) -> list[Path]:
    return [path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_damaged(path: Path) -> sqlite3.Connection | None:
    """The damaged file opened for reading; None if it is no database at all."""
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        # A full disk keeps a sound file closed too: "kept 0 messages" would be a lie.
        _raise_if_not_damage(exc, path)
        return None
    return conn


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            return stream.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _message_ids(old: sqlite3.Connection, report: RepairReport) -> Iterator[int]:
    """Every message id the damaged file can still give, in order."""
    try:
        ids = [row[0] for row in old.execute("SELECT id FROM messages ORDER BY id")]
    except sqlite3.Error:
        pass
    else:
        yield from ids
        return
    report.unlisted = True  # until a probe finds one
    highest = 0
    try:
        row = old.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        highest = int(row[0]) if row else 0
    except sqlite3.Error:
        pass
    message_id, last_found = 1, 0
    while message_id <= highest or message_id - last_found <= PROBE_GAP:
        try:
            found = old.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone()
        except sqlite3.Error:
            found = None
        if found:
            last_found = message_id
            report.unlisted = False
            yield message_id
        message_id += 1


def _copy(old: sqlite3.Connection, fresh: sqlite3.Connection, report: RepairReport) -> None:
    old_columns = {table: set(_columns(old, table)) for table in ("messages", *_PER_MESSAGE)}
    old_columns["attempts"] = set(_columns(old, "attempts"))
    wanted = {
        table: [c for c in _columns(fresh, table) if c in old_columns.get(table, set())]
        for table in ("messages", *_PER_MESSAGE, "attempts")
    }
    fresh.execute("BEGIN IMMEDIATE")
    try:
        for message_id in _message_ids(old, report):
            try:
                rows = _read_message(old, message_id, wanted)
            except sqlite3.Error:
                report.lost.append(message_id)
                continue
            if rows is None:
                report.lost.append(message_id)
                continue
            for table, table_rows in rows.items():
                columns = wanted[table]
                fresh.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    table_rows,
                )
            report.kept.append(message_id)
            kept, lost = _copy_attempts(old, fresh, message_id, wanted["attempts"])
            report.attempts_kept += kept
            report.attempts_lost += lost
        # A lost message's id is never given to a new one: old notes may name it.
        highest = max(report.kept + report.lost, default=0)
        fresh.execute("DELETE FROM sqlite_sequence WHERE name = 'messages'")
        fresh.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)", (highest,))
        fresh.execute("COMMIT")
    except BaseException:
        if fresh.in_transaction:  # a COMMIT that failed (a full disk) has ended it already
            fresh.execute("ROLLBACK")
        raise


def _read_message(
    old: sqlite3.Connection, message_id: int, wanted: dict[str, list[str]]
) -> dict[str, list[tuple[object, ...]]] | None:
    """The message's rows in every table it needs, or None when one is missing."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    message = old.execute(
        f"SELECT {', '.join(wanted['messages'])} FROM messages WHERE id = ?", (message_id,)
    ).fetchall()
    if len(message) != 1:
        return None
    rows["messages"] = message
    for table in _PER_MESSAGE:
        rows[table] = old.execute(
            f"SELECT {', '.join(wanted[table])} FROM {table} WHERE message_id = ?", (message_id,)
        ).fetchall()
    if not rows["bodies"] or not rows["recipients"]:
        return None
    return rows


def _copy_attempts(
    old: sqlite3.Connection, fresh: sqlite3.Connection, message_id: int, columns: list[str]
) -> tuple[int, int]:
    """Copy one message's attempts (history: kept when readable); (kept, lost)."""
    try:
        attempts = old.execute(
            f"SELECT {', '.join(columns)} FROM attempts WHERE message_id = ?", (message_id,)
        ).fetchall()
    except sqlite3.Error:
        return 0, 1
    fresh.executemany(
        f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        attempts,
    )
    return len(attempts), 0
