"""Numbers from config.toml and the command line: finite, in range, or a config error.

TOML has ``nan``, ``inf`` and floats up to 1.8e308, and a person may type any
of them; each one once reached the engine and crashed every flush (a
``timedelta`` of 1e300 seconds overflows, ``nan`` compares false with
everything). So every number Outbox reads goes through ``number_in_range``,
and a bad one is a ``ConfigError`` (exit 78) that names the setting, the
value and the range. The ranges are generous -- they keep out what cannot
work, not what is merely unusual.
"""

from __future__ import annotations

import math

from relay.errors import ConfigError

#: One day: no single SMTP reply, connection or TLS handshake is worth waiting longer.
MAX_TIMEOUT_S = 24 * 3600.0
#: A message may wait up to a year for a server that keeps deferring it.
MAX_LIFETIME_S = 365 * 24 * 3600.0
#: Connections to one server at once; servers refuse far fewer than this.
MAX_CONNECTIONS = 100
#: Messages over one connection before reconnecting.
MAX_MESSAGES_PER_CONNECTION = 1_000_000


def number_in_range(
    value: object,
    key: str,
    *,
    low: float,
    high: float,
    low_inclusive: bool = True,
    whole: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a finite number within ``[low, high]`` (``(low, high]`` if not inclusive).

    ``whole`` refuses fractions (and floats, as TOML writes them). Text is
    parsed as a person types it on the command line. The error names ``key``.
    """
    kind = "a whole number" if whole else "a number"
    suffix = f" {unit}" if unit else ""
    lower = f"at least {_show(low)}" if low_inclusive else f"more than {_show(low)}"
    wanted = f"{kind}{suffix}, {lower} and at most {_show(high)}"
    number: float
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be {wanted}, not {value!r}")
    if isinstance(value, int) or (isinstance(value, float) and not whole):
        number = value
    elif isinstance(value, str):
        number = _parse_text(value, key, wanted, whole=whole)
    else:
        raise ConfigError(f"{key} must be {wanted}, not {value!r}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{key} must be {wanted}, not {value!r}")
    too_low = number < low if low_inclusive else number <= low
    if too_low or number > high:
        raise ConfigError(f"{key} must be {wanted}, not {value!r}")
    return number


def _parse_text(text: str, key: str, wanted: str, *, whole: bool) -> float:
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    if whole:
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
            raise ConfigError(f"{key} must be {wanted}, not {text!r}")
        return int(stripped)
    try:
        return float(stripped)
    except ValueError:
        raise ConfigError(f"{key} must be {wanted}, not {text!r}") from None


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
