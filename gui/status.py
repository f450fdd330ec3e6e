"""The status bar: how many messages are in each state, and how a flush is going.

Three parts, left to right: a transient notice (Qt's own status message, for
"3 messages added", "cannot send: …"), a persistent line when another process
holds the flush lock, and on the right the flush's progress (messages and bytes
of total, rates) and the counts per state. The flush figures are redrawn four
times a second while a flush runs, not on every engine event.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from gui.command_hints import for_window
from gui.display_text import counts_text, rate_text
from gui.flush_progress import FlushProgress
from relay.events import FlushFinished, FlushStarted, MessageChanged, ProgressMade, SessionFailed
from relay.sizes import size_text
from relay.states import MessageState

REDRAW_MS = 250
NOTICE_MS = 8000


class StatusPanel(QObject):
    """The status bar's parts: counts per state, the flush's progress, paused accounts, notices."""

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self._bar = bar
        self.progress = FlushProgress()

        self.lock_label = QLabel()
        self.lock_label.setTextFormat(Qt.TextFormat.PlainText)
        self.lock_label.setObjectName("status_lock")
        self.lock_label.setAccessibleName("Flush lock")
        self.lock_label.hide()
        bar.addWidget(self.lock_label)

        # Permanent: a notice must not hide it (it stays true for hours).
        self.pause_label = QLabel()
        self.pause_label.setTextFormat(Qt.TextFormat.PlainText)
        self.pause_label.setObjectName("status_pauses")
        self.pause_label.setAccessibleName("Paused accounts")
        self.pause_label.hide()
        bar.addPermanentWidget(self.pause_label)
        #: A server that could not be reached (or secured) in the last flush, with its account:
        #: prominent and kept until the next flush, where "2 deferred" alone would hide it.
        #: Its text quotes the server (a greeting it refused with): plain, never HTML.
        self.server_label = QLabel()
        self.server_label.setTextFormat(Qt.TextFormat.PlainText)
        self.server_label.setObjectName("status_server")
        self.server_label.setAccessibleName("Server problem")
        self.server_label.setStyleSheet("color: #dc2626; font-weight: bold")
        self.server_label.hide()
        bar.addPermanentWidget(self.server_label)  # permanent: a notice must not hide it
        self._unreachable: dict[str, str] = {}
        self._phase_notice = ""
        self._stopping = False

        self.flush_label = QLabel()
        self.flush_label.setTextFormat(Qt.TextFormat.PlainText)
        self.flush_label.setObjectName("status_flush")
        self.flush_label.setAccessibleName("Flush progress")
        self.flush_bar = QProgressBar()
        self.flush_bar.setObjectName("status_flush_bar")
        self.flush_bar.setAccessibleName("Bytes sent of this flush")
        self.flush_bar.setRange(0, 1000)
        self.flush_bar.setTextVisible(False)
        self.flush_bar.setMaximumWidth(160)
        self.flush_bar.setMaximumHeight(14)
        self.flush_label.hide()
        self.flush_bar.hide()
        bar.addPermanentWidget(self.flush_label)
        bar.addPermanentWidget(self.flush_bar)

        self.counts_label = QLabel()
        self.counts_label.setTextFormat(Qt.TextFormat.PlainText)
        self.counts_label.setObjectName("status_counts")
        self.counts_label.setAccessibleName("Messages per state")
        bar.addPermanentWidget(self.counts_label)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw_flush)

    # -- fed by the window --------------------------------------------------------------------

    def show_counts(self, counts: dict[MessageState, int]) -> None:
        self.counts_label.setText(counts_text(counts))

    def notice(self, text: str) -> None:
        """``text`` for a while; the engine's command-line advice as where to click."""
        self._bar.showMessage(for_window(text), NOTICE_MS)

    def show_lock_busy(self, busy: bool) -> None:
        self.lock_label.setText(
            "Another Outbox is sending from this outbox; Send all waits until it is done."
            if busy
            else ""
        )
        self.lock_label.setVisible(busy)

    def show_pauses(self, texts: list[str]) -> None:
        """Paused accounts, e.g. ``work: paused until 14:00 (daily sending limit)``."""
        self.pause_label.setText(" · ".join(texts))
        self.pause_label.setToolTip(
            "Nothing goes through these accounts by itself until then; Send sends anyway."
            if texts
            else ""
        )
        self.pause_label.setVisible(bool(texts))

    def session_phase(self, text: str) -> None:
        """ "local: connecting…": shown until the session moves on to its messages."""
        self._phase_notice = text
        self.notice(text)

    def _phase_passed(self) -> None:
        if self._phase_notice and self._bar.currentMessage() == self._phase_notice:
            self._bar.clearMessage()
        self._phase_notice = ""

    def on_stopping(self) -> None:
        if self.progress.active:
            self._stopping = True
            self._redraw_flush()

    def on_session_failed(self, event: SessionFailed) -> None:
        if event.kind not in _UNREACHABLE:
            return
        self._phase_passed()
        self._unreachable[event.account] = event.text
        self.server_label.setText(unreachable_text(self._unreachable))
        self.server_label.show()

    def on_flush_started(self, event: FlushStarted) -> None:
        self._unreachable.clear()
        self._stopping = False
        self.server_label.hide()
        self.progress.started(event.message_count, event.total_bytes)
        self.flush_label.show()
        self.flush_bar.show()
        self._redraw_flush()
        self._timer.start()

    def on_message_changed(self, event: MessageChanged) -> None:
        if event.message.state is not MessageState.SENDING:
            self._phase_passed()
        self.progress.message_changed(event.message)

    def on_progress_made(self, event: ProgressMade) -> None:
        self._phase_passed()
        self.progress.bytes_sent(event.message_id, event.sent_bytes)

    def on_flush_finished(self, event: FlushFinished) -> None:
        self.progress.finished()
        self._stopping = False
        self._phase_notice = ""
        self._timer.stop()
        self.flush_label.hide()
        self.flush_bar.hide()
        self.notice(finished_text(event))

    def _redraw_flush(self) -> None:
        f = self.progress.figures()
        if self._stopping:
            text = f"Stopping after the messages in flight · {f.done_messages} of"
            text += f" {f.total_messages} done"
            self.flush_label.setText(text)
            return
        text = f"Sending {f.done_messages} of {f.total_messages}"
        text += f" · {size_text(f.done_bytes)} of {size_text(f.total_bytes)}"
        rates = []
        if f.messages_per_s:
            rates.append(rate_text(f.messages_per_s, "msg"))
        if f.bytes_per_s:
            rates.append(f"{size_text(int(f.bytes_per_s))}/s")
        if rates:
            text += " · " + ", ".join(rates)
        self.flush_label.setText(text)
        share = f.done_bytes / f.total_bytes if f.total_bytes else 0.0
        self.flush_bar.setValue(int(share * 1000))


#: Session failures that mean "the server could not be reached": said with the account.
_UNREACHABLE = frozenset({"connect", "tls"})


def unreachable_text(problems: dict[str, str]) -> str:
    """``Server unreachable (account “local”): connection refused``; several: one each."""
    return " · ".join(
        f"Server unreachable (account “{account}”): {text}" for account, text in problems.items()
    )


def finished_text(event: FlushFinished) -> str:
    """One line on how a flush ended: ``Flush done: 12 sent, 1 deferred, 2 failed.``"""
    settled = event.sent + event.deferred + event.failed + event.uncertain
    if not settled and not event.stopped and not event.error:
        return "Nothing was due to be sent."
    parts = [f"{event.sent} sent"]
    for count, word in (
        (event.deferred, "deferred"),
        (event.failed, "failed"),
        (event.uncertain, "uncertain"),
    ):
        if count:
            parts.append(f"{count} {word}")
    head = "Flush stopped" if event.stopped else "Flush done"
    line = f"{head}: {', '.join(parts)}."
    if event.stopped and event.unsent:
        line += f" {event.unsent} not sent yet: {'it stays' if event.unsent == 1 else 'they stay'}"
        line += " in the outbox."
    if event.error:
        line += f" {for_window(event.error)}"
    return line
