""" "Send later…": a date-time picker for the selected messages.

The chosen moment (local time, whole minutes) is handed to the window, which
stores it through ``Outbox.schedule``: no flush sends the messages before it
unless a person names them, and the window's automatic sending
(``gui.auto_send``) sends them once it comes. The dialog is opened with
``open()`` like every dialog of the window, never ``exec()``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gui.local_time import picker_format

DEFAULT_DELAY = timedelta(hours=1)


class SendLaterDialog(QDialog):
    """Picks the date and time before which the selected messages are not sent."""

    #: The moment chosen: an aware ``datetime``.
    chosen = Signal(object)

    def __init__(self, count: int, now: datetime, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("send_later_dialog")
        self.setWindowTitle("Send Later")
        self.when = QDateTimeEdit()
        self.when.setObjectName("send_later_when")
        self.when.setAccessibleName("Send no earlier than")
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat(picker_format())
        local_now = now.astimezone()
        self.when.setMinimumDateTime(_qt_local(local_now))
        self.when.setDateTime(_qt_local((local_now + DEFAULT_DELAY).replace(minute=0)))
        label = QLabel(
            f"Send {'this message' if count == 1 else f'these {count} messages'} no earlier than:"
        )
        label.setBuddy(self.when)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        accept = buttons.button(QDialogButtonBox.StandardButton.Ok)
        accept.setText("Send Later")
        accept.setObjectName("send_later_accept")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setObjectName("send_later_cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.when)
        layout.addWidget(buttons)

    def moment(self) -> datetime:
        """The chosen local time, aware, on a whole minute."""
        shown = self.when.dateTime()  # local wall-clock time
        day, clock = shown.date(), shown.time()
        naive = datetime(day.year(), day.month(), day.day(), clock.hour(), clock.minute())
        return naive.astimezone()

    def accept(self) -> None:
        self.chosen.emit(self.moment())
        super().accept()


def _qt_local(moment: datetime) -> QDateTime:
    """``moment`` (aware, local) as Qt's local date-time, to the minute."""
    return QDateTime(moment.year, moment.month, moment.day, moment.hour, moment.minute, 0)
