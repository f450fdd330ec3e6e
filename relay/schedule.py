"""When a message is due: the time a person names with ``--at``, and the next moment to wake.

Two kinds of message go out without anybody clicking: a *deferred* one (an
attempt was made; its back-off says when to try again) and a *scheduled*
one (queued with a time before which no flush sends it: ``enqueue --at``,
the window's "Send later…"). Both keep that moment in the store's
``next_attempt_at``. A queued message without a time is new mail nobody has
asked to send yet: only a flush a person starts sends it (``outbox flush``,
Send All), never ``flush --due`` or the window's automatic sending.

No I/O and no hidden clock: ``parse_when`` takes ``now`` and the local time
zone; ``next_wake_at`` takes what the store and the accounts say.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from relay.errors import UsageError
from relay.throttle import AccountPause

DAY_TIME = "%Y-%m-%d %H:%M"  # a local time on another day than today
WHEN_FORMS = "ISO 8601 (2026-12-24T08:00+01:00), or local time HH:MM or YYYY-MM-DD HH:MM"


def parse_when(text: str, *, now: datetime, tz: tzinfo | None = None) -> datetime:
    """The moment ``text`` names, aware, rounded up to a whole second.

    ``HH:MM`` (or ``HH:MM:SS``) is the next such local time: today if it is
    still ahead, else tomorrow (as at(1) reads it). ``YYYY-MM-DD HH:MM`` and
    any ISO 8601 date-time without an offset are local times; with an offset
    (or ``Z``) they are what they say. ``tz`` is the local zone (None: the
    system's). A bad value raises ``UsageError`` naming the accepted forms.
    """
    value = text.strip()
    if not value:
        raise UsageError(f"--at needs a time: {WHEN_FORMS}")
    moment: datetime | None = None
    if ":" in value and "-" not in value and "T" not in value.upper():
        try:
            clock = time.fromisoformat(value)
        except ValueError:
            clock = None
        if clock is not None and clock.tzinfo is None:
            local_now = now.astimezone(tz)
            today = datetime.combine(local_now.date(), clock)
            # In the hour the clocks go back, the time's second showing still
            # counts as today's (02:45 asked at 02:10 after the change is in 35 min).
            moment = next(
                (m for m in (_local(today, tz), _local(today.replace(fold=1), tz)) if m > now),
                None,
            ) or _local(datetime.combine(local_now.date() + timedelta(days=1), clock), tz)
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            try:
                moment = parsed if parsed.tzinfo is not None else _local(parsed, tz)
            except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range
                raise _out_of_range(text) from None
    if moment is None:
        raise UsageError(f"--at {text!r} is not a time Outbox understands: {WHEN_FORMS}")
    try:
        moment = _whole_second_up(moment)
    except OverflowError:
        raise _out_of_range(text) from None
    if not KEEPABLE[0] <= moment <= KEEPABLE[1]:
        # Storable in UTC, but every local display of it (``list``, ``show``, the
        # window) in a zone a day away from UTC would overflow datetime's range.
        raise _out_of_range(text)
    return moment


#: The instants ``--at`` may name: every zone of the world can show them.
KEEPABLE = (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


def _out_of_range(text: str) -> UsageError:
    return UsageError(f"--at {text!r} is out of the range of dates Outbox keeps")


def _local(naive: datetime, tz: tzinfo | None) -> datetime:
    """``naive`` as a local time; one the clock skips is read as after the jump.

    A wall time that comes twice (autumn) is its first. One that never comes
    (spring, 02:30 in Berlin) must not make the message go before it: a
    ``zoneinfo`` zone reads it after the jump (PEP 495), but the system's
    own zone (``astimezone()`` of a naive time) reads it an hour *before*,
    so that case takes the later of its two readings.
    """
    if tz is not None:
        moment = naive.replace(tzinfo=tz)
    else:
        moment = naive.astimezone()
        if moment.astimezone(UTC).astimezone().replace(tzinfo=None) != naive:  # skipped
            moment = max(moment, naive.replace(fold=1).astimezone())
    # In UTC: an aware time of the repeated hour (fold=1) never equals one in
    # another zone (PEP 495), which would trip every comparison after this.
    return moment.astimezone(UTC)


def _whole_second_up(moment: datetime) -> datetime:
    """The store keeps whole seconds: round up, so nothing goes before the time named.

    Raises ``OverflowError`` for a moment the store (in UTC) cannot hold.
    """
    moment.astimezone(UTC)
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


@dataclass(frozen=True, slots=True)
class Waiting:
    """A deferred or scheduled message, not held and not being sent, and when it is due."""

    message_id: int
    sender: str
    account: str | None
    due_at: datetime
    #: Deferred (tried, its back-off running), not scheduled by a person.
    deferred: bool = False


def next_wake_at(
    waiting: Iterable[Waiting],
    account_of: Callable[[Waiting], str | None],
    pauses: Mapping[str, AccountPause],
    *,
    skip: Collection[str] = (),
) -> datetime | None:
    """The earliest moment one of ``waiting`` may be sent by itself, or None.

    A message goes through ``account_of`` it (None: no account would take it,
    which needs a person); an account in ``skip`` (it needs its password or
    sign-in) sends nothing by itself, and a paused one nothing before its
    pause ends.
    """
    best: datetime | None = None
    for item in waiting:
        name = account_of(item)
        if name is None or name in skip:
            continue
        moment = item.due_at
        pause = pauses.get(name)
        if pause is not None and pause.until > moment:
            moment = pause.until
        if best is None or moment < best:
            best = moment
    return best


def day_text(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """``14:00`` today, else ``2026-12-24 14:00`` (local time)."""
    local = moment.astimezone(tz)
    today: date = now.astimezone(tz).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime(DAY_TIME)
