"""Where the window keeps what it remembers: geometry, column widths, the filter.

An INI file in the user's configuration directory (``~/.config/Outbox/Outbox.ini``
on Linux), under the organisation and application names below. Tests point
``QSettings.setPath`` at a temporary directory before opening it.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "Outbox"
APPLICATION = "Outbox"


def open_settings() -> QSettings:
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )
