"""How the window words counts, rates, recipients and results (times: ``gui.local_time``).

Plain functions of their inputs (``now`` included), so the table, the detail
pane and the status bar say the same thing the same way. Addresses and
replies go through ``relay.visible``: a bidirectional override or a
zero-width character shows as its escape, as on the command line.
"""

from __future__ import annotations

from PySide6.QtGui import Qt

from relay.events import MessageSnapshot
from relay.states import MessageState, RecipientState
from relay.visible import visible

#: What the state filter and the status bar call each state, in the order they show them.
STATE_LABELS: dict[MessageState, str] = {
    MessageState.QUEUED: "Queued",
    MessageState.SENDING: "Sending",
    MessageState.DEFERRED: "Deferred",
    MessageState.UNCERTAIN: "Uncertain",
    MessageState.FAILED: "Failed",
    MessageState.HELD: "Held",
    MessageState.SENT: "Sent",
}


def counts_text(counts: dict[MessageState, int]) -> str:
    """``2 queued · 1 failed · 1 uncertain``: the status bar's and the tray's words, alike."""
    parts = [
        f"{counts[state]} {label.lower()}"
        for state, label in STATE_LABELS.items()
        if counts.get(state)
    ]
    return " · ".join(parts) if parts else "The outbox is empty"


def rate_text(per_second: float, unit: str) -> str:
    if per_second >= 100:
        return f"{per_second:.0f} {unit}/s"
    return f"{per_second:.1f} {unit}/s"


def recipients_text(message: MessageSnapshot) -> str:
    """The first recipient and how many more: ``ann@example.org +2``."""
    if not message.recipients:
        return ""
    first = visible(message.recipients[0].address)
    more = len(message.recipients) - 1
    return f"{first} +{more}" if more else first


def last_result_text(message: MessageSnapshot) -> str:
    """The server's last word on this message, or the error that stood in for it.

    A message that is not sent shows its error (the first recipient not sent);
    a sent one shows the server's acceptance, so "250 2.0.0 queued as …" is
    one glance away.
    """
    if message.last_error:
        return _one_line(message.last_error)
    for recipient in message.recipients:
        if recipient.reply and recipient.state is not RecipientState.PENDING:
            return _one_line(recipient.reply)
    return ""


def as_tooltip(text: str) -> str:
    """``text`` made safe for a tooltip, which Qt shows as HTML when it looks like HTML.

    A tooltip has no text format of its own: Qt guesses (``Qt.mightBeRichText``),
    so a subject, an address or a server's reply such as ``<h1>Invoice</h1>``
    would show as a heading, and ``<img>`` or ``<a>`` as an image or a link.
    Text that would be taken for HTML is escaped into HTML that shows it as typed.
    """
    if not Qt.mightBeRichText(text):
        return text
    return Qt.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpacePre)


def _one_line(text: str) -> str:
    return visible(" ".join(text.split()))
