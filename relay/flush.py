"""The relaying manager: one flush, "send what is due", over as many sessions as allowed.

It picks what is due, groups it by account, and spreads each account's
messages over up to ``max_connections`` concurrent relayers, each sending up to
``max_messages_per_connection`` messages on one connection. Messages are
claimed batch by batch just before a relayer takes them, so stopping a flush
leaves everything not yet claimed exactly as it was.

Holding the flush lock is the caller's job (``FlushLock``): the window and the
command line must never both send the same message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from relay.accounts import Account
from relay.attempts import (
    AttemptManager,
    CommitGroup,
    Settled,
    SettledCallback,
    recover_interrupted,
)
from relay.errors import ConfigError, OutboxError
from relay.events import FlushFinished, FlushStarted, MessageSnapshot
from relay.outbox import Outbox, utc_now
from relay.policy import Clock, RetryPolicy
from relay.report import OutgoingMessage
from relay.states import OWED, MessageState

#: Due messages read per loop turn when a flush starts (about 5 ms of work each).
SELECT_PAGE = 1000

AccountChooser = Callable[[MessageSnapshot], Account]
PasswordLookup = Callable[[Account], str | None]


@dataclass(slots=True)
class FlushResult:
    """What one flush did, for its exit status and its last words."""

    settled: list[Settled] = field(default_factory=list)
    #: Problems a person must fix (no account for a sender, no password, refused
    #: credentials): the messages concerned were left as they were.
    errors: list[str] = field(default_factory=list)
    #: Things worth saying that are nobody's fault (a named message is held).
    notes: list[str] = field(default_factory=list)
    stopped: bool = False
    auth_refused: bool = False

    def count(self, state: MessageState) -> int:
        return sum(1 for s in self.settled if s.message.state is state)

    @property
    def exit_code(self) -> int:
        """0 all sent; 1 something failed for good (or needs a person); 75 try later."""
        if self.errors or self.count(MessageState.FAILED):
            return 1
        if (
            self.count(MessageState.DEFERRED)
            or self.count(MessageState.UNCERTAIN)
            or self.count(MessageState.QUEUED)
        ):
            return 75
        return 0


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
    ) -> None:
        self._outbox = outbox
        self._choose_account = choose_account
        self._password_for = password_for
        self._policy = policy
        self._clock = clock
        self._on_settled = on_settled
        self._stopping = False
        self._relayers: set[object] = set()
        self._commits = CommitGroup(outbox)  # the sessions' final-dot records share commits
        self.result = FlushResult()

    def stop(self) -> None:
        """Finish or abort what is in flight; claim nothing more."""
        self._stopping = True
        for relayer in list(self._relayers):
            stop = getattr(relayer, "stop", None)
            if stop is not None:
                stop()

    async def run(self, message_ids: Sequence[int] | None = None) -> FlushResult:
        """Send what is due, or exactly ``message_ids`` (whatever their back-off)."""
        now = self._clock()
        recover_interrupted(self._outbox, self._clock)
        self._outbox.expire_due(self._policy.lifetime_s, now)
        selected = await self._select(message_ids, now)
        groups: dict[str, tuple[Account, list[MessageSnapshot]]] = {}
        for snapshot in selected:
            try:
                account = self._choose_account(snapshot)
            except OutboxError as exc:
                self.result.errors.append(f"{snapshot.id}: {exc}")
                continue
            groups.setdefault(account.name, (account, []))[1].append(snapshot)

        self._outbox.bus.publish(
            FlushStarted(
                sum(len(msgs) for _, msgs in groups.values()),
                sum(m.size for _, msgs in groups.values() for m in msgs),
            )
        )
        try:
            await asyncio.gather(
                *(self._run_account(account, msgs) for account, msgs in groups.values())
            )
        finally:
            self.result.stopped = self._stopping
            self._outbox.bus.publish(
                FlushFinished(
                    sent=self.result.count(MessageState.SENT),
                    deferred=self.result.count(MessageState.DEFERRED),
                    failed=self.result.count(MessageState.FAILED),
                    uncertain=self.result.count(MessageState.UNCERTAIN),
                    stopped=self._stopping,
                    error="; ".join(self.result.errors) or None,
                )
            )
        return self.result

    async def _select(
        self, message_ids: Sequence[int] | None, now: datetime
    ) -> list[MessageSnapshot]:
        """The messages to send. Read a page at a time with a loop turn between pages:
        tens of thousands of snapshots in one go would freeze a window on this loop."""
        if message_ids is None:
            due = self._outbox.due_ids(now)
            selected: list[MessageSnapshot] = []
            for start in range(0, len(due), SELECT_PAGE):
                if start:
                    await asyncio.sleep(0)
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
        try:
            password = self._password_for(account) if account.user else None
        except OutboxError as exc:
            self.result.errors.append(f"{account.name}: {exc}")
            return
        batches = deal(
            [m.id for m in messages],
            max(1, account.max_messages_per_connection),
            max(1, account.max_connections),
        )
        queue: asyncio.Queue[list[int]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        refused = asyncio.Event()

        async def worker() -> None:
            while not (self._stopping or refused.is_set()):
                try:
                    batch = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                claimed = self._outbox.claim(batch)
                if claimed and await self._run_session(account, password, claimed):
                    refused.set()

        workers = max(1, min(account.max_connections, len(batches)))
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _run_session(
        self, account: Account, password: str | None, messages: list[OutgoingMessage]
    ) -> bool:
        """One relayer over one connection; true when the server refused our credentials."""
        from relay.relayer import ManagedRelayer

        def settled(item: Settled) -> None:
            self.result.settled.append(item)
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
        )
        relayer = ManagedRelayer(account, password, messages, manager)
        self._relayers.add(relayer)
        try:
            if self._stopping:
                relayer.stop()
            await relayer.run()
        finally:
            self._relayers.discard(relayer)
            manager.session_finished("")  # releases anything the relayer left unreported
        if manager.auth_failure is not None:
            self.result.auth_refused = True
            self.result.errors.append(
                f"account {account.name}: {manager.auth_failure.text};"
                " the flush stopped for this account (fix the password with"
                f" `outbox account set {account.name} --password-stdin`)"
            )
            return True
        return False


def deal(message_ids: Sequence[int], per_connection: int, connections: int) -> list[list[int]]:
    """Split ``message_ids`` into batches of at most ``per_connection``, one per session.

    The batches that run at the same time (each ``connections`` of them) take
    their messages in turn, as cards are dealt, rather than one a run of ids
    each: the sessions then work on neighbouring messages, and the commit they
    share (``CommitGroup``) changes a few neighbouring rows of each table --
    the same few pages -- instead of rows thousands apart, one page each.
    That halves the pages an fsync writes. The batches are as many, and as
    large, as cut in runs; each keeps its messages in order, and the earlier
    rounds of batches hold the earlier messages.
    """
    batches: list[list[int]] = []
    round_size = per_connection * connections
    for start in range(0, len(message_ids), round_size):
        dealt = message_ids[start : start + round_size]
        count = -(-len(dealt) // per_connection)
        batches += [list(dealt[index::count]) for index in range(count)]
    return batches


def prepare_flush(
    home: Path,
    outbox: Outbox,
    *,
    on_settled: SettledCallback | None = None,
    clock: Clock = utc_now,
) -> RelayingManager:
    """Wire a flush from what ``home`` holds: accounts, keyring passwords, retry settings."""
    from relay.accounts import account_for_sender, find_account, load_accounts, queue_settings
    from relay.credentials import get_password

    accounts = load_accounts(home)
    if not accounts:
        raise ConfigError(
            "no account configured: add one with `outbox account add NAME --host HOST …`"
        )

    def choose_account(message: MessageSnapshot) -> Account:
        if message.account:
            return find_account(accounts, message.account)
        return account_for_sender(accounts, message.sender)

    def password_for(account: Account) -> str:
        password = get_password(account.name)
        if password is None:
            raise ConfigError(
                f"no password stored for account {account.name}: set one with"
                f" `outbox account set {account.name} --password-stdin`"
            )
        return password

    return RelayingManager(
        outbox,
        choose_account=choose_account,
        password_for=password_for,
        policy=RetryPolicy.from_config(queue_settings(home)),
        clock=clock,
        on_settled=on_settled,
    )
