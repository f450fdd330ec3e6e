"""Messages for the window's tests, stored through the engine as any intake would."""

from __future__ import annotations

from relay.message import parse_message
from relay.store.outbox import Outbox


def message_bytes(
    to: str | list[str],
    subject: str = "Hello",
    *,
    body_bytes: int = 200,
    line_bytes: int = 72,
    sender: str = "alice@example.org",
) -> bytes:
    """A message with ``body_bytes`` of text in lines of ``line_bytes`` (CRLF included)."""
    recipients = [to] if isinstance(to, str) else to
    text = b"The quick brown fox jumps over the lazy dog. " * (line_bytes // 45 + 1)
    line = text[: line_bytes - 2] + b"\r\n"
    body = line * (body_bytes // len(line)) + line[: body_bytes % len(line)]
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    head = f"From: {sender}\r\nTo: {', '.join(recipients)}\r\nSubject: {subject}\r\n\r\n"
    return head.encode() + body


def enqueue(
    outbox: Outbox,
    to: str | list[str],
    subject: str = "Hello",
    *,
    body_bytes: int = 200,
    line_bytes: int = 72,
) -> int:
    """Store one message in ``outbox``; its id."""
    data = message_bytes(to, subject, body_bytes=body_bytes, line_bytes=line_bytes)
    return outbox.add_message(parse_message(data)).id
