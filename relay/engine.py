"""The engine: one open outbox home, the one object the command line and the window hold.

``Engine.open(home)`` opens the store, and -- when no flush runs anywhere --
settles what a process that died left in ``sending``
(``relay.attempts.recover_interrupted``), so nobody is shown a flush that
is not running. It then offers what a person or a program asks of an
outbox: ``enqueue``, ``import_drop_folder``, ``hold`` / ``release`` /
``retry`` / ``schedule`` / ``replace`` / ``delete`` / ``purge_sent``,
``subscribe`` to its events, the table's rows (``read_listed``), and
``begin_flush``.

The engine owns the event bus (``bus``); the store publishes nothing. Each
verb announces what the store returned once the store has committed it, and
a flush's relaying manager and attempt managers publish on the same bus
after their own commits.

``begin_flush`` is the flush sequence, written here once: take the flush
lock (``relay.flushlock``; ``FlushRunning`` when another process holds it),
leave the store's checkpoints to a thread, import the drop folder, prune
bodies past their retention, and wire a ``RelayingManager`` from the home
(``relay.flush.prepare_flush``). Whatever fails on the way releases the
lock. The ``Flush`` it returns holds the lock until it is closed; its
``run`` starts by recovering interrupted attempts (inside the lock, in
``RelayingManager.run``) and returns only once no session of it still runs,
so closing it after ``run`` never lets another flush take over claims a
session still sends.

What it must not do: import Qt (the window wraps it; the command line
uses it as it is), decide or record an outcome (the attempt manager does),
or grow a second copy of what the modules it composes already do -- it is
wiring, kept small. The command line's sendmail intake does not open one:
a mail client starts ``outbox sendmail`` once per message, and it stores
through ``relay.store.database.enqueue`` alone, for its start-up time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from relay.errors import FlushRunning
from relay.events import EventBus, MessageChanged, MessageDeleted, MessageQueued
from relay.flushlock import FlushLock
from relay.store.database import BUSY_TIMEOUT_S, DB_NAME
from relay.store.outbox import Outbox, utc_now

if TYPE_CHECKING:
    from datetime import datetime

    from relay.attempts import SettledCallback
    from relay.dropfolder import DropImport
    from relay.dsn import DsnRequest
    from relay.events import MessageSnapshot, Subscriber
    from relay.flush import FlushResult, RelayingManager
    from relay.message import ParsedMessage
    from relay.store.listing import Changes, Listed


#: What the store raises when its file cannot be read or written (locked by another
#: program, a full disk, an I/O error, a damaged file). The window names this, not the
#: database library: what the store is built on stays the store's business.
StoreError = sqlite3.Error


def store_path(home: Path) -> Path:
    """The store's file in ``home`` (to name it in a message about it)."""
    return home / DB_NAME


@contextmanager
def no_flush_running(home: Path) -> Iterator[None]:
    """Hold the flush lock of ``home`` for a block (``FlushRunning`` if another holds it).

    For work on the store that no flush may see half done (``outbox check --repair``).
    """
    with FlushLock(home):
        yield


class Engine:
    """One outbox home, open. Close it (or use ``with``) when done."""

    def __init__(self, home: Path, outbox: Outbox) -> None:
        self.home = home
        #: The store, for reading (snapshots, attempts, bodies, counts); changes go
        #: through the engine's verbs.
        self.outbox = outbox
        #: Where everything done through this engine is announced, after its commit.
        self.bus = EventBus()
        self._probe = FlushLock(home)
        self._flush: Flush | None = None
        self._reader: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        home: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        max_busy_wait_s: float = BUSY_TIMEOUT_S,
        background_checkpoints: bool = False,
        recover: bool = True,
    ) -> Engine:
        """The outbox at ``home`` (made, 0700, if need be), its interrupted attempts settled.

        ``busy_timeout_s`` and ``max_busy_wait_s`` are the store's
        (``Outbox.open``): how long a write waits for another process's lock.
        ``background_checkpoints`` leaves the store's checkpoints to a thread
        from the start (an outbox whose commits run on a window's loop).
        ``recover=False`` skips the recovery (intake, which must be quick).
        """
        outbox = Outbox.open(home, busy_timeout_s=busy_timeout_s, max_busy_wait_s=max_busy_wait_s)
        engine = cls(home, outbox)
        try:
            if background_checkpoints:
                outbox.checkpoint_in_background()
            if recover:
                engine._recover()
        except BaseException:
            outbox.close()
            raise
        return engine

    def close(self) -> None:
        """Close the store (and the table's reading connection).

        A flush begun here keeps its lock until it is closed itself: only it
        knows when no session of it runs any more.
        """
        self._closed = True
        try:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        finally:
            self.outbox.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- intake -------------------------------------------------------------------------

    def enqueue(
        self,
        parsed: ParsedMessage,
        *,
        account: str | None = None,
        not_before: datetime | None = None,
        dsn: DsnRequest | None = None,
    ) -> MessageSnapshot:
        """Store one message (committed when this returns); its snapshot."""
        snapshot = self.outbox.add_message(parsed, account=account, not_before=not_before, dsn=dsn)
        self.bus.publish(MessageQueued(snapshot))
        return snapshot

    def import_drop_folder(self) -> DropImport:
        """Take in what other programs left in ``<home>/drop/``; what was stored and refused."""
        from relay.dropfolder import import_drop_folder

        result = import_drop_folder(self.outbox, self.home)
        if result.imported and self.bus.listened:
            for snapshot in self.outbox.snapshots(result.imported):
                self.bus.publish(MessageQueued(snapshot))
        return result

    # -- a person's commands ------------------------------------------------------------

    def hold(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """Keep messages out of every flush until released."""
        return self._changed(self.outbox.hold(message_ids))

    def release(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """Let held messages go with the next flush."""
        return self._changed(self.outbox.release(message_ids))

    def retry(self, message_ids: Sequence[int]) -> list[MessageSnapshot]:
        """Make messages due now; every recipient not sent is owed again (``Outbox.retry``)."""
        return self._changed(self.outbox.retry(message_ids))

    def schedule(self, message_ids: Sequence[int], moment: datetime) -> list[MessageSnapshot]:
        """Send these messages not before ``moment`` (``Outbox.schedule``)."""
        return self._changed(self.outbox.schedule(message_ids, moment))

    def replace(self, message_id: int, parsed: ParsedMessage) -> MessageSnapshot:
        """Put an edited copy in place of a held or queued message (``Outbox.replace_message``)."""
        (snapshot,) = self._changed([self.outbox.replace_message(message_id, parsed)])
        return snapshot

    def delete(self, message_ids: Sequence[int]) -> list[int]:
        """Remove messages and everything stored about them; the ids removed."""
        return self._deleted(self.outbox.delete(message_ids))

    def purge_sent(self, sent_before: datetime | None = None) -> list[int]:
        """Remove sent messages (sent before ``sent_before``, or all); the ids removed."""
        return self._deleted(self.outbox.purge_sent(sent_before))

    def _changed(self, snapshots: list[MessageSnapshot]) -> list[MessageSnapshot]:
        for snapshot in snapshots:
            self.bus.publish(MessageChanged(snapshot))
        return snapshots

    def _deleted(self, message_ids: list[int]) -> list[int]:
        for message_id in message_ids:
            self.bus.publish(MessageDeleted(message_id))
        return message_ids

    # -- what it tells ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every event, after its commit; returns the unsubscribe."""
        return self.bus.subscribe(subscriber)

    def read_listed(self, *, after_id: int = 0, limit: int = -1) -> list[Listed]:
        """The table's rows (``relay.store.listing``): ids above ``after_id``, at most ``limit``.

        Read on a connection of its own (``table_reader``), so a long table
        read never holds up the store's writes; ``sqlite3.Error`` when the
        store cannot be read now (busy: try again later).
        """
        from relay.store.listing import list_messages

        return list_messages(self.table_reader, after_id=after_id, limit=limit)

    def read_first_listed(self, *, limit: int) -> tuple[int, list[Listed]]:
        """The store's change number and the table's first ``limit`` rows, read together:
        whatever changes after that number, ``read_changes`` from it reads."""
        from relay.store.listing import last_change, list_messages

        conn = self.table_reader
        conn.execute("BEGIN")
        try:
            return last_change(conn), list_messages(conn, limit=limit)
        finally:
            conn.execute("COMMIT")

    def read_changes(self, since: int, *, limit: int = -1) -> Changes | None:
        """The table's rows added, changed or deleted after change number ``since``
        (``relay.store.listing.changes_since``); None: read them all again."""
        from relay.store.listing import changes_since

        return changes_since(self.table_reader, since, limit=limit)

    @property
    def table_reader(self) -> sqlite3.Connection:
        """The connection the table's rows are read on (opened at the first use)."""
        if self._reader is None:
            from relay.store.database import connect

            if self._closed:
                raise sqlite3.ProgrammingError("the outbox is closed")
            self._reader = connect(self.outbox.path)
        return self._reader

    # -- flushing -----------------------------------------------------------------------

    @property
    def flushing(self) -> bool:
        """A flush of this engine holds the lock (begun, not yet closed)."""
        return self._flush is not None

    def flush_running_elsewhere(self) -> bool:
        """Another process (or another engine) holds the flush lock now."""
        if self._flush is not None:
            return False
        if self._probe.try_acquire():
            self._probe.release()
            return False
        return True

    def begin_flush(
        self,
        *,
        on_settled: SettledCallback | None = None,
        on_imported: Callable[[DropImport], None] | None = None,
        prune_limit: int | None = None,
    ) -> Flush:
        """Take the flush lock and prepare a flush; ``run`` it, then ``close`` it.

        ``FlushRunning`` when another flush holds the lock; the problem of
        preparing (no account, a store that cannot be written) as raised,
        with the lock released. ``on_imported`` hears what the drop folder
        gave before anything else can fail; ``on_settled`` each settled message.
        ``prune_limit``: prune at most that many expired bodies first (the
        window, which prunes the rest a few at a time: ``prune_expired_bodies``).
        """
        from relay.flush import prepare_flush
        from relay.retention import prune_expired_bodies

        if self._flush is not None:
            raise FlushRunning()
        lock = FlushLock(self.home)
        if not lock.try_acquire():
            raise FlushRunning()
        try:
            self.outbox.checkpoint_in_background()  # no commit of the flush waits for one
            imported = self.import_drop_folder()
            if on_imported is not None:
                on_imported(imported)
            prune_expired_bodies(self.outbox, self.home, utc_now(), prune_limit)  # [retention]
            manager = prepare_flush(self.home, self.outbox, on_settled=on_settled, bus=self.bus)
        except BaseException:
            lock.release()
            raise
        self._flush = Flush(self, lock, manager, imported)
        return self._flush

    def prune_expired_bodies(self, limit: int | None = None) -> list[int]:
        """Prune at most ``limit`` bodies ``[retention]`` no longer keeps; the ids pruned.

        Between flushes: a body a flush holds is never ``sent`` yet, so never pruned.
        """
        from relay.retention import prune_expired_bodies

        return prune_expired_bodies(self.outbox, self.home, utc_now(), limit)

    def _flush_closed(self, flush: Flush) -> None:
        if self._flush is flush:
            self._flush = None

    def _recover(self) -> None:
        """Settle what a dead process left in ``sending``, if no flush is running anywhere."""
        from relay.attempts import recover_interrupted

        if self._probe.try_acquire():
            try:
                self._changed(recover_interrupted(self.outbox, utc_now))
            finally:
                self._probe.release()


class Flush:
    """One flush of an engine, from its lock (``Engine.begin_flush``) to ``close``.

    ``run`` once; ``stop`` from anywhere on its loop (finish what is in
    flight, claim nothing more). ``close`` releases the flush lock: call it
    after ``run`` has returned or raised (it does only once no session of
    the flush runs), or instead of running it.
    """

    def __init__(
        self, engine: Engine, lock: FlushLock, manager: RelayingManager, imported: DropImport
    ) -> None:
        self._engine = engine
        self._lock = lock
        self._manager = manager
        #: What the drop folder gave as the flush began.
        self.imported = imported

    @property
    def result(self) -> FlushResult:
        """What the flush did (so far, and once it ended)."""
        return self._manager.result

    async def run(
        self,
        message_ids: Sequence[int] | None = None,
        *,
        due_only: bool = False,
        ignore_pauses: bool = False,
        skip_accounts: frozenset[str] = frozenset(),
    ) -> FlushResult:
        """Send what is due, or exactly ``message_ids`` (``RelayingManager.run``)."""
        return await self._manager.run(
            message_ids,
            due_only=due_only,
            ignore_pauses=ignore_pauses,
            skip_accounts=skip_accounts,
        )

    def stop(self) -> None:
        """Finish or abort what is in flight; claim nothing more."""
        self._manager.stop()

    def close(self) -> None:
        """Release the flush lock (once; later calls do nothing)."""
        self._lock.release()
        self._engine._flush_closed(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
