"""A provider's limit pauses the whole account: a real flush against a scripted server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.flush import FlushResult, RelayingManager
from relay.message import ParsedMessage
from relay.policy import RetryPolicy
from relay.states import MessageState
from relay.store.outbox import Outbox
from relay.throttle import Limit
from tests.support.fault_server import Faults, FaultServer

START = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
GMAIL_DAILY = "550 5.4.5 Daily user sending limit exceeded. For more information, go to"


class Clock:
    """The flush's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "home") as store:
        yield store


def add(outbox: Outbox, count: int) -> list[int]:
    return [
        outbox.add_message(
            ParsedMessage(
                "ann@example.org",
                ("bob@example.org",),
                f"From: ann@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode(),
                str(n),
            )
        ).id
        for n in range(count)
    ]


def flush(
    outbox: Outbox,
    faults: Faults,
    clock: Clock,
    ids: Sequence[int] | None = None,
    *,
    due_only: bool = False,
    ignore_pauses: bool = False,
    **account: Any,
) -> tuple[FlushResult, FaultServer]:
    async def run() -> tuple[FlushResult, FaultServer]:
        async with FaultServer(faults) as server:
            manager = RelayingManager(
                outbox,
                # One connection unless a test asks for more: one message in flight.
                choose_account=lambda _: server.account(
                    name="work", **{"max_connections": 1, **account}
                ),
                password_for=lambda _: "secret",
                policy=RetryPolicy(),
                clock=clock,
            )
            run = manager.run(ids, due_only=due_only, ignore_pauses=ignore_pauses)
            return await run, server

    return asyncio.run(run())


def test_gmails_daily_limit_defers_the_message_and_pauses_the_account_untried(
    outbox: Outbox,
) -> None:
    first, second, third = add(outbox, 3)
    clock = Clock()
    result, server = flush(outbox, Faults(end_of_data=GMAIL_DAILY), clock)
    # One message was tried; the other two never left and count no attempt.
    assert len(server.messages) == 1
    tried = outbox.get(first)
    assert tried.state is MessageState.DEFERRED  # not failed: a quota, not a refusal
    assert tried.attempts == 1
    pause = outbox.account_pauses()["work"]
    assert pause.limit is Limit.DAILY and pause.until >= START + timedelta(hours=1)
    assert tried.next_attempt_at == pause.until
    for message_id in (second, third):
        untouched = outbox.get(message_id)
        assert (untouched.state, untouched.attempts) == (MessageState.QUEUED, 0)
    assert result.paused["work"] == pause
    assert result.exit_code == 75


def test_a_paused_account_sends_nothing_until_its_pause_ends(outbox: Outbox) -> None:
    ids = add(outbox, 2)
    clock = Clock()
    flush(outbox, Faults(mail="421 4.7.0 Try again later, closing connection. (MAIL)"), clock)
    pause = outbox.account_pauses()["work"]
    assert (pause.limit, pause.until) == (Limit.RATE, START + timedelta(minutes=5))

    clock.now = START + timedelta(minutes=4)
    result, server = flush(outbox, Faults(), clock)
    assert server.connections == 0 and result.paused["work"] == pause
    assert result.exit_code == 75

    clock.now = pause.until
    result, server = flush(outbox, Faults(), clock)
    assert [outbox.get(i).state for i in ids] == [MessageState.SENT] * 2
    assert outbox.account_pauses() == {}  # mail went through: the series is over
    assert result.exit_code == 0


def test_mail_a_person_asked_to_send_goes_by_itself_once_the_pause_ends(outbox: Outbox) -> None:
    first, second = add(outbox, 2)
    clock = Clock()
    flush(outbox, Faults(end_of_data=GMAIL_DAILY), clock)
    pause = outbox.account_pauses()["work"]
    later = add(outbox, 1)  # asked for during the pause: the flush sends nothing now
    result, server = flush(outbox, Faults(), clock)
    assert server.connections == 0 and result.paused["work"] == pause
    never_asked = add(outbox, 1)
    for waiting in (second, *later):
        untried = outbox.get(waiting)
        assert (untried.state, untried.attempts) == (MessageState.QUEUED, 0)
        assert untried.next_attempt_at == pause.until  # when it goes, shown

    # The pause ends; cron's `flush --due` (or the window's automatic sending) runs.
    clock.now = pause.until
    result, server = flush(outbox, Faults(), clock, due_only=True)
    assert [outbox.get(i).state for i in (first, second, *later)] == [MessageState.SENT] * 3
    assert outbox.get(never_asked[0]).state is MessageState.QUEUED  # new mail waits for a click
    assert result.exit_code == 0


def test_send_all_still_sends_the_mail_a_pause_left_untried(outbox: Outbox) -> None:
    first, second = add(outbox, 2)
    clock = Clock()
    flush(outbox, Faults(end_of_data=GMAIL_DAILY), clock)
    _, server = flush(outbox, Faults(), clock, ignore_pauses=True)  # the window's Send All
    assert outbox.get(second).state is MessageState.SENT
    assert outbox.get(first).state is MessageState.DEFERRED  # tried: it keeps its back-off
    assert len(server.messages) == 1


def test_a_message_named_by_a_person_goes_through_a_paused_account(outbox: Outbox) -> None:
    first, second = add(outbox, 2)
    clock = Clock()
    flush(outbox, Faults(end_of_data=GMAIL_DAILY), clock)
    result, server = flush(outbox, Faults(), clock, ids=[second])
    assert outbox.get(second).state is MessageState.SENT
    assert outbox.get(first).state is MessageState.DEFERRED  # not named: it waits
    assert len(server.messages) == 1 and not result.paused


def test_a_rate_limit_at_the_greeting_counts_no_attempt(outbox: Outbox) -> None:
    ids = add(outbox, 2)
    result, _server = flush(
        outbox, Faults(greeting="421 4.7.0 [TSS04] Messages temporarily deferred"), Clock()
    )
    assert all(outbox.get(i).attempts == 0 for i in ids)
    assert all(outbox.get(i).state is MessageState.QUEUED for i in ids)
    assert result.paused["work"].limit is Limit.RATE and result.exit_code == 75


def test_too_many_login_attempts_pause_the_account_and_count_no_attempt(outbox: Outbox) -> None:
    ids = add(outbox, 2)
    faults = Faults(
        auth_mechanisms=("PLAIN",),
        auth="454 4.7.0 Too many login attempts, please try again later.",
    )
    result, server = flush(outbox, faults, Clock(), user="alice")
    assert server.verbs().count("AUTH") == 1 and "MAIL" not in server.verbs()
    assert all((outbox.get(i).state, outbox.get(i).attempts) == (MessageState.QUEUED, 0)
               for i in ids)  # fmt: skip
    assert result.paused["work"].limit is Limit.RATE
    assert outbox.account_pauses()["work"].until == START + timedelta(minutes=5)


def test_pauses_in_a_row_grow(outbox: Outbox) -> None:
    add(outbox, 1)
    clock = Clock()
    throttled = Faults(mail="421 4.7.0 Try again later, closing connection.")
    flush(outbox, throttled, clock)
    clock.now = outbox.account_pauses()["work"].until
    flush(outbox, throttled, clock)
    second = outbox.account_pauses()["work"]
    assert (second.level, second.until) == (2, clock.now + timedelta(minutes=10))


def test_an_ordinary_refusal_pauses_nothing(outbox: Outbox) -> None:
    first, second = add(outbox, 2)
    result, _server = flush(outbox, Faults(end_of_data="550 5.7.1 Message rejected"), Clock())
    assert [outbox.get(i).state for i in (first, second)] == [MessageState.FAILED] * 2
    assert outbox.account_pauses() == {} and not result.paused


def test_a_limit_in_one_session_stops_the_accounts_other_sessions_too(outbox: Outbox) -> None:
    ids = add(outbox, 6)
    result, server = flush(
        outbox, Faults(end_of_data=GMAIL_DAILY), Clock(),
        max_connections=2, max_messages_per_connection=10,
    )  # fmt: skip
    tried = [i for i in ids if outbox.get(i).attempts]
    # Each session ends with the message it had in flight: nothing after it is tried.
    assert server.connections == 2 and 1 <= len(tried) <= 2 and len(server.messages) <= 2
    assert all(outbox.get(i).state is MessageState.DEFERRED for i in tried)
    untouched = [outbox.get(i) for i in ids if i not in tried]
    assert all((m.state, m.attempts) == (MessageState.QUEUED, 0) for m in untouched)
    assert result.paused["work"].limit is Limit.DAILY
