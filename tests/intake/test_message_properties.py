"""Property tests: every input is either stored exactly as it will be sent, or refused.

"Stored as it will be sent" means: CRLF line endings only, no bare CR or LF,
no line over 998 octets, no Bcc, Resent-Bcc or Return-Path field, a From, a Date and a
Message-ID, a well-formed header section, the body unchanged but for its
line endings, and an envelope whose every address is one
``relay.address`` accepts. "Refused" means InvalidMessage; any other
exception is a failure.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.address import address_problem, check_address
from relay.errors import InvalidMessage
from relay.message import ParsedMessage, parse_message

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LINE_ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r"])
FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
SMUGGLERS = ["\r", "\n", "\r\n", "\x00", " ", "<", ">", "\t", "\x0b", "\x1b", ",", ";", ":"]

# -- strategies ----------------------------------------------------------------------------

atoms = st.text(alphabet="abcxyzABC019.-_+=!#'", min_size=1, max_size=12)
utf8_atoms = st.text(alphabet="äöüßéλ用ł", min_size=1, max_size=4)
labels = st.text(alphabet="abcz09-", min_size=1, max_size=10)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Mostly plausible addresses, some with something smuggled in."""
    local = draw(st.one_of(atoms, utf8_atoms, atoms.map(lambda a: f'"{a}"')))
    domain = draw(
        st.one_of(
            st.lists(labels, min_size=1, max_size=3).map(".".join),
            st.just("[192.0.2.7]"),
            st.just("[IPv6:2001:db8::7]"),
            utf8_atoms.map(lambda u: f"{u}.example"),
        )
    )
    address = f"{local}@{domain}"
    if draw(st.integers(0, 3)) == 0:
        position = draw(st.integers(0, len(address)))
        smuggled = draw(st.sampled_from([*SMUGGLERS, "RCPT TO:<evil@example.org>"]))
        address = address[:position] + smuggled + address[position:]
    return address


clean_addresses = st.builds(
    "{}@{}".format, st.one_of(atoms, utf8_atoms), st.sampled_from(["example.org", "b.example"])
).filter(lambda a: address_problem(a) is None)


@st.composite
def mailboxes(draw: st.DrawFn) -> str:
    address = draw(addresses())
    form = draw(st.integers(0, 3))
    if form == 0:
        return address
    if form == 1:
        return f"<{address}>"
    if form == 2:
        name = draw(st.text(alphabet='abc XYZ,."\\()=?éü', max_size=12))
        return f'"{name}" <{address}>'
    return f"Someone ({draw(atoms)}) <{address}>"


FIELD_NAMES = st.sampled_from(
    [
        "From",
        "from",
        "Sender",
        "To",
        "TO",
        "Cc",
        "Bcc",
        "bcc",
        "BCC",
        "Resent-To",
        "Resent-Cc",
        "Resent-Bcc",
        "resent-bcc",
        "Resent-From",
        "Resent-Sender",
        "Subject",
        "Date",
        "Message-ID",
        "X-Mailer",
        "Received",
        "Return-Path",
    ]
)
RANDOM_FIELD_NAMES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=":"),
    min_size=1,
    max_size=10,
)


@st.composite
def field_lines(draw: st.DrawFn) -> list[str]:
    """One header field as its physical lines (possibly folded), without line endings."""
    name = draw(st.one_of(FIELD_NAMES, RANDOM_FIELD_NAMES))
    if name.lower() in {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-from",
        "resent-sender",
    } and draw(st.booleans()):
        parts = draw(st.lists(mailboxes(), min_size=0, max_size=4))
        value = ", ".join(parts)
    else:
        value = draw(st.text(max_size=40))
    lines = [f"{name}: {value}"]
    for _ in range(draw(st.integers(0, 2))):
        lines.append(draw(st.sampled_from([" ", "\t", "  "])) + draw(st.text(max_size=20)))
    return lines


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(field_lines(), max_size=6))
    # Most messages get a From and a To with clean addresses, so that many
    # are accepted and the properties of stored messages get exercised.
    if draw(st.integers(0, 4)):
        fields.append([f"From: {draw(clean_addresses)}"])
    if draw(st.integers(0, 4)):
        name = draw(st.sampled_from(["To", "Cc", "Bcc", "Resent-To", "Resent-Bcc"]))
        fields.append([f"{name}: " + ", ".join(draw(st.lists(clean_addresses, min_size=1)))])
    fields = draw(st.permutations(fields))
    lines = [line.encode("utf-8", "surrogatepass") for field in fields for line in field]
    if draw(st.booleans()):
        lines.insert(0, b"From someone@example.org Tue Nov 24 12:00:00 2026")
    body = draw(st.lists(st.binary(max_size=60), max_size=6))
    if draw(st.integers(0, 20)) == 0:
        body.append(b"y" * draw(st.integers(990, 1010)))
    out = b""
    for line in [*lines, b"", *body]:
        out += line + draw(LINE_ENDINGS)
    return out


# -- the properties ------------------------------------------------------------------------


def assert_ready_to_send(parsed: ParsedMessage, data: bytes, *, lines_cut: bool = False) -> None:
    raw = parsed.raw
    assert raw.endswith(b"\r\n")
    unwrapped = raw.replace(b"\r\n", b"")
    assert b"\r" not in unwrapped and b"\n" not in unwrapped, "a bare CR or LF"
    lines = raw[:-2].split(b"\r\n")
    assert max(map(len, lines)) <= 998
    assert b"\x00" not in raw
    header = lines[: lines.index(b"")] if b"" in lines else lines
    names = []
    for index, line in enumerate(header):
        if line[:1] in (b" ", b"\t"):
            assert index > 0, "a continuation line must follow a field"
            continue
        match = FIELD_LINE.match(line)
        assert match is not None, f"not a header field: {line!r}"
        names.append(match.group()[:-1].lower())
    assert not {b"bcc", b"resent-bcc", b"return-path"} & set(names)
    for required in (b"from", b"date", b"message-id"):
        assert required in names
    assert parsed.recipients, "an envelope with no recipient"
    for address in (parsed.sender, *parsed.recipients):
        assert address_problem(address) is None
        assert not set(address) & {"\r", "\n", "\x00", " ", "<", ">"}
    keys = [r.rpartition("@")[0] + "@" + r.rpartition("@")[2].lower() for r in parsed.recipients]
    assert len(keys) == len(set(keys)), "duplicate recipients"
    assert parsed.eight_bit == (not raw.isascii())
    # The body is the input's, line endings aside (and, where long lines are cut, the
    # line endings added).
    if b"\r\n\r\n" in raw:
        body = raw.split(b"\r\n\r\n", 1)[1]
        normalised = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
        if not normalised.endswith(b"\r\n"):
            normalised += b"\r\n"
        if lines_cut:
            normalised, body = normalised.replace(b"\r\n", b""), body.replace(b"\r\n", b"")
        assert normalised.endswith(body)


def parse_or_refuse(data: bytes, **kwargs: object) -> ParsedMessage | None:
    try:
        return parse_message(data, **kwargs)  # type: ignore[arg-type]
    except InvalidMessage as exc:
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text
        return None


@SETTINGS
@given(messages())
@example(b"From: a@example.org\nTo: b@example.org\nBcc: c@example.org,\n d@example.org\n\nx\n")
@example(b"From: a@example.org\rTo: b@example.org\r\rx")
def test_any_message_is_stored_ready_to_send_or_refused(data: bytes) -> None:
    parsed = parse_or_refuse(data)
    if parsed is not None:
        assert_ready_to_send(parsed, data)


@SETTINGS
@given(messages(), st.one_of(st.none(), addresses()), st.lists(addresses(), max_size=3))
@example(b"From: 0@example.org\nTo: 0@example.org\n\nx\n", None, ["0 @[192.0.2.7]"])
@example(b"From: 0@example.org\n\nx\n", "0@[192.0.2.7]", [' "0"@[192.0.2.7]'])
def test_explicit_envelopes_are_checked_as_strictly_as_headers(
    data: bytes, sender: str | None, recipients: list[str]
) -> None:
    parsed = parse_or_refuse(data, sender=sender, recipients=recipients, from_headers=False)
    if parsed is not None:
        assert_ready_to_send(parsed, data)
        if sender is not None:
            assert parsed.sender == sender
        # Recipient arguments are address lists (as sendmail takes them): each envelope
        # recipient is an address written in one of them (folding white space between its
        # tokens aside: "0 @x" is 0@x; and quotes a local part does not need aside:
        # '"0"@x' is 0@x), never one made up.
        written = ["".join(arg.split()).replace('"', "") for arg in recipients]
        assert all(
            any(rcpt.replace('"', "") in arg for arg in written) for rcpt in parsed.recipients
        )


@SETTINGS
@given(st.binary(max_size=300))
@example(b"\x00")
@example(b"From \n")
@example(b"To: \x00\n\n")
def test_arbitrary_bytes_never_raise_anything_but_invalid_message(data: bytes) -> None:
    parsed = parse_or_refuse(data)
    if parsed is not None:
        assert_ready_to_send(parsed, data)


@SETTINGS
@given(messages())
def test_a_stored_message_parses_back_to_itself(data: bytes) -> None:
    parsed = parse_or_refuse(data)
    if parsed is None:
        return
    again = parse_message(
        parsed.raw, sender=parsed.sender, recipients=parsed.recipients, from_headers=False
    )
    assert again.raw == parsed.raw  # normalising is idempotent: nothing left to change
    assert again.subject == parsed.subject


@SETTINGS
@given(
    st.one_of(messages(), st.binary(max_size=300)),
    st.integers(0, 2),
    st.text(alphabet="ab ,\t\u00e9", min_size=900, max_size=2500),
)
@example(b"plain text\n", 0, "a" * 900)
@example(b"Subject: s\n\nx\n", 1, "a " * 450 + "\t" * 600)
@example(b"X" * 998 + b": x\n\nx\n", 0, "a" * 900)
@example(b"X" * 997 + b": x\n\nx\n", 0, "a" * 900)
def test_the_sendmail_way_stores_ready_to_send_and_parses_back_strictly(
    data: bytes, where: int, long_text: str
) -> None:
    # outbox sendmail takes text as the body's start and folds long lines; what it stores
    # must still be a strict message (the drop folder re-reads it without either).
    long_line = long_text.encode()
    if where == 1:
        data = b"X-Long: " + long_line + b"\n" + data
    elif where == 2:
        data = data + long_line + b"\n"
    parsed = parse_or_refuse(
        data,
        sender="a@example.org",
        recipients=["x@example.org"],
        text_ends_header=True,
        fold_long_lines=True,
    )
    if parsed is None:
        return
    assert_ready_to_send(parsed, data, lines_cut=True)
    again = parse_message(
        parsed.raw, sender=parsed.sender, recipients=parsed.recipients, from_headers=False
    )
    assert again.raw == parsed.raw


@SETTINGS
@given(
    st.lists(st.text(alphabet="abc xyz:@.-", max_size=30), max_size=6),
    st.lists(LINE_ENDINGS, min_size=8, max_size=8),
)
def test_the_line_ending_style_never_changes_what_is_stored(
    body: list[str], endings: list[bytes]
) -> None:
    head = [b"From: a@example.org", b"To: b@example.org", b"Date: x", b"Message-ID: <m@x>", b""]
    lines = [*head, *(line.encode() for line in body)]
    canonical = b"".join(line + b"\r\n" for line in lines)
    chosen = [endings[i % len(endings)] for i in range(len(lines))]
    for i in range(len(lines) - 1):
        # CR, then an empty line ended by LF, *is* one CRLF: no input can say otherwise.
        if chosen[i] == b"\r" and lines[i + 1] == b"" and chosen[i + 1] == b"\n":
            chosen[i + 1] = b"\r\n"
    mixed = b"".join(line + ending for line, ending in zip(lines, chosen, strict=True))
    assert parse_message(mixed).raw == parse_message(canonical).raw == canonical


@SETTINGS
@given(addresses(), st.sampled_from(SMUGGLERS[:8]), st.data())
def test_an_address_with_a_smuggled_character_is_always_refused(
    address: str, smuggled: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(address)))
    bad = address[:position] + smuggled + address[position:]
    with pytest.raises(InvalidMessage):
        check_address(bad)
    # A recipient word is an address list, where a space or a tab is folding white
    # space ("a@ example.org" is a@example.org); whatever else it does, nothing smuggled
    # reaches the envelope.
    try:
        parsed = parse_message(b"From: a@example.org\n\nx\n", recipients=[bad])
    except InvalidMessage:
        return
    # Only folding white space, or an angle bracket that completes one already there
    # ("<x@y" with ">" at its end is the angle-addr <x@y>), leaves a valid list.
    assert smuggled in " \t" or (smuggled in "<>" and "<" in bad and ">" in bad), bad
    assert all(check_address(r) == r for r in parsed.recipients)


def test_a_bracket_completing_an_angle_addr_is_no_smuggling() -> None:
    # Found by the property above: "<" drawn into the address, ">" smuggled at its end.
    bad = '<"0"@\u00df\u00df\u00df\u00df.example>'
    with pytest.raises(InvalidMessage):
        check_address(bad)
    parsed = parse_message(b"From: a@example.org\n\nx\n", recipients=[bad])
    assert parsed.recipients == ("0@\u00df\u00df\u00df\u00df.example",)  # quotes not needed


@SETTINGS
@given(st.text(max_size=40))
def test_address_checks_never_raise_anything_but_invalid_message(text: str) -> None:
    try:
        assert check_address(text) == text
    except InvalidMessage:
        return
    assert not set(text) & {"\r", "\n", "\x00", " ", "<", ">", "\t"}


# -- the everyday-address fast path agrees with the stdlib ------------------------------


def stdlib_addresses(value: str) -> list[str] | None:
    """The stdlib's addr-specs for ``value``, or None if it reports a real defect."""
    from email.policy import default

    header = default.header_factory("To", value)
    harmless = {"ObsoleteHeaderDefect", "NonASCIILocalPartDefect", "UndecodableBytesDefect"}
    if any(type(defect).__name__ not in harmless for defect in header.defects):
        return None
    return [address.addr_spec for address in header.addresses]


dot_atoms = st.lists(
    st.one_of(atoms.filter(lambda a: "." not in a), utf8_atoms), min_size=1, max_size=3
).map(".".join)
everyday_items = st.one_of(
    st.builds("{}@{}".format, dot_atoms, dot_atoms),
    st.builds(
        "{} <{}@{}>".format,
        st.lists(atoms.filter(lambda a: "." not in a), min_size=1, max_size=3).map(" ".join),
        dot_atoms,
        dot_atoms,
    ),
)


@SETTINGS
@given(st.lists(everyday_items, min_size=1, max_size=4), st.sampled_from([",", ", ", " ,\t"]))
def test_everyday_address_lists_take_the_fast_path_and_agree_with_the_stdlib(
    items: list[str], separator: str
) -> None:
    from relay.message import _simple_addresses

    value = separator.join(items)
    assert _simple_addresses(value) is not None
    assert _simple_addresses(value) == stdlib_addresses(value)


near_addresses = st.lists(
    st.sampled_from(
        [
            *["a", "é", "x.y", ".", "@", "<", ">", " ", "\t", ",", '"', "(", ")", "=?", ":", ";"],
            *["\\", "a@b.example", "é@x", "Ann ", "<a@b>", ", ", "\x00", "\u2028", "\u00a0"],
            *["-", "[1.2.3.4]", "a@b.example", "<a@b>", ", "],
        ]
    ),
    max_size=10,
).map("".join)


@SETTINGS
@given(near_addresses)
def test_whatever_the_fast_path_accepts_the_stdlib_reads_the_same_way(value: str) -> None:
    from relay.message import _simple_addresses

    simple = _simple_addresses(value)
    if simple is not None:
        assert simple == stdlib_addresses(value)
