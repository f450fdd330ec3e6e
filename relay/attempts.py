"""The attempt manager: the only place an outcome gets a meaning.

One ``AttemptManager`` listens to one relayer session (it implements
``relay.report.RelayObserver``). For every report it applies the pure rules of
``relay.policy``, writes the result in one transaction, and publishes events
after the commit. The relayer never writes the store and never decides; this
class never talks SMTP.

What it writes, and when, is what makes the outbox crash-safe:

- ``transaction_started`` notes when the attempt began (the message is
  already claimed); its row is written with its first durable change;
- ``data_completed`` records, durably and before the final dot leaves, that
  the dot is leaving and which recipients the server had accepted: if the
  process dies before the verdict, recovery knows those recipients are
  *uncertain* rather than owed. One commit (one fsync) per message, the one
  the durability promise needs;
- ``transaction_finished`` settles every owed recipient and releases the
  claim. A settlement waits for the next such commit (or ``GROUP_S``) and is
  announced (events, the flush's lines) only after it, so nothing a person
  was shown can be lost, and a crash leaves at most the message in flight
  on each connection for recovery to call *uncertain*.

How a write is made, in three verbs: the manager *takes* what its next
commit holds (``AttemptManager.take_rows``: plain rows, decided on the event
loop), ``write_rows`` *writes* the rows of one or more managers in one
commit, and the manager is told the commit is *durable*
(``AttemptManager.rows_written``), which keeps the attempt ids it opened and
announces what it settled. A manager on its own writes its rows at once; a
flush's sessions share a ``CommitGroup``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import Any, Generic, TypeVar

from relay.events import (
    AttemptStarted,
    AuthenticationRefused,
    EventBus,
    MessageChanged,
    MessageSnapshot,
    PhaseChanged,
    ProgressMade,
    SessionFailed,
)
from relay.policy import (
    Clock,
    RetryPolicy,
    Verdict,
    attempt_outcome,
    expire,
    recipient_verdicts,
)
from relay.report import (
    FailureKind,
    OutgoingMessage,
    Reply,
    SessionFailure,
    SessionInfo,
    TransactionReport,
)
from relay.states import OWED, Phase, RecipientState
from relay.store.outbox import AttemptEnd, AttemptReply, AttemptStart, Outbox
from relay.throttle import AccountPause, Throttle, first_throttle, next_pause


@dataclass(frozen=True, slots=True)
class Settled:
    """A message whose attempt is over, as the flush reports it to a person."""

    message: MessageSnapshot
    outcome: str
    detail: str | None


SettledCallback = Callable[[Settled], None]
#: Told when a write the manager made on its own (a grouped settlement) failed.
WriteFailedCallback = Callable[[Exception], None]
ThrottledCallback = Callable[[AccountPause], None]

#: How long a settled outcome may wait for a commit it can share with others.
GROUP_S = 0.05
#: What a claimed message the server never saw is told (it keeps its place in the queue).
NOT_TRIED = "not tried: the connection closed before this message's turn"
#: What a message held after it was claimed, before its transaction started, is told.
HELD_BACK = "held before its transaction started: not sent"
#: What a message claimed by a flush that died before its turn is told (its place is kept).
NOT_TRIED_STOPPED = "not tried: Outbox stopped before this message's turn"

T = TypeVar("T")


@dataclass(slots=True)
class CommitRows:
    """What one manager's next commit writes: plain rows, decided on the event loop.

    Nothing in them refers to the manager, so ``write_rows`` may write them
    on any connection.
    """

    #: Attempt rows to open: final-dot records, and attempts that settle unopened.
    starts: list[AttemptStart] = field(default_factory=list)
    #: Attempt rows already open whose final dot is leaving: (attempt id, accepted).
    final_dots: list[tuple[int, Sequence[str]]] = field(default_factory=list)
    #: Settlements; one whose ``attempt_id`` is None closes the attempt ``starts`` opens.
    ends: list[AttemptEnd] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WrittenRows:
    """What the store gave back for one ``CommitRows``."""

    attempt_ids: list[int]  # one per start, in order
    snapshots: list[MessageSnapshot]  # one per end, in order


def write_rows(
    outbox: Outbox, shares: Sequence[CommitRows], may_start: Sequence[int] = ()
) -> tuple[list[WrittenRows], list[bool]]:
    """Write every share, and mark ``may_start``'s transactions under way, in one commit.

    Returns what each share wrote and, for each of ``may_start``, whether it
    may go (``Outbox.start_transactions``). Without shares only the marks are
    written, in a commit that need not be synced (see there). A few
    statements in all, however many sessions share the commit.
    """
    if not shares:
        return [], outbox.start_transactions(may_start)
    with outbox.batch():
        starts = [start for share in shares for start in share.starts]
        attempt_ids = outbox.start_attempts(starts)
        opened = {start.message_id: i for start, i in zip(starts, attempt_ids, strict=True)}
        for share in shares:
            for attempt_id, accepted in share.final_dots:
                outbox.mark_data_completed(attempt_id, accepted)
        ends = [
            end
            if end.attempt_id is not None
            else replace(end, attempt_id=opened.get(end.message_id))
            for share in shares
            for end in share.ends
        ]
        snapshots = outbox.finish_attempts(ends)
        allowed = outbox.start_transactions(may_start)
    written = []
    for share in shares:
        written.append(WrittenRows(attempt_ids[: len(share.starts)], snapshots[: len(share.ends)]))
        attempt_ids = attempt_ids[len(share.starts) :]
        snapshots = snapshots[len(share.ends) :]
    return written, allowed


@dataclass(frozen=True, slots=True)
class _Joined(Generic[T]):
    """A session waiting for the group's next commit: its final dot, or its next start."""

    manager: AttemptManager
    message_id: int
    future: asyncio.Future[T]


def _cancel_all(joined: Iterable[_Joined[Any]]) -> None:
    """Every joiner hears its session has ended: nothing of it goes on the wire."""
    for item in joined:
        item.future.cancel()


def _fail_all(joined: Iterable[_Joined[Any]], exc: BaseException) -> None:
    """Every joiner still waiting hears why the commit was not made."""
    for item in joined:
        if not item.future.done():
            item.future.set_exception(exc)


#: The name of the thread that makes a ``CommitGroup``'s commits.
WRITER_THREAD = "outbox-commit"
#: The longest a commit waits for the group's other sessions to join it (``CommitGroup``).
HOLD_S = 0.002
#: After a wait that ran out, this many commits go without waiting before the next try.
HOLD_RETRY_AFTER = 8

#: What ``write_rows`` returned for one commit, or what it raised.
Outcome = tuple[list[WrittenRows], list[bool]] | BaseException
#: A commit handed to the writer thread: the shares, the marks, the loop to tell.
_Commit = tuple[list[CommitRows], list[int], asyncio.AbstractEventLoop | None]


class CommitWriter:
    """One thread, with a connection of its own (``Outbox.twin``), that makes commits.

    SQLite and the fsync release the GIL, so the event loop goes on (a
    window repaints, other sessions read their replies) while a commit is
    synced. It takes plain rows (``write_rows``) and makes the commits in
    the order they were handed over. Once one is durable (or failed) its
    outcome is put on ``outcomes`` and, if the commit came with a loop,
    ``written`` is called there: one wake-up of the loop per commit. The
    connection is opened in the thread on its first commit and closed there
    by ``close``, which joins the thread.
    """

    def __init__(self, outbox: Outbox, written: Callable[[], None]) -> None:
        self._outbox = outbox
        self._written = written
        self._commits: SimpleQueue[_Commit | None] = SimpleQueue()
        #: Each commit's outcome, in order, once it is durable (or failed).
        self.outcomes: SimpleQueue[Outcome] = SimpleQueue()
        # A daemon: a process ending without ``close`` is not held up by it. A
        # commit cut short there is one a crash would cut; nothing of it was announced.
        self._thread = threading.Thread(target=self._run, name=WRITER_THREAD, daemon=True)
        self._thread.start()

    def write(
        self,
        shares: list[CommitRows],
        may_start: list[int],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        """Have the thread ``write_rows``; ``written`` is called in ``loop`` once it is durable."""
        self._commits.put((shares, may_start, loop))

    def _run(self) -> None:
        twin: Outbox | None = None
        try:
            while (commit := self._commits.get()) is not None:
                shares, may_start, loop = commit
                outcome: Outcome
                try:
                    if twin is None:
                        twin = self._outbox.twin()
                    outcome = write_rows(twin, shares, may_start)
                except BaseException as exc:  # told on the loop, where it is handled
                    outcome = exc
                self.outcomes.put(outcome)
                if loop is not None:
                    with contextlib.suppress(RuntimeError):  # closed: ``close`` saw to it
                        loop.call_soon_threadsafe(self._written)
        finally:
            if twin is not None:
                twin.close()

    def close(self) -> None:
        """Close the thread's connection and join the thread (after what was handed over)."""
        self._commits.put(None)
        self._thread.join()


@dataclass(slots=True)
class _InFlight:
    """A commit handed to the writer thread and not yet known durable on the loop."""

    final_dots: list[_Joined[None]]
    starts: list[_Joined[bool]]
    managers: list[AttemptManager]
    rows: list[CommitRows]


class CommitGroup:
    """One commit for the final-dot records of all of a flush's sessions, synced off the loop.

    The final dot must wait for a durable record (see ``data_completed``), and
    an fsync costs more than the rest of a small message's CPU. The commit is
    made once an event-loop turn passes in which nobody new joined, so the
    sessions that reach their final dot at about the same time share it: with
    four connections, four records (and the verdicts that ride along) for one
    fsync.

    The loop gathers the rows (``AttemptManager.take_rows``) and hands them
    to a ``CommitWriter``; it goes on while SQLite writes and syncs them.
    Only once the commit is durable, back on the loop, are its events
    published, each joiner's future done (the final dot may leave) and what
    was settled announced -- the order a commit made on the loop had. One
    commit is in flight at a time: who joins meanwhile shares the next, whose
    rows are taken once the last is durable (so each manager decides on
    what is on disk). A manager that must write on the loop first waits for
    the commit in flight (``finish_in_flight``). ``close`` ends it all; a
    flush calls it however it ends, so no writer thread outlives it.

    Its *members* are the sessions that joined it and have not ended. With
    one commit in flight at a time, four sessions left to themselves settle
    into two groups taking turns, each commit carrying two dots; so a commit
    waits (at most ``hold_s``) until every member has joined, and the four
    share one. A wait is worth it only while the members keep step: when one
    runs out (sessions far apart, as over a slow network), the next
    ``HOLD_RETRY_AFTER`` commits go without waiting.
    """

    def __init__(self, outbox: Outbox, *, hold_s: float = HOLD_S) -> None:
        self._outbox = outbox
        self._hold_s = hold_s
        self._final_dots: list[_Joined[None]] = []
        self._starts: list[_Joined[bool]] = []
        self._settling: list[AttemptManager] = []  # settlements only (``join_settlements``)
        self._seen = 0
        self._writer: CommitWriter | None = None
        self._in_flight: _InFlight | None = None
        self._members: dict[AttemptManager, None] = {}  # in the order they joined
        self._hold: asyncio.TimerHandle | None = None
        self._unheld = 0  # commits still to go without waiting (a wait ran out)

    @property
    def committing(self) -> bool:
        """Whether a commit is in the writer thread's hands now."""
        return self._in_flight is not None

    @property
    def holding(self) -> bool:
        """Whether the next commit is waiting for a member to join it."""
        return self._hold is not None

    def join_start(self, manager: AttemptManager, message_id: int) -> asyncio.Future[bool]:
        """Have the next commit mark ``message_id``'s transaction as under way, unless
        it was held (``Outbox.start_transaction``); the future holds whether it may go.

        With PIPELINING the next message's group goes out with a final dot, so
        the question rides on that dot's commit: no commit of its own.
        """
        return self._join(self._starts, manager, message_id)

    def join_final_dot(self, manager: AttemptManager, message_id: int) -> asyncio.Future[None]:
        """Have the next commit record that ``message_id``'s final dot is leaving.

        The future is done once the record is on disk, with whatever
        ``manager`` had waiting for a commit.
        """
        return self._join(self._final_dots, manager, message_id)

    def join_settlements(self, manager: AttemptManager) -> None:
        """Have the next commit write what ``manager`` has waiting for one.

        Nobody awaits it: a failure is told to the manager (``write_failed``).
        """
        self._schedule()
        if manager not in self._settling:
            self._settling.append(manager)
        self._joined(manager)

    def _join(
        self, joined: list[_Joined[T]], manager: AttemptManager, message_id: int
    ) -> asyncio.Future[T]:
        self._schedule()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        joined.append(_Joined(manager, message_id, future))
        self._joined(manager)
        return future

    def leave(self, manager: AttemptManager) -> None:
        """``manager``'s session has ended: no commit waits for it any more."""
        self._members.pop(manager, None)
        self._wait_no_longer()

    def _joined(self, manager: AttemptManager) -> None:
        self._members[manager] = None
        self._wait_no_longer()

    def _wait_no_longer(self) -> None:
        """If the next commit waits for its members and none is missing, it goes now."""
        if self._hold is not None and not self._missing():
            self._hold.cancel()
            self._hold = None
            asyncio.get_running_loop().call_soon(self._commit)

    def _missing(self) -> bool:
        """Whether a member still in session has not joined the next commit."""
        joined = {dot.manager for dot in self._final_dots}
        joined.update(start.manager for start in self._starts)
        joined.update(self._settling)
        for manager in list(self._members):
            if manager.abandoned or manager.session_over:
                del self._members[manager]
        return any(manager not in joined for manager in self._members)

    def _schedule(self) -> None:
        if not (self._final_dots or self._starts or self._settling or self._in_flight):
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        if self._in_flight is not None or self._hold is not None:
            return  # the in-flight commit's ``_written``, or the hold, comes back here
        joined = len(self._final_dots) + len(self._starts) + len(self._settling)
        if joined != self._seen:
            # Someone joined during the last turn: give the others one more turn
            # to reach their dot too. Each session joins once per commit, so
            # this waits at most one turn per session.
            self._seen = joined
            asyncio.get_running_loop().call_soon(self._commit)
            return
        if (self._final_dots or self._starts) and self._missing():
            if self._unheld == 0:
                self._hold = asyncio.get_running_loop().call_later(self._hold_s, self._hold_ran_out)
                return
            self._unheld -= 1
        self._seen = 0
        self._hand_over()

    def _hold_ran_out(self) -> None:
        """A member did not join in time: commit without it, and stop waiting for a while."""
        self._hold = None
        self._unheld = HOLD_RETRY_AFTER
        self._seen = 0
        self._hand_over()

    def _hand_over(self) -> None:
        """Take every joiner's rows and hand them to the writer thread as one commit."""
        final_dots, self._final_dots = _still_wanted(self._final_dots), []
        starts, self._starts = _still_wanted(self._starts), []
        settling, self._settling = self._settling, []
        shares: dict[AttemptManager, list[int]] = {}
        for dot in final_dots:
            shares.setdefault(dot.manager, []).append(dot.message_id)
        for manager in settling:
            if not manager.abandoned:
                shares.setdefault(manager, [])
        managers = list(shares)
        rows = [manager.take_rows(shares[manager]) for manager in managers]
        kept = [
            i for i, (m, r) in enumerate(zip(managers, rows, strict=True)) if shares[m] or r.ends
        ]
        managers, rows = [managers[i] for i in kept], [rows[i] for i in kept]
        if not managers and not starts:
            return
        if self._writer is None:
            self._writer = CommitWriter(self._outbox, self._written)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # no loop to come back to: ``finish_in_flight`` finishes it
        self._in_flight = _InFlight(final_dots, starts, managers, rows)
        self._writer.write(rows, [start.message_id for start in starts], loop)

    def _written(self) -> None:
        """The writer thread's wake-up: the commit in flight is durable (or failed)."""
        flight, writer = self._in_flight, self._writer
        if flight is None or writer is None:
            return  # finished already (``finish_in_flight``)
        try:
            outcome = writer.outcomes.get_nowait()
        except Empty:
            return  # finished already, and the commit now in flight is not yet durable
        self._in_flight = None
        self._finish(flight, outcome)
        if self._final_dots or self._starts or self._settling:
            asyncio.get_running_loop().call_soon(self._commit)

    def finish_in_flight(self) -> None:
        """Wait (blocking) for the commit in flight and finish it, as the loop would.

        For a manager about to write on the loop: nothing of it is then
        half-way to disk, and its attempt ids are known.
        """
        flight, writer = self._in_flight, self._writer
        if flight is None or writer is None:
            return
        outcome = writer.outcomes.get()
        self._in_flight = None
        self._finish(flight, outcome)
        if self._final_dots or self._starts or self._settling:
            with contextlib.suppress(RuntimeError):  # no loop: ``close`` cancels them
                asyncio.get_running_loop().call_soon(self._commit)

    def _finish(self, flight: _InFlight, outcome: Outcome) -> None:
        """The commit is durable (or failed): publish, let the dots go, announce."""
        if isinstance(outcome, Exception):  # nothing was committed: every joiner hears why
            _fail_all([*flight.final_dots, *flight.starts], outcome)
            for manager in flight.managers:
                manager.write_failed(outcome)
            return
        if isinstance(outcome, BaseException):
            raise outcome
        written, allowed = outcome
        for start, may in zip(flight.starts, allowed, strict=True):
            if not start.future.done():
                start.future.set_result(may)
        for dot in flight.final_dots:
            if not dot.future.done():  # cancelled: the session is ending anyway
                dot.future.set_result(None)
        for manager, share, done in zip(flight.managers, flight.rows, written, strict=True):
            manager.rows_written(share, done)

    def close(self) -> None:
        """Write what is waiting, then stop the writer thread (joined). For a flush's end.

        The commit in flight is finished, and the settlements that joined
        since are written and announced (their sessions ended). Final dots
        and starts that joined since are not: their sessions have ended, so
        nothing of theirs goes on the wire.
        """
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        try:
            self.finish_in_flight()
            _cancel_all([*self._final_dots, *self._starts])
            self._final_dots, self._starts = [], []
            if self._settling:
                self._hand_over()
                self.finish_in_flight()
        finally:
            self._final_dots, self._starts, self._settling = [], [], []
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def _still_wanted(joined: list[_Joined[T]]) -> list[_Joined[T]]:
    """The joiners whose session still waits: an abandoned one's is cancelled.

    A manager abandoned (its flush ended on an error) writes nothing more;
    a joiner whose future is already done (its session was cancelled) will
    not send what it asked about.
    """
    wanted = []
    for item in joined:
        if item.manager.abandoned:
            item.future.cancel()
        elif not item.future.done():
            wanted.append(item)
    return wanted


@dataclass(frozen=True, slots=True)
class _Settlement:
    """A transaction's verdicts, waiting for the next commit (decided when it is taken)."""

    message_id: int
    verdicts: dict[str, Verdict]
    replies: Sequence[AttemptReply]
    sent_bytes: int
    transcript: str
    #: The message goes on in a further transaction (``TransactionReport.continued``).
    keep_claim: bool = False


class AttemptManager:
    """Decides and records the outcome of everything one relayer session reports."""

    def __init__(
        self,
        outbox: Outbox,
        messages: Sequence[OutgoingMessage],
        *,
        account: str,
        policy: RetryPolicy,
        clock: Clock,
        on_settled: SettledCallback | None = None,
        commits: CommitGroup | None = None,
        on_write_failed: WriteFailedCallback | None = None,
        on_throttled: ThrottledCallback | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self._outbox = outbox
        self._on_write_failed = on_write_failed
        self._abandoned = False
        self._session_over = False
        self._on_throttled = on_throttled
        #: Set when a reply throttled the account (``relay.throttle``): the pause recorded.
        self.pause: AccountPause | None = None
        self._commits = commits
        self._bus = bus if bus is not None else EventBus()
        self._owed = {message.id: message.recipients for message in messages}
        self._account = account
        self._server = ""
        self._policy = policy
        self._clock = clock
        self._on_settled = on_settled
        self._attempt_ids: dict[int, int] = {}
        self._started_at: dict[int, datetime] = {}  # attempts not written yet
        self._accepted: dict[int, list[str]] = {}
        self._finished: set[int] = set()
        self._unwritten: list[_Settlement] = []  # settled, to be written with the next commit
        self._transacted: set[int] = set()  # offered to the server (transaction_started)
        self._held_back: set[int] = set()  # held since claimed: never started
        self._write_timer: asyncio.TimerHandle | None = None
        #: Set when the server refused our credentials: the flush stops for this account.
        self.auth_failure: SessionFailure | None = None

    @property
    def abandoned(self) -> bool:
        """Whether the flush ended on an error: this manager writes nothing more."""
        return self._abandoned

    @property
    def session_over(self) -> bool:
        """Whether its session has ended (finished or failed): it joins no more commits
        but with what its end left to write."""
        return self._session_over

    def abandon(self) -> None:
        """Write nothing more, as if the process had been killed here.

        For a flush that ends on an error (the store could not be written, or
        a bug): what this session claimed stays claimed, and the next flush's
        recovery settles it from the durable records -- after the final dot
        *uncertain*, otherwise owed again. Settlements waiting for a commit are
        dropped unannounced (nobody was told of them); a final dot not yet
        recorded never leaves (``data_completed`` refuses it).
        """
        self._abandoned = True
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._unwritten.clear()

    # -- RelayObserver ------------------------------------------------------------

    def session_started(self, session: SessionInfo, message_ids: Sequence[int]) -> None:
        self._server = f"{session.host}:{session.port}"

    def phase_changed(self, phase: Phase, message_id: int | None) -> None:
        if self._bus.listened:
            self._bus.publish(PhaseChanged(self._account, phase, message_id))

    def transaction_may_start(self, message_id: int) -> bool | Awaitable[bool]:
        """Mark the transaction as under way, unless a person held the message since
        it was claimed (then it is handed back, held, when the session ends).

        From the mark on, ``Outbox.hold`` refuses the message and says why:
        what is under way may be sent. The mark shares the next commit of the
        flush's group (with PIPELINING, the last message's final-dot record).
        """
        if self._abandoned:  # the flush ended on an error: nothing more starts
            return False
        if self._commits is not None:
            future = self._commits.join_start(self, message_id)
            future.add_done_callback(lambda done: self._started_or_held(message_id, done))
            return future
        return self._started_or_held(message_id, self._outbox.start_transaction(message_id))

    def _started_or_held(self, message_id: int, answer: bool | asyncio.Future[bool]) -> bool:
        if isinstance(answer, asyncio.Future):
            if answer.cancelled() or answer.exception() is not None:
                return False
            answer = answer.result()
        if not answer:
            self._held_back.add(message_id)
        return answer

    def transaction_started(self, message_id: int) -> None:
        # Written with the first change that must last (see ``take_rows``).
        self._transacted.add(message_id)
        self._started_at[message_id] = self._clock()
        self._accepted[message_id] = []
        if self._bus.listened:
            self._bus.publish(AttemptStarted(message_id, self._account, self._server))

    def recipient_replied(self, message_id: int, address: str, reply: Reply) -> None:
        if reply.positive:
            self._accepted.setdefault(message_id, []).append(address)

    def data_progressed(self, message_id: int, sent_bytes: int, total_bytes: int) -> None:
        if self._bus.listened:
            self._bus.publish(ProgressMade(message_id, sent_bytes, total_bytes))

    def data_completed(self, message_id: int) -> Awaitable[None] | None:
        """Durable before the final dot leaves: one commit, with what waited for one.

        Writing the last message's verdict here, not later, is what keeps a
        crash to at most one *uncertain* message per connection. With a
        ``CommitGroup`` the record joins the group's next commit and the
        returned future is done once it is on disk: the relayer writes the
        dot only then. Without one it is on disk when this returns.
        """
        if self._abandoned:  # the session is being cancelled: the dot must not leave
            raise asyncio.CancelledError()
        if self._commits is not None:
            return self._commits.join_final_dot(self, message_id)
        self._write(self.take_rows([message_id]))
        return None

    def transaction_finished(self, report: TransactionReport) -> None:
        message_id = report.message_id
        if self._abandoned or message_id in self._finished or message_id not in self._owed:
            return
        verdicts = recipient_verdicts(report, self._owed[message_id])
        lost = report.connection_error
        throttle = first_throttle(
            [report.mail, *report.recipients.values(), report.data, report.end_of_data,
             lost.reply if lost is not None else None]
        )  # fmt: skip
        if throttle is not None:
            verdicts = self._throttled(throttle, verdicts)
        replies = [AttemptReply(address, reply) for address, reply in report.recipients.items()]
        for reply in (report.mail, report.data, report.end_of_data):
            if reply is not None:
                replies.append(AttemptReply(None, reply))
        if report.continued:
            # Over the server's recipient limit: those go in a further transaction
            # now. What this one settled is written at once, so the next one's
            # records never meet it in a shared commit.
            for address in report.continued:
                verdicts.pop(address, None)
            self._owed[message_id] = report.continued
            self._unwritten.append(
                _Settlement(
                    message_id,
                    verdicts,
                    replies,
                    report.sent_bytes,
                    report.transcript,
                    keep_claim=True,
                )
            )
            self.write_now()
            return
        self._finished.add(message_id)
        self._unwritten.append(
            _Settlement(message_id, verdicts, replies, report.sent_bytes, report.transcript)
        )
        self._write_soon()

    def session_finished(self, transcript: str) -> None:
        self._end_session()
        # A relayer that was stopped hands back what it never started: untouched.
        if self._abandoned:
            return
        if self._commits is not None and self._unwritten:
            self._cancel_timer()
            self._commits.join_settlements(self)  # off the loop, announced once durable
        else:
            self.write_now()
        self._release_unfinished()

    def _end_session(self) -> None:
        self._session_over = True
        if self._commits is not None:
            self._commits.leave(self)

    def write_now(self) -> None:
        """Write every settled outcome still waiting for a commit (one commit, on the loop)."""
        self._cancel_timer()
        if self._abandoned or not self._unwritten:
            return
        self._write(self.take_rows())

    def write_failed(self, exc: Exception) -> None:
        """A commit that held this session's settlements failed: nothing of it was written.

        Told to whoever runs the session (``on_write_failed``): raised from a
        loop callback, it would only reach the event loop's log, and the
        session would go on as if its outcomes were recorded.
        """
        if self._on_write_failed is None:
            raise exc
        self._on_write_failed(exc)

    def _cancel_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def session_failed(
        self, failure: SessionFailure, unfinished: Sequence[int], transcript: str
    ) -> None:
        self._end_session()
        if self._abandoned:
            return
        self.write_now()
        throttle = first_throttle([failure.reply])
        if throttle is not None:
            self._throttled(throttle, {})
        if self.pause is not None:
            # The account is paused: what was not tried waits untouched, no attempt counted.
            unfinished = [m for m in unfinished if m in self._started_at]
        if failure.kind in (FailureKind.AUTH, FailureKind.SIGN_IN):
            self.auth_failure = failure
            self._bus.publish(
                AuthenticationRefused(self._account, failure.text, judged=not failure.no_mechanism)
            )
            self._release_unfinished()
            return
        not_tried = []
        deferred = CommitRows()
        for message_id in unfinished:
            if (
                message_id in self._finished
                or message_id not in self._owed
                or message_id in self._held_back
            ):
                continue
            if self._transacted and message_id not in self._transacted:
                # The session carried mail, and closed before this one's turn: the
                # server never saw it. No attempt, no server words, no back-off.
                not_tried.append(message_id)
                continue
            self._started_at.setdefault(message_id, self._clock())
            verdicts = {
                address: Verdict(RecipientState.DEFERRED, failure.text)
                for address in self._owed[message_id]
            }
            self._take_settlement(deferred, _Settlement(message_id, verdicts, (), 0, transcript))
        if deferred.ends:
            self._write(deferred)
        if not_tried:
            if self._commits is not None:
                self._commits.finish_in_flight()
            snapshots = self._outbox.hand_back(not_tried, NOT_TRIED)
            self._publish_changed(snapshots)
            self._finished.update(not_tried)
            self._announce([Settled(snapshot, "not tried", NOT_TRIED) for snapshot in snapshots])
        self._bus.publish(SessionFailed(self._account, failure.kind.value, failure.text))
        self._release_unfinished()

    def _throttled(self, throttle: Throttle, verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
        """Pause the account (once per session) and keep ``throttle``'s recipients owed.

        A daily quota comes as a 5xx (Gmail's ``550 5.4.5``) but means "not
        today": the recipients it refused are deferred, not failed.
        """
        if self.pause is None:
            now = self._clock()
            previous = self._outbox.account_pauses().get(self._account)
            self.pause = next_pause(throttle, self._account, previous, now=now)
            if self.pause is not previous:
                self._outbox.pause_account(self.pause)
            if self._on_throttled is not None:
                self._on_throttled(self.pause)
        return {
            address: Verdict(RecipientState.DEFERRED, verdict.reply)
            if verdict.state is RecipientState.FAILED and verdict.reply == throttle.reply
            else verdict
            for address, verdict in verdicts.items()
        }

    # -- writing ------------------------------------------------------------------------

    def take_rows(self, final_dots: Sequence[int] = ()) -> CommitRows:
        """What this session's next commit writes; taken, so nothing is written twice.

        Every settlement waiting for a commit, decided now, and the records
        that the final dots of ``final_dots`` are leaving (with the recipients
        the server accepted). Write them with ``write_rows``, then tell
        ``rows_written``.
        """
        rows = CommitRows()
        unwritten, self._unwritten = self._unwritten, []
        for item in unwritten:
            self._take_settlement(rows, item)
        for message_id in final_dots:
            accepted = list(self._accepted.get(message_id, ()))  # a copy: the writer's own
            started_at = self._started_at.pop(message_id, None)
            if started_at is not None:  # the attempt row is written already marked
                rows.starts.append(
                    AttemptStart(
                        message_id, self._account, self._server, started_at, data_completed=accepted
                    )
                )
            elif message_id in self._attempt_ids:
                rows.final_dots.append((self._attempt_ids[message_id], accepted))
        return rows

    def rows_written(self, rows: CommitRows, written: WrittenRows) -> None:
        """The commit holding ``rows`` is durable: keep the attempts it opened, publish
        what it changed, announce what it settled.

        A continued message (``keep_claim``) is not settled yet: not announced.
        """
        for start, attempt_id in zip(rows.starts, written.attempt_ids, strict=True):
            self._attempt_ids[start.message_id] = attempt_id
        self._publish_changed(written.snapshots)
        self._announce(
            [
                Settled(snapshot, end.outcome, end.error)
                for snapshot, end in zip(written.snapshots, rows.ends, strict=True)
                if not end.keep_claim
            ]
        )

    def _write(self, rows: CommitRows) -> None:
        """``rows`` in a commit of their own, made now on the loop; then announced.

        The group's commit in flight is finished first: nothing of this
        session is then half-way to disk, and the attempts it opened are known.
        """
        if self._commits is not None:
            self._commits.finish_in_flight()
        (written,), _ = write_rows(self._outbox, [rows])
        self.rows_written(rows, written)

    def _take_settlement(self, rows: CommitRows, item: _Settlement) -> None:
        """Add ``item``'s end, decided, to ``rows``: with its attempt row if not open yet."""
        started_at = self._started_at.pop(item.message_id, None)
        if started_at is not None:
            rows.starts.append(
                AttemptStart(item.message_id, self._account, self._server, started_at)
            )
        rows.ends.append(self._decide(item, opening=started_at is not None))

    def _write_soon(self) -> None:
        """Group settled outcomes into one commit: the next durable write, or ``GROUP_S``.

        Nothing a person was shown can be lost: the events (and the flush's
        lines) follow the commit. A crash before it leaves the message
        claimed, which the next start settles from the durable record (after
        the final dot: *uncertain*).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_now()  # no event loop to come back: write at once
            return
        if self._write_timer is None:
            self._write_timer = loop.call_later(GROUP_S, self._write_later)

    def _write_later(self) -> None:
        """``write_now`` from the timer (or the group's next commit): a failure goes to
        whoever runs the session (``write_failed``)."""
        self._write_timer = None
        if self._commits is not None:
            if not self._abandoned and self._unwritten:
                self._commits.join_settlements(self)
            return
        try:
            self.write_now()
        except Exception as exc:
            self.write_failed(exc)

    def _publish_changed(self, snapshots: Iterable[MessageSnapshot]) -> None:
        """Tell the bus what a commit changed; only ever after that commit returned."""
        if self._bus.listened:
            for snapshot in snapshots:
                self._bus.publish(MessageChanged(snapshot))

    def _announce(self, settled: Sequence[Settled]) -> None:
        if self._on_settled is not None:
            for item in settled:
                self._on_settled(item)

    # -- deciding -------------------------------------------------------------------

    def _decide(self, item: _Settlement, *, opening: bool) -> AttemptEnd:
        """The policy applied to a message's verdicts: what ``finish_attempts`` writes.

        ``opening``: the attempt row opens in the same commit (not counted yet).
        """
        message_id, verdicts, keep_claim = item.message_id, item.verdicts, item.keep_claim
        attempt_id = None if opening else self._attempt_ids.get(message_id)
        now = self._clock()
        deferred = any(v.state is RecipientState.DEFERRED for v in verdicts.values())
        if deferred and self._policy.expired(self._outbox.deferred_since(message_id), now):
            verdicts = expire(verdicts)
            deferred = False
        next_attempt_at = None
        if deferred:
            attempts = self._outbox.get(message_id).attempts + int(opening)
            next_attempt_at = self._policy.next_attempt_at(attempts, now)
            if self.pause is not None and self.pause.until > next_attempt_at:
                next_attempt_at = self.pause.until
        problems = [v.reply for v in verdicts.values() if v.state is not RecipientState.SENT]
        error = problems[0] if problems else None
        if not keep_claim:
            self._finished.add(message_id)
        return AttemptEnd(
            message_id,
            attempt_id,
            verdicts,
            outcome=attempt_outcome(verdicts),
            error=error,
            next_attempt_at=next_attempt_at,
            now=now,
            replies=item.replies,
            sent_bytes=item.sent_bytes,
            transcript=item.transcript,
            keep_claim=keep_claim,
        )

    def _release_unfinished(self) -> None:
        rest = [message_id for message_id in self._owed if message_id not in self._finished]
        if rest:
            if self._commits is not None:
                self._commits.finish_in_flight()
            snapshots = self._outbox.release_claims(rest)
            self._publish_changed(snapshots)
            self._finished.update(rest)
            self._announce(
                [
                    Settled(snapshot, "held", HELD_BACK)
                    for snapshot in snapshots
                    if snapshot.id in self._held_back
                ]
            )


def recover_interrupted(outbox: Outbox, clock: Clock) -> list[MessageSnapshot]:
    """Settle messages a process that died left in ``sending``.

    Call only while holding the flush lock (no live flush owns those claims).
    If the final dot had been sent, the recipients the server had accepted are
    *uncertain*: the server may have the message, and only a person decides to
    send it again. Everything else is owed again, due at once (the server was
    not at fault). A message merely claimed, whose transaction never started,
    was not tried: it is handed back as it was (``NOT_TRIED_STOPPED``), a
    queued one keeping its place and a deferred one its next try, as when a
    session closes before its turn. The caller announces the snapshots
    returned, if anyone listens.
    """
    recovered = []
    now = clock()
    interrupted = outbox.interrupted()
    untried = [item.message_id for item in interrupted if not item.under_way]
    if untried:
        recovered += outbox.hand_back(untried, NOT_TRIED_STOPPED)
    for message_id, attempt_id, data_completed, accepted, under_way in interrupted:
        if not under_way:
            continue
        owed = [r.address for r in outbox.get(message_id).recipients if r.state in OWED]
        verdicts: dict[str, Verdict] = {}
        for address in owed:
            if data_completed and address in accepted:
                verdicts[address] = Verdict(
                    RecipientState.UNCERTAIN,
                    "Outbox stopped after the end of the data, before the server's reply:"
                    " the server may have the message",
                )
            else:
                verdicts[address] = Verdict(
                    RecipientState.DEFERRED, "Outbox stopped during the attempt"
                )
        recovered.append(
            outbox.finish_attempt(
                message_id,
                attempt_id,
                verdicts,
                outcome="interrupted",
                error=next(iter(verdicts.values())).reply if verdicts else None,
                next_attempt_at=now,
                now=now,
            )
        )
    return recovered
