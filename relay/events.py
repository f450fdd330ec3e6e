"""The events that flow out of the engine, and the bus that carries them.

The store publishes nothing. During a flush the attempt manager and the
relaying manager publish what their writes changed, and a person's commands
are announced by whoever ran them (the window), always *after* the commit,
carrying a snapshot: a subscriber never needs to re-read the store mid-flush.
A recipient's reply reaches subscribers with the message's settled snapshot
(``MessageChanged``), never before its verdict is on disk.

Subscribers are called synchronously, in the publishing task, so they must be
quick (the window's bridge only re-emits a Qt signal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from relay.states import MessageState, Phase, RecipientState


@dataclass(frozen=True, slots=True)
class RecipientSnapshot:
    address: str
    state: RecipientState
    reply: str | None


@dataclass(frozen=True, slots=True)
class MessageSnapshot:
    """A message as the store held it at one commit."""

    id: int
    state: MessageState
    sender: str
    subject: str
    size: int
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    recipients: tuple[RecipientSnapshot, ...]
    account: str | None = None

    def to_json(self) -> dict[str, object]:
        """The ``list --json`` item: a contract (README, "Using it"); keys are only added."""
        return {
            "id": str(self.id),
            "state": str(self.state),
            "from": self.sender,
            "subject": self.subject,
            "size": self.size,
            "attempts": self.attempts,
            "created": self.created_at.isoformat(),
            "next_attempt": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "last_error": self.last_error,
            "account": self.account,
            "recipients": [
                {"address": r.address, "state": str(r.state), "reply": r.reply}
                for r in self.recipients
            ],
        }


@dataclass(frozen=True, slots=True)
class MessageQueued:
    message: MessageSnapshot


@dataclass(frozen=True, slots=True)
class MessageChanged:
    """The message's state, recipients or schedule changed (one commit)."""

    message: MessageSnapshot


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    message_id: int


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    message_id: int
    account: str
    server: str


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """A session moved on; ``message_id`` is None for session-wide phases."""

    account: str
    phase: Phase
    message_id: int | None


@dataclass(frozen=True, slots=True)
class ProgressMade:
    message_id: int
    sent_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class FlushStarted:
    message_count: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class FlushFinished:
    sent: int
    deferred: int
    failed: int
    uncertain: int
    stopped: bool
    error: str | None  # why the flush stopped early (credentials refused …)
    #: After a stop: how many of the messages it set out to send are not sent yet.
    unsent: int = 0


@dataclass(frozen=True, slots=True)
class AuthenticationRefused:
    """The server did not let ``account`` in; ``reply`` says why.

    ``judged`` is false when no AUTH exchange took place (the server offers
    no authentication, or none Outbox speaks): the credentials were never
    tried, so asking for another password would not help.
    """

    account: str
    reply: str
    judged: bool = True


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """A session of ``account`` ended early for a reason other than refused credentials.

    ``kind`` is a ``relay.report.FailureKind`` value (``connect``, ``tls``, …):
    published after its unfinished messages were settled, so a window can say
    "server unreachable" with the account, not only "2 deferred".
    """

    account: str
    kind: str
    text: str


Event = (
    MessageQueued
    | MessageChanged
    | MessageDeleted
    | AttemptStarted
    | PhaseChanged
    | ProgressMade
    | FlushStarted
    | FlushFinished
    | AuthenticationRefused
    | SessionFailed
)

Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of engine events to subscribers, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @property
    def listened(self) -> bool:
        """Whether anyone subscribed: a publisher may skip building an event nobody reads."""
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)
