"""Provider limits, one row per provider reply: what pauses an account, and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.report import Reply, Stage
from relay.throttle import (
    AccountPause,
    Limit,
    next_pause,
    pause_text,
    pause_until,
    throttle_of,
)

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
CET = timezone(timedelta(hours=1))
GMAIL_DAILY = "5.4.5 Daily user sending limit exceeded."


@pytest.mark.parametrize(
    ("stage", "code", "text", "limit"),
    [
        # Gmail: too much at once.
        (Stage.MAIL, 421, "4.7.0 Try again later, closing connection. (MAIL) gsmtp", Limit.RATE),
        (Stage.GREETING, 421, "4.7.0 Try again later, closing connection.", Limit.RATE),
        # Gmail: too many sign-ins.
        (Stage.AUTH, 454, "4.7.0 Too many login attempts, please try again later.", Limit.RATE),
        # Gmail's daily quota: 5xx in code, temporary in meaning.
        (Stage.END_OF_DATA, 550, "5.4.5 Daily user sending limit exceeded.", Limit.DAILY),
        (Stage.MAIL, 550, "5.4.5 Daily SMTP relay limit exceeded for user.", Limit.DAILY),
        # Yahoo.
        (
            Stage.GREETING,
            421,
            "4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred"
            " due to unexpected volume or user complaints",
            Limit.RATE,
        ),
        # Postfix policy daemons and Exim ratelimit ACLs.
        (Stage.RCPT, 451, "4.7.1 Too many messages, slow down", Limit.RATE),
        (Stage.MAIL, 451, "4.7.1 Sending rate limit exceeded", Limit.RATE),
        # Postfix's own client limits (smtpd_client_message_rate_limit, …_recipient_…).
        (Stage.MAIL, 450, "4.7.1 Error: too much mail from 127.0.0.1", Limit.RATE),
        (Stage.RCPT, 450, "4.7.1 Error: too many recipients from 127.0.0.1", Limit.RATE),
        # Microsoft 365 / Outlook.com daily recipient quota.
        (
            Stage.END_OF_DATA,
            554,
            "5.2.0 STOREDRV.Submission.Exception:"
            "SubmissionQuotaExceededException; Failed to process message",
            Limit.DAILY,
        ),
        # A quota reply in 4xx clothes is still a daily one.
        (Stage.MAIL, 451, "4.7.1 Daily sending quota exceeded", Limit.DAILY),
    ],
)
def test_a_provider_throttling_reply_pauses_the_account(
    stage: Stage, code: int, text: str, limit: Limit
) -> None:
    throttle = throttle_of(Reply(stage, code, text))
    assert throttle is not None and throttle.limit is limit
    assert throttle.reply == f"{code} {text}"


@pytest.mark.parametrize(
    ("stage", "code", "text"),
    [
        (Stage.RCPT, 452, "4.5.3 Too many recipients"),  # one transaction's limit
        (
            Stage.RCPT,
            450,
            "4.2.1 The user you are trying to contact is receiving mail at a"
            " rate that prevents additional messages from being delivered",
        ),  # one mailbox
        (Stage.RCPT, 451, "4.7.1 Greylisted, please try again in 300 seconds"),
        (Stage.RCPT, 450, "4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]"),
        (Stage.RCPT, 450, "4.7.1 <b@example.net>: Recipient address rejected: greylisted"),
        (Stage.STARTTLS, 454, "4.7.0 TLS not available due to local problem"),
        (Stage.RCPT, 550, "5.1.1 The email account that you tried to reach does not exist"),
        (Stage.AUTH, 535, "5.7.8 Username and Password not accepted"),
        (Stage.MAIL, 421, "4.3.2 Service shutting down"),
        (Stage.END_OF_DATA, 250, "2.0.0 OK"),
        (Stage.END_OF_DATA, 0, "connection lost"),
    ],
)
def test_an_ordinary_reply_does_not_pause_the_account(stage: Stage, code: int, text: str) -> None:
    assert throttle_of(Reply(stage, code, text)) is None


def test_the_replys_own_hint_decides_the_pause() -> None:
    throttle = throttle_of(Reply(Stage.MAIL, 451, "4.7.1 Rate limited; try again in 7 minutes"))
    assert throttle is not None and throttle.hint_s == 420
    assert pause_until(throttle, level=3, now=NOW) == NOW + timedelta(minutes=7)


def test_a_hint_is_kept_between_a_minute_and_two_days() -> None:
    short = throttle_of(Reply(Stage.MAIL, 421, "4.7.0 Too many, retry after 2 seconds"))
    long = throttle_of(Reply(Stage.MAIL, 421, "4.7.0 Too many, retry in 900 hours"))
    assert short is not None and long is not None
    assert pause_until(short, level=1, now=NOW) == NOW + timedelta(minutes=1)
    assert pause_until(long, level=1, now=NOW) == NOW + timedelta(days=2)


@pytest.mark.parametrize(
    ("level", "minutes"), [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)]
)
def test_a_rate_limit_without_a_hint_waits_minutes_growing_with_each_pause_in_a_row(
    level: int, minutes: int
) -> None:
    throttle = throttle_of(Reply(Stage.MAIL, 421, "4.7.0 Try again later"))
    assert throttle is not None
    assert pause_until(throttle, level=level, now=NOW) == NOW + timedelta(minutes=minutes)


def test_a_daily_limit_waits_until_the_next_local_day_then_a_whole_day() -> None:
    throttle = throttle_of(Reply(Stage.END_OF_DATA, 550, GMAIL_DAILY))
    assert throttle is not None
    # 09:30 UTC is 10:30 in CET: tomorrow starts at 23:00 UTC.
    assert pause_until(throttle, level=1, now=NOW, tz=CET) == datetime(
        2026, 12, 5, 23, 0, tzinfo=UTC
    )
    assert pause_until(throttle, level=2, now=NOW, tz=CET) == NOW + timedelta(days=1)


def test_a_daily_limit_just_before_midnight_still_waits_an_hour() -> None:
    throttle = throttle_of(Reply(Stage.END_OF_DATA, 550, GMAIL_DAILY))
    assert throttle is not None
    late = datetime(2026, 12, 5, 22, 50, tzinfo=UTC)  # 23:50 CET
    assert pause_until(throttle, level=1, now=late, tz=CET) == late + timedelta(hours=1)


def test_a_running_pause_is_kept_and_a_new_one_grows_from_the_last() -> None:
    throttle = throttle_of(Reply(Stage.MAIL, 421, "4.7.0 Try again later"))
    assert throttle is not None
    first = next_pause(throttle, "work", None, now=NOW)
    assert (first.level, first.until) == (1, NOW + timedelta(minutes=5))
    # A sibling session throttled in the same flush: the same pause.
    assert next_pause(throttle, "work", first, now=NOW + timedelta(seconds=3)) == first
    later = first.until + timedelta(seconds=1)
    second = next_pause(throttle, "work", first, now=later)
    assert (second.level, second.until) == (2, later + timedelta(minutes=10))


def test_a_pause_reads_as_the_account_the_time_and_the_limit() -> None:
    pause = AccountPause(
        "work", datetime(2026, 12, 5, 13, 0, tzinfo=UTC), Limit.DAILY, "550 5.4.5 Daily …"
    )
    assert pause_text(pause, NOW, CET) == "work: paused until 14:00 (daily sending limit)"
    tomorrow = AccountPause("work", NOW + timedelta(days=1), Limit.RATE, "421 4.7.0")
    assert pause_text(tomorrow, NOW, CET) == (
        "work: paused until 2026-12-06 10:30 (sending rate limit)"
    )
