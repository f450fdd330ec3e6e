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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

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


class CommitGroup:
    """One commit for the ``data_completed`` records of all of a flush's sessions.

    The final dot must wait for a durable record (see ``data_completed``), and
    an fsync costs more than the rest of a small message's CPU. The commit is
    made once an event-loop turn passes in which nobody new joined, so the
    sessions that reach their final dot at about the same time share it: with
    four connections, four records (and the verdicts that ride along) for one
    fsync. Each joiner's future is done after the commit; what was settled is
    announced after that, as always.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._waiting: list[tuple[AttemptManager, int, asyncio.Future[None]]] = []
        self._starts: list[tuple[AttemptManager, int, asyncio.Future[bool]]] = []
        self._seen = 0

    def join_start(self, manager: AttemptManager, message_id: int) -> asyncio.Future[bool]:
        """Have the next commit mark ``message_id``'s transaction as under way, unless
        it was held (``Outbox.start_transaction``); the future holds whether it may go.

        With PIPELINING the next message's group goes out with a final dot, so
        the question rides on that dot's commit: no commit of its own.
        """
        loop = asyncio.get_running_loop()
        if not self._waiting and not self._starts:
            loop.call_soon(self._commit)
        future: asyncio.Future[bool] = loop.create_future()
        self._starts.append((manager, message_id, future))
        return future

    def join(self, manager: AttemptManager, message_id: int) -> asyncio.Future[None]:
        """Have ``manager`` record ``message_id``'s final dot in the next commit.

        The future is done once the record is on disk.
        """
        loop = asyncio.get_running_loop()
        if not self._waiting and not self._starts:
            loop.call_soon(self._commit)
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((manager, message_id, future))
        return future

    def _commit(self) -> None:
        if len(self._waiting) + len(self._starts) != self._seen:
            # Someone joined during the last turn: give the others one more turn
            # to reach their dot too. Each session joins once per commit, so
            # this waits at most one turn per session.
            self._seen = len(self._waiting) + len(self._starts)
            asyncio.get_running_loop().call_soon(self._commit)
            return
        self._seen = 0
        waiting, self._waiting = self._waiting, []
        starting, self._starts = self._starts, []
        for manager, _, future in waiting:
            if manager.abandoned:  # its flush ended on an error: nothing more of it is written
                future.cancel()
        for manager, _, asked in starting:
            if manager.abandoned:
                asked.cancel()
        waiting = [item for item in waiting if not item[0].abandoned]
        starting = [item for item in starting if not item[0].abandoned]
        if not waiting and not starting:
            return
        if not waiting:  # only starts: a commit of their own, which need not be synced
            try:
                allowed = self._outbox.start_transactions([i for _, i, _ in starting])
            except Exception as exc:
                for _, _, asked in starting:
                    if not asked.done():
                        asked.set_exception(exc)
                return
            for (_, _, asked), may in zip(starting, allowed, strict=True):
                if not asked.done():
                    asked.set_result(may)
            return
        allowed = []
        ends: list[AttemptEnd] = []
        owners: list[AttemptManager] = []
        starts: list[AttemptStart] = []
        starters: list[AttemptManager] = []
        try:
            with self._outbox.batch():
                for manager, message_id, _ in waiting:
                    settling, start = manager._record_completion(message_id, defer_start=True)
                    ends += settling
                    owners += [manager] * len(settling)
                    if start is not None:
                        starts.append(start)
                        starters.append(manager)
                # Every session's records and verdicts in one go: a few statements in all.
                ids = self._outbox.start_attempts(starts)
                for manager, start, attempt_id in zip(starters, starts, ids, strict=True):
                    manager._attempt_ids[start.message_id] = attempt_id
                snapshots = self._outbox.finish_attempts(ends)
                allowed = self._outbox.start_transactions([i for _, i, _ in starting])
        except Exception as exc:  # nothing was committed: every joiner hears why
            for _, _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            for _, _, asked in starting:
                if not asked.done():
                    asked.set_exception(exc)
            return
        for (_, _, asked), may in zip(starting, allowed, strict=True):
            if not asked.done():
                asked.set_result(may)
        for _, _, future in waiting:
            if not future.done():  # cancelled: the session is ending anyway
                future.set_result(None)
        for owner, snapshot in zip(owners, snapshots, strict=True):
            owner._publish_changed([snapshot])
        for owner, snapshot, end in zip(owners, snapshots, ends, strict=True):
            owner._announce([Settled(snapshot, end.outcome, end.error)])


@dataclass(frozen=True, slots=True)
class _Settlement:
    """A transaction's verdicts, decided, waiting for the next commit."""

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
        return self._abandoned

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
        # Written with the first change that must last (see ``_write_attempt``).
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
            return self._commits.join(self, message_id)
        with self._outbox.batch():
            ends, _ = self._record_completion(message_id)
            snapshots = self._outbox.finish_attempts(ends)
        self._publish_changed(snapshots)
        self._announce(_settled_for_good(snapshots, ends))
        return None

    def _record_completion(
        self, message_id: int, *, defer_start: bool = False
    ) -> tuple[list[AttemptEnd], AttemptStart | None]:
        """``data_completed``'s record, inside the caller's batch.

        Returns the settlements that waited for this commit, their attempt
        rows written and their verdicts decided: the caller writes them with
        ``finish_attempts`` in the same batch. With ``defer_start`` a new
        attempt row is not written but returned, for the caller to write with
        others' (``Outbox.start_attempts``) and put its id in ``_attempt_ids``.
        """
        ends = self._unwritten_ends()
        if message_id in self._started_at or message_id in self._attempt_ids:
            accepted = self._accepted.get(message_id, [])
            started_at = self._started_at.pop(message_id, None)
            if started_at is not None:  # the attempt row is written already marked
                start = AttemptStart(
                    message_id, self._account, self._server, started_at, data_completed=accepted
                )
                if defer_start:
                    return ends, start
                (self._attempt_ids[message_id],) = self._outbox.start_attempts([start])
            else:
                self._outbox.mark_data_completed(self._attempt_ids[message_id], accepted)
        return ends, None

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
        # A relayer that was stopped hands back what it never started: untouched.
        if self._abandoned:
            return
        self.write_now()
        self._release_unfinished()

    def write_now(self) -> None:
        """Write every settled outcome still waiting for a commit (one commit)."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self._abandoned or not self._unwritten:
            return
        with self._outbox.batch():
            ends = self._unwritten_ends()
            snapshots = self._outbox.finish_attempts(ends)
        self._publish_changed(snapshots)
        self._announce(_settled_for_good(snapshots, ends))

    def session_failed(
        self, failure: SessionFailure, unfinished: Sequence[int], transcript: str
    ) -> None:
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
            self._bus.publish(AuthenticationRefused(self._account, failure.text))
            self._release_unfinished()
            return
        not_tried = []
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
            self._write_attempt(message_id)
            verdicts = {
                address: Verdict(RecipientState.DEFERRED, failure.text)
                for address in self._owed[message_id]
            }
            self._announce([self._settle(message_id, verdicts, transcript=transcript)])
        if not_tried:
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

    def _write_attempt(self, message_id: int) -> int | None:
        """The attempt row of a started transaction, inserted now if it is not yet."""
        started_at = self._started_at.pop(message_id, None)
        if started_at is not None:
            self._attempt_ids[message_id] = self._outbox.start_attempt(
                message_id, account=self._account, server=self._server, now=started_at
            )
        return self._attempt_ids.get(message_id)

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
        """``write_now`` from the timer: a failure goes to whoever runs the session.

        Raised from a timer callback, it would only reach the event loop's
        log, and the session would go on as if its outcomes were recorded.
        """
        try:
            self.write_now()
        except Exception as exc:
            if self._on_write_failed is None:
                raise
            self._on_write_failed(exc)

    def _unwritten_ends(self) -> list[AttemptEnd]:
        """The settlements waiting for a commit, decided, their attempt rows written."""
        unwritten, self._unwritten = self._unwritten, []
        ends = []
        for item in unwritten:
            self._write_attempt(item.message_id)
            ends.append(
                self._decide(
                    item.message_id,
                    item.verdicts,
                    replies=item.replies,
                    sent_bytes=item.sent_bytes,
                    transcript=item.transcript,
                    keep_claim=item.keep_claim,
                )
            )
        return ends

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

    def _settle(
        self,
        message_id: int,
        verdicts: dict[str, Verdict],
        *,
        replies: Sequence[AttemptReply] = (),
        sent_bytes: int = 0,
        transcript: str = "",
    ) -> Settled:
        """Write a message's verdicts (its events follow the commit); ``_announce`` the result."""
        end = self._decide(
            message_id, verdicts, replies=replies, sent_bytes=sent_bytes, transcript=transcript
        )
        (snapshot,) = self._outbox.finish_attempts([end])
        self._publish_changed([snapshot])
        return Settled(snapshot, end.outcome, end.error)

    def _decide(
        self,
        message_id: int,
        verdicts: dict[str, Verdict],
        *,
        replies: Sequence[AttemptReply] = (),
        sent_bytes: int = 0,
        transcript: str = "",
        keep_claim: bool = False,
    ) -> AttemptEnd:
        """The policy applied to a message's verdicts: what ``finish_attempts`` writes."""
        now = self._clock()
        deferred = any(v.state is RecipientState.DEFERRED for v in verdicts.values())
        if deferred and self._policy.expired(self._outbox.deferred_since(message_id), now):
            verdicts = expire(verdicts)
            deferred = False
        next_attempt_at = None
        if deferred:
            attempts = self._outbox.get(message_id).attempts
            next_attempt_at = self._policy.next_attempt_at(attempts, now)
            if self.pause is not None and self.pause.until > next_attempt_at:
                next_attempt_at = self.pause.until
        problems = [v.reply for v in verdicts.values() if v.state is not RecipientState.SENT]
        error = problems[0] if problems else None
        if not keep_claim:
            self._finished.add(message_id)
        return AttemptEnd(
            message_id,
            self._attempt_ids.get(message_id),
            verdicts,
            outcome=attempt_outcome(verdicts),
            error=error,
            next_attempt_at=next_attempt_at,
            now=now,
            replies=replies,
            sent_bytes=sent_bytes,
            transcript=transcript,
            keep_claim=keep_claim,
        )

    def _release_unfinished(self) -> None:
        rest = [message_id for message_id in self._owed if message_id not in self._finished]
        if rest:
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


def _settled_for_good(
    snapshots: Sequence[MessageSnapshot], ends: Sequence[AttemptEnd]
) -> list[Settled]:
    """What the written ``ends`` settled for good (a continued message is not yet)."""
    return [
        Settled(snapshot, end.outcome, end.error)
        for snapshot, end in zip(snapshots, ends, strict=True)
        if not end.keep_claim
    ]


def recover_interrupted(outbox: Outbox, clock: Clock) -> list[MessageSnapshot]:
    """Settle messages a process that died left in ``sending``.

    Call only while holding the flush lock (no live flush owns those claims).
    If the final dot had been sent, the recipients the server had accepted are
    *uncertain*: the server may have the message, and only a person decides to
    send it again. Everything else is owed again, due at once (the server was
    not at fault). The caller announces the snapshots returned, if anyone listens.
    """
    recovered = []
    now = clock()
    for message_id, attempt_id, data_completed, accepted in outbox.interrupted():
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
