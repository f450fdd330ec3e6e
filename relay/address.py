"""Envelope addresses: what may follow ``MAIL FROM:<`` and ``RCPT TO:<``.

An address that reaches the outbox goes verbatim into an SMTP command line, so
validation here is the one thing that stands between a hostile header (or a
careless ``-f`` argument) and a smuggled ``RCPT TO`` or ``DATA``. The rules are
strict on purpose and checked on the whole string, never by search:

- ``local@domain``, exactly one unquoted ``@`` (RFC 5321 §4.1.2 ``Mailbox``).
- The local part is a dot-string of atext (RFC 5322 §3.2.3), or a quoted
  string. Inside quotes we allow printable ASCII and the quoted pairs ``\\"``
  and ``\\\\`` only: no space, no ``<`` or ``>``, although RFC 5321 would allow
  them, because no real mailbox needs them and every one of them has been used
  to break a command line somewhere. At most 64 octets (§4.5.3.1.1).
- The domain is dot-separated labels of letters, digits and hyphens (not at a
  label's ends, at most 63 octets each, at most 255 in all), or an address
  literal ``[192.0.2.1]`` / ``[IPv6:2001:db8::1]`` that :mod:`ipaddress` accepts.
- UTF-8 (RFC 6531) is allowed in both parts, except control, format,
  separator, private-use, surrogate and unassigned code points (Unicode
  categories C* and Z*): the caller learns it needs SMTPUTF8.
- Nothing else: no CR, LF, NUL or other control character, no space, no
  angle bracket, no comment, no source route.

:func:`check_address` raises :class:`relay.errors.InvalidMessage` naming the
address (escaped, so a CR or NUL shows as ``\\r`` / ``\\x00``) and the rule
it broke.
"""

from __future__ import annotations

import re

from relay.errors import InvalidMessage

MAX_LOCAL_PART_OCTETS = 64
MAX_DOMAIN_OCTETS = 255
MAX_LABEL_OCTETS = 63

# The grammar, in ASCII. Non-ASCII characters are judged by category first and
# then stand in as a letter (see ascii_form): compiling classes that span
# U+0080..U+10FFFF costs milliseconds at every start of ``outbox sendmail``.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_DOT_STRING = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
# Quoted local part: printable ASCII without space, '"', '\', '<', '>'; or a
# quoted pair of '"' or '\'.
_QUOTED_STRING = re.compile(r'"(?:[\x21\x23-\x3b\x3d\x3f-\x5b\x5d-\x7e]|\\["\\])+"')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def ascii_form(text: str) -> str:
    """``text`` with each non-ASCII character replaced by ``a`` (RFC 6531 lets
    UTF-8 stand wherever a letter may)."""
    if text.isascii():
        return text
    return "".join(char if char.isascii() else "a" for char in text)


def show(text: str) -> str:
    """``text`` in double quotes with anything unprintable escaped.

    Used in every error that quotes input, so a smuggled CR cannot split the
    one-line message and a NUL is visible.
    """
    out = []
    for char in text:
        if char == "\\" or char == '"':
            out.append("\\" + char)
        elif char == "\r":
            out.append("\\r")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif " " <= char <= "~":
            out.append(char)
        elif char < " " or char == "\x7f" or is_forbidden(char):
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def is_forbidden(char: str) -> bool:
    """A non-ASCII code point that must not appear in an address (C* or Z*)."""
    import unicodedata  # lazy: only non-ASCII addresses pay for it

    category = unicodedata.category(char)
    return category[0] in "CZ"


def check_address(address: str, *, where: str = "") -> str:
    """Return ``address`` if it is a valid envelope address, else raise.

    ``where`` names the origin for the error message (``"in To"``, ``"(-f)"``).
    """
    reason = address_problem(address)
    if reason is not None:
        suffix = f" {where}" if where else ""
        raise InvalidMessage(f"bad address {show(address)}{suffix}: {reason}")
    return address


def needs_smtputf8(address: str) -> bool:
    return not address.isascii()


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a valid envelope address, or None if it is."""
    if not address:
        return "empty"
    for char in address:
        if char in "\r\n":
            return "contains a line break"
        if char == "\x00":
            return "contains a NUL character"
        if char < " " or char == "\x7f":
            return "contains a control character"
        if char == " ":
            return "contains a space"
        if char in "<>":
            return "contains an angle bracket"
        if not char.isascii() and is_forbidden(char):
            return "contains a character that is not allowed in an address"
    local, at, domain = address.rpartition("@")
    if not at:
        return "no @domain"
    if not local:
        return "empty local part"
    if not domain:
        return "empty domain"
    ascii_local = ascii_form(local)
    if not (_DOT_STRING.fullmatch(ascii_local) or _QUOTED_STRING.fullmatch(ascii_local)):
        return "the part before @ is not a valid local part"
    if len(local.encode()) > MAX_LOCAL_PART_OCTETS:
        return f"the local part is longer than {MAX_LOCAL_PART_OCTETS} octets"
    return _domain_problem(domain)


def _domain_problem(domain: str) -> str | None:
    if domain.startswith("["):
        return _literal_problem(domain)
    if len(domain.encode()) > MAX_DOMAIN_OCTETS:
        return f"the domain is longer than {MAX_DOMAIN_OCTETS} octets"
    for label in domain.split("."):
        if not label:
            return "the domain has an empty label"
        if not _LABEL.fullmatch(ascii_form(label)):
            return "the domain is not a valid host name"
        if len(label.encode()) > MAX_LABEL_OCTETS:
            return f"a domain label is longer than {MAX_LABEL_OCTETS} octets"
    return None


def _literal_problem(domain: str) -> str | None:
    import ipaddress  # lazy: address literals are rare

    if not domain.endswith("]"):
        return "the address literal is not closed"
    inner = domain[1:-1]
    if "%" in inner:
        return "the address literal has a zone index"
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        return "the address literal is neither [IPv4] nor [IPv6:address]"
    return None


def local_name_problem(name: str) -> str | None:
    """Why ``name`` is not a local name (a dot-atom without ``@``), or None."""
    if not name:
        return "empty"
    if "@" in name:
        return "a local name has no @domain"
    if not _DOT_STRING.fullmatch(ascii_form(name)) or not name.isprintable():
        return "not a plain local name (letters, digits, dots and !#$%&'*+/=?^_`{|}~-)"
    if len(name.encode()) > MAX_LOCAL_PART_OCTETS:
        return f"longer than {MAX_LOCAL_PART_OCTETS} octets"
    return None


def is_local_name(text: str) -> bool:
    return local_name_problem(text) is None


def domain_key(address: str) -> str:
    """The address with its domain case-folded: two addresses that differ only
    in the domain's case are one mailbox (RFC 5321 §2.4); the local part is
    left alone, since only the receiving host may interpret it."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"
