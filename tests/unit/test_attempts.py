"""The attempt manager, driven by the relayer's observer calls, on a real SQLite outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay.attempts import AttemptManager, Settled, recover_interrupted
from relay.events import (
    AuthenticationRefused,
    Event,
    EventBus,
    MessageChanged,
    ProgressMade,
)
from relay.policy import RetryPolicy
from relay.report import (
    FailureKind,
    OutgoingMessage,
    Reply,
    SessionFailure,
    SessionInfo,
    Stage,
    TransactionReport,
)
from relay.states import MessageState, RecipientState
from relay.store.outbox import Outbox
from tests.unit.conftest import enqueue


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def manager(
    outbox: Outbox, messages: list[OutgoingMessage], clock: FakeClock, **kw: object
) -> AttemptManager:
    m = AttemptManager(
        outbox,
        messages,
        account="work",
        policy=RetryPolicy(lifetime_s=3 * 3600),
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
    m.session_started(SessionInfo("work", "127.0.0.1", 2525), [msg.id for msg in messages])
    return m


def ok(stage: Stage, code: int = 250) -> Reply:
    return Reply(stage, code, "ok")


def deliver(
    m: AttemptManager, message_id: int, rcpt: dict[str, int], final: int | None = 250
) -> None:
    """What a relayer reports for one transaction."""
    m.transaction_started(message_id)
    replies = {a: Reply(Stage.RCPT, code, f"rcpt {code}") for a, code in rcpt.items()}
    for address, reply in replies.items():
        m.recipient_replied(message_id, address, reply)
    m.data_progressed(message_id, 10, 20)
    m.data_completed(message_id)
    m.transaction_finished(
        TransactionReport(
            message_id,
            mail=ok(Stage.MAIL),
            recipients=replies,
            data=ok(Stage.DATA, 354),
            end_of_data=Reply(Stage.END_OF_DATA, final, "done") if final else None,
            data_completed=True,
            connection_error=None if final else SessionFailure(FailureKind.DROPPED, "dropped"),
        )
    )


def test_a_refused_co_recipient_fails_while_the_other_is_sent(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org", "c@example.org")
    messages = outbox.claim([mid])
    assert outbox.get(mid).state is MessageState.SENDING
    settled: list[Settled] = []
    m = manager(outbox, messages, clock, on_settled=settled.append)
    deliver(m, mid, {"b@example.org": 250, "c@example.org": 550})
    snap = outbox.get(mid)
    assert snap.state is MessageState.FAILED
    assert [(r.address, r.state) for r in snap.recipients] == [
        ("b@example.org", RecipientState.SENT),
        ("c@example.org", RecipientState.FAILED),
    ]
    assert snap.last_error == "550 rcpt 550"
    assert settled[0].message.id == mid
    (attempt,) = outbox.attempts(mid)
    assert attempt.outcome == "partial" and attempt.data_completed and attempt.ended_at


def test_retry_owes_the_message_only_to_recipients_not_yet_sent(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org", "c@example.org")
    deliver(
        manager(outbox, outbox.claim([mid]), clock),
        mid,
        {"b@example.org": 250, "c@example.org": 550},
    )
    outbox.retry([mid])
    assert outbox.get(mid).state is MessageState.QUEUED
    (again,) = outbox.claim([mid])
    assert again.recipients == ("c@example.org",)


def test_a_deferral_backs_off_and_is_not_due_until_then(outbox: Outbox, clock: FakeClock) -> None:
    mid = enqueue(outbox, "b@example.org")
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 451})
    snap = outbox.get(mid)
    assert snap.state is MessageState.DEFERRED
    assert snap.next_attempt_at == clock.now + timedelta(seconds=60)
    assert outbox.due_ids(clock.now + timedelta(seconds=59)) == []
    assert outbox.due_ids(clock.now + timedelta(seconds=60)) == [mid]
    clock.now += timedelta(seconds=60)
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 451})
    assert outbox.get(mid).next_attempt_at == clock.now + timedelta(seconds=120)


def test_a_message_deferred_past_its_lifetime_fails_as_expired(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org")
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 451})
    clock.now += timedelta(hours=3)
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 451})
    snap = outbox.get(mid)
    assert snap.state is MessageState.FAILED
    assert snap.recipients[0].reply == "expired: 451 rcpt 451"


def test_expire_due_fails_overdue_deferred_messages_without_trying(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org")
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 451})
    assert outbox.expire_due(3600, clock.now + timedelta(minutes=59)) == []
    (snap,) = outbox.expire_due(3600, clock.now + timedelta(hours=1))
    assert snap.state is MessageState.FAILED and (snap.last_error or "").startswith("expired")


def test_a_lost_verdict_after_the_final_dot_makes_recipients_uncertain(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org")
    deliver(manager(outbox, outbox.claim([mid]), clock), mid, {"b@example.org": 250}, final=None)
    snap = outbox.get(mid)
    assert snap.state is MessageState.UNCERTAIN
    assert outbox.due_ids(clock.now + timedelta(days=1)) == []
    assert outbox.claim([mid]) == []  # never resent automatically
    outbox.retry([mid])  # a person's explicit "send again"
    assert outbox.claim([mid])[0].recipients == ("b@example.org",)


def test_a_session_closed_before_a_messages_turn_leaves_it_untried_in_its_place(
    outbox: Outbox, clock: FakeClock
) -> None:
    first, second = enqueue(outbox, "b@example.org"), enqueue(outbox, "c@example.org")
    settled: list[Settled] = []
    m = manager(outbox, outbox.claim([first, second]), clock, on_settled=settled.append)
    deliver(m, first, {"b@example.org": 250})
    failure = SessionFailure(FailureKind.CLOSING, "421 shutting down")
    m.session_failed(failure, [second], "transcript")
    assert outbox.get(first).state is MessageState.SENT
    snap = outbox.get(second)
    # Never offered: no attempt, no server words it never heard, no back-off.
    assert snap.state is MessageState.QUEUED
    assert snap.last_error == "not tried: the connection closed before this message's turn"
    assert snap.attempts == 0 and snap.next_attempt_at is None
    assert outbox.attempts(second) == []
    assert outbox.due_ids(clock.now) == [second]
    assert [(s.message.id, s.outcome) for s in settled] == [(first, "sent"), (second, "not tried")]


def test_a_session_that_fails_before_any_transaction_defers_everything(
    outbox: Outbox, clock: FakeClock
) -> None:
    first, second = enqueue(outbox, "b@example.org"), enqueue(outbox, "c@example.org")
    m = manager(outbox, outbox.claim([first, second]), clock)
    failure = SessionFailure(FailureKind.CLOSING, "421 shutting down")
    m.session_failed(failure, [first, second], "transcript")
    for mid in (first, second):
        snap = outbox.get(mid)
        assert snap.state is MessageState.DEFERRED
        assert snap.last_error == "421 shutting down"
        assert snap.attempts == 1


def test_refused_credentials_leave_messages_as_they_were(outbox: Outbox, clock: FakeClock) -> None:
    mid = enqueue(outbox, "b@example.org")
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    m = manager(outbox, outbox.claim([mid]), clock, bus=bus)
    m.session_failed(SessionFailure(FailureKind.AUTH, "535 bad credentials"), [mid], "")
    snap = outbox.get(mid)
    assert snap.state is MessageState.QUEUED and snap.attempts == 0
    assert m.auth_failure is not None
    assert any(isinstance(e, AuthenticationRefused) for e in events)


def test_events_are_published_after_the_commit_with_snapshots(
    outbox: Outbox, clock: FakeClock
) -> None:
    mid = enqueue(outbox, "b@example.org")
    seen: list[tuple[Event, MessageState]] = []

    def subscriber(event: Event) -> None:
        # Reading the store from inside a subscriber sees the committed state.
        if isinstance(event, MessageChanged):
            seen.append((event, outbox.get(event.message.id).state))
        elif isinstance(event, ProgressMade):
            seen.append((event, outbox.get(event.message_id).state))

    bus = EventBus()
    bus.subscribe(subscriber)
    deliver(manager(outbox, outbox.claim([mid]), clock, bus=bus), mid, {"b@example.org": 250})
    changes = [(e.message.state, s) for e, s in seen if isinstance(e, MessageChanged)]
    assert changes == [(MessageState.SENT, MessageState.SENT)]
    assert any(isinstance(e, ProgressMade) and e.sent_bytes == 10 for e, _ in seen)


@pytest.mark.parametrize("data_completed", [True, False])
def test_a_message_left_sending_by_a_dead_process_is_settled_on_the_next_start(
    outbox: Outbox, clock: FakeClock, data_completed: bool
) -> None:
    mid = enqueue(outbox, "b@example.org", "c@example.org")
    m = manager(outbox, outbox.claim([mid]), clock)
    assert m.transaction_may_start(mid) is True
    m.transaction_started(mid)
    m.recipient_replied(mid, "b@example.org", Reply(Stage.RCPT, 250, "ok"))
    m.recipient_replied(mid, "c@example.org", Reply(Stage.RCPT, 450, "later"))
    if data_completed:
        m.data_completed(mid)
    # The process dies here. A new one opens the store:
    (snap,) = recover_interrupted(outbox, clock)
    assert snap.state is MessageState.DEFERRED  # c is still owed either way
    states = {r.address: r.state for r in snap.recipients}
    assert states["c@example.org"] is RecipientState.DEFERRED
    assert states["b@example.org"] is (
        RecipientState.UNCERTAIN if data_completed else RecipientState.DEFERRED
    )
    assert recover_interrupted(outbox, clock) == []


def test_hold_keeps_a_message_out_of_claims_until_release(outbox: Outbox, clock: FakeClock) -> None:
    mid = enqueue(outbox, "b@example.org")
    assert outbox.hold([mid])[0].state is MessageState.HELD
    assert outbox.due_ids() == [] and outbox.claim([mid]) == []
    assert outbox.release([mid])[0].state is MessageState.QUEUED
    assert outbox.due_ids() == [mid]


def test_commands_on_an_unknown_message_change_nothing(outbox: Outbox) -> None:
    from relay.errors import NoSuchMessage

    mid = enqueue(outbox, "b@example.org")
    with pytest.raises(NoSuchMessage, match="no message 99"):
        outbox.hold([mid, 99])
    assert outbox.get(mid).state is MessageState.QUEUED
    with pytest.raises(NoSuchMessage):
        outbox.delete([mid, 99])
    assert outbox.ids() == [mid]
