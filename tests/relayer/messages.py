"""Outgoing messages for relayer tests."""

from __future__ import annotations

from relay.report import OutgoingMessage

SENDER = "sender@example.org"


def message(
    message_id: int,
    *recipients: str,
    body: bytes | None = None,
    sender: str = SENDER,
    eight_bit: bool = False,
    needs_smtputf8: bool = False,
) -> OutgoingMessage:
    if body is None:
        body = (
            f"From: {sender}\r\nTo: {', '.join(recipients)}\r\n"
            f"Subject: message {message_id}\r\n\r\nHello number {message_id}.\r\n"
        ).encode()
    return OutgoingMessage(
        id=message_id,
        sender=sender,
        recipients=recipients or ("rcpt@example.net",),
        body=body,
        needs_smtputf8=needs_smtputf8,
        eight_bit=eight_bit,
    )


def large_body(size: int) -> bytes:
    """A message of about ``size`` bytes: headers, then 998-character lines (RFC 5322's limit)."""
    head = b"From: sender@example.org\r\nSubject: big\r\n\r\n"
    line = (b"0123456789" * 100)[:998] + b"\r\n"
    count = max(1, (size - len(head)) // len(line))
    return head + line * count
