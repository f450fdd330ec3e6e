"""The pure rules, table row by table row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay.policy import RetryPolicy, Verdict, classify, expire, recipient_verdicts
from relay.report import FailureKind, Reply, SessionFailure, Stage, TransactionReport
from relay.states import MessageState, RecipientState, derive_message_state

P, S, D, F, U = (
    RecipientState.PENDING,
    RecipientState.SENT,
    RecipientState.DEFERRED,
    RecipientState.FAILED,
    RecipientState.UNCERTAIN,
)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OWED = ("a@example.org", "b@example.org")


@pytest.mark.parametrize(
    ("recipients", "held", "sending", "expected"),
    [
        ([S, S], False, False, MessageState.SENT),
        ([S, S], True, False, MessageState.SENT),
        ([P, S], True, False, MessageState.HELD),
        ([P, P], False, True, MessageState.SENDING),
        ([P, D], False, False, MessageState.QUEUED),
        ([D, S], False, False, MessageState.DEFERRED),
        ([D, F], False, False, MessageState.DEFERRED),
        ([F, S], False, False, MessageState.FAILED),
        ([U, S], False, False, MessageState.UNCERTAIN),
        ([U, F], False, False, MessageState.UNCERTAIN),
        ([U, D], False, False, MessageState.DEFERRED),
    ],
)
def test_message_state_is_derived_from_recipients(
    recipients: list[RecipientState], held: bool, sending: bool, expected: MessageState
) -> None:
    assert derive_message_state(recipients, held=held, sending=sending) is expected


@pytest.mark.parametrize(
    ("stage", "code", "expected"),
    [
        (Stage.RCPT, 450, D),
        (Stage.RCPT, 452, D),
        (Stage.RCPT, 552, D),  # RFC 5321 4.5.3.1.10
        (Stage.RCPT, 550, F),
        (Stage.RCPT, 553, F),
        (Stage.MAIL, 552, F),
        (Stage.END_OF_DATA, 554, F),
        (Stage.END_OF_DATA, 451, D),
        (Stage.MAIL, 421, D),
        (Stage.END_OF_DATA, 0, D),
    ],
)
def test_replies_are_classified_by_stage_and_code(
    stage: Stage, code: int, expected: RecipientState
) -> None:
    assert classify(Reply(stage, code, "text")) is expected


def rcpt(code: int) -> Reply:
    return Reply(Stage.RCPT, code, f"rcpt {code}")


def report(**kwargs: object) -> TransactionReport:
    base: dict[str, object] = {"message_id": 1, "mail": Reply(Stage.MAIL, 250, "ok")}
    base.update(kwargs)
    return TransactionReport(**base)  # type: ignore[arg-type]


def states(verdicts: dict[str, Verdict]) -> list[RecipientState]:
    return [verdicts[a].state for a in OWED]


def test_accepted_recipients_are_sent_only_by_the_end_of_data_reply() -> None:
    verdicts = recipient_verdicts(
        report(
            recipients={OWED[0]: rcpt(250), OWED[1]: rcpt(550)},
            data=Reply(Stage.DATA, 354, "go"),
            end_of_data=Reply(Stage.END_OF_DATA, 250, "queued as X"),
            data_completed=True,
        ),
        OWED,
    )
    assert states(verdicts) == [S, F]
    assert verdicts[OWED[0]].reply == "250 queued as X"
    assert verdicts[OWED[1]].reply == "550 rcpt 550"


def test_451_at_rcpt_defers_only_that_recipient() -> None:
    verdicts = recipient_verdicts(
        report(
            recipients={OWED[0]: rcpt(451), OWED[1]: rcpt(250)},
            data=Reply(Stage.DATA, 354, "go"),
            end_of_data=Reply(Stage.END_OF_DATA, 250, "ok"),
            data_completed=True,
        ),
        OWED,
    )
    assert states(verdicts) == [D, S]


def test_a_lost_reply_after_the_final_dot_leaves_accepted_recipients_uncertain() -> None:
    lost = SessionFailure(FailureKind.DROPPED, "connection closed by the server")
    verdicts = recipient_verdicts(
        report(
            recipients={OWED[0]: rcpt(250), OWED[1]: rcpt(550)},
            data=Reply(Stage.DATA, 354, "go"),
            data_completed=True,
            connection_error=lost,
        ),
        OWED,
    )
    assert states(verdicts) == [U, F]
    assert "connection closed by the server" in (verdicts[OWED[0]].reply or "")


def test_a_connection_lost_inside_the_data_defers_because_the_server_discards_it() -> None:
    lost = SessionFailure(FailureKind.DROPPED, "connection lost")
    verdicts = recipient_verdicts(
        report(
            recipients={OWED[0]: rcpt(250), OWED[1]: rcpt(250)},
            data=Reply(Stage.DATA, 354, "go"),
            data_completed=False,
            connection_error=lost,
        ),
        OWED,
    )
    assert states(verdicts) == [D, D]


@pytest.mark.parametrize(("code", "expected"), [(450, D), (550, F), (421, D)])
def test_a_mail_from_refusal_settles_every_recipient(code: int, expected: RecipientState) -> None:
    verdicts = recipient_verdicts(report(mail=Reply(Stage.MAIL, code, "no")), OWED)
    assert states(verdicts) == [expected, expected]


def test_a_local_refusal_fails_everyone_with_its_reason() -> None:
    verdicts = recipient_verdicts(report(mail=None, local_error="too big: 10 > 5"), OWED)
    assert states(verdicts) == [F, F]
    assert verdicts[OWED[0]].reply == "too big: 10 > 5"


def test_554_after_data_fails_the_accepted_recipients() -> None:
    verdicts = recipient_verdicts(
        report(
            recipients={OWED[0]: rcpt(250), OWED[1]: rcpt(452)},
            data=Reply(Stage.DATA, 354, "go"),
            end_of_data=Reply(Stage.END_OF_DATA, 554, "rejected"),
            data_completed=True,
        ),
        OWED,
    )
    assert states(verdicts) == [F, D]


def test_back_off_starts_at_a_minute_doubles_and_is_capped_at_an_hour() -> None:
    policy = RetryPolicy()
    delays = [(policy.next_attempt_at(n, NOW) - NOW).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert (policy.next_attempt_at(1000, NOW) - NOW).total_seconds() == 3600


def test_a_message_expires_after_the_queue_lifetime() -> None:
    policy = RetryPolicy(lifetime_s=3600)
    assert not policy.expired(None, NOW)
    assert not policy.expired(NOW - timedelta(minutes=59), NOW)
    assert policy.expired(NOW - timedelta(minutes=60), NOW)
    expired = expire({"a@x.org": Verdict(D, "451 later"), "b@x.org": Verdict(S, "250")})
    assert expired["a@x.org"] == Verdict(F, "expired: 451 later")
    assert expired["b@x.org"].state is S


def test_retry_settings_come_from_the_queue_table_and_are_checked() -> None:
    from relay.errors import ConfigError

    policy = RetryPolicy.from_config({"first_retry_s": 5, "lifetime_s": 100})
    assert (policy.first_retry_s, policy.max_retry_s, policy.lifetime_s) == (5, 3600, 100)
    with pytest.raises(ConfigError, match="first_retry_s"):
        RetryPolicy.from_config({"first_retry_s": -1})
