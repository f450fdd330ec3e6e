"""Provider limits: which replies mean "you are sending too much", and until when to wait.

A provider that throttles an account says so in a reply, and hammering it on
makes it worse (a rate limit grows into a temporary block). Such a reply pauses
the *whole account* until a time: its other messages wait, untried, with no
attempt counted, instead of each earning its own deferral -- or, for Gmail's
daily quota, a permanent failure that is not one.

No I/O and no hidden clock: ``throttle_of`` reads one reply, ``pause_until``
takes ``now`` and the local time zone. The replies, by enhanced status code
(RFC 3463) and words:

| reply                                             | limit | e.g. (provider)                   |
|---------------------------------------------------|-------|-----------------------------------|
| 550 5.4.5                                         | daily | Daily user sending limit exceeded |
|                                                   |       | (Gmail)                           |
| 4xx/5xx with "daily" and "limit"/"quota", or      | daily | 554 5.2.0 STOREDRV.Submission.    |
| ``SubmissionQuotaExceeded``                       |       | Exception:SubmissionQuotaExceeded |
|                                                   |       | Exception (Microsoft 365)         |
| 421 4.7.0                                         | rate  | Try again later (Gmail); [TSS04]  |
|                                                   |       | temporarily deferred (Yahoo)      |
| 454 4.7.0, except to STARTTLS (there: "TLS not    | rate  | Too many login attempts (Gmail)   |
| available now", RFC 3207)                         |       |                                   |
| 421/450/451/454 4.7.x with "too many", "too      | rate  | 451 4.7.1 Too many messages, slow |
| much", "rate", "limit", "exceeded" or "throttl"   |       | down (Postfix policy, Exim ACLs); |
|                                                   |       | 450 4.7.1 Error: too much mail    |
|                                                   |       | from … (Postfix's own client rate |
|                                                   |       | limits)                           |

Not throttling, though they look alike: ``452 4.5.3`` (too many recipients
for one transaction: the relayer sends the rest later), ``450 4.2.1`` (one
recipient's mailbox receiving too fast), greylisting (``451 4.7.1 … come back
later``): each concerns one recipient or one message, not the account.

How long (``pause_until``): the reply's own hint when it gives one ("try
again in 5 minutes", "retry after 300 seconds"), kept between a minute and two
days; else a back-off that grows with each pause in a row (``level``) -- for a
rate limit 5, 10, 20, 40 and then 60 minutes; for a daily quota the start of
the next local day (at least an hour away), then a whole day from now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from relay.report import Reply, Stage


class Limit(StrEnum):
    """Which of a provider's limits a reply reports (words shown to a person)."""

    RATE = "sending rate limit"
    DAILY = "daily sending limit"


@dataclass(frozen=True, slots=True)
class Throttle:
    """A reply that throttles the account: which limit, and the wait it asks for, if any."""

    limit: Limit
    reply: str
    hint_s: float | None = None


@dataclass(frozen=True, slots=True)
class AccountPause:
    """An account that sends nothing automatically before ``until``.

    ``level`` counts the pauses in a row (1 for the first); the back-off
    grows with it. A message sent through the account ends the series.
    """

    account: str
    until: datetime
    limit: Limit
    reply: str
    level: int = 1

    def active(self, now: datetime) -> bool:
        return now < self.until


RATE_FIRST_S = 5 * 60.0
RATE_MAX_S = 60 * 60.0
DAILY_MIN_S = 60 * 60.0
DAY_S = 24 * 3600.0
HINT_MIN_S = 60.0
HINT_MAX_S = 2 * DAY_S

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_RATE_WORDS = re.compile(r"too many|too much|rate|limit|exceeded|throttl", re.IGNORECASE)
_DAILY_WORDS = re.compile(
    r"\bdaily\b.*\b(limit|quota)|SubmissionQuotaExceeded", re.IGNORECASE | re.DOTALL
)
_HINT = re.compile(
    r"\b(?:in|after)\s+(\d{1,6})\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    re.IGNORECASE,
)
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


def throttle_of(reply: Reply) -> Throttle | None:
    """The throttle ``reply`` reports, or None when it is an ordinary reply (table above)."""
    if not (400 <= reply.code < 600):
        return None
    text = reply.text
    enhanced = _ENHANCED.match(text)
    status = enhanced.groups() if enhanced else None
    hint = _hint_s(text)
    if status == ("5", "4", "5") or _DAILY_WORDS.search(text):
        return Throttle(Limit.DAILY, str(reply), hint)
    if reply.code not in (421, 450, 451, 454) or status is None or status[:2] != ("4", "7"):
        return None
    if reply.code == 454 and reply.stage is Stage.STARTTLS:
        return None  # RFC 3207: TLS not available for a passing reason, not a limit
    if (reply.code in (421, 454) and status == ("4", "7", "0")) or _RATE_WORDS.search(text):
        return Throttle(Limit.RATE, str(reply), hint)
    return None


def first_throttle(replies: Iterable[Reply | None]) -> Throttle | None:
    """The first of ``replies`` that throttles, if any."""
    for reply in replies:
        if reply is not None and (throttle := throttle_of(reply)) is not None:
            return throttle
    return None


def pause_until(
    throttle: Throttle, *, level: int, now: datetime, tz: tzinfo | None = None
) -> datetime:
    """When the account may send again after ``throttle``, the ``level``-th pause in a row.

    ``tz`` is the local time zone that decides when "tomorrow" starts (None:
    the system's).
    """
    if throttle.hint_s is not None:
        return now + timedelta(seconds=min(max(throttle.hint_s, HINT_MIN_S), HINT_MAX_S))
    if throttle.limit is Limit.RATE:
        delay_s = RATE_FIRST_S * 2.0 ** min(max(level - 1, 0), 16)
        return now + timedelta(seconds=min(delay_s, RATE_MAX_S))
    if level > 1:
        return now + timedelta(seconds=DAY_S)
    local = now.astimezone(tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=local.tzinfo)
    return max(tomorrow, now + timedelta(seconds=DAILY_MIN_S))


def next_pause(
    throttle: Throttle,
    account: str,
    previous: AccountPause | None,
    *,
    now: datetime,
    tz: tzinfo | None = None,
) -> AccountPause:
    """The pause ``throttle`` starts, given the account's ``previous`` one (or None).

    A pause still running is kept as it is: two sessions of one flush both
    throttled make one pause, not a doubled one.
    """
    if previous is not None and previous.active(now):
        return previous
    level = previous.level + 1 if previous is not None else 1
    until = pause_until(throttle, level=level, now=now, tz=tz)
    return AccountPause(account, until, throttle.limit, throttle.reply, level)


def pause_text(
    pause: AccountPause,
    now: datetime,
    tz: tzinfo | None = None,
    *,
    when: Callable[[datetime, datetime], str] | None = None,
) -> str:
    """``work: paused until 14:00 (daily sending limit)``; the date when not today.

    ``when(until, now)`` words the time (the window's follows the user's locale);
    by default the command line's stable ``relay.schedule.day_text``.
    """
    from relay.schedule import day_text

    shown = when(pause.until, now) if when is not None else day_text(pause.until, now, tz)
    return f"{pause.account}: paused until {shown} ({pause.limit})"


def _hint_s(text: str) -> float | None:
    match = _HINT.search(text)
    if match is None:
        return None
    unit = match.group(2)[0].lower()
    return int(match.group(1)) * _UNIT_S[unit]
