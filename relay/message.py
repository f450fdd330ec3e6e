"""An outgoing message: parsing, envelope derivation, Bcc stripping, validation.

(Being written: the intake rules land here.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A message accepted for the outbox: exactly what will go on the wire.

    ``raw`` has CRLF line endings, no Bcc/Resent-Bcc header, a Date and a
    Message-ID, and no line over 998 octets; it is not dot-stuffed.
    """

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    subject: str = ""
    needs_smtputf8: bool = False
    eight_bit: bool = False
