"""The states of recipients and messages, and the rule that derives one from the other.

The enum values are exactly the words of the command-line contract, so the database, the JSON
output and the code agree. A message's state is a function of its recipients'
states plus two facts a person or the flush controls (held, being sent).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class RecipientState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class MessageState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    HELD = "held"
    SENT = "sent"


class Phase(StrEnum):
    """Where an attempt is, in words a person can read."""

    CONNECTING = "connecting"
    SECURING = "securing"
    AUTHENTICATING = "authenticating"
    SENDING = "sending"
    AWAITING_VERDICT = "awaiting verdict"
    DONE = "done"


#: Recipients a delivery is still owed to: a flush sends to these.
OWED = frozenset({RecipientState.PENDING, RecipientState.DEFERRED})


def derive_message_state(
    recipients: Iterable[RecipientState], *, held: bool = False, sending: bool = False
) -> MessageState:
    """The message's state from its recipients' states.

    | recipients                                  | message   |
    |---------------------------------------------|-----------|
    | all sent                                    | sent      |
    | (held, something still owed or uncertain)   | held      |
    | (being sent)                                | sending   |
    | some deferred, none pending                 | deferred  |
    | some pending                                | queued    |
    | none owed, some uncertain                   | uncertain |
    | none owed, none uncertain, some failed      | failed    |
    """
    states = list(recipients)
    if all(s is RecipientState.SENT for s in states):
        return MessageState.SENT
    if held:
        return MessageState.HELD
    if sending:
        return MessageState.SENDING
    if RecipientState.PENDING in states:
        return MessageState.QUEUED
    if RecipientState.DEFERRED in states:
        return MessageState.DEFERRED
    if RecipientState.UNCERTAIN in states:
        return MessageState.UNCERTAIN
    return MessageState.FAILED
