"""Due mail goes by itself while the window runs: deferred and scheduled messages.

Once a person has asked for a message to be sent -- it was tried and
deferred, or scheduled with "Send later…" / ``enqueue --at`` -- nobody should
have to remember it. ``AutoSender`` wakes when the next such message falls
due (``relay.schedule.next_wake_at``) and starts the window's own flush for
it (``FlushRunner.start`` with ``due_only``): the same flush, the same live
progress and the same safe end as a click, never a second way of sending.

What it leaves alone, and why:

- queued mail nobody asked to send yet (no time): sending new mail stays a
  person's click (``due_only``);
- ``uncertain`` and held messages: only a person sends those (the store's
  ``waiting`` and ``due_ids`` never list them);
- an account a provider paused (``relay.throttle``): nothing before its
  pause ends;
- an account that needs its password or sign-in (a flush said so): nothing
  until a person fixes it -- a wrong password tried every minute gets an
  account locked;
- a flush that ran and settled nothing (a person pressed Stop, a server
  down before any verdict): the next automatic one waits ``QUIET_AFTER_IDLE_S``,
  so nothing can spin.

The setting (the checkable ``action_auto_send``, on by default) is kept in
the window's settings. Each wait lasts at most ``RECHECK_S``: a machine that
slept, or a clock that moved, is noticed within that time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction

from gui.flush_runner import FlushRunner
from gui.local_time import moment_text
from relay.errors import OutboxError
from relay.flush import FlushResult
from relay.policy import Clock
from relay.schedule import Waiting, next_wake_at
from relay.store.outbox import Outbox, utc_now
from relay.throttle import AccountPause, pause_text

SETTING = "sending/auto_send"
TEXT = "Send deferred messages when they are due"
RECHECK_S = 60.0
QUIET_AFTER_IDLE_S = 60.0
COALESCE_MS = 100

log = logging.getLogger(__name__)


class AutoSender(QObject):
    """Starts the window's flush when a deferred or scheduled message falls due."""

    #: The next wake was (re)computed: a ``datetime`` or None (nothing to wake for).
    wake_changed = Signal(object)
    #: The accounts now paused, in words (``work: paused until 14:00 (daily sending limit)``).
    pauses_changed = Signal(list)
    #: An automatic flush started.
    started = Signal()

    def __init__(
        self,
        home: Path,
        outbox: Outbox,
        runner: FlushRunner,
        action: QAction,
        settings: QSettings,
        *,
        clock: Clock = utc_now,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._home = home
        self._outbox = outbox
        self._runner = runner
        self._settings = settings
        self._clock = clock
        self._needs_person: set[str] = set()
        self._running_auto = False
        self._quiet_until: datetime | None = None
        self._pause_texts: list[str] = []
        #: A comeback that came during a flush: when, to send after it what that flush
        #: did not try since (None: none waiting).
        self._comeback_at: datetime | None = None
        self.wake_at: datetime | None = None
        #: The flush running (or last run) was started by this, not by a person.
        self.last_flush_was_auto = False

        self.action = action
        action.setCheckable(True)
        action.setText(TEXT)
        action.setChecked(_stored_flag(settings.value(SETTING, True)))
        action.toggled.connect(self._on_toggled)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._wake)
        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(COALESCE_MS)
        self._coalesce.timeout.connect(self.reschedule)

        runner.running_changed.connect(self._on_running_changed)
        runner.lock_busy_changed.connect(lambda _busy: self.reschedule_soon())
        runner.finished.connect(self._on_flush_finished)

    # -- what the window tells it -------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.action.isChecked()

    @property
    def armed(self) -> bool:
        """A wake is set."""
        return self._timer.isActive()

    def reschedule_soon(self) -> None:
        """Something changed (messages, the store): recompute the next wake, coalesced."""
        if not self._coalesce.isActive():
            self._coalesce.start()

    def account_fixed(self, account: str) -> None:
        """A person gave ``account`` its password or sign-in: it may send by itself again."""
        self._needs_person.discard(account)
        self.reschedule_soon()

    def stop(self) -> None:
        self._timer.stop()
        self._coalesce.stop()

    def came_back(self, reason: str) -> None:
        """The network is back or the machine woke: deferred mail goes now, not at its
        next back-off tick (which grew while nothing could work)."""
        if not self.enabled:
            return
        if self._runner.running:
            if self._comeback_at is None:
                # The store's clock, to the second as it keeps attempts' times.
                self._comeback_at = utc_now().replace(microsecond=0)  # after this flush
            return
        now = self._clock()
        since, self._comeback_at = self._comeback_at, None
        try:
            pauses = self._outbox.account_pauses()
            account_of = self._account_resolver()
            ids = [
                item.message_id
                for item in self._outbox.waiting()
                if item.deferred
                and self._free(account_of(item), pauses, now)
                and not self._tried_since(item.message_id, since)
            ]
        except Exception:
            log.warning("cannot tell what is deferred", exc_info=True)
            return
        if not ids:
            return
        self._runner.probe_lock()
        if self._runner.lock_busy:
            return
        self._quiet_until = None
        self._running_auto = self.last_flush_was_auto = True
        if self._runner.start(ids, skip_accounts=frozenset(self._needs_person)):
            self.started.emit()
        else:
            self._running_auto = False

    def _tried_since(self, message_id: int, since: datetime | None) -> bool:
        """Whether the flush that ran when the comeback came tried the message after it.

        A wake and the network's return often arrive together: the first starts
        a flush, the second waits for its end, and must not send again at once
        what that flush has just tried (and seen deferred). A message tried
        before the comeback, by a flush started on a wake while the network was
        still away, does go again.
        """
        if since is None:
            return False
        attempts = self._outbox.attempts(message_id)
        return bool(attempts) and attempts[-1].started_at >= since

    def _free(self, account: str | None, pauses: dict[str, AccountPause], now: datetime) -> bool:
        if account is None or account in self._needs_person:
            return False
        pause = pauses.get(account)
        return pause is None or not pause.active(now)

    # -- deciding when --------------------------------------------------------------------

    def reschedule(self) -> None:
        """Set the timer for the next moment something may go by itself (or none)."""
        self._coalesce.stop()
        if self._runner.running:
            self._timer.stop()
            return  # nothing starts meanwhile; the flush's end reschedules
        now = self._clock()
        try:
            pauses = self._outbox.account_pauses()
            wake_at = self._next_wake(pauses) if self.enabled else None
        except Exception:  # the store or config.toml unreadable now: try again later
            log.warning("cannot tell when mail is due next", exc_info=True)
            pauses, wake_at = {}, now + timedelta(seconds=RECHECK_S)
        active = sorted(
            (p for p in pauses.values() if p.active(now)), key=lambda p: (p.until, p.account)
        )
        self._show_pauses(active, now)
        if wake_at is not None and self._quiet_until is not None:
            wake_at = max(wake_at, self._quiet_until)
        self.wake_at = wake_at
        self._timer.stop()
        moments = [m for m in (wake_at, active[0].until if active else None) if m]
        if moments:
            delay_s = (min(moments) - now).total_seconds()
            self._timer.start(int(max(0.0, min(delay_s, RECHECK_S)) * 1000))
        self.wake_changed.emit(wake_at)

    def _next_wake(self, pauses: dict[str, AccountPause]) -> datetime | None:
        waiting = self._outbox.waiting()
        if not waiting:
            return None
        return next_wake_at(waiting, self._account_resolver(), pauses, skip=self._needs_person)

    def _account_resolver(self) -> Callable[[Waiting], str | None]:
        """Which account a waiting message goes through (None: a person must say),
        from config.toml as it is now."""
        from relay.accounts import account_for_sender, find_account, load_accounts

        accounts = load_accounts(self._home)

        def account_of(item: Waiting) -> str | None:
            try:
                if item.account:
                    return find_account(accounts, item.account).name
                return account_for_sender(accounts, item.sender).name
            except OutboxError:
                return None

        return account_of

    def _wake(self) -> None:
        if not self.enabled or self._runner.running:
            return
        now = self._clock()
        if self.wake_at is None or self.wake_at > now:
            self.reschedule()  # early (a coarse timer, a capped wait) or a pause ended
            return
        self._runner.probe_lock()
        if self._runner.lock_busy:
            return  # another process is sending; the lock coming free reschedules
        self._running_auto = self.last_flush_was_auto = True
        started = self._runner.start(
            None, due_only=True, skip_accounts=frozenset(self._needs_person)
        )
        if started:
            self.started.emit()
        else:
            self._running_auto = False
            self._quiet_until = now + timedelta(seconds=QUIET_AFTER_IDLE_S)
            self.reschedule()

    # -- the runner -------------------------------------------------------------------------

    def _on_running_changed(self, running: bool) -> None:
        if running:
            self.last_flush_was_auto = self._running_auto
            self._timer.stop()

    def _on_flush_finished(self, result: FlushResult) -> None:
        self._needs_person |= result.needs_person
        if self._running_auto and not result.settled:
            # It settled nothing: never start the same nothing again at once.
            self._quiet_until = self._clock() + timedelta(seconds=QUIET_AFTER_IDLE_S)
        elif result.settled:
            self._quiet_until = None
        self._running_auto = False
        if self._comeback_at is not None:
            self.came_back("after the flush")
            if self._runner.running:
                return
        self.reschedule()

    @property
    def starting_or_running(self) -> bool:
        """A flush this started is starting or running (not a person's)."""
        return self._running_auto

    def _on_toggled(self, on: bool) -> None:
        self._settings.setValue(SETTING, on)
        if on:
            self._needs_person.clear()
            self._quiet_until = None
        self.reschedule()

    def _show_pauses(self, active: list[AccountPause], now: datetime) -> None:
        texts = [pause_text(pause, now, when=_until_text) for pause in active]
        if texts != self._pause_texts:
            self._pause_texts = texts
            self.pauses_changed.emit(texts)


def _until_text(moment: datetime, now: datetime) -> str:
    return moment_text(moment, now, relative=False)


def _stored_flag(value: object) -> bool:
    """A boolean as QSettings gives it back from an INI file (``"true"``/``"false"``)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)
