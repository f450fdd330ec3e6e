"""An outgoing message: parsing, envelope derivation, Bcc stripping, validation.

:func:`parse_message` turns the bytes a person (or a mail client) handed us
into a :class:`ParsedMessage` whose ``raw`` is exactly what will go on the
wire, or refuses them with :class:`relay.errors.InvalidMessage` and a one-line
reason. The rules, in the order they are checked:

1. Empty input (nothing but white space) is refused, and so is anything over
   ``MAX_MESSAGE_OCTETS`` (64 MiB).
2. Line endings are normalised to CRLF, whatever the input used (bare LF, bare
   CR, a mix); a missing final line ending is added. A leading mbox
   ``From `` line is dropped.
3. The header section runs to the first empty line (or to the end). Each of
   its lines is a header field ``name: value`` with a printable-ASCII name
   (RFC 5322 §2.2), or a continuation line starting with a space or tab that
   follows one. Anything else is "not an e-mail message". An input that starts
   with an empty line has no header fields at all; that is allowed, the
   missing ones are added. With ``text_ends_header`` (``outbox sendmail``,
   ``sendmail -bs``), a line that is neither ends the header instead, as it
   does for sendmail and Postfix, and the empty line the message lacked is
   put before it: ``echo "disk full" | sendmail root`` is a message whose body
   is ``disk full``.
4. No line may be longer than 998 octets (RFC 5322 §2.1.1) and none may hold a
   NUL; errors give the line number as the input counted it. With
   ``fold_long_lines`` (``outbox sendmail``: cron's and atd's job output,
   ``mail(1)``, scripts) a longer line is broken instead, as sendmail and
   Postfix break it rather than lose the mail: a header field is folded at
   its last space or tab within the limit (else a space is inserted at the
   break, as Postfix does), a body line is cut at the limit, never inside a
   UTF-8 character.
5. The envelope, as sendmail builds it:

   - sender: the explicit one; else the single address of From; else, when
     From has several, the Sender header's; else Sender alone. If the message
     was resent (it has Resent-To, Resent-Cc or Resent-Bcc), Resent-Sender and
     Resent-From come first in the same way, and the plain ones are the
     fallback.
   - recipients: with ``from_headers``, every address of To, Cc and Bcc, or of
     Resent-To, Resent-Cc and Resent-Bcc if the message was resent (sendmail
     -t); then the explicit ones. Duplicates go (the domain compared without
     case), the first spelling and the order are kept.

   Address headers are parsed by :mod:`email.headerregistry`, which quietly
   drops or "repairs" garbage: a header it reports a real defect in is refused
   as a whole, and every address it returns is then checked by
   :func:`relay.address.check_address`, which is strict about anything that
   could break an SMTP command line.
   ``needs_smtputf8`` is set when an envelope address is UTF-8, ``eight_bit``
   when any byte of what is stored is (body or header alike).
6. Bcc and Resent-Bcc fields (with their continuation lines) are removed from
   what is stored, whether or not their addresses were used, and so is
   Return-Path (RFC 5321 §4.4: the delivering server writes it). Missing From
   (built from the envelope sender and ``full_name``), Date and Message-ID
   fields are added at the end of the header section. An explicit sender of
   ``""`` is the null reverse-path (``MAIL FROM:<>``, bounces and
   auto-replies); the From it needs comes from the header, else rule 7.
7. With ``local`` (``relay.localnames``: what sendmail and ``outbox enqueue``
   pass), names without ``@domain`` are what a Unix machine's programs write,
   not errors. A sender that is missing or only a local name (no From or
   Sender, ``From: root (Cron Daemon)``, ``From: Logwatch``, ``-f root``)
   becomes the account's address, as envelope sender and in a From (or
   Sender) field rewritten to carry it, keeping the caller's display name:
   the field's comment or phrase, else ``full_name``, else the local name
   (``Cron Daemon <me@example.org>``). A recipient that is a local name is
   replaced in the envelope by its alias's addresses; the header keeps what
   the caller wrote. Recipient arguments are address lists
   (``'Ann <a@x.org>, b@y.org'``), as sendmail reads them.

Importing this module is cheap: ``outbox sendmail`` starts once per message.
The :mod:`email` package is imported only when a header needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime

from relay.address import (
    address_problem,
    ascii_form,
    check_address,
    domain_key,
    is_forbidden,
    is_local_name,
    local_name_problem,
    needs_smtputf8,
    show,
)
from relay.errors import InvalidMessage

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Final

    from relay.localnames import LocalNames

MAX_LINE_OCTETS = 998  # RFC 5322 §2.1.1, without the CRLF
#: The largest input any intake path accepts (enqueue, sendmail, drop folder).
MAX_MESSAGE_OCTETS = 64 * 1024 * 1024
MAX_FULL_NAME_CHARS = 256

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+):")
_WSP = (b" ", b"\t")

_RESENT_RECIPIENT_FIELDS = ("resent-to", "resent-cc", "resent-bcc")
_RECIPIENT_FIELDS = ("to", "cc", "bcc")
# Return-Path is the final delivery's record of the envelope sender: "A message-originating
# SMTP system SHOULD NOT send a message that already contains" one (RFC 5321 §4.4), and
# sendmail and Postfix drop it; scripts add it believing it sets the sender (it does not).
_STRIPPED_FIELDS = frozenset({"bcc", "resent-bcc", "return-path"})

# Header defects that do not make an address list ambiguous: obsolete but
# well-defined syntax, and non-ASCII (which check_address judges itself).
_HARMLESS_DEFECTS = frozenset(
    {"ObsoleteHeaderDefect", "NonASCIILocalPartDefect", "UndecodableBytesDefect"}
)


class ParsedMessage:
    """A message accepted for the outbox: exactly what will go on the wire.

    ``raw`` has CRLF line endings, no Bcc/Resent-Bcc header, a Date and a
    Message-ID, and no line over 998 octets; it is not dot-stuffed.

    A value (compared by its fields, never changed: ``Final`` to mypy). A plain
    class rather than a frozen dataclass because ``outbox sendmail`` starts
    once per message and ``dataclasses`` (with ``inspect``) costs it 6 ms.
    """

    __slots__ = ("eight_bit", "needs_smtputf8", "raw", "recipients", "sender", "subject")

    def __init__(
        self,
        sender: str,
        recipients: tuple[str, ...],
        raw: bytes,
        subject: str = "",
        needs_smtputf8: bool = False,
        eight_bit: bool = False,
    ) -> None:
        self.sender: Final = sender
        self.recipients: Final = recipients
        self.raw: Final = raw
        self.subject: Final = subject
        self.needs_smtputf8: Final = needs_smtputf8
        self.eight_bit: Final = eight_bit

    def _fields(self) -> tuple[object, ...]:
        return (self.sender, self.recipients, self.raw, self.subject, self.needs_smtputf8,
                self.eight_bit)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedMessage):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"ParsedMessage(sender={self.sender!r}, recipients={self.recipients!r},"
            f" raw=<{len(self.raw)} bytes>, subject={self.subject!r},"
            f" needs_smtputf8={self.needs_smtputf8!r}, eight_bit={self.eight_bit!r})"
        )


class _Field:
    """One header field: its physical lines, without line endings."""

    __slots__ = ("line_number", "lines", "name")

    def __init__(self, name: str, lines: list[bytes], line_number: int) -> None:
        self.name = name  # as written
        self.lines = lines
        self.line_number = line_number  # 1-based, as the input counted

    @property
    def key(self) -> str:
        return self.name.lower()

    def value(self) -> str:
        """The unfolded value, decoded as UTF-8 (undecodable bytes kept as
        surrogates, which address checks refuse and display replaces)."""
        unfolded = b"".join(self.lines)[len(self.name) + 1 :]
        return unfolded.decode("utf-8", "surrogateescape")


def parse_message(
    data: bytes,
    *,
    sender: str | None = None,
    recipients: Sequence[str] = (),
    from_headers: bool = True,
    full_name: str | None = None,
    now: datetime | None = None,
    local: LocalNames | None = None,
    text_ends_header: bool = False,
    fold_long_lines: bool = False,
) -> ParsedMessage:
    """Check ``data`` and derive its envelope; see the module's rules.

    ``sender`` and ``recipients`` are the explicit envelope (``-f``, command
    line recipients, each an address list); ``sender=""`` is the null
    reverse-path. ``from_headers`` takes recipients from the header too
    (sendmail -t); ``full_name`` goes into a From field we have to add;
    ``now`` is the Date we add (default: the local time now). With ``local``,
    names without ``@domain`` are allowed and resolved through it (rule 7).
    ``text_ends_header``: a line that is not a header field starts the body
    (rule 3), as sendmail reads its input. ``fold_long_lines``: a line over
    998 octets is broken rather than refused (rule 4).
    """
    if len(data) > MAX_MESSAGE_OCTETS:
        raise InvalidMessage(f"message larger than {MAX_MESSAGE_OCTETS // (1024 * 1024)} MiB")
    if not data.strip():
        raise InvalidMessage("empty message")
    lines = _LINE_BREAK.split(data)
    if lines[-1] == b"":
        lines.pop()  # the input ended with a line break
    first_number = 1
    if lines[0].startswith(b"From "):
        del lines[0]
        first_number = 2
        if not b"".join(lines).strip():
            raise InvalidMessage("empty message")

    fields, body_start = _split_header(lines, first_number, text_ends_header)
    _check_lines(lines, first_number, long_lines_allowed=fold_long_lines)
    body = lines[body_start:]
    if fold_long_lines:
        for field in fields:
            if len(field.name) >= MAX_LINE_OCTETS:  # no room for the colon: nothing to fold at
                raise InvalidMessage(
                    f"line {field.line_number} is longer than {MAX_LINE_OCTETS} octets"
                    f" ({len(field.lines[0])})"
                )
            field.lines = [piece for line in field.lines for piece in _fold_header_line(line)]
        body = [piece for line in body for piece in _break_body_line(line)]
    allow_local = local is not None

    if sender == "":
        envelope_sender = ""  # the null reverse-path: MAIL FROM:<>
    elif sender is not None and local is not None and "@" not in sender and is_local_name(sender):
        envelope_sender = local.sender()
    elif sender is not None:
        envelope_sender = check_address(sender, where="(envelope sender)")
    else:
        found = _sender_from_header(fields, allow_local)
        if found is None:
            if local is None:
                raise InvalidMessage("no sender: no address in From or Sender and none given")
            found = local.sender()
        envelope_sender = found

    resent = any(field.key in _RESENT_RECIPIENT_FIELDS for field in fields)
    candidates: list[str] = []
    if from_headers:
        wanted = _RESENT_RECIPIENT_FIELDS if resent else _RECIPIENT_FIELDS
        for field in fields:
            if field.key in wanted:
                candidates.extend(_addresses(field, allow_local))
    for argument in recipients:
        candidates.extend(_recipient_argument(argument, allow_local))
    if local is not None:
        candidates = [
            address
            for candidate in candidates
            for address in ((candidate,) if "@" in candidate else local.expand(candidate))
        ]
    envelope_recipients = _deduplicate(candidates)
    if not envelope_recipients:
        if from_headers:
            names = "Resent-To, Resent-Cc or Resent-Bcc" if resent else "To, Cc or Bcc"
            raise InvalidMessage(f"no recipient: no address in {names} and none given")
        raise InvalidMessage("no recipient given")

    kept = [field for field in fields if field.key not in _STRIPPED_FIELDS]
    author = envelope_sender
    if local is not None:
        for field in kept:
            if field.key in _AUTHOR_FIELDS and (
                not field.value().strip() or _names_only_local(field)
            ):
                author = author or local.sender()
                display = _local_display(field.value()) or full_name or _first_word(field)
                field.lines = [_mailbox_field(field.name, author, display)]
    present = {field.key for field in fields}
    added: list[bytes] = []
    if "from" not in present:
        if not author:
            if local is None:
                raise InvalidMessage(
                    "no From: the message has none and the sender is null (-f '<>')"
                )
            author = local.sender()
        added.append(_mailbox_field("From", author, full_name))
    when = now if now is not None else datetime.now().astimezone()
    if "date" not in present:
        added.append(b"Date: " + _format_date(when).encode("ascii"))
    if "message-id" not in present:
        id_source = author or _first_from_address(fields)
        added.append(b"Message-ID: " + _message_id(id_source, when).encode("ascii"))

    out: list[bytes] = [line for field in kept for line in field.lines]
    out.extend(added)
    if body and body[0] != b"":
        out.append(b"")  # the header ended at a line of text (text_ends_header)
    out.extend(body)
    raw = b"".join(line + b"\r\n" for line in out)

    subject = next((_display(field.value()) for field in fields if field.key == "subject"), "")
    return ParsedMessage(
        sender=envelope_sender,
        recipients=tuple(envelope_recipients),
        raw=raw,
        subject=subject,
        needs_smtputf8=needs_smtputf8(envelope_sender)
        or any(needs_smtputf8(r) for r in envelope_recipients),
        eight_bit=not raw.isascii(),
    )


def _split_header(
    lines: list[bytes], first_number: int, text_ends_header: bool = False
) -> tuple[list[_Field], int]:
    """The header fields, and the index of the first line after the header
    (the empty separator line, which stays with the body, or ``len(lines)``;
    with ``text_ends_header``, also the first line that is not a header field)."""
    fields: list[_Field] = []
    for index, line in enumerate(lines):
        if line == b"":
            return fields, index
        number = first_number + index
        if line[:1] in _WSP:
            if not fields and text_ends_header:
                return fields, index
            if not fields:
                raise InvalidMessage(
                    f"not an e-mail message: line {number} is indented but follows no header field"
                )
            fields[-1].lines.append(line)
            continue
        match = _FIELD_NAME.match(line)
        if match is None and text_ends_header:
            return fields, index
        if match is None:
            hint = " (the header ends at the first empty line)" if fields else ""
            raise InvalidMessage(
                f"not an e-mail message: line {number} is not a header field{hint}"
            )
        fields.append(_Field(match.group(1).decode("ascii"), [line], number))
    return fields, len(lines)


def _check_lines(
    lines: list[bytes], first_number: int, *, long_lines_allowed: bool = False
) -> None:
    if not long_lines_allowed and lines and max(map(len, lines)) > MAX_LINE_OCTETS:
        for index, line in enumerate(lines):
            if len(line) > MAX_LINE_OCTETS:
                raise InvalidMessage(
                    f"line {first_number + index} is longer than {MAX_LINE_OCTETS} octets"
                    f" ({len(line)})"
                )
    for index, line in enumerate(lines):
        if b"\0" in line:
            raise InvalidMessage(f"line {first_number + index} contains a NUL byte")


def _fold_header_line(line: bytes) -> list[bytes]:
    """A header line as physical lines of at most 998 octets (RFC 5322 §2.2.3).

    Each break goes before the last space or tab that leaves neither piece
    blank, so the unfolded value is unchanged; in a run of 998 octets without
    one, after its last comma (an address list written without spaces, where
    the space added is harmless); else the run is cut at the limit and the
    rest starts with an inserted space (Postfix's way).
    """
    pieces: list[bytes] = []
    if len(line) > MAX_LINE_OCTETS:
        line = line.rstrip(b" \t")  # so that no piece is blank, which could end the header
    while len(line) > MAX_LINE_OCTETS:
        cut = max(
            line.rfind(b" ", 1, MAX_LINE_OCTETS + 1), line.rfind(b"\t", 1, MAX_LINE_OCTETS + 1)
        )
        comma = line.rfind(b",", 0, MAX_LINE_OCTETS)
        if cut > 0 and line[:cut].strip() and line[cut:].strip():
            pieces.append(line[:cut])
            line = line[cut:]
        elif comma > 0:  # an address list written without spaces: a space after a comma
            pieces.append(line[: comma + 1])
            line = b" " + line[comma + 1 :]
        else:
            cut = _utf8_boundary(line, MAX_LINE_OCTETS)
            pieces.append(line[:cut])
            line = b" " + line[cut:]
    pieces.append(line)
    return pieces


def _break_body_line(line: bytes) -> list[bytes]:
    """A body line as lines of at most 998 octets, cut where the limit falls."""
    pieces: list[bytes] = []
    while len(line) > MAX_LINE_OCTETS:
        cut = _utf8_boundary(line, MAX_LINE_OCTETS)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def _utf8_boundary(line: bytes, limit: int) -> int:
    """``limit``, or up to three octets less so as not to split a UTF-8 character."""
    cut = limit
    while cut > limit - 3 and 0x80 <= line[cut] <= 0xBF:
        cut -= 1
    return cut


def _sender_from_header(fields: list[_Field], allow_local: bool) -> str | None:
    """The envelope sender the header names, or None if it names no full address
    (no From or Sender, or only local names such as ``root (Cron Daemon)``)."""
    resent = any(field.key in _RESENT_RECIPIENT_FIELDS for field in fields)
    if resent:
        found = _single_sender(fields, "resent-from", "resent-sender", allow_local)
        if found is not None:
            return found
    return _single_sender(fields, "from", "sender", allow_local)


def _single_sender(
    fields: list[_Field], from_key: str, sender_key: str, allow_local: bool
) -> str | None:
    """From's only address; or Sender's when From has several (or none).

    Local names (allowed with ``allow_local``) do not count: they name nobody
    a server outside this machine could reach.
    """
    from_addresses = [
        a for f in fields if f.key == from_key for a in _addresses(f, allow_local) if "@" in a
    ]
    if len(from_addresses) == 1:
        return from_addresses[0]
    sender_addresses = [
        a for f in fields if f.key == sender_key for a in _addresses(f, allow_local) if "@" in a
    ]
    if len(sender_addresses) > 1:
        raise InvalidMessage(f"no sender: {_title(sender_key)} has several addresses")
    if sender_addresses:
        return sender_addresses[0]
    if from_addresses:
        raise InvalidMessage(
            f"no sender: {_title(from_key)} has several addresses"
            f" and there is no {_title(sender_key)} header"
        )
    return None


def _title(key: str) -> str:
    return "-".join(part.capitalize() for part in key.split("-"))


# The everyday address list, ``a@x.org, Ann Example <b@y.org>``: addr-specs of
# dot-atoms, bare or after a phrase of plain atoms. Matched on ascii_form(value).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_SIMPLE_ITEM = re.compile(
    rf"[ \t]*(?:({_ADDR_SPEC})|{_ATOM}(?:[ \t]+{_ATOM})*[ \t]*<({_ADDR_SPEC})>)[ \t]*"
)


def _simple_addresses(value: str) -> list[str] | None:
    """The addr-specs of ``value`` if it is an everyday address list, else None.

    A fast path, not a second opinion: for this subset of RFC 5322 the stdlib
    parser returns exactly these addr-specs with no defect (a property test
    holds the two to that), and ``outbox sendmail`` saves the ~10 ms it takes
    to import :mod:`email.headerregistry`. Anything else (quotes, comments,
    groups, encoded words, obsolete forms, empty items) goes to the stdlib.
    """
    if "=?" in value:
        return None  # RFC 2047 words: the stdlib decodes (or refuses) them
    if not value.isascii() and any(not c.isascii() and is_forbidden(c) for c in value):
        return None  # e.g. U+2028, which the stdlib reads as white space
    text = ascii_form(value)  # same length, so spans index ``value`` too
    found: list[str] = []
    start = 0
    for item in text.split(","):
        match = _SIMPLE_ITEM.fullmatch(item)
        if match is None:
            return None
        group = 1 if match.start(1) >= 0 else 2
        found.append(value[start + match.start(group) : start + match.end(group)])
        start += len(item) + 1
    return found


def _addresses(field: _Field, allow_local: bool = False) -> list[str]:
    """The addr-specs of an address-list field, each checked; group syntax
    (``undisclosed-recipients:;``) yields its members, possibly none."""
    where = f"in {field.name} (line {field.line_number})"
    return _address_list(field.value(), where, allow_local)


_NO_DOMAIN_DEFECT = "addr-spec local part with no domain"


def _address_list(value: str, where: str, allow_local: bool) -> list[str]:
    """The addr-specs of ``value``; with ``allow_local``, local names (no
    ``@domain``) too, each checked as one."""
    simple = _simple_addresses(value)
    if simple is not None:
        for address in simple:
            check_address(address, where=where)
        return simple

    from email.policy import default  # lazy: the email package is slow to import

    try:
        header = default.header_factory("To", value)
        defects = [
            d
            for d in header.defects
            if type(d).__name__ not in _HARMLESS_DEFECTS
            and not (allow_local and str(d) == _NO_DOMAIN_DEFECT)
        ]
        found = [address.addr_spec for address in header.addresses]
    except Exception as exc:  # the stdlib parser on hostile input: any failure means "garbage"
        raise InvalidMessage(f"bad address list {show(value.strip())} {where}") from exc
    if defects:  # first: its words are about what the person wrote
        raise InvalidMessage(
            f"bad address list {show(value.strip())} {where}: {_describe(defects[0])}"
        )
    for address in found:
        if allow_local and "@" not in address:
            problem = local_name_problem(address)
            if problem is not None:
                raise InvalidMessage(f"bad local name {show(address)} {where}: {problem}")
        else:
            check_address(address, where=where)
    return found


def _recipient_argument(argument: str, allow_local: bool) -> list[str]:
    """A recipient word of the command line: an address, a local name, or an
    address list (``'Ann <a@x.org>, b@y.org'``), as sendmail reads them."""
    if address_problem(argument) is None:
        return [argument]
    if allow_local and is_local_name(argument):
        return [argument]
    if not re.search(_LIST_MARK, argument) or any(_unprintable(char) for char in argument):
        # Not a list, or it holds what no list may: the single address's own refusal.
        check_address(argument, where="(recipient)")
    return _address_list(argument, "(recipient)", allow_local)


_LIST_MARK = r'[,<>"( ]'  # what only an address list (not one address) holds


def recipient_addresses(argument: str, local: LocalNames) -> list[str]:
    """The addresses a recipient word of the command line goes to, aliases resolved."""
    return [
        address
        for found in _recipient_argument(argument, allow_local=True)
        for address in ((found,) if "@" in found else local.expand(found))
    ]


# -- local names in From and Sender (rule 7) -------------------------------------------

_AUTHOR_FIELDS = frozenset({"from", "sender"})
# Patterns as text, compiled (and cached by ``re``) on first use: only local names need them.
_LOCAL_WITH_COMMENT = (
    rf"[ \t]*(?:\((?P<before>[^()\\]*)\)[ \t]*)?{_DOT_ATOM}[ \t]*(?:\((?P<after>[^()\\]*)\))?[ \t]*"
)
_PHRASE_AND_LOCAL = (
    r'[ \t]*(?:"(?P<quoted>[^"\\]*)"'
    rf"|(?P<phrase>{_ATOM}(?:[ \t]+{_ATOM})*))[ \t]*<{_DOT_ATOM}>[ \t]*"
)


def _names_only_local(field: _Field) -> bool:
    """Whether the field names only local names (``root (Cron Daemon)``, ``Logwatch``).

    A field that does not parse is left as it is: with an explicit sender, what
    From says was never the envelope's business.
    """
    try:
        addresses = _addresses(field, allow_local=True)
    except InvalidMessage:
        return False
    return bool(addresses) and all("@" not in address for address in addresses)


def _local_display(value: str) -> str | None:
    """The person's name a local mailbox carries: its comment (``root (Cron
    Daemon)``) or display name (``Cron Daemon <root>``), or None."""
    text = ascii_form(value)
    match = re.fullmatch(_LOCAL_WITH_COMMENT, text)
    if match is not None:
        span = match.span("after") if match.start("after") >= 0 else match.span("before")
    else:
        match = re.fullmatch(_PHRASE_AND_LOCAL, text)
        if match is None:
            return None
        span = match.span("quoted") if match.start("quoted") >= 0 else match.span("phrase")
    if span[0] < 0:
        return None
    name = " ".join(value[span[0] : span[1]].split())
    return name or None


def _first_word(field: _Field) -> str:
    """The local name itself, as the display name of last resort (``Logwatch``)."""
    try:
        addresses = _addresses(field, allow_local=True)
    except InvalidMessage:
        return ""
    return addresses[0] if addresses else ""


def _first_from_address(fields: list[_Field]) -> str:
    """From's first full address, for the Message-ID of a message with the null sender."""
    for field in fields:
        if field.key == "from":
            try:
                addresses = _addresses(field, allow_local=True)
            except InvalidMessage:
                continue
            for address in addresses:
                if "@" in address:
                    return address
    return ""


def _describe(defect: Exception) -> str:
    if type(defect).__name__ == "NonPrintableDefect":
        return "contains a control character"  # the stdlib's text is a Python list repr
    text = str(defect).strip().rstrip(")")  # one stdlib message ends in a stray ")"
    return text or type(defect).__name__


def _deduplicate(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for address in addresses:
        key = domain_key(address)
        if key not in seen:
            seen.add(key)
            kept.append(address)
    return kept


def _display(value: str) -> str:
    """A header value for people: unfolded, RFC 2047 decoded, one line, and
    safe to print: undecodable bytes and control characters (an ESC could
    repaint a terminal running ``outbox list``) become U+FFFD."""
    text = value
    if "=?" in text:
        try:
            from email.header import decode_header, make_header

            text = str(make_header(decode_header(text)))
        except Exception:  # malformed encoded words: show them as they are
            text = value
    text = " ".join(text.split())  # unfolds, and tabs and line breaks become spaces
    return re.sub("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", "\ufffd", text)


def _mailbox_field(name: str, address: str, full_name: str | None) -> bytes:
    """``From: Full Name <address>`` (or just the address), the name made a safe phrase."""
    if not full_name:
        return name.encode("ascii") + b": " + address.encode()
    if len(full_name) > MAX_FULL_NAME_CHARS:
        raise InvalidMessage(f"full name longer than {MAX_FULL_NAME_CHARS} characters")
    if any(_unprintable(char) for char in full_name):
        raise InvalidMessage(f"full name {show(full_name)} contains a control character")
    return name.encode("ascii") + b": " + _phrase(full_name) + b" <" + address.encode() + b">"


def _unprintable(char: str) -> bool:
    """Control characters (C0, DEL, C1), line/paragraph separators and lone
    surrogates (undecodable bytes from the command line): none belongs in a
    display name."""
    return (
        char < " "
        or "\x7f" <= char <= "\x9f"
        or char in "\u2028\u2029"
        or "\ud800" <= char <= "\udfff"
    )


_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")


def _phrase(name: str) -> bytes:
    """A display name as an RFC 5322 phrase: atoms as they are, other ASCII
    as a quoted string, anything else as RFC 2047 encoded words folded onto
    continuation lines (each line well under 998 octets)."""
    if name.isascii():
        if _ATOM_PHRASE.fullmatch(name) and name.strip() == name:
            return name.encode("ascii")
        return b'"' + name.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
    import base64

    words: list[bytes] = []
    chunk = b""
    for char in name:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return b"\r\n ".join(b"=?utf-8?b?" + base64.b64encode(word) + b"?=" for word in words)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _format_date(when: datetime) -> str:
    """RFC 5322 §3.3 date-time, locale-independent (no strftime ``%a``)."""
    if when.tzinfo is None:
        when = when.astimezone()
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d}"
        f" {when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{hours:02d}{mins:02d}"
    )


def _message_id(sender: str, when: datetime) -> str:
    """``<time.random@sender-domain>``: unique without asking DNS for our name."""
    domain = sender.rpartition("@")[2] or "outbox.invalid"  # the null sender names no domain
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = "outbox.invalid"
    return f"<{when:%Y%m%d%H%M%S}.{os.urandom(8).hex()}@{domain}>"
