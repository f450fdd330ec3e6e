"""The attachments of a stored message: name, type and size, for the detail pane's list.

A pure function of a parsed message. A part counts when it is marked as an
attachment, or names a file (``inline`` images with a filename included);
its size is that of the decoded content, what the recipient will save.
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment as the detail pane lists it: its file name, MIME type and decoded size."""

    name: str
    content_type: str
    size: int


def attachments(message: email.message.EmailMessage) -> list[Attachment]:
    found: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart() or part is message:
            continue
        filename = part.get_filename()
        if not (part.is_attachment() or filename):
            continue
        try:
            payload = part.get_payload(decode=True)
        except (LookupError, ValueError, AssertionError):
            payload = None
        size = len(payload) if isinstance(payload, bytes) else 0
        found.append(Attachment(filename or "(no name)", part.get_content_type(), size))
    return found
