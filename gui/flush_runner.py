"""Running one flush at a time from the window, on the Qt loop through qasync.

``FlushRunner.start`` begins a flush of the window's engine
(``relay.engine.Engine.begin_flush``: the flush lock, the drop folder, a
``RelayingManager`` wired from the home) and runs it as an asyncio task on
the running loop; ``stop`` asks it to finish what is in flight and claim
nothing more. The flush is closed (its lock released) when the task ends,
however it ends -- and the task ends only after ``Flush.run`` has, which
returns or raises only once no session of the flush runs (a session that
fails takes the others down with it). Releasing it earlier would let the
next flush, here or in another process, take the claimed messages of a
session still sending for abandoned ones, and send them twice.

While this window is not flushing, the runner probes the lock once a second:
when another process (``outbox flush``) holds it, ``lock_busy`` is true and the
window keeps Send all disabled and says why, until it is free again.

The bodies ``[retention]`` no longer keeps are pruned a batch at a time
(``PRUNE_BATCH``) while no flush runs: once the window has shown and after
every flush, a batch, then the next one a moment later until none is left. A
window started over a hundred thousand long-sent messages stays responsive
(freeing that many large bodies in one go would freeze it for seconds); a
flush itself prunes at most one batch before it starts.

Nothing here decides or records an outcome: the engine's events tell the
window what happened, and ``finished`` hands over the ``FlushResult``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from relay.engine import Engine, Flush
from relay.errors import FlushRunning, OutboxError
from relay.flush import FlushResult
from relay.machineproblems import explain

LOCK_PROBE_MS = 1000
WARM_UP_MS = 300
#: Expired bodies pruned at once, and the pause between two batches: a few
#: tens of milliseconds each for bodies of some 50 kB.
PRUNE_BATCH = 200
PRUNE_PAUSE_MS = 50

log = logging.getLogger(__name__)


class FlushRunner(QObject):
    """Runs the window's flushes one at a time, holding the flush lock until no session runs."""

    #: A flush of this window started (True) or ended (False).
    running_changed = Signal(bool)
    #: Another process started (True) or ended (False) holding the flush lock.
    lock_busy_changed = Signal(bool)
    #: The flush ended; carries its ``FlushResult``.
    finished = Signal(FlushResult)
    #: A flush could not start, or stopped on an error: one line fit to show.
    problem = Signal(str)

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._flush: Flush | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # The engine settled what a dead process left "sending" when it opened, if
        # it found the lock free; a flush elsewhere holds it now or not.
        self._lock_busy = engine.flush_running_elsewhere()
        self._probe = QTimer(self)
        self._probe.setInterval(LOCK_PROBE_MS)
        self._probe.timeout.connect(self.probe_lock)
        self._probe.start()
        # What a flush imports on its way -- the sending side (aiosmtplib, the relayer:
        # ~35 ms) and, for accounts with a password, keyring (~110 ms) -- loads on a
        # thread of its own once the window has shown, not as a freeze of the window
        # in the first moments of the first flush.
        self._warm_up = threading.Thread(
            target=_warm_up, args=(engine.home,), name="outbox-warm-up", daemon=True
        )
        self._shut_down = False
        QTimer.singleShot(WARM_UP_MS, self, self._start_warm_up)
        self._prune = QTimer(self)
        self._prune.setSingleShot(True)
        self._prune.setInterval(PRUNE_PAUSE_MS)
        self._prune.timeout.connect(self.prune_some)
        self._prune.start(WARM_UP_MS)

    # -- what the window asks -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def stopping(self) -> bool:
        return self._task is not None and self._stopping

    @property
    def lock_busy(self) -> bool:
        """Another process holds the flush lock (as of the last probe)."""
        return self._lock_busy

    def start(self, message_ids: Sequence[int] | None = None, **options: Any) -> bool:
        """Send what is due, or exactly ``message_ids``; false (and ``problem``) if it cannot.

        ``options`` go to ``RelayingManager.run`` (``due_only``, ``ignore_pauses``,
        ``skip_accounts``): an automatic flush is this same flush, told what to leave.
        """
        if self._task is not None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.problem.emit("cannot send: the window's event loop is not running")
            return False
        try:
            flush = self._engine.begin_flush(prune_limit=PRUNE_BATCH)
        except FlushRunning:
            self._set_lock_busy(True)
            self.problem.emit(
                "another Outbox is sending from this outbox (a flush on the command line?);"
                " try again when it is done"
            )
            return False
        except Exception as exc:
            self._set_lock_busy(False)
            if not self._tell(exc):
                raise
            return False
        self._set_lock_busy(False)
        self._flush = flush
        self._stopping = False
        self._task = loop.create_task(self._run(flush, message_ids, options))
        self._task.add_done_callback(lambda task: self._cancelled_unstarted(task, flush))
        self.running_changed.emit(True)
        return True

    def stop(self) -> None:
        """Finish or abort the messages in flight, claim nothing more."""
        if self._flush is not None and not self._stopping:
            self._stopping = True
            self._flush.stop()
            self.running_changed.emit(True)  # the same flush, now stopping: redo enablement

    def abort(self) -> None:
        """Drop the flush now (cancel its task): a message in flight is settled as it stood.

        Its connection is dropped; if the final dot had gone out, the next start
        finds its recipients *uncertain* (the engine's recovery), never lost.
        """
        if self._task is not None:
            self._task.cancel()

    def shutdown(self) -> None:
        """The window is closing: no more probing; stop a flush that runs."""
        self._probe.stop()
        self._prune.stop()
        self._shut_down = True
        if self._warm_up.is_alive():
            self._warm_up.join()  # an import cut off at exit can take the interpreter down
        self.stop()

    def probe_lock(self) -> None:
        if self._task is not None:
            return
        self._set_lock_busy(self._engine.flush_running_elsewhere())

    # -- inside ---------------------------------------------------------------------------

    async def _run(
        self,
        flush: Flush,
        message_ids: Sequence[int] | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        try:
            await flush.run(message_ids, **(options or {}))
        except Exception as exc:
            if self._tell(exc):
                return
            # A bug: say so in one line, keep the window alive.
            log.exception("the flush stopped on an unexpected error")
            self.problem.emit(f"the flush stopped on an unexpected error: {exc!r}")
        finally:
            self._ended(flush)

    def prune_some(self) -> None:
        """Prune one batch of expired bodies, and come back for the next if there may be one.

        Not while a flush runs, here (its end comes back) or in another
        process (whose commits would keep this waiting on the window's loop).
        A store that cannot be written now is tried again after the next flush.
        """
        if self._task is not None or self._shut_down or self._lock_busy:
            return
        try:
            pruned = self._engine.prune_expired_bodies(PRUNE_BATCH)
        except Exception:
            log.warning("old bodies were not pruned this time", exc_info=True)
            return
        if len(pruned) == PRUNE_BATCH:
            self._prune.start(PRUNE_PAUSE_MS)

    def _cancelled_unstarted(self, task: asyncio.Task[None], flush: Flush) -> None:
        """A task cancelled before its first step (Stop Now right after Send) never
        runs ``_run``, so its ``finally`` never closes the flush (which holds the flush
        lock) nor says the runner is free: do it here. After ``_run`` ended, nothing."""
        if self._task is task:
            self._ended(flush)

    def _ended(self, flush: Flush) -> None:
        flush.close()
        self._task = None
        self._flush = None
        self._stopping = False
        self._prune.start(PRUNE_PAUSE_MS)
        self.running_changed.emit(False)
        self.finished.emit(flush.result)

    def _tell(self, exc: Exception) -> bool:
        """Emit ``exc`` as ``problem`` (a machine's in its own words); false if it is a bug."""
        problem = explain(exc, store=self._engine.outbox.path, home=self._engine.home)
        if problem is not None:
            self.problem.emit(str(problem))
            return True
        if isinstance(exc, OutboxError):
            self.problem.emit(str(exc))
            return True
        return False

    def _start_warm_up(self) -> None:
        if not self._shut_down:
            self._warm_up.start()

    def _set_lock_busy(self, busy: bool) -> None:
        if busy != self._lock_busy:
            self._lock_busy = busy
            self.lock_busy_changed.emit(busy)


def _warm_up(home: Path) -> None:
    """Import what a flush imports on its way: pure imports, nothing else runs here."""
    try:
        import relay.relayer  # noqa: F401
        from relay.accounts import load_accounts

        if any(account.user for account in load_accounts(home)):
            import keyring  # noqa: F401
    except Exception:  # the flush imports it again and says what is wrong
        log.debug("warming up the flush's imports failed", exc_info=True)
    # Modules live as long as the app: keep full collections off them (gui.garbage).
    gc.freeze()
