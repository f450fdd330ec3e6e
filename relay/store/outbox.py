"""The outbox store: one SQLite file holding messages, recipients and attempts.

Rules this module keeps:

- Every change is one ``BEGIN IMMEDIATE`` transaction, so two processes (the
  window and a ``sendmail`` call) take turns instead of failing; a waiting
  writer blocks on SQLite's busy handler for up to ``BUSY_TIMEOUT_S``.
- WAL with ``synchronous=FULL``: when a write returns, it survives a crash of
  the process *and* a power loss (WAL at NORMAL would only promise the former).
- A message's ``state`` column is always ``derive_message_state`` of its
  recipients, its ``held`` flag and its ``sending`` claim, written in the same
  transaction as whatever changed them. It is stored, not computed on read,
  so ``list --state`` and the window's filter are one indexed query.
- The raw message lives in its own table, so listing 100,000 messages never
  reads a body.
- It publishes nothing. Every write returns what it changed (snapshots,
  ids), and whoever asked for the change announces it once it is committed:
  the attempt manager and the relaying manager during a flush
  (``relay.attempts``, ``relay.flush``), the window for a person's commands.

The store records; it does not decide. Verdicts come from the attempt
manager, which calls ``finish_attempt`` and friends with their meaning
already settled.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from relay.errors import BodyPruned, NoSuchMessage, OutboxError
from relay.events import MessageSnapshot, RecipientSnapshot
from relay.home import ensure_home
from relay.message import ParsedMessage
from relay.states import OWED, MessageState, RecipientState, derive_message_state
from relay.store.body import INLINE_BODY_BYTES, StoredBody
from relay.store.database import (
    BUSY_TIMEOUT_S,
    DB_NAME,
    begin_immediate,
    connect,
    insert_message,
    note_changed,
    record_drop_import,
    to_text,
)

if TYPE_CHECKING:
    from relay.dsn import DsnRequest
    from relay.policy import Verdict
    from relay.report import BodySource, OutgoingMessage, Reply
    from relay.schedule import Waiting
    from relay.store.checkpoint import Checkpointer
    from relay.throttle import AccountPause


#: ``messages.sending``: 0 not claimed; 1 claimed by a flush; 2 its transaction is under way.
CLAIMED = 1
UNDER_WAY = 2


def utc_now() -> datetime:
    return datetime.now(UTC)


_to_text = to_text


def _from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class AttemptReply:
    """One reply the server gave during an attempt: to a recipient's RCPT (``address``),
    or to the message's MAIL, DATA or end of data (``address`` None).

    Stored in ``attempts.replies`` as a JSON array of ``{"address", "stage",
    "code", "text"}`` objects, which is also what ``show --json`` prints.
    """

    address: str | None
    reply: Reply

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> AttemptReply:
        from relay.report import Reply, Stage

        return cls(item["address"], Reply(Stage(item["stage"]), item["code"], item["text"]))

    def to_json(self) -> dict[str, object]:
        reply = self.reply
        return {
            "address": self.address,
            "stage": reply.stage.value,
            "code": reply.code,
            "text": reply.text,
        }


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One stored attempt: a transaction, or a session that failed around it."""

    id: int
    message_id: int
    started_at: datetime
    ended_at: datetime | None
    account: str
    server: str
    outcome: str | None
    error: str | None
    replies: tuple[AttemptReply, ...]
    sent_bytes: int
    data_completed: bool
    transcript: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "started": self.started_at.isoformat(),
            "ended": self.ended_at.isoformat() if self.ended_at else None,
            "account": self.account,
            "server": self.server,
            "outcome": self.outcome,
            "error": self.error,
            "replies": [reply.to_json() for reply in self.replies],
            "sent_bytes": self.sent_bytes,
            "data_completed": self.data_completed,
        }


class Outbox:
    """The store at ``<home>/outbox.sqlite3``. Open with ``Outbox.open(home)``."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        max_busy_wait_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self._conn = connect(path, busy_timeout_s=busy_timeout_s)
        self._busy_timeout_s = busy_timeout_s
        self._max_busy_wait_s = max(busy_timeout_s, max_busy_wait_s)
        self._in_batch = False
        #: Inside a batch, the messages it changed, logged once each when it commits.
        self._batch_changed: dict[int, None] = {}
        self._checkpointer: Checkpointer | None = None
        #: Another ``Outbox``'s checkpointer, nudged by this one's commits (``twin``).
        self._nudged: Checkpointer | None = None

    # -- life cycle -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        home: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        max_busy_wait_s: float = BUSY_TIMEOUT_S,
    ) -> Outbox:
        """The store in ``home``.

        A write waits for another connection's lock while that one commits
        now and then, up to ``max_busy_wait_s``; a lock held ``busy_timeout_s``
        without a commit raises (``relay.store.database.begin_immediate``).
        """
        ensure_home(home)
        return cls(home / DB_NAME, busy_timeout_s=busy_timeout_s, max_busy_wait_s=max_busy_wait_s)

    def close(self) -> None:
        try:
            if self._checkpointer is not None:
                self._checkpointer.close()  # first: the last connection to close tidies the log
                self._checkpointer = None
        finally:
            self._conn.close()

    def checkpoint_in_background(
        self, *, interval_s: float = 0.5, restart_bytes: int = 4 * 1024 * 1024,
        idle_s: float = 1.0,
    ) -> Checkpointer:  # fmt: skip
        """Leave the log's checkpoints to a thread (``relay.store.checkpoint``), not to commits.

        For an outbox that commits on an event loop a window shares (the
        window's, a flush's): a checkpoint inside a commit would freeze it.
        The thread also keeps the log under ``restart_bytes`` or so, and
        empties it after ``idle_s`` without a commit.
        """
        if self._checkpointer is None:
            from relay.store.checkpoint import Checkpointer

            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = Checkpointer(
                self.path, interval_s=interval_s, restart_bytes=restart_bytes, idle_s=idle_s
            )
        return self._checkpointer

    def twin(self) -> Outbox:
        """A second connection to the same file, for a writer thread (``relay.attempts``).

        Open it in the thread that uses it. It waits for locks as this one
        does, and leaves checkpoints to this one's checkpointer (and nudges it).
        """
        other = Outbox(
            self.path, busy_timeout_s=self._busy_timeout_s, max_busy_wait_s=self._max_busy_wait_s
        )
        checkpointer = self._checkpointer or self._nudged
        if checkpointer is not None:
            other._conn.execute("PRAGMA wal_autocheckpoint = 0")
            other._nudged = checkpointer
        return other

    def _committed(self) -> None:
        checkpointer = self._checkpointer or self._nudged
        if checkpointer is not None:
            checkpointer.nudge()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every change inside one transaction: one commit (one fsync) for all of them.

        What the writes inside return is committed when the block ends, and
        not before: announce it after. Nothing inside may await: the write
        lock is held until the block ends, and other processes
        (``sendmail``, the window) wait for it. Nested batches join the outer
        one.
        """
        if self._in_batch:
            yield
            return
        conn = self._conn
        begin_immediate(conn, self._max_busy_wait_s)
        self._in_batch = True
        try:
            yield
            if self._batch_changed:
                note_changed(conn, list(self._batch_changed))
        except BaseException:
            if conn.in_transaction:  # SQLite ends it itself on a full disk or an I/O error
                conn.execute("ROLLBACK")
            raise
        finally:
            self._in_batch = False
            self._batch_changed.clear()
        conn.execute("COMMIT")
        self._committed()

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Inside the block, wait at most ``seconds`` for another writer's lock.

        For a write that may as well fail at once (and be tried again later)
        rather than freeze an event loop for the full busy timeout.
        """
        conn = self._conn
        previous = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(previous)}")

    def _note_changed(self, conn: sqlite3.Connection, message_ids: Sequence[int]) -> None:
        """``note_changed``; inside a batch, once a message, when the batch commits.

        A reader sees a commit whole, so one entry a message tells it all: a
        flush's group commit (attempts opened, ended, next transactions
        started) logs each message once rather than up to three times.
        """
        if self._in_batch:
            self._batch_changed.update(dict.fromkeys(message_ids))
        else:
            note_changed(conn, message_ids)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if self._in_batch:
            yield conn  # part of the batch: committed (or rolled back) with it
            return
        begin_immediate(conn, self._max_busy_wait_s)
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite ends it itself on a full disk or an I/O error
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._committed()

    # -- intake ---------------------------------------------------------------

    def add_message(
        self,
        parsed: ParsedMessage,
        *,
        account: str | None = None,
        now: datetime | None = None,
        drop_file: str | None = None,
        not_before: datetime | None = None,
        dsn: DsnRequest | None = None,
    ) -> MessageSnapshot:
        """Store one message and its recipients (and DSN request); one transaction.

        ``drop_file`` (the identity of the drop-folder file it came from) is
        recorded in the same transaction: see :meth:`stored_drop_files`.
        ``not_before`` schedules it (see ``insert_message``).
        """
        now = now or utc_now()
        with self._write() as conn:
            message_id = insert_message(
                conn, parsed, account=account, now=now, dsn=dsn, not_before=not_before
            )
            if drop_file is not None:
                record_drop_import(conn, drop_file, message_id)
            snapshot = self._snapshot(message_id)
        return snapshot

    def stored_drop_files(self) -> set[str]:
        """Drop files whose message is committed but whose removal was not yet confirmed."""
        return {row[0] for row in self._conn.execute("SELECT file FROM drop_imports")}

    def forget_drop_files(self, files: Sequence[str]) -> None:
        """The drop files are gone: forget them (one transaction)."""
        with self._write() as conn:
            conn.executemany("DELETE FROM drop_imports WHERE file = ?", [(f,) for f in files])

    # -- reading --------------------------------------------------------------

    def get(self, message_id: int) -> MessageSnapshot:
        return self._snapshot(message_id)

    def messages(self, state: MessageState | None = None) -> list[MessageSnapshot]:
        """Every message (or those in ``state``), oldest first."""
        where, params = ("WHERE state = ?", (state.value,)) if state else ("", ())
        rows = list(
            map(
                MessageRow._make,
                self._conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages {where} ORDER BY id", params
                ),
            )
        )
        recipients: dict[int, list[RecipientSnapshot]] = {}
        recipient_rows = self._conn.execute(
            "SELECT r.message_id, r.address, r.state, r.reply FROM recipients r"
            + (" JOIN messages m ON m.id = r.message_id WHERE m.state = ?" if state else "")
            + " ORDER BY r.message_id, r.position",
            params,
        )
        for message_id, address, rstate, reply in recipient_rows:
            recipients.setdefault(message_id, []).append(
                RecipientSnapshot(address, RecipientState(rstate), reply)
            )
        return [_message_from_row(row, recipients.get(row.id, [])) for row in rows]

    def waiting_ids(self) -> set[int]:
        """Messages a flush (of any process) claimed whose own transaction is not under
        way yet: ``sending`` in the store, but waiting for their turn on a connection.

        A session sends one message at a time and marks each as under way
        (``start_transaction``) just before anything of it goes on the wire,
        so what a person is shown as ``sending`` is what the server is getting.
        """
        return {
            row[0]
            for row in self._conn.execute(
                f"SELECT id FROM messages WHERE sending = {CLAIMED} AND state = ?",
                (MessageState.SENDING.value,),
            )
        }

    def data_version(self) -> int:
        """A number that changes whenever *another* connection commits (``PRAGMA data_version``).

        This connection's own commits leave it alone, so a window that hears
        about its own changes through the bus can poll this cheaply to notice
        what other processes (``sendmail``, a command-line flush) changed.
        """
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def ids(self) -> list[int]:
        return [row[0] for row in self._conn.execute("SELECT id FROM messages ORDER BY id")]

    def raw(self, message_id: int) -> bytes:
        row = self._conn.execute(
            "SELECT raw FROM bodies WHERE message_id = ?", (message_id,)
        ).fetchone()
        if row is None:
            self._require(message_id)
            raise BodyPruned(message_id)
        return bytes(row[0])

    def _small_bodies(self, message_ids: Sequence[int]) -> dict[int, bytes]:
        """The bodies of the messages named, by id, in one query (for small messages only:
        a claim holds them all until they are sent)."""
        if not message_ids:
            return {}
        where, param = _id_filter("message_id", message_ids)
        return {
            message_id: bytes(raw)
            for message_id, raw in self._conn.execute(
                f"SELECT message_id, raw FROM bodies WHERE {where}", param
            )
        }

    def _body_to_send(self, message_id: int, size: int) -> bytes | BodySource:
        """A claimed message's body: read whole when small, else streamed while it is sent."""
        if size <= INLINE_BODY_BYTES:
            return self.raw(message_id)
        return StoredBody(self.path, message_id, size)

    def attempts(self, message_id: int) -> list[AttemptRecord]:
        self._require(message_id)
        rows = self._conn.execute(
            "SELECT id, message_id, started_at, ended_at, account, server, outcome, error,"
            " replies, sent_bytes, data_completed, transcript"
            " FROM attempts WHERE message_id = ? ORDER BY id",
            (message_id,),
        ).fetchall()
        return [
            AttemptRecord(
                id=attempt_id,
                message_id=owner,
                started_at=_from_text(started_at) or utc_now(),
                ended_at=_from_text(ended_at),
                account=account,
                server=server,
                outcome=outcome,
                error=error,
                replies=tuple(AttemptReply.from_json(item) for item in json.loads(replies)),
                sent_bytes=sent_bytes,
                data_completed=bool(data_completed),
                transcript=transcript,
            )
            for (
                attempt_id, owner, started_at, ended_at, account, server, outcome, error,
                replies, sent_bytes, data_completed, transcript,
            ) in rows
        ]  # fmt: skip

    def counts(self) -> dict[MessageState, int]:
        counts = dict.fromkeys(MessageState, 0)
        for state, count in self._conn.execute(
            "SELECT state, COUNT(*) FROM messages GROUP BY state"
        ):
            counts[MessageState(state)] = count
        return counts

    def due_ids(self, now: datetime | None = None, *, unscheduled: bool = True) -> list[int]:
        """Queued and deferred messages whose time has come; never held or claimed.

        A queued message without a time (new mail) counts only with
        ``unscheduled``: ``flush --due`` and the window's automatic sending
        leave it to a person (``relay.schedule``).
        """
        rows = self._conn.execute(
            "SELECT id FROM messages WHERE sending = 0 AND held = 0 AND"
            " state IN ('queued', 'deferred') AND"
            + (
                " (next_attempt_at IS NULL OR next_attempt_at <= ?)"
                if unscheduled
                else " (state = 'deferred' OR next_attempt_at IS NOT NULL)"
                " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            )
            + " ORDER BY id",
            (_to_text(now or utc_now()),),
        )
        return [row[0] for row in rows]

    def waiting(self) -> list[Waiting]:
        """Deferred and scheduled messages, not held, not being sent: what may go by itself.

        Two ranges of the ``(state, next_attempt_at)`` index, so the queued
        messages nobody scheduled are never read: the window asks after every
        change it shows, and over 100,000 queued messages the query written as
        one ``state IN (…)`` took 12-31 ms against 0.05.
        """
        from relay.schedule import Waiting

        epoch = datetime.min.replace(tzinfo=UTC)  # deferred without a time: due now
        return [
            Waiting(message_id, sender, account, _from_text(next_at) or epoch, state == "deferred")
            for message_id, sender, account, next_at, state in self._conn.execute(
                "SELECT id, sender, account, next_attempt_at, state FROM messages"
                " WHERE sending = 0 AND held = 0 AND (state = 'deferred'"
                " OR (state = 'queued' AND next_attempt_at IS NOT NULL))"
            )
        ]

    def schedule(self, message_ids: Sequence[int], moment: datetime) -> list[MessageSnapshot]:
        """Send these queued or deferred messages not before ``moment``; all or nothing."""
        moment_text = _to_text(moment)

        def schedule_one(message_id: int) -> None:
            state = self.get(message_id).state
            if state not in (MessageState.QUEUED, MessageState.DEFERRED, MessageState.HELD):
                raise OutboxError(f"message {message_id} is {state}: nothing to send later")
            self._conn.execute(
                "UPDATE messages SET next_attempt_at = ? WHERE id = ?", (moment_text, message_id)
            )

        return self._change_each(message_ids, schedule_one)

    def schedule_unscheduled(
        self, message_ids: Sequence[int], moment: datetime
    ) -> list[MessageSnapshot]:
        """Give ``moment`` to those of these messages that are new mail without a time.

        Only queued messages without a time, not held and not being sent, change;
        the others are left as they are. One transaction.
        """
        moment_text = _to_text(moment)
        ids = list(dict.fromkeys(message_ids))
        with self._write() as conn:
            chosen: list[int] = []
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                chosen += [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM messages WHERE state = 'queued' AND held = 0"
                        " AND sending = 0 AND next_attempt_at IS NULL AND id IN"
                        f" ({', '.join('?' * len(part))})",
                        part,
                    )
                ]
            conn.executemany(
                "UPDATE messages SET next_attempt_at = ? WHERE id = ?",
                [(moment_text, message_id) for message_id in chosen],
            )
            self._note_changed(conn, chosen)
            snapshots = [self._snapshot(message_id) for message_id in chosen]
        return snapshots

    # -- accounts a provider throttled (``relay.throttle``) ---------------------------

    def account_pauses(self) -> dict[str, AccountPause]:
        """Every recorded pause, by account (running or over: ``level`` needs the last)."""
        from relay.throttle import AccountPause, Limit

        return {
            account: AccountPause(account, datetime.fromisoformat(until), Limit(kind), reply, level)
            for account, until, kind, reply, level in self._conn.execute(
                "SELECT account, until, limit_kind, reply, level FROM account_pauses"
            )
        }

    def pause_account(self, pause: AccountPause) -> None:
        """Record ``pause`` (replacing the account's last); one transaction."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO account_pauses (account, until, limit_kind, reply, level)"
                " VALUES (?, ?, ?, ?, ?)",
                (pause.account, _to_text(pause.until), pause.limit.value, pause.reply, pause.level),
            )

    def end_account_pauses(self, accounts: Iterable[str]) -> None:
        """Forget the pauses of ``accounts`` (mail went through them again)."""
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM account_pauses WHERE account = ?", [(a,) for a in accounts]
            )

    def _require(self, message_id: int) -> None:
        if self._conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone():
            return
        raise NoSuchMessage(message_id)

    def _snapshot(self, message_id: int) -> MessageSnapshot:
        found = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if found is None:
            raise NoSuchMessage(message_id)
        row = MessageRow._make(found)
        recipients = [
            RecipientSnapshot(address, RecipientState(state), reply)
            for address, state, reply in self._conn.execute(
                "SELECT address, state, reply FROM recipients WHERE message_id = ?"
                " ORDER BY position",
                (message_id,),
            )
        ]
        return _message_from_row(row, recipients)

    def snapshots(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """The messages named, in that order, read in two queries (missing ids are skipped)."""
        rows = self._message_rows(message_ids)
        recipients = self._recipient_rows(message_ids)
        return [_message_from_row(rows[i], recipients.get(i, ())) for i in message_ids if i in rows]

    def _message_rows(self, message_ids: Sequence[int]) -> dict[int, MessageRow]:
        """The ``MessageRow`` of each message named, by id.

        One query whatever the number of ids: they travel as one JSON array
        parameter (no limit on the number of SQL variables to mind).
        """
        where, param = _id_filter("id", message_ids)
        return {
            row.id: row
            for row in map(
                MessageRow._make,
                self._conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where}", param),
            )
        }

    def _dsn_requests(self, message_ids: Sequence[int]) -> dict[int, DsnRequest]:
        """The DSN each named message asked for (most asked for none); one query."""
        if not message_ids:
            return {}
        from relay.dsn import DsnRequest

        where, param = _id_filter("message_id", message_ids)
        return {
            message_id: DsnRequest(notify, ret, envid)
            for message_id, notify, ret, envid in self._conn.execute(
                f"SELECT message_id, notify, ret, envid FROM dsn_requests WHERE {where}", param
            )
        }

    def dsn_request(self, message_id: int) -> DsnRequest | None:
        """What delivery status notifications the message asked for, or None."""
        return self._dsn_requests([message_id]).get(message_id)

    def _recipient_rows(self, message_ids: Sequence[int]) -> dict[int, list[RecipientSnapshot]]:
        """Each named message's recipients in their order, by message id; one query."""
        recipients: dict[int, list[RecipientSnapshot]] = {}
        where, param = _id_filter("message_id", message_ids)
        for message_id, address, state, reply in self._conn.execute(
            "SELECT message_id, address, state, reply FROM recipients"
            f" WHERE {where} ORDER BY message_id, position",
            param,
        ):
            recipients.setdefault(message_id, []).append(
                RecipientSnapshot(address, _RECIPIENT_STATES[state], reply)
            )
        return recipients

    def _recipient_positions(self, message_ids: Sequence[int]) -> dict[tuple[int, str], list[int]]:
        """Where each address stands among its message's recipients; one query.

        A verdict is written by (message, position), the table's key: by address
        each update would scan every recipient of the message, and a message to
        thousands of recipients would take seconds to settle (their square).
        """
        positions: dict[tuple[int, str], list[int]] = {}
        where, param = _id_filter("message_id", message_ids)
        for message_id, position, address in self._conn.execute(
            f"SELECT message_id, position, address FROM recipients WHERE {where}", param
        ):
            positions.setdefault((message_id, address), []).append(position)
        return positions

    def _recipient_states(self, message_id: int) -> list[RecipientState]:
        return [
            RecipientState(row[0])
            for row in self._conn.execute(
                "SELECT state FROM recipients WHERE message_id = ?", (message_id,)
            )
        ]

    def _rederive(self, message_id: int) -> MessageState:
        """Write the message's state from its recipients and flags (inside a transaction)."""
        held, sending = self._conn.execute(
            "SELECT held, sending FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        state = derive_message_state(
            self._recipient_states(message_id), held=bool(held), sending=bool(sending)
        )
        self._conn.execute("UPDATE messages SET state = ? WHERE id = ?", (state.value, message_id))
        return state

    # -- a person's commands ----------------------------------------------------

    def hold(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """Keep messages out of every flush until released."""
        return self._change_each(message_ids, self._hold_one)

    def _hold_one(self, message_id: int) -> None:
        if self.get(message_id).state is MessageState.SENT:
            raise OutboxError(f"message {message_id} is already sent")
        (sending,) = self._conn.execute(
            "SELECT sending FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if sending == UNDER_WAY:
            raise OutboxError(
                f"message {message_id} is being sent now (its transaction with the server"
                " is under way) and may be delivered: it was not held"
            )
        self._conn.execute("UPDATE messages SET held = 1 WHERE id = ?", (message_id,))

    def start_transactions(self, message_ids: Sequence[int]) -> list[bool]:
        """Mark claimed messages' transactions as under way, unless held now; one each.

        True for each that may be sent. The flush asks just before anything
        of a transaction goes on the wire; ``hold`` refuses a message so
        marked (and holds one merely claimed, which the flush then hands
        back), and both are write transactions, so a hold and a start never
        cross.

        The mark need not survive a power loss, so its commit is not synced
        (``_unsynced``; a lock-step flush asks once a message): recovery hands
        a message without it back as not tried, which is true of any message
        whose final dot never left, and a message whose final dot may have
        left has its attempt row, synced before the dot, which recovery reads
        as under way whatever the mark says (``interrupted``).
        """
        conn = self._conn
        with self._unsynced(), self._write():
            allowed = [
                conn.execute(
                    f"UPDATE messages SET sending = {UNDER_WAY}"
                    " WHERE id = ? AND sending != 0 AND held = 0",
                    (message_id,),
                ).rowcount
                == 1
                for message_id in message_ids
            ]
            self._note_changed(conn, [i for i, ok in zip(message_ids, allowed, strict=True) if ok])
            return allowed

    @contextmanager
    def _unsynced(self) -> Iterator[None]:
        """A commit inside the block (not part of a batch) is not synced.

        For marks that need not survive a power loss: with WAL such a commit
        is one write of the log and no ``fdatasync``, and the next synced
        commit syncs it too, since the log is synced as a whole, in order.
        Inside a batch it is synced with the batch.
        """
        conn = self._conn
        light = not self._in_batch
        if light:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            if light:
                conn.execute("PRAGMA synchronous = FULL")

    def start_transaction(self, message_id: int) -> bool:
        """``start_transactions`` for one message."""
        (allowed,) = self.start_transactions([message_id])
        return allowed

    def hand_back(self, message_ids: Sequence[int], note: str) -> list[MessageSnapshot]:
        """Release claims on messages the server never saw, saying so (``note``).

        No attempt is counted and nothing else changes: a deferred message
        keeps its next try, a queued one its place.
        """

        def hand_back_one(message_id: int) -> None:
            self._conn.execute(
                "UPDATE messages SET sending = 0, last_error = ? WHERE id = ?", (note, message_id)
            )

        return self._change_each(message_ids, hand_back_one)

    def deferred_waiting(self, now: datetime | None = None) -> tuple[int, datetime | None]:
        """How many deferred messages wait for a later try, and when the first is due."""
        count, first = self._conn.execute(
            "SELECT COUNT(*), MIN(next_attempt_at) FROM messages WHERE state = 'deferred'"
            " AND held = 0 AND sending = 0 AND next_attempt_at > ?",
            (_to_text(now or utc_now()),),
        ).fetchone()
        return int(count), _from_text(first)

    def release(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        def release_one(message_id: int) -> None:
            if self.get(message_id).state is MessageState.SENT:
                raise OutboxError(f"message {message_id} is already sent")
            self._conn.execute("UPDATE messages SET held = 0 WHERE id = ?", (message_id,))

        return self._change_each(message_ids, release_one)

    def retry(
        self, message_ids: Sequence[int], *, now: datetime | None = None
    ) -> list[MessageSnapshot]:
        """Make named messages due now; every recipient not ``sent`` is owed again.

        Naming a message is the explicit "send again" that also covers its
        ``uncertain`` recipients (they may receive it twice; the caller warns).
        Recipients already ``sent`` are never touched.
        """

        def retry_one(message_id: int) -> None:
            self._conn.execute(
                "UPDATE recipients SET state = 'pending' WHERE message_id = ?"
                " AND state IN ('deferred', 'failed', 'uncertain')",
                (message_id,),
            )
            self._conn.execute(
                "UPDATE messages SET next_attempt_at = NULL, deferred_since = NULL WHERE id = ?",
                (message_id,),
            )

        return self._change_each(message_ids, retry_one)

    def replace_message(self, message_id: int, parsed: ParsedMessage) -> MessageSnapshot:
        """Put ``parsed`` (an edited copy) in place of a held or queued message; one transaction.

        Its sender, subject, size and body become the copy's, and its recipients
        the copy's envelope, all pending: what storing the copy anew would give,
        keeping the message's id, account, schedule and history. Refused
        (``OutboxError``, nothing changed) unless the message is, inside this
        transaction, held or queued, claimed by no flush, and no recipient has
        it already (sent) or may have (uncertain).
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT state, sending FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise NoSuchMessage(message_id)
            state, sending = MessageState(row[0]), row[1]
            if state not in (MessageState.HELD, MessageState.QUEUED) or sending:
                shown = MessageState.SENDING if sending else state
                raise OutboxError(
                    f"message {message_id} is {shown} now: only a held or queued message"
                    " can be replaced"
                )
            if any(
                recipient in (RecipientState.SENT, RecipientState.UNCERTAIN)
                for recipient in self._recipient_states(message_id)
            ):
                raise OutboxError(
                    f"message {message_id} has already gone to some of its recipients"
                )
            conn.execute(
                "UPDATE messages SET sender = ?, subject = ?, size = ?, needs_smtputf8 = ?,"
                " eight_bit = ? WHERE id = ?",
                (
                    parsed.sender,
                    parsed.subject,
                    len(parsed.raw),
                    int(parsed.needs_smtputf8),
                    int(parsed.eight_bit),
                    message_id,
                ),
            )
            conn.execute("UPDATE bodies SET raw = ? WHERE message_id = ?", (parsed.raw, message_id))
            conn.execute("DELETE FROM recipients WHERE message_id = ?", (message_id,))
            conn.executemany(
                "INSERT INTO recipients (message_id, position, address, state) VALUES (?, ?, ?, ?)",
                [
                    (message_id, position, address, RecipientState.PENDING.value)
                    for position, address in enumerate(parsed.recipients)
                ],
            )
            self._rederive(message_id)
            self._note_changed(conn, (message_id,))
            snapshot = self._snapshot(message_id)
        return snapshot

    def failed_ids(self) -> list[int]:
        return [
            row[0] for row in self._conn.execute("SELECT id FROM messages WHERE state = 'failed'")
        ]

    def delete(self, message_ids: Sequence[int]) -> list[int]:
        """Remove messages, their recipients, bodies and attempts; one transaction."""
        ids = list(dict.fromkeys(message_ids))
        with self._write() as conn:
            for message_id in ids:
                row = conn.execute(
                    "SELECT sending FROM messages WHERE id = ?", (message_id,)
                ).fetchone()
                if row is None:
                    raise NoSuchMessage(message_id)
                if row[0]:
                    raise OutboxError(f"message {message_id} is being sent; stop the flush first")
            conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
            self._note_changed(conn, ids)
        return ids

    # -- retention --------------------------------------------------------------

    def prune_sent_bodies(self, sent_before: datetime, limit: int | None = None) -> list[int]:
        """Drop the bodies of messages sent before ``sent_before``; one transaction.

        Only ``sent`` messages (every recipient sent, none being sent) lose
        their body; their rows, recipients and attempts stay as history. A
        message is as old as its last finished attempt. At most ``limit``
        bodies, when given (the window prunes a few at a time: freeing
        thousands of large bodies takes seconds). The ids pruned.
        """
        with self._write() as conn:
            pruned = [
                row[0]
                for row in conn.execute(
                    "DELETE FROM bodies WHERE message_id IN (SELECT b.message_id FROM bodies b"
                    f" JOIN messages m ON m.id = b.message_id WHERE {_SENT_BEFORE} LIMIT ?)"
                    " RETURNING message_id",
                    (_to_text(sent_before), -1 if limit is None else limit),
                )
            ]
            self._note_changed(conn, pruned)
        return sorted(pruned)

    def purge_sent(self, sent_before: datetime | None = None) -> list[int]:
        """Remove ``sent`` messages (sent before ``sent_before``, or all) whole; one transaction."""
        cutoff = _to_text(sent_before) if sent_before is not None else "9999"
        with self._write() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    f"DELETE FROM messages AS m WHERE {_SENT_BEFORE} RETURNING id", (cutoff,)
                )
            ]
            self._note_changed(conn, ids)
        ids.sort()
        return ids

    def pruned(self, message_ids: Sequence[int] | None = None) -> set[int]:
        """Which of the messages (default: all) were sent and had their body pruned."""
        where, params = ("", ()) if message_ids is None else _id_filter("m.id", message_ids)
        return {
            row[0]
            for row in self._conn.execute(
                "SELECT m.id FROM messages m WHERE NOT EXISTS"
                " (SELECT 1 FROM bodies b WHERE b.message_id = m.id)"
                + (f" AND {where}" if where else ""),
                params,
            )
        }

    def _change_each(
        self, message_ids: Sequence[int], change: Callable[[int], None]
    ) -> list[MessageSnapshot]:
        """Apply ``change`` to every message and re-derive its state: all or nothing."""
        ids = list(dict.fromkeys(message_ids))
        with self._write() as conn:
            for message_id in ids:
                self._require(message_id)
                change(message_id)
                self._rederive(message_id)
            self._note_changed(conn, ids)
            snapshots = [self._snapshot(message_id) for message_id in ids]
        return snapshots

    # -- the attempt manager's writes -------------------------------------------

    def claim(
        self,
        message_ids: Iterable[int],
        *,
        include_held: bool = False,
        changed: list[MessageSnapshot] | None = None,
    ) -> list[OutgoingMessage]:
        """Mark messages as being sent and hand back what is still owed.

        Messages already claimed, held, or owing nobody are skipped. One
        transaction, so two flushes can never claim the same message; a few
        queries for the whole batch, not a few per message. The snapshots of
        the claimed messages are added to ``changed``, when given, for a
        caller that announces them (a flush from the command line has no
        listener, and skips making them).

        The claim need not survive a power loss, so its commit is not synced
        (``_unsynced``; about 5-10 ms of ``fdatasync`` a claim here, on the
        event loop): nothing of a message is sent before its transaction
        starts, and the final dot leaves only after a synced commit (the
        attempt's record), which syncs the claim with it. A claim lost with
        the power leaves the message as it was before, owed; the recovery
        treats one that survived the same way.
        """
        from relay.report import OutgoingMessage

        ids = list(dict.fromkeys(message_ids))
        claimed: list[OutgoingMessage] = []
        snapshots: list[MessageSnapshot] = []
        announce = changed is not None
        with self._unsynced(), self._write() as conn:
            rows = self._message_rows(ids)
            recipients = self._recipient_rows(ids)
            bodies = self._small_bodies(
                [i for i in ids if i in rows and rows[i].size <= INLINE_BODY_BYTES]
            )
            dsn_requests = self._dsn_requests(ids)
            states: list[tuple[str, int]] = []
            for message_id in ids:
                row = rows.get(message_id)
                if row is None:
                    continue
                if row.sending or (row.held and not include_held):
                    continue
                owned = recipients.get(message_id, [])
                owed = tuple(r.address for r in owned if r.state in OWED)
                if not owed:
                    continue
                state = derive_message_state(
                    [r.state for r in owned], held=bool(row.held), sending=True
                )
                states.append((state.value, message_id))
                claimed.append(
                    OutgoingMessage(
                        id=message_id,
                        sender=row.sender,
                        recipients=owed,
                        body=bodies.get(message_id) or self._body_to_send(message_id, row.size),
                        needs_smtputf8=bool(row.needs_smtputf8),
                        eight_bit=bool(row.eight_bit),
                        dsn=dsn_requests.get(message_id),
                    )
                )
                if announce:
                    snapshots.append(_message_from_row(row._replace(state=state.value), owned))
            conn.executemany("UPDATE messages SET sending = 1, state = ? WHERE id = ?", states)
            self._note_changed(conn, [message_id for _, message_id in states])
        if changed is not None:
            changed += snapshots
        return claimed

    def start_attempt(
        self,
        message_id: int,
        *,
        account: str,
        server: str,
        now: datetime | None = None,
        data_completed: Sequence[str] | None = None,
    ) -> int:
        """Open an attempt row (and count the attempt); one transaction.

        ``data_completed``, when given, are the accepted recipients of an
        attempt whose final dot is about to leave: the row is written already
        marked, as ``mark_data_completed`` would (one statement instead of two).
        """
        (attempt_id,) = self.start_attempts(
            [AttemptStart(message_id, account, server, now or utc_now(), data_completed)]
        )
        return attempt_id

    def start_attempts(self, starts: Sequence[AttemptStart]) -> list[int]:
        """``start_attempt`` for several messages (one each) in two statements; their ids.

        The final-dot records of a flush's sessions share a commit: their
        attempt rows go in with one multi-row ``INSERT … RETURNING`` and the
        attempt counts with one ``UPDATE``, rather than two statements each.
        """
        if not starts:
            return []
        values: list[object] = []
        for start in starts:
            completed = start.data_completed
            values += (
                start.message_id,
                _to_text(start.now),
                start.account,
                start.server,
                int(completed is not None),
                json.dumps(list(completed or ())),
            )
        ids = [start.message_id for start in starts]
        with self._write() as conn:
            returned = dict(
                conn.execute(
                    "INSERT INTO attempts (message_id, started_at, account, server,"
                    " data_completed, accepted) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(starts))
                    + " RETURNING message_id, id",
                    values,
                ).fetchall()
            )
            where, param = _id_filter("id", ids)
            conn.execute(f"UPDATE messages SET attempts = attempts + 1 WHERE {where}", param)
            self._note_changed(conn, ids)
        if len(returned) != len(starts):
            raise ValueError("start_attempts takes at most one attempt per message")
        return [returned[message_id] for message_id in ids]

    def mark_data_completed(self, attempt_id: int, accepted: Sequence[str]) -> None:
        """The final dot is on the wire: from here a lost reply means *uncertain*."""
        with self._write() as conn:
            conn.execute(
                "UPDATE attempts SET data_completed = 1, accepted = ? WHERE id = ?",
                (json.dumps(list(accepted)), attempt_id),
            )

    def finish_attempt(
        self,
        message_id: int,
        attempt_id: int | None,
        verdicts: dict[str, Verdict],
        *,
        outcome: str,
        error: str | None,
        next_attempt_at: datetime | None,
        replies: Sequence[AttemptReply] = (),
        sent_bytes: int = 0,
        transcript: str = "",
        now: datetime | None = None,
    ) -> MessageSnapshot:
        """Record settled verdicts, release the claim and close the attempt; one transaction."""
        (snapshot,) = self.finish_attempts(
            [
                AttemptEnd(
                    message_id,
                    attempt_id,
                    verdicts,
                    outcome=outcome,
                    error=error,
                    next_attempt_at=next_attempt_at,
                    replies=replies,
                    sent_bytes=sent_bytes,
                    transcript=transcript,
                    now=now or utc_now(),
                )
            ]
        )
        return snapshot

    def finish_attempts(self, ends: Sequence[AttemptEnd]) -> list[MessageSnapshot]:
        """``finish_attempt`` for several messages in one transaction and a few statements.

        A recipient already ``sent`` is never changed. The message's new state
        is derived here from the recipients as they will stand, so each
        message costs one row per table rather than a read-back per message.
        """
        if not ends:
            return []
        snapshots: list[MessageSnapshot] = []
        with self._write() as conn:
            ids = list(dict.fromkeys(end.message_id for end in ends))
            rows = self._message_rows(ids)
            recipients = self._recipient_rows(ids)
            positions = self._recipient_positions(ids)
            recipient_updates: list[tuple[str, str | None, int, int]] = []
            message_updates: list[tuple[object, ...]] = []
            attempt_updates: list[tuple[object, ...]] = []
            for end in ends:
                message_id, verdicts = end.message_id, end.verdicts
                row = rows.get(message_id)
                if row is None:
                    raise NoSuchMessage(message_id)
                now_text = _to_text(end.now)
                for address, verdict in verdicts.items():
                    recipient_updates.extend(
                        (verdict.state.value, verdict.reply, message_id, position)
                        for position in positions.get((message_id, address), ())
                    )
                owned = [
                    RecipientSnapshot(r.address, settled.state, settled.reply)
                    if r.state is not RecipientState.SENT
                    and (settled := verdicts.get(r.address)) is not None
                    else r
                    for r in recipients.get(message_id, ())
                ]
                recipients[message_id] = owned
                deferred = any(v.state is RecipientState.DEFERRED for v in verdicts.values())
                deferred_since = (row.deferred_since or now_text) if deferred else None
                kept = row.sending if end.keep_claim else 0
                state = derive_message_state(
                    [r.state for r in owned], held=bool(row.held), sending=bool(kept)
                ).value
                next_text = _to_text(end.next_attempt_at)
                message_updates.append(
                    (kept, state, end.error, next_text, deferred_since, message_id)
                )
                row = row._replace(
                    state=state,
                    next_attempt_at=next_text,
                    last_error=end.error,
                    sending=kept,
                    deferred_since=deferred_since,
                )
                rows[message_id] = row
                if end.attempt_id is not None:
                    attempt_updates.append(
                        (
                            now_text,
                            end.outcome,
                            end.error,
                            json.dumps([reply.to_json() for reply in end.replies]),
                            end.sent_bytes,
                            end.transcript,
                            end.attempt_id,
                        )
                    )
                snapshots.append(_message_from_row(row, owned))
            conn.executemany(
                "UPDATE recipients SET state = ?, reply = ? WHERE message_id = ? AND position = ?"
                " AND state != 'sent'",
                recipient_updates,
            )
            conn.executemany(
                "UPDATE messages SET sending = ?, state = ?, last_error = ?, next_attempt_at = ?,"
                " deferred_since = ? WHERE id = ?",
                message_updates,
            )
            conn.executemany(
                "UPDATE attempts SET ended_at = ?, outcome = ?, error = ?, replies = ?,"
                " sent_bytes = ?, transcript = ? WHERE id = ?",
                attempt_updates,
            )
            self._note_changed(conn, ids)
        return snapshots

    def release_claims(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """Give messages back untouched (a stop, refused credentials): they stay as they were."""

        def release_one(message_id: int) -> None:
            if self.get(message_id).state is MessageState.SENT:
                raise OutboxError(f"message {message_id} is already sent")
            self._conn.execute("UPDATE messages SET sending = 0 WHERE id = ?", (message_id,))

        return self._change_each(message_ids, release_one)

    def expire_due(self, lifetime_s: float, now: datetime | None = None) -> list[MessageSnapshot]:
        """Fail deferred messages whose queue lifetime is over; one transaction."""
        now = now or utc_now()
        cutoff = _to_text(now - timedelta(seconds=lifetime_s))
        ids = [
            row[0]
            for row in self._conn.execute(
                "SELECT id FROM messages WHERE state = 'deferred' AND sending = 0"
                " AND deferred_since IS NOT NULL AND deferred_since <= ?",
                (cutoff,),
            )
        ]

        def expire_one(message_id: int) -> None:
            self._conn.execute(
                "UPDATE recipients SET state = 'failed', reply = 'expired: ' || COALESCE(reply, '')"
                " WHERE message_id = ? AND state IN ('deferred', 'pending')",
                (message_id,),
            )
            self._conn.execute(
                "UPDATE messages SET next_attempt_at = NULL,"
                " last_error = 'expired: ' || COALESCE(last_error, 'not delivered in time')"
                " WHERE id = ?",
                (message_id,),
            )

        return self._change_each(ids, expire_one) if ids else []

    def deferred_since(self, message_id: int) -> datetime | None:
        row = self._conn.execute(
            "SELECT deferred_since FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return None if row is None else _from_text(row[0])

    def interrupted(self) -> list[Interrupted]:
        """Messages a dead process left claimed, with their last attempt.

        Only call this while holding the flush lock.
        """
        result: list[Interrupted] = []
        for message_id, sending in self._conn.execute(
            "SELECT id, sending FROM messages WHERE sending != 0"
        ).fetchall():
            under_way = sending == UNDER_WAY
            row = self._conn.execute(
                "SELECT id, data_completed, accepted FROM attempts WHERE message_id = ?"
                " AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
                (message_id,),
            ).fetchone()
            if row is None:
                result.append(Interrupted(message_id, None, False, [], under_way))
            else:
                attempt_id, data_completed, accepted = row
                result.append(
                    Interrupted(
                        message_id,
                        attempt_id,
                        bool(data_completed),
                        json.loads(accepted),
                        under_way=True,
                    )
                )
        return result


def _id_filter(column: str, ids: Sequence[int]) -> tuple[str, tuple[object]]:
    """A WHERE clause picking ``ids``: one parameter however many (a JSON array)."""
    if len(ids) == 1:
        return f"{column} = ?", (ids[0],)
    return f"{column} IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)


#: Messages (``m``) sent before the parameter: every recipient sent, none being sent;
#: as old as their last finished attempt.
_SENT_BEFORE = (
    "m.state = 'sent' AND m.sending = 0 AND COALESCE((SELECT MAX(a.ended_at) FROM attempts a"
    " WHERE a.message_id = m.id), m.created_at) < ?"
)


class MessageRow(NamedTuple):
    """A ``messages`` row as SQLite holds it: what a snapshot is made of, and the flags
    a claim or a finish needs (``_MESSAGE_COLUMNS`` reads them in this order)."""

    id: int
    state: str
    sender: str
    subject: str
    size: int
    created_at: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    account: str | None
    held: int
    #: 0, ``CLAIMED`` or ``UNDER_WAY``.
    sending: int
    needs_smtputf8: int
    eight_bit: int
    deferred_since: str | None


_MESSAGE_COLUMNS = ", ".join(MessageRow._fields)


class Interrupted(NamedTuple):
    """A message a dead process left claimed (``Outbox.interrupted``)."""

    message_id: int
    #: Its last attempt's row, if the attempt had one (``None``: never started).
    attempt_id: int | None
    #: Whether that attempt's final dot had left.
    data_completed: bool
    #: The recipients the server had accepted by then.
    accepted: list[str]
    #: Whether its transaction had started (``False``: merely claimed, never on the wire).
    under_way: bool = True


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """One attempt row to open, as ``Outbox.start_attempts`` writes it."""

    message_id: int
    account: str
    server: str
    now: datetime
    #: The accepted recipients when the final dot is about to leave (see ``start_attempt``).
    data_completed: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """One message's settled attempt, as ``Outbox.finish_attempts`` records it."""

    message_id: int
    attempt_id: int | None
    verdicts: dict[str, Verdict]
    outcome: str
    error: str | None
    next_attempt_at: datetime | None
    now: datetime
    replies: Sequence[AttemptReply] = ()
    sent_bytes: int = 0
    transcript: str = ""
    #: The message stays claimed: its sending goes on in a further transaction.
    keep_claim: bool = False


def _message_from_row(row: MessageRow, recipients: Sequence[RecipientSnapshot]) -> MessageSnapshot:
    next_at = row.next_attempt_at
    return MessageSnapshot(
        row.id,
        _MESSAGE_STATES[row.state],  # a flush makes three snapshots a message: no Enum() calls
        row.sender,
        row.subject,
        row.size,
        datetime.fromisoformat(row.created_at),
        row.attempts,
        None if next_at is None else datetime.fromisoformat(next_at),
        row.last_error,
        tuple(recipients),
        row.account,
    )


_MESSAGE_STATES: dict[object, MessageState] = {state.value: state for state in MessageState}
_RECIPIENT_STATES: dict[object, RecipientState] = {state.value: state for state in RecipientState}
