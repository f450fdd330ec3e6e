"""The detail pane: everything about the selected message.

Three tabs: the message (its header fields and a text preview of the body),
its recipients (each with its state and the server's last reply), and its
attempts (when, through which server, the outcome) with the SMTP transcript of
the attempt selected there.

The pane reads the store for one message only, and only when the selection
changes or that message changed; the body is parsed once per selection.
Transcripts arrive with credentials already replaced by ``****`` (the engine
records them that way); ``redacted`` masks anything that still looks like an
AUTH exchange all the same, because a transcript on screen is easily shared.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import html
import re
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.attachments import Attachment, attachments
from gui.command_hints import for_window
from gui.display_text import as_tooltip
from gui.local_time import exact_text, moment_text
from gui.recipient_menu import COPY_ROLE, add_copy_actions
from relay.errors import BodyPruned, NoSuchMessage
from relay.events import MessageSnapshot
from relay.sizes import size_text
from relay.store.outbox import AttemptRecord, Outbox, utc_now
from relay.visible import visible

PREVIEW_CHARS = 100_000

_AUTH_COMMAND = re.compile(r"^(C: AUTH\s+\S+)(\s+\S.*)?$", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]*>")


def redacted(transcript: str) -> str:
    """``transcript`` with AUTH arguments and every client line answering a 334 masked."""
    lines = transcript.splitlines()
    out: list[str] = []
    challenged = False
    for line in lines:
        match = _AUTH_COMMAND.match(line)
        if match:
            out.append(match.group(1) + (" ****" if match.group(2) else ""))
            challenged = False
            continue
        if line.startswith("C: ") and challenged:
            out.append("C: ****")
            continue
        if line.startswith("S: "):
            challenged = line.startswith("S: 334")
        out.append(line)
    return "\n".join(out)


def body_preview(raw: bytes) -> tuple[str, str]:
    """(the header section as text, the body as readable text) of a stored message."""
    headers, text, _ = message_preview(raw)
    return headers, text


def message_preview(raw: bytes) -> tuple[str, str, list[Attachment]]:
    """``body_preview`` and the message's attachments, from one parse."""
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    header_end = raw.find(b"\r\n\r\n")
    header_bytes = raw if header_end < 0 else raw[:header_end]
    headers = header_bytes.decode("utf-8", "replace").replace("\r\n", "\n")
    text = ""
    try:
        part = parsed.get_body(preferencelist=("plain", "html"))
        if isinstance(part, email.message.EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                text = content
                if part.get_content_subtype() == "html":
                    text = html.unescape(_ANY_TAG.sub("", text))
            else:
                text = f"({part.get_content_type()}, {size_text(len(content))})"
    except (LookupError, ValueError, KeyError, AssertionError):
        text = ""
    if not text:
        body = b"" if header_end < 0 else raw[header_end + 4 :]
        text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "\n[…]"
    try:
        found = attachments(parsed)
    except (LookupError, ValueError, KeyError, AssertionError):
        found = []
    return headers, text, found


class DetailPane(QWidget):
    """The selected message: its headers, text, recipients with their replies, and attempts."""

    def __init__(self, outbox: Outbox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detail_pane")
        self.setAccessibleName("Message details")
        self._outbox = outbox
        self._message_id: int | None = None
        self._shown: MessageSnapshot | None = None
        self._attempts: list[AttemptRecord] = []
        #: What the attempts' times are shown against (today or not); tests set it.
        self.clock: Callable[[], datetime] = utc_now

        self.title = QLabel()
        self.title.setObjectName("detail_title")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A label asks for the width of its whole line: a subject of thousands of
        # characters would widen the window past any screen. It shows what fits.
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.headers = QPlainTextEdit()
        self.headers.setObjectName("detail_headers")
        self.headers.setAccessibleName("Header fields")
        self.headers.setReadOnly(True)
        self.headers.setFont(mono)
        self.headers.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.body = QPlainTextEdit()
        self.body.setObjectName("detail_body")
        self.body.setAccessibleName("Body preview")
        self.body.setReadOnly(True)
        self.attachments = QTreeWidget()
        self.attachments.setObjectName("detail_attachments")
        self.attachments.setAccessibleName("Attachments")
        self.attachments.setHeaderLabels(["Attachment", "Type", "Size"])
        self.attachments.setRootIsDecorated(False)
        self.attachments.setColumnWidth(0, 280)
        self.attachments.setColumnWidth(1, 180)
        self.attachments.hide()
        message_tab = QSplitter(Qt.Orientation.Vertical)
        message_tab.addWidget(self.headers)
        message_tab.addWidget(self.body)
        message_tab.addWidget(self.attachments)
        message_tab.setSizes([120, 240, 90])

        self.recipients = QTreeWidget()
        self.recipients.setObjectName("detail_recipients")
        self.recipients.setAccessibleName("Recipients")
        self.recipients.setHeaderLabels(["Recipient", "State", "Server's reply"])
        self.recipients.setRootIsDecorated(False)
        self.recipients.setColumnWidth(0, 240)
        self.recipients.setColumnWidth(1, 90)
        self.copy_address, self.copy_reply = add_copy_actions(self.recipients)

        self.attempts = QTreeWidget()
        self.attempts.setObjectName("detail_attempts")
        self.attempts.setAccessibleName("Attempts")
        self.attempts.setHeaderLabels(
            ["Started", "Ended", "Account", "Server", "Outcome", "Sent", "Error"]
        )
        self.attempts.setRootIsDecorated(False)
        # Each column as wide as what it usually holds (a date and time, a host and port),
        # so the Server column is never cut off; the error takes the rest.
        advance = self.attempts.fontMetrics().horizontalAdvance
        for column, sample in enumerate(
            (
                "2026-11-24 14:05",
                "2026-11-24 14:05",
                "an account",
                "smtp.example.org:587",
                "deferred",
                "100.0 MB",
            )
        ):
            self.attempts.setColumnWidth(column, advance(sample) + 24)
        self.attempts.currentItemChanged.connect(self._show_transcript)
        self.transcript = QPlainTextEdit()
        self.transcript.setObjectName("detail_transcript")
        self.transcript.setAccessibleName("SMTP transcript")
        self.transcript.setReadOnly(True)
        self.transcript.setFont(mono)
        self.transcript.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.transcript.setPlaceholderText("Select an attempt to see its SMTP transcript.")
        attempts_tab = QSplitter(Qt.Orientation.Vertical)
        attempts_tab.addWidget(self.attempts)
        attempts_tab.addWidget(self.transcript)
        attempts_tab.setSizes([120, 160])  # five attempts before scrolling

        self.tabs = QTabWidget()
        self.tabs.setObjectName("detail_tabs")
        self.tabs.setAccessibleName("Message, recipients and attempts")
        self.tabs.addTab(message_tab, "Message")
        self.tabs.addTab(self.recipients, "Recipients")
        self.tabs.addTab(attempts_tab, "Attempts")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.tabs)
        self.show_message(None)

    @property
    def message_id(self) -> int | None:
        return self._message_id

    def show_message(self, message_id: int | None) -> None:
        """Show ``message_id`` (None: nothing selected), reading its body once."""
        self._message_id = message_id
        snapshot = self._snapshot()
        if snapshot is None:
            self._message_id = None
            self._shown = None
            self.title.setText("No message selected")
            for widget in (self.headers, self.body, self.transcript):
                widget.clear()
            self._show_attachments([])
            self.recipients.clear()
            self.attempts.clear()
            self._attempts = []
            self.tabs.setEnabled(False)
            return
        self.tabs.setEnabled(True)
        try:
            headers, body, found = message_preview(self._outbox.raw(snapshot.id))
        except NoSuchMessage:
            headers, body, found = "", "", []
        except BodyPruned:
            headers, body, found = "", "The body was pruned after sending; its history is kept.", []
        # One header a line: each line's invisible characters escaped, the line breaks kept.
        lines = headers.split("\n")
        self.headers.setPlainText("\n".join(visible(line, keep="\t") for line in lines))
        self.body.setPlainText(body)
        self._show_attachments(found)
        self._show_state(snapshot)

    def refresh(self, changed_ids: set[int]) -> None:
        """The model applied a batch: redraw if the message shown really changed.

        Progress alone does not count: the pane would otherwise rebuild (and
        lose the transcript's scroll position) thirty times a second.
        """
        if self._message_id is None or self._message_id not in changed_ids:
            return
        snapshot = self._snapshot()
        if snapshot is None:
            self.show_message(None)
        elif snapshot != self._shown:
            self._show_state(snapshot)

    def _snapshot(self) -> MessageSnapshot | None:
        if self._message_id is None:
            return None
        try:
            return self._outbox.get(self._message_id)
        except NoSuchMessage:
            return None

    def _show_attachments(self, found: list[Attachment]) -> None:
        self.attachments.clear()
        for attachment in found:
            item = QTreeWidgetItem(
                [visible(attachment.name), attachment.content_type, size_text(attachment.size)]
            )
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.attachments.addTopLevelItem(item)
        self.attachments.setVisible(bool(found))

    def _show_state(self, message: MessageSnapshot) -> None:
        self._shown = message
        self.title.setText(
            f"Message {message.id} · {message.state.value}"
            f" · {visible(message.subject) or '(no subject)'}"
        )
        self.recipients.clear()
        for recipient in message.recipients:
            reply = visible(recipient.reply or "")
            item = QTreeWidgetItem([visible(recipient.address), recipient.state.value, reply])
            item.setToolTip(2, as_tooltip(reply))
            # Copy Reply: every line of it, each line's invisible characters escaped.
            lines = (recipient.reply or "").splitlines()
            item.setData(2, COPY_ROLE, "\n".join(visible(line, keep="\t") for line in lines))
            self.recipients.addTopLevelItem(item)
        self.recipients.resizeColumnToContents(0)

        try:
            attempts = self._outbox.attempts(message.id)
        except NoSuchMessage:
            attempts = []
        if attempts and attempts == self._attempts:
            return  # same attempts: keep the list and the transcript as they are
        current = self.attempts.currentItem()
        current_id = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        self._attempts = attempts
        self.attempts.clear()
        now = self.clock()
        chosen: QTreeWidgetItem | None = None
        for attempt in attempts:
            item = QTreeWidgetItem(
                [
                    moment_text(attempt.started_at, now, relative=False),
                    (
                        moment_text(attempt.ended_at, now, relative=False)
                        if attempt.ended_at
                        else "running"
                    ),
                    attempt.account,
                    attempt.server,
                    attempt.outcome or "",
                    size_text(attempt.sent_bytes),
                    visible(for_window(attempt.error or "")),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, attempt.id)
            item.setToolTip(0, exact_text(attempt.started_at))
            item.setToolTip(6, as_tooltip(visible(for_window(attempt.error or ""))))
            self.attempts.addTopLevelItem(item)
            if attempt.id == current_id:
                chosen = item
        if chosen is None and self.attempts.topLevelItemCount():
            chosen = self.attempts.topLevelItem(self.attempts.topLevelItemCount() - 1)
        if chosen is not None:
            self.attempts.setCurrentItem(chosen)
        else:
            self.transcript.clear()

    def _show_transcript(self, item: QTreeWidgetItem | None) -> None:
        if item is None:
            self.transcript.clear()
            return
        attempt_id = item.data(0, Qt.ItemDataRole.UserRole)
        for attempt in self._attempts:
            if attempt.id == attempt_id:
                self.transcript.setPlainText(redacted(attempt.transcript))
                return
        self.transcript.clear()
