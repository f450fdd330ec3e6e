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
        self._now = now
        self.when.setMinimumDateTime(_qt_local(now))
        # An hour on in real time, down to its hour on the local clock (whose offset may differ).
        self.when.setDateTime(_qt_local((now + DEFAULT_DELAY).astimezone().replace(minute=0)))
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
        """The chosen local time, aware, on a whole minute.

        A time the clock shows twice (the hour it goes back, 02:00-03:00 in
        Berlin in October) is its first showing, unless that was already past
        when the dialog opened: at 02:10 after the change, "02:45" means in 35
        minutes, not 25 minutes ago.
        """
        shown = self.when.dateTime()  # local wall-clock time
        day, clock = shown.date(), shown.time()
        naive = datetime(day.year(), day.month(), day.day(), clock.hour(), clock.minute())
        first, second = naive.astimezone(), naive.replace(fold=1).astimezone()
        if first < second and first < self._now:
            return second
        return first

    def accept(self) -> None:
        self.chosen.emit(self.moment())
        super().accept()


def _qt_local(moment: datetime) -> QDateTime:
    """``moment`` as Qt's local date-time, to the minute, from its local wall-clock fields.

    In the hour the clock goes back Qt takes those for the first of the two
    times they name: the picker then lets a person pick any time of that hour,
    and ``moment`` tells which one is meant.
    """
    local = moment.astimezone()
    return QDateTime(local.year, local.month, local.day, local.hour, local.minute, 0)
