"""The relaying manager: one flush, "send what is due", over as many sessions as allowed.

It picks what is due, groups it by account, and spreads each account's
messages over up to ``max_connections`` concurrent relayers, each sending up to
``max_messages_per_connection`` messages on one connection (``deal``). Messages
are claimed batch by batch just before a relayer takes them, so stopping a
flush leaves everything not yet claimed exactly as it was.

Holding the flush lock is the caller's job (``FlushLock``): the window and the
command line must never both send the same message. That is only true if no
session of a flush outlives it, so ``run()`` returns or raises only once every
session of it has ended, however it ends:

- a session that fails unexpectedly (the store cannot be written -- locked by
  another program past the busy timeout, disk full, I/O error -- or a bug)
  ends the whole flush the way a kill would: every session's attempt manager
  stops writing (``AttemptManager.abandon``), every other session is
  cancelled (its connection dropped), and ``run()`` waits for all of them
  before it raises. What they had claimed stays claimed, for the recovery
  that opens the next flush: after the final dot *uncertain*, otherwise owed
  again. Nothing is sent twice behind anyone's back;
- a cancelled ``run()`` cancels its sessions and waits for them too.

Either way, and when all goes well, the sessions' shared commits
(``CommitGroup``) are finished and their writer thread joined before
``run()`` returns or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from relay.accounts import Account
from relay.attempts import (
    AttemptManager,
    CommitGroup,
    Settled,
    SettledCallback,
    recover_interrupted,
)
from relay.errors import ConfigError, OutboxError, StoreFailed
from relay.events import (
    AuthenticationRefused,
    EventBus,
    FlushFinished,
    FlushStarted,
    MessageChanged,
    MessageSnapshot,
)
from relay.login_turns import LoginTurns
from relay.policy import Clock, RetryPolicy
from relay.report import FailureKind, OutgoingMessage, SessionFailure, SessionInfo
from relay.states import OWED, MessageState
from relay.store.outbox import Outbox, utc_now
from relay.throttle import AccountPause

log = logging.getLogger(__name__)

#: The states of a message that still owes someone a copy.
UNSENT = frozenset(
    {MessageState.QUEUED, MessageState.DEFERRED, MessageState.HELD, MessageState.SENDING}
)
if TYPE_CHECKING:
    from relay.oauth.tokens import TokenSource
    from relay.relayer import ManagedRelayer

#: Due messages read per loop turn when a flush starts (about 4 ms of work each on
#: the window's loop; pages of 1,000 took 8-9 ms, and two ran between a 10 ms
#: timer's ticks). The pages are paced by ``PAGE_PAUSE_S``, as claims are.
SELECT_PAGE = 500
#: Messages claimed per transaction, the loop free between two: a connection's
#: batch (``max_messages_per_connection``, up to thousands) claimed in one went
#: with ~28 us of CPU per message on the loop -- 70 ms for 2,500, 185 ms with a
#: window's updates -- plus its commit.
CLAIM_PAGE = 100
#: The pause between two pages (of claims, and of the due messages read at the
#: start): a timer, not the next turn (``sleep(0)``). On the window's loop (qasync)
#: every ready callback is a zero timer, and two sessions' pages -- or one's next --
#: ran back to back before a 10 ms timer got its turn (16-17 ms of claiming between
#: two ticks, against 5-7 with the pause; measured, tests/bench/window.py figure
#: 6e). 25 pages cost a session 50 ms.
PAGE_PAUSE_S = 0.002

AccountChooser = Callable[[MessageSnapshot], Account]
#: An account's password: at once (the keyring), or awaited (a password command);
#: for an account that signs in with OAuth2, its token source.
PasswordLookup = Callable[[Account], "str | TokenSource | Awaitable[str | None] | None"]


class FlushErrorKind(Enum):
    """What kind of problem a ``FlushError`` is: whose move it is, and what it stopped."""

    #: A message's sender matches no account (nothing was tried for it).
    NO_ACCOUNT = "no account"
    #: An account's credentials could not be had: none stored, no keyring, a bad config.
    NO_CREDENTIALS = "no credentials"
    #: The server refused the account's credentials: the flush stopped for that account.
    AUTH_REFUSED = "auth refused"
    #: The store could not be written because another program held its lock.
    STORE_BUSY = "store busy"
    #: The store could not be written: the disk (or the user's quota) is full.
    DISK_FULL = "disk full"
    #: The store could not be written otherwise: an I/O error, a damaged file.
    STORE_FAILED = "store failed"
    #: A bug: the flush stopped on an error nobody expected.
    UNEXPECTED = "unexpected"


@dataclass(frozen=True, slots=True)
class FlushError:
    """A problem a person must fix, found by one flush: a value, not an exception.

    ``account`` names the account concerned (None when the problem is a
    message's or the store's), ``message_id`` the message when it is one
    message's; ``text`` is the one line a person reads (``str()`` of it).
    A window matches on ``kind`` and ``account``, never on the words.
    """

    kind: FlushErrorKind
    text: str
    account: str | None = None
    message_id: int | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class FlushResult:
    """What one flush did, for its exit status and its last words."""

    settled: list[Settled] = field(default_factory=list)
    #: Problems a person must fix (no account for a sender, no password, refused
    #: credentials): the messages concerned were left as they were.
    errors: list[FlushError] = field(default_factory=list)
    #: Things worth saying that are nobody's fault (a named message is held).
    notes: list[str] = field(default_factory=list)
    stopped: bool = False
    auth_refused: bool = False
    #: The messages this flush set out to send (due, or named and owed).
    asked: list[int] = field(default_factory=list)
    #: Accounts paused by a provider's limit (``relay.throttle``): before this flush
    #: (their messages were left as they were) or during it.
    paused: dict[str, AccountPause] = field(default_factory=dict)
    #: Accounts that need a person (a password, a sign-in): nothing went through them.
    needs_person: set[str] = field(default_factory=set)
    #: Accounts whose OAuth2 sign-in must be done again; their mail stays queued.
    sign_in_needed: list[str] = field(default_factory=list)

    def count(self, state: MessageState) -> int:
        return sum(1 for s in self.settled if s.message.state is state)

    @property
    def exit_code(self) -> int:
        """0 all sent; 1 something failed for good (or needs a person); 75 try later."""
        if self.errors or self.count(MessageState.FAILED):
            return 1
        if (
            self.paused
            or self.sign_in_needed
            or self.count(MessageState.DEFERRED)
            or self.count(MessageState.UNCERTAIN)
            or self.count(MessageState.QUEUED)
        ):
            return 75
        return 0


class _SessionEnd(Enum):
    """How one session of a flush ended, for its worker."""

    DONE = "done"
    #: The server refused the credentials (or the sign-in): no more sessions.
    REFUSED = "refused"
    #: Turned away at the greeting while another session was open: its batch waits.
    TURNED_AWAY = "turned away"


class RelayingManager:
    """Runs one flush. Create, ``await run()``; ``stop()`` from anywhere on the loop."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        choose_account: AccountChooser,
        password_for: PasswordLookup,
        policy: RetryPolicy,
        clock: Clock,
        on_settled: SettledCallback | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self._outbox = outbox
        #: Where the flush and its attempt managers publish, each after its commit.
        self.bus = bus if bus is not None else EventBus()
        self._choose_account = choose_account
        self._password_for = password_for
        self._policy = policy
        self._clock = clock
        self._on_settled = on_settled
        self._stopping = False
        #: The sessions running now: each one's relayer, attempt manager and task.
        self._sessions: dict[object, tuple[AttemptManager, asyncio.Task[object] | None]] = {}
        self._failure: Exception | None = None
        self._commits = CommitGroup(outbox)  # the sessions' final-dot records share commits
        self._account_relayers: dict[str, set[ManagedRelayer]] = {}
        self._sent_through: set[str] = set()
        self.result = FlushResult()

    @property
    def running_sessions(self) -> int:
        """How many sessions of this flush run now (none once ``run()`` has ended)."""
        return len(self._sessions)

    def stop(self) -> None:
        """Finish or abort what is in flight; claim nothing more."""
        self._stopping = True
        for relayer in list(self._sessions):
            stop = getattr(relayer, "stop", None)
            if stop is not None:
                stop()

    def _fail(self, exc: Exception) -> None:
        """A session failed unexpectedly: end the whole flush as a kill would.

        Every attempt manager stops writing first, so that the sessions being
        cancelled report nothing more (a store that just failed would make
        each of them wait out the busy timeout again); then every session but
        the caller's own (which is ending with the error) is cancelled.
        ``run()`` waits for them all and raises.
        """
        if self._failure is None:
            self._failure = exc
        self._stopping = True
        for manager, _ in self._sessions.values():
            manager.abandon()
        current = asyncio.current_task()
        for _, task in self._sessions.values():
            if task is not None and task is not current:
                task.cancel()

    async def run(
        self,
        message_ids: Sequence[int] | None = None,
        *,
        due_only: bool = False,
        ignore_pauses: bool = False,
        skip_accounts: frozenset[str] = frozenset(),
    ) -> FlushResult:
        """Send what is due, or exactly ``message_ids`` (whatever their back-off or pause).

        ``due_only`` leaves new mail nobody asked to send (queued without a
        time) to a person: only deferred and scheduled messages whose time
        has come go (``relay.schedule``). A paused account's messages stay as
        they are unless ``ignore_pauses`` (a person's click); those of
        ``skip_accounts`` stay as they are.
        """
        now = self._clock()
        try:
            self._publish_changed(recover_interrupted(self._outbox, self._clock))
            self._publish_changed(self._outbox.expire_due(self._policy.lifetime_s, now))
            selected = await self._select(message_ids, now, unscheduled=not due_only)
            pauses = self._outbox.account_pauses()
            if ignore_pauses and message_ids is None:
                selected += self._waiting_for_pauses(pauses, now, {s.id for s in selected})
        except sqlite3.Error as exc:  # no session has started: nothing else to end
            raise flush_error(exc, self._outbox.path) from exc
        self.result.asked = [snapshot.id for snapshot in selected]
        groups: dict[str, tuple[Account, list[MessageSnapshot]]] = {}
        for snapshot in selected:
            try:
                account = self._choose_account(snapshot)
            except OutboxError as exc:
                self.result.errors.append(
                    FlushError(
                        FlushErrorKind.NO_ACCOUNT, f"{snapshot.id}: {exc}", message_id=snapshot.id
                    )
                )
                continue
            groups.setdefault(account.name, (account, []))[1].append(snapshot)
        asked_through = {name: [m.id for m in msgs] for name, (_, msgs) in groups.items()}
        for name in list(groups):
            pause = pauses.get(name)
            if name in skip_accounts:
                del groups[name]
            elif pause is not None and pause.active(now) and not (message_ids or ignore_pauses):
                del groups[name]
                self.result.paused[name] = pause
        if not (due_only or message_ids or ignore_pauses):
            with contextlib.suppress(sqlite3.Error):  # only words: the flush goes on
                self._say_pauses_holding_mail(pauses, now, sending=set(groups))

        self.bus.publish(
            FlushStarted(
                sum(len(msgs) for _, msgs in groups.values()),
                sum(m.size for _, msgs in groups.values() for m in msgs),
            )
        )
        try:
            # Every session is a task of this group: leaving it, cancelled or
            # not, means every one of them has ended.
            async with asyncio.TaskGroup() as sessions:
                for account, msgs in groups.values():
                    sessions.create_task(self._run_account(account, msgs))
        finally:
            # The last commits, and the writer thread joined: none outlives the flush.
            try:
                self._commits.close()
            except Exception as exc:
                if self._failure is None:
                    self._failure = exc
            errors = list(self.result.errors)
            if self._failure is not None:
                self._settle_after_failure()
                # Said by what run() raises; the event carries it for the tray and status.
                errors.append(failure_error(self._failure, self._outbox.path))
            self.result.stopped = self._stopping
            if self._failure is None:
                self._end_pauses(pauses)
                self._send_after_pauses(asked_through)
            self.bus.publish(
                FlushFinished(
                    sent=self.result.count(MessageState.SENT),
                    deferred=self.result.count(MessageState.DEFERRED),
                    failed=self.result.count(MessageState.FAILED),
                    uncertain=self.result.count(MessageState.UNCERTAIN),
                    stopped=self._stopping,
                    error="; ".join(map(str, errors)) or None,
                    unsent=self._unsent() if self._stopping else 0,
                )
            )
        if self._failure is not None:
            error = flush_error(self._failure, self._outbox.path)
            if error is self._failure:
                raise error  # a bug: its own traceback, unchanged
            raise error from self._failure
        return self.result

    def _settle_after_failure(self) -> None:
        """Recover what the failed flush left claimed now, if the store takes a write at once.

        Without waiting for a lock (another wait would freeze a window for the
        busy timeout once more): if the store is still busy or broken, the
        messages stay claimed and the next flush recovers them first.
        """
        with contextlib.suppress(sqlite3.Error), self._outbox.waiting_at_most(0):
            self._publish_changed(recover_interrupted(self._outbox, self._clock))

    def _publish_changed(self, snapshots: Sequence[MessageSnapshot]) -> None:
        """Tell the bus what a commit of the flush's own changed (claims, expiries…)."""
        for snapshot in snapshots:
            self.bus.publish(MessageChanged(snapshot))

    def _claim(self, message_ids: Sequence[int]) -> list[OutgoingMessage]:
        """``Outbox.claim``, announced (snapshots only made when someone listens)."""
        changed: list[MessageSnapshot] | None = [] if self.bus.listened else None
        claimed = self._outbox.claim(message_ids, changed=changed)
        if changed:
            self._publish_changed(changed)
        return claimed

    def _unsent(self) -> int:
        """How many messages this flush set out to send still owe someone (after a stop)."""
        with contextlib.suppress(sqlite3.Error, OutboxError):
            return sum(
                1
                for snapshot in self._outbox.snapshots(self.result.asked)
                if snapshot.state in UNSENT
            )
        return 0

    async def _select(
        self, message_ids: Sequence[int] | None, now: datetime, *, unscheduled: bool = True
    ) -> list[MessageSnapshot]:
        """The messages to send. Read a page at a time with a loop turn between pages:
        tens of thousands of snapshots in one go would freeze a window on this loop."""
        if message_ids is None:
            due = self._outbox.due_ids(now, unscheduled=unscheduled)
            selected: list[MessageSnapshot] = []
            for start in range(0, len(due), SELECT_PAGE):
                if start:
                    await asyncio.sleep(PAGE_PAUSE_S)
                selected += self._outbox.snapshots(due[start : start + SELECT_PAGE])
            return selected
        chosen = []
        for message_id in dict.fromkeys(message_ids):
            snapshot = self._outbox.get(message_id)  # NoSuchMessage for a bad id
            if snapshot.state is MessageState.HELD:
                self.result.notes.append(f"{message_id}: held; release it first")
            elif any(r.state in OWED for r in snapshot.recipients):
                chosen.append(snapshot)
        return chosen

    async def _run_account(self, account: Account, messages: list[MessageSnapshot]) -> None:
        from relay.oauth.tokens import SignInNeeded
        from relay.password_command import PasswordCommandFailed

        try:
            password = await self._password(account)
        except SignInNeeded as exc:
            self._sign_in_needed(account, str(exc))
            return
        except PasswordCommandFailed as exc:
            # A locked password store or a helper that failed once: this account's
            # mail is deferred (its back-off applies), nothing fails for good.
            self.result.notes.append(f"{exc}; this account's mail was deferred")
            try:
                await self._defer(account, messages, str(exc))
            except Exception as failure:  # the store cannot be written: end the flush safely
                self._fail(failure)
            return
        except OutboxError as exc:
            self.result.errors.append(
                FlushError(
                    FlushErrorKind.NO_CREDENTIALS, f"{account.name}: {exc}", account=account.name
                )
            )
            self.result.needs_person.add(account.name)
            return
        except Exception as exc:  # a keyring that breaks: the flush ends, safely
            self._fail(exc)
            return
        batches = deal(
            [(m.id, m.size) for m in messages],
            max(1, account.max_messages_per_connection),
            max(1, account.max_connections),
        )
        queue: asyncio.Queue[list[int]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        refused = asyncio.Event()
        # The sessions open side by side up to AUTH; with credentials, one logs
        # in before the others (``LoginTurns``): a wrong password is tried once
        # per flush, not once per connection -- servers lock accounts for less.
        login_turns = LoginTurns(needed=bool(account.user))

        async def worker() -> None:
            try:
                while not (
                    self._stopping
                    or refused.is_set()
                    or login_turns.refused
                    or account.name in self.result.paused
                ):
                    try:
                        batch = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    claimed = await self._claim_in_pages(batch)
                    if not claimed:
                        continue
                    ended = await self._run_session(account, password, claimed, login_turns)
                    if ended is _SessionEnd.REFUSED:
                        refused.set()
                    elif ended is _SessionEnd.TURNED_AWAY:
                        # The server takes no more connections than are open: the
                        # batch waits for a session that ends, and this worker stops.
                        queue.put_nowait(batch)
                        return
            except Exception as exc:
                self._fail(exc)

        workers = max(1, min(account.max_connections, len(batches)))
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())

    async def _claim_in_pages(self, batch: list[int]) -> list[OutgoingMessage]:
        """Claim ``batch`` for one session, ``CLAIM_PAGE`` messages at a time, the loop
        free for ``PAGE_PAUSE_S`` between pages.

        Each page is its own transaction, and ``Outbox.claim`` skips what is
        claimed already, so no message is claimed twice. A flush stopping or
        failing meanwhile claims no further page; the session gets what was
        claimed and hands it back (a stop) or leaves it to the recovery (a
        failure), as it does a whole batch.
        """
        claimed: list[OutgoingMessage] = []
        for start in range(0, len(batch), CLAIM_PAGE):
            if start:
                await asyncio.sleep(PAGE_PAUSE_S)
                if self._stopping or self._failure is not None:
                    break
            claimed += self._claim(batch[start : start + CLAIM_PAGE])
        return claimed

    async def _password(self, account: Account) -> str | TokenSource | None:
        if not account.user:
            return None
        found = self._password_for(account)
        if inspect.isawaitable(found):
            return await found
        return found

    async def _defer(self, account: Account, messages: list[MessageSnapshot], why: str) -> None:
        """Record a deferral of every message of ``account`` that is still owed, for ``why``."""
        if self._stopping or self._failure is not None:
            return
        for start in range(0, len(messages), SELECT_PAGE):
            if start:
                await asyncio.sleep(0)
            claimed = self._claim([m.id for m in messages[start : start + SELECT_PAGE]])
            if not claimed:
                continue
            manager = AttemptManager(
                self._outbox,
                claimed,
                account=account.name,
                policy=self._policy,
                clock=self._clock,
                on_settled=self._settled,
                bus=self.bus,
            )
            ids = [m.id for m in claimed]
            manager.session_started(SessionInfo(account.name, account.host, account.port), ids)
            manager.session_failed(SessionFailure(FailureKind.PASSWORD, why), ids, "")

    def _settled(self, item: Settled) -> None:
        self.result.settled.append(item)
        if self._on_settled is not None:
            self._on_settled(item)

    async def _run_session(
        self,
        account: Account,
        password: str | TokenSource | None,
        messages: list[OutgoingMessage],
        login_turns: LoginTurns,
    ) -> _SessionEnd:
        """One relayer over one connection; how it ended."""
        from relay.relayer import ManagedRelayer

        def settled(item: Settled) -> None:
            self.result.settled.append(item)
            if item.message.state is MessageState.SENT:
                self._sent_through.add(account.name)
            if self._on_settled is not None:
                self._on_settled(item)

        manager = AttemptManager(
            self._outbox,
            messages,
            account=account.name,
            policy=self._policy,
            clock=self._clock,
            on_settled=settled,
            commits=self._commits,
            on_write_failed=self._fail,
            on_throttled=lambda pause: self._throttled(account.name, pause),
            bus=self.bus,
        )
        if self._failure is not None:  # the flush failed while this batch was claimed
            manager.abandon()
            return _SessionEnd.DONE
        siblings = self._account_relayers.setdefault(account.name, set())

        async def others_open() -> bool:
            for other in list(siblings):
                if other is not relayer and await other.opened():
                    return True
            return False

        relayer = ManagedRelayer(
            account,
            password,
            messages,
            manager,
            login_turns=login_turns,
            others_open=others_open,
        )
        self._sessions[relayer] = (manager, asyncio.current_task())
        siblings.add(relayer)
        try:
            if self._stopping or account.name in self.result.paused:
                relayer.stop()
            await relayer.run()
            manager.session_finished("")  # releases anything the relayer left unreported
        except asyncio.CancelledError:
            manager.session_finished("")  # an abandoned manager writes nothing
            raise
        finally:
            del self._sessions[relayer]
            siblings.discard(relayer)
        if manager.auth_failure is not None and manager.auth_failure.kind is FailureKind.SIGN_IN:
            self._sign_in_needed(account, manager.auth_failure.text, published=True)
            return _SessionEnd.REFUSED
        if manager.auth_failure is not None:
            self.result.auth_refused = True
            self.result.needs_person.add(account.name)
            if manager.auth_failure.no_mechanism:
                # No AUTH exchange took place (none offered, or none Outbox speaks):
                # the server never judged the credentials, so they are not what to fix.
                fix = f"`outbox account test {account.name}` shows what the server offers"
            elif account.oauth2 is not None:
                fix = f"sign in again with `outbox account login {account.name}`"
            elif account.password_command is not None:
                fix = "fix what its password command prints"
            else:
                fix = f"fix the password with `outbox account set {account.name} --password-stdin`"
            # A token endpoint's refusal names the account itself: once is enough.
            said = manager.auth_failure.text.removeprefix(f"account {account.name}: ")
            self.result.errors.append(
                FlushError(
                    FlushErrorKind.AUTH_REFUSED,
                    f"account {account.name}: {said}; the flush stopped for this account ({fix})",
                    account=account.name,
                )
            )
            return _SessionEnd.REFUSED
        if relayer.turned_away:
            return _SessionEnd.TURNED_AWAY
        return _SessionEnd.DONE

    def _end_pauses(self, pauses: dict[str, AccountPause]) -> None:
        """Mail went through a paused account again: its series of pauses is over.

        Best effort: a store that cannot take the write now keeps the old row,
        whose time is past anyway (the next pause just grows from it).
        """
        over = [a for a in self._sent_through if a in pauses and a not in self.result.paused]
        if over:
            try:
                self._outbox.end_account_pauses(over)
            except sqlite3.Error:
                log.warning("could not end the pauses of %s", ", ".join(over), exc_info=True)

    def _waiting_for_pauses(
        self, pauses: dict[str, AccountPause], now: datetime, selected: set[int]
    ) -> list[MessageSnapshot]:
        """The mail a running pause left untried (its time is the pause's end).

        A person's Send All sends it anyway, as it did before that mail was
        given a time (``_send_after_pauses``); a deferred message keeps waiting.
        """
        ends = {pause.until for pause in pauses.values() if pause.active(now)}
        if not ends:
            return []
        ids = [
            item.message_id
            for item in self._outbox.waiting()
            if not item.deferred and item.due_at in ends and item.message_id not in selected
        ]
        return self._outbox.snapshots(ids)

    def _say_pauses_holding_mail(
        self, pauses: dict[str, AccountPause], now: datetime, *, sending: set[str]
    ) -> None:
        """A running pause that holds back mail is said even when none of it is due.

        Mail a pause left untried waits for the pause's end as its time
        (``_send_after_pauses``), so a person's flush during the pause does not
        select it; the flush still says the account is paused, and until when.
        Only messages due exactly at a pause's end are looked at, and only
        while a pause runs.
        """
        running = {
            name: pause
            for name, pause in pauses.items()
            if pause.active(now) and name not in self.result.paused and name not in sending
        }
        if not running:
            return
        ends = {pause.until for pause in running.values()}
        for item in self._outbox.waiting():
            if item.due_at not in ends:
                continue
            try:
                name = self._choose_account(self._outbox.get(item.message_id)).name
            except OutboxError:
                continue
            pause = running.pop(name, None)
            if pause is not None:
                self.result.paused[name] = pause
                if not running:
                    return

    def _send_after_pauses(self, asked_through: dict[str, list[int]]) -> None:
        """New mail a paused account left untried goes by itself when the pause ends.

        A person asked for it to go (this flush). Left queued without a time,
        it would read as new mail nobody asked to send, which ``flush --due``
        and the window's automatic sending never touch: it would wait for
        another click however long ago the pause ended. Its time becomes the
        pause's end instead (as ``enqueue --at`` would give it). Best effort,
        like ``_end_pauses``: a store that cannot take the write now leaves it
        queued, where the next person's flush finds it.
        """
        for account, pause in self.result.paused.items():
            asked = asked_through.get(account)
            if not asked:
                continue
            try:
                self._publish_changed(self._outbox.schedule_unscheduled(asked, pause.until))
            except sqlite3.Error:
                log.warning("could not schedule the mail paused on %s", account, exc_info=True)

    def _throttled(self, account: str, pause: AccountPause) -> None:
        """A provider throttled ``account``: its sessions finish what is in flight and stop."""
        self.result.paused[account] = pause
        for relayer in list(self._account_relayers.get(account, ())):
            relayer.stop()

    def _sign_in_needed(self, account: Account, text: str, *, published: bool = False) -> None:
        """The account's mail stays queued and the flush stops for it: one line says why."""
        if account.name in self.result.sign_in_needed:
            return
        self.result.sign_in_needed.append(account.name)
        self.result.needs_person.add(account.name)
        self.result.notes.append(text)
        if not published:
            self.bus.publish(AuthenticationRefused(account.name, text))


#: Messages up to this size are one class, dealt in the order they came; above it,
#: each doubling of the size is a class of its own, dealt after the smaller ones.
SMALL_BYTES = 64 * 1024


def size_class(size_bytes: int) -> int:
    """0 up to ``SMALL_BYTES``; then 1, 2, 3 … for each doubling above it."""
    return max(0, (size_bytes - 1) // SMALL_BYTES).bit_length()


def deal(
    messages: Sequence[tuple[int, int]], per_connection: int, connections: int
) -> list[list[int]]:
    """Split ``(message id, size in bytes)`` pairs into batches, one per session.

    The rules, in order:

    1. Small messages first. The messages are put in order of ``size_class``
       (a stable sort: within a class, the order they came in), so a message
       of 20 KB never waits behind one of 10 MB, on its own connection or on
       another. Messages of one class keep their order, so an outbox of
       ordinary mail is dealt exactly as it was queued.
    2. Every connection, as soon as there is more than one message. Each
       round of batches that run at the same time holds up to ``connections``
       batches of at most ``per_connection`` messages; a round with fewer
       messages than that (the last, or the only one) is still spread over
       ``min(connections, messages)`` batches, rather than filling one batch
       and leaving the other connections idle.
    3. Dealt as cards are: within a round, the batches take their messages in
       turn. So the sessions work on neighbouring messages -- and the commit
       they share (``CommitGroup``) changes a few neighbouring rows of each
       table, the same few pages, instead of rows thousands apart (half the
       pages an fsync writes) -- and each session's share of a round holds
       about as many bytes as the others', large messages last.

    Each batch lists its messages in the order dealt: smaller classes first.
    """
    ordered = [
        message_id for message_id, _ in sorted(messages, key=lambda item: size_class(item[1]))
    ]
    batches: list[list[int]] = []
    round_size = per_connection * connections
    for start in range(0, len(ordered), round_size):
        dealt = ordered[start : start + round_size]
        count = min(connections, len(dealt))
        batches += [dealt[index::count] for index in range(count)]
    return batches


def flush_error(failure: Exception, store: Path | None = None) -> Exception:
    """What a flush that ended on ``failure`` raises: a plain line for a store error.

    With ``store`` the line ends naming the file and what to do about it
    (``relay.machineproblems``): a full disk, a damaged store, another
    program holding the lock.
    """
    if isinstance(failure, sqlite3.Error):
        from relay.machineproblems import explain

        problem = explain(failure, store=store) if store is not None else None
        return StoreFailed(
            f"the flush stopped: the outbox could not be written ({failure});"
            " every connection of the flush was closed first, and the next flush"
            " takes up what it left unfinished" + (f" -- {problem}" if problem else ""),
            busy=_store_busy(failure),
        )
    return failure


def failure_error(failure: Exception, store: Path | None = None) -> FlushError:
    """The ``FlushError`` of a flush that ended on ``failure`` (what ``run()`` raises)."""
    if isinstance(failure, sqlite3.Error):
        if _store_busy(failure):
            kind = FlushErrorKind.STORE_BUSY
        elif getattr(failure, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
            kind = FlushErrorKind.DISK_FULL
        else:
            kind = FlushErrorKind.STORE_FAILED
        return FlushError(kind, str(flush_error(failure, store)))
    return FlushError(
        FlushErrorKind.UNEXPECTED, f"the flush stopped on an unexpected error: {failure!r}"
    )


def _store_busy(error: sqlite3.Error) -> bool:
    """Another connection held the lock (SQLITE_BUSY, SQLITE_LOCKED): it may pass."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def prepare_flush(
    home: Path,
    outbox: Outbox,
    *,
    on_settled: SettledCallback | None = None,
    clock: Clock = utc_now,
    bus: EventBus | None = None,
) -> RelayingManager:
    """Wire a flush from what ``home`` holds: accounts, passwords, retry settings.

    A password is the keyring's, or what the account's password command
    prints (run when the account's turn comes, on the flush's loop); an
    account that signs in with OAuth2 gets a ``TokenSource``.
    """
    from relay.accounts import account_for_sender, find_account, load_accounts, queue_settings
    from relay.oauth.tokens import token_source_for

    accounts = load_accounts(home)
    if not accounts:
        raise ConfigError(
            "no account configured: add one with `outbox account add NAME --host HOST …`"
        )

    def choose_account(message: MessageSnapshot) -> Account:
        if message.account:
            return find_account(accounts, message.account)
        return account_for_sender(accounts, message.sender)

    def password_for(account: Account) -> str | TokenSource | Awaitable[str]:
        if account.oauth2 is not None:
            return token_source_for(home, account)
        if account.password_command is not None:
            from relay.password_command import run_password_command

            return run_password_command(account.name, account.password_command)
        return keyring_password(home, account.name)

    return RelayingManager(
        outbox,
        choose_account=choose_account,
        password_for=password_for,
        policy=RetryPolicy.from_config(queue_settings(home)),
        clock=clock,
        on_settled=on_settled,
        bus=bus,
    )


#: How long a flush waits for the keyring to give a password (an unlock prompt included).
KEYRING_TIMEOUT_S = 120.0
_keyring_turn = threading.Lock()


async def keyring_password(
    home: Path, account_name: str, *, timeout_s: float = KEYRING_TIMEOUT_S
) -> str:
    """The account's password from the keyring, read on a thread of its own.

    A keyring may never answer: a locked collection waiting on an unlock prompt
    nobody sees (a flush from cron), a Secret Service that hangs. Read on the
    loop, that froze the flush for good -- Ctrl-C and SIGTERM included, their
    handlers run on the loop -- with the flush lock held. Now the loop waits
    for a future: a stop still ends the flush, and after ``timeout_s`` the
    account's mail stays queued with one line saying why. The thread is a
    daemon, so a read that never returns does not keep the program alive;
    reads take turns, as keyring backends are not all safe across threads.
    """
    from relay.credentials import get_password
    from relay.errors import KeyringUnavailable

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def settle(password: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(password)

    def read() -> None:
        with _keyring_turn:
            try:
                password, error = get_password(home, account_name), None
            except BaseException as exc:  # handed to the loop, raised there
                password, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle, password, error)

    threading.Thread(target=read, name=f"keyring {account_name}", daemon=True).start()
    try:
        password = await asyncio.wait_for(answer, timeout_s)
    except TimeoutError:
        raise KeyringUnavailable(
            f"the keyring did not give the password of account {account_name} within"
            f" {timeout_s:g} s (is it locked, waiting for a password?): unlock it and"
            " flush again"
        ) from None
    if password is None:
        raise ConfigError(
            f"no password stored for account {account_name}: set one with"
            f" `outbox account set {account_name} --password-stdin`"
        )
    return password
