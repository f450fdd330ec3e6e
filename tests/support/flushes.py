"""Flushes driven from a test: small queued messages, and a flush or a session through one account.

The relayer, flush and commit tests each need a few messages in a real
outbox and a ``RelayingManager`` that sends them all through the account of
a test server -- or, a level lower, an ``AttemptManager`` whose session has
claimed its messages, or is in the middle of a transaction. Written once here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from relay.accounts import Account
from relay.attempts import (
    AttemptManager,
    CommitGroup,
    Settled,
    SettledCallback,
    WriteFailedCallback,
)
from relay.events import EventBus
from relay.flush import RelayingManager
from relay.message import ParsedMessage
from relay.policy import RetryPolicy
from relay.report import SessionInfo
from relay.store.outbox import Outbox, utc_now


def queue_notes(outbox: Outbox, count: int) -> list[int]:
    """Queue ``count`` short messages from a@example.org, the n-th to rn@example.net."""
    return [
        outbox.add_message(
            ParsedMessage(
                "a@example.org",
                (f"r{n}@example.net",),
                f"From: a@example.org\r\nSubject: {n}\r\n\r\nhi\r\n".encode(),
                str(n),
            )
        ).id
        for n in range(count)
    ]


def flush_through(
    outbox: Outbox,
    account: Account,
    *,
    password: str | None = None,
    bus: EventBus | None = None,
) -> RelayingManager:
    """A flush of ``outbox`` that sends every message through ``account``."""
    return RelayingManager(
        outbox,
        choose_account=lambda _message: account,
        password_for=lambda _account: password,
        policy=RetryPolicy(),
        clock=utc_now,
        bus=bus,
    )


def claimed_session(
    outbox: Outbox,
    message_ids: list[int],
    clock: Callable[[], datetime],
    *,
    commits: CommitGroup | None = None,
    on_settled: SettledCallback | None = None,
    on_write_failed: WriteFailedCallback | None = None,
) -> AttemptManager:
    """An attempt manager of account "work" that claimed ``message_ids``, its session started."""
    manager = AttemptManager(
        outbox,
        outbox.claim(message_ids),
        account="work",
        policy=RetryPolicy(),
        clock=clock,
        on_settled=on_settled,
        commits=commits,
        on_write_failed=on_write_failed,
    )
    manager.session_started(SessionInfo("work", "127.0.0.1", 2525), message_ids)
    return manager


def session_in_transaction(
    outbox: Outbox,
    message_id: int,
    commits: CommitGroup,
    settled: list[Settled],
    clock: Callable[[], datetime],
) -> AttemptManager:
    """An attempt manager that claimed ``message_id`` and started its transaction."""
    manager = claimed_session(
        outbox, [message_id], clock, commits=commits, on_settled=settled.append
    )
    manager.transaction_started(message_id)
    return manager
