"""How Outbox words a size: decimal units, as the file managers on Linux do.

One function for the window, the status bar, the flush bar and ``outbox list``,
so one message is one size everywhere. GNOME's Files (GLib's ``g_format_size``)
and ``ls --si`` count in powers of 1000 with ``kB``, ``MB``, ``GB``; a message's
size then matches what the user sees for the same ``.eml`` file on disk.
Pure, no Qt: the command line uses it too.
"""

from __future__ import annotations

_UNITS = ("kB", "MB", "GB", "TB")


def size_text(octets: int) -> str:
    """``1 byte``, ``812 bytes``, ``4.2 kB``, ``8.6 MB``, ``123.5 MB``: one decimal past a kB."""
    if octets < 1000:
        return f"{octets} byte" if octets == 1 else f"{octets} bytes"
    value = float(octets)
    for unit in _UNITS:
        value /= 1000
        # Rounded to one decimal, 999.96 kB would read "1000.0 kB": that is "1.0 MB".
        if round(value, 1) < 1000 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
