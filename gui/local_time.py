"""How the window words a moment: in the user's locale, relative where that reads better.

The rules, for a moment seen at ``now`` (both aware; shown in the local time zone):

- within the hour, when ``relative`` is asked for: ``in 5 min``, ``now``, ``12 min ago``
  (whole minutes as the clock counts them: 12:05 is "in 5 min" at 12:00:59);
- the same local day: the time alone, as the locale writes it (``2:05 PM``, ``14:05``);
- any other day: the locale's short date and time (``12/24/26 2:05 PM``, ``24.12.26 14:05``).

The locale is ``QLocale()`` unless one is passed: the system's, or the default a
test set with ``QLocale.setDefault``. The C locale (``LANG=C``, common on minimal
systems) has no preference of its own and Qt's formats for it read oddly
(``5 12 2026``): there the window keeps the ISO-like forms the command line prints.

The command line never comes here: ``outbox list`` and ``outbox show`` print
``2026-12-24 14:05`` whatever the locale, because scripts read them.
"""

from __future__ import annotations

import math
from datetime import datetime

from PySide6.QtCore import QDateTime, QLocale, QTimeZone

#: Moments at most this many minutes from now read as "in 5 min" or "12 min ago".
RELATIVE_MIN = 60

_SHORT = QLocale.FormatType.ShortFormat
_LONG = QLocale.FormatType.LongFormat
_ISO_TIME = "HH:mm"
_ISO_DAY_TIME = "yyyy-MM-dd HH:mm"
_ISO_EXACT = "yyyy-MM-dd HH:mm:ss t"


def moment_text(
    moment: datetime, now: datetime, locale: QLocale | None = None, *, relative: bool = True
) -> str:
    """``moment`` as the window shows it at ``now`` (the rules above)."""
    if relative:
        # Minutes as the clock counts them, whatever the seconds.
        ahead = math.floor(moment.timestamp() / 60) - math.floor(now.timestamp() / 60)
        if ahead == 0:
            return "now"
        if 0 < ahead <= RELATIVE_MIN:
            return f"in {ahead} min"
        if -RELATIVE_MIN <= ahead < 0:
            return f"{-ahead} min ago"
    shown = _qt_local(moment)
    chosen = QLocale() if locale is None else locale
    iso = chosen.language() == QLocale.Language.C
    if moment.astimezone().date() == now.astimezone().date():
        return shown.toString(_ISO_TIME) if iso else chosen.toString(shown.time(), _SHORT)
    return shown.toString(_ISO_DAY_TIME) if iso else chosen.toString(shown, _SHORT)


def exact_text(moment: datetime, locale: QLocale | None = None) -> str:
    """``moment`` to the second with its day and offset, for a tooltip: the locale's long form."""
    shown = _qt_local(moment)
    chosen = QLocale() if locale is None else locale
    if chosen.language() == QLocale.Language.C:
        return shown.toString(_ISO_EXACT)
    return chosen.toString(shown, _LONG)


def picker_format(locale: QLocale | None = None) -> str:
    """The display format of a date-and-time picker: the locale's short one, to the minute."""
    chosen = QLocale() if locale is None else locale
    if chosen.language() == QLocale.Language.C:
        return _ISO_DAY_TIME
    return chosen.dateTimeFormat(_SHORT)


def _qt_local(moment: datetime) -> QDateTime:
    """``moment`` in the local time zone as Python sees it (the offset it has then), so the
    window's "today" and the cell's day agree with ``datetime.astimezone``."""
    local = moment.astimezone()
    offset = local.utcoffset()
    offset_s = int(offset.total_seconds()) if offset is not None else 0
    return QDateTime.fromSecsSinceEpoch(int(local.timestamp()), QTimeZone(offset_s))
