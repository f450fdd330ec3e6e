"""When a message is due: ``--at`` values, and the next moment the window wakes to send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from relay.errors import UsageError
from relay.schedule import Waiting, day_text, next_wake_at, parse_when
from relay.throttle import AccountPause, Limit

CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 5, 9, 30, 20, 500000, tzinfo=UTC)  # 10:30:20.5 CET


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14:00", datetime(2026, 12, 5, 13, 0, tzinfo=UTC)),  # later today, local
        ("10:00", datetime(2026, 12, 6, 9, 0, tzinfo=UTC)),  # passed today: tomorrow
        ("10:30:21", datetime(2026, 12, 5, 9, 30, 21, tzinfo=UTC)),
        ("2026-12-24 08:00", datetime(2026, 12, 24, 7, 0, tzinfo=UTC)),
        ("2026-12-24T08:00", datetime(2026, 12, 24, 7, 0, tzinfo=UTC)),
        ("2026-12-24T08:00:00+05:00", datetime(2026, 12, 24, 3, 0, tzinfo=UTC)),
        ("2026-12-24T08:00Z", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
        ("2026-12-24T08:00:00.2Z", datetime(2026, 12, 24, 8, 0, 1, tzinfo=UTC)),  # rounded up
        (" 2026-12-24 ", datetime(2026, 12, 23, 23, 0, tzinfo=UTC)),  # a date: its midnight
    ],
)
def test_when_is_read_as_iso_8601_or_local_time(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW, tz=CET) == expected


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "25:00", "14h", "2026-13-01 08:00", "12:00+01:00", "1733400000"]
)
def test_a_bad_when_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match="HH:MM") as caught:
        parse_when(text, now=NOW, tz=CET)
    assert caught.value.exit_code == 64


def test_a_time_in_the_hour_the_clocks_go_back_is_the_next_showing_still_to_come() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 02:10 CET, the second 02:10 of 2027-10-31 (the first was 02:10 CEST, 00:10 UTC).
    after_change = datetime(2027, 10, 31, 1, 10, tzinfo=UTC)
    assert parse_when("02:45", now=after_change, tz=berlin) == after_change + timedelta(minutes=35)
    # 01:50 CEST, before the change: the first 02:45 comes first.
    before_change = datetime(2027, 10, 30, 23, 50, tzinfo=UTC)
    assert parse_when("02:45", now=before_change, tz=berlin) == datetime(
        2027, 10, 31, 0, 45, tzinfo=UTC
    )


def waiting(message_id: int, account: str | None, minutes: float) -> Waiting:
    return Waiting(message_id, "ann@example.org", account, NOW + timedelta(minutes=minutes))


def test_the_next_wake_is_the_earliest_due_message() -> None:
    items = [waiting(1, "home", 10), waiting(2, "home", 3), waiting(3, "work", 7)]
    assert next_wake_at(items, lambda w: w.account, {}) == NOW + timedelta(minutes=3)
    assert next_wake_at([], lambda w: w.account, {}) is None


def test_a_paused_account_wakes_nothing_before_its_pause_ends() -> None:
    pause = AccountPause("home", NOW + timedelta(minutes=20), Limit.RATE, "421 4.7.0")
    items = [waiting(1, "home", -5), waiting(2, "work", 30)]
    assert next_wake_at(items, lambda w: w.account, {"home": pause}) == pause.until


def test_an_account_needing_a_person_or_a_message_without_account_wakes_nothing() -> None:
    items = [waiting(1, "home", -5), waiting(2, None, -5), waiting(3, "work", 30)]
    assert next_wake_at(items, lambda w: w.account, {}, skip={"home"}) == (
        NOW + timedelta(minutes=30)
    )
    assert next_wake_at(items[:2], lambda w: w.account, {}, skip={"home"}) is None


def test_a_time_today_shows_as_the_hour_and_another_day_with_its_date() -> None:
    assert day_text(datetime(2026, 12, 5, 13, 0, tzinfo=UTC), NOW, CET) == "14:00"
    assert day_text(datetime(2026, 12, 5, 23, 30, tzinfo=UTC), NOW, CET) == "2026-12-06 00:30"
