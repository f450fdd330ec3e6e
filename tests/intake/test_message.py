"""parse_message, rule by rule: what is stored, what the envelope is, and every refusal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.errors import InvalidMessage
from relay.message import MAX_MESSAGE_OCTETS, ParsedMessage, parse_message

NOW = datetime(2026, 11, 24, 12, 30, 5, tzinfo=UTC)
BASIC = b"From: Ann <ann@example.org>\nTo: bob@example.org\nSubject: Hello\n\nHi Bob\n"


def parse(data: bytes, **kwargs: object) -> ParsedMessage:
    return parse_message(data, now=NOW, **kwargs)  # type: ignore[arg-type]


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def refusal(data: bytes, **kwargs: object) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse(data, **kwargs)
    text = str(caught.value)
    assert "\n" not in text and "\r" not in text, "an error is one line"
    return text


# -- what is stored ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"From: a@example.org\nTo: b@example.org\n\none\ntwo\n",
        b"From: a@example.org\r\nTo: b@example.org\r\n\r\none\r\ntwo\r\n",
        b"From: a@example.org\rTo: b@example.org\r\rone\rtwo\r",
        b"From: a@example.org\r\nTo: b@example.org\n\rone\r\ntwo\n",
        b"From: a@example.org\nTo: b@example.org\n\none\ntwo",
    ],
    ids=["lf", "crlf", "cr", "mixed", "no-final-newline"],
)
def test_every_line_ending_style_is_stored_as_crlf(data: bytes) -> None:
    raw = parse(data).raw
    assert raw.endswith(b"\r\n\r\none\r\ntwo\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")


def test_a_leading_mbox_from_line_is_dropped() -> None:
    parsed = parse(b"From ann@example.org Tue Nov 24 12:00:00 2026\n" + BASIC)
    assert parsed.raw.startswith(b"From: Ann <ann@example.org>\r\n")
    assert b"From ann" not in parsed.raw


def test_bcc_is_removed_from_the_stored_message_but_stays_in_the_envelope() -> None:
    parsed = parse(
        b"From: a@example.org\nBcc: hidden@example.org,\n  also.hidden@example.org\n"
        b"To: b@example.org\nSubject: s\n\nbody Bcc: stays in the body\n"
    )
    assert parsed.recipients == ("hidden@example.org", "also.hidden@example.org", "b@example.org")
    assert b"hidden" not in parsed.raw.split(b"\r\n\r\n")[0]
    assert header_lines(parsed.raw)[:3] == [
        b"From: a@example.org",
        b"To: b@example.org",
        b"Subject: s",
    ]
    assert parsed.raw.endswith(b"\r\n\r\nbody Bcc: stays in the body\r\n")


def test_resent_bcc_is_removed_too_whatever_its_case() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\nRESENT-BCC: r@example.org,\n\tx@example.org\n"
        b"Resent-From: fwd@example.org\n\nbody\n"
    )
    assert b"r@example.org" not in parsed.raw
    assert b"x@example.org" not in parsed.raw
    assert parsed.recipients == ("r@example.org", "x@example.org")


def test_bcc_is_removed_even_when_recipients_do_not_come_from_the_header() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\nBcc: secret@example.org\n\nx\n",
        recipients=["c@example.org"],
        from_headers=False,
    )
    assert parsed.recipients == ("c@example.org",)
    assert b"secret" not in parsed.raw


def test_date_and_message_id_are_added_when_missing() -> None:
    parsed = parse(BASIC)
    lines = header_lines(parsed.raw)
    assert b"Date: Tue, 24 Nov 2026 12:30:05 +0000" in lines
    (message_id,) = [line for line in lines if line.startswith(b"Message-ID: ")]
    assert re.fullmatch(rb"Message-ID: <20261124123005\.[0-9a-f]{16}@example\.org>", message_id)


def test_the_added_date_keeps_the_local_offset() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    parsed = parse_message(BASIC, now=when)
    assert b"Date: Fri, 02 Jan 2026 03:04:05 -0530" in header_lines(parsed.raw)


def test_an_existing_date_and_message_id_are_kept_as_they_are() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\ndate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Message-Id: <x@y>\n\nbody\n"
    )
    lines = header_lines(parsed.raw)
    assert lines == [
        b"From: a@example.org",
        b"To: b@example.org",
        b"date: Mon, 1 Jan 2024 00:00:00 +0000",
        b"Message-Id: <x@y>",
    ]


def test_added_fields_go_at_the_end_of_the_header_before_the_body() -> None:
    lines = header_lines(parse(BASIC).raw)
    assert lines[:3] == [b"From: Ann <ann@example.org>", b"To: bob@example.org", b"Subject: Hello"]
    assert lines[3].startswith(b"Date: ") and lines[4].startswith(b"Message-ID: ")


def test_a_message_of_header_fields_only_is_accepted() -> None:
    parsed = parse(b"From: a@example.org\nTo: b@example.org")
    assert parsed.raw.startswith(b"From: a@example.org\r\nTo: b@example.org\r\nDate: ")
    assert parsed.raw.endswith(b"\r\n")
    assert b"\r\n\r\n" not in parsed.raw


def test_a_message_without_header_fields_gets_from_date_and_message_id() -> None:
    parsed = parse(b"\njust a body\n", sender="a@example.org", recipients=["b@example.org"])
    lines = header_lines(parsed.raw)
    assert lines[0] == b"From: a@example.org"
    assert [line.split(b":")[0] for line in lines] == [b"From", b"Date", b"Message-ID"]
    assert parsed.raw.endswith(b"\r\n\r\njust a body\r\n")


def test_from_is_added_with_the_full_name_when_the_message_has_none() -> None:
    parsed = parse(
        b"Subject: s\n\nx\n",
        sender="me@example.org",
        recipients=["b@example.org"],
        full_name="Ann Example",
    )
    assert header_lines(parsed.raw)[1] == b"From: Ann Example <me@example.org>"


def test_a_full_name_with_specials_is_quoted() -> None:
    parsed = parse(
        b"Subject: s\n\nx\n",
        sender="me@example.org",
        recipients=["b@example.org"],
        full_name='Doe, "J" \\ Ann',
    )
    assert header_lines(parsed.raw)[1] == b'From: "Doe, \\"J\\" \\\\ Ann" <me@example.org>'


def test_a_non_ascii_full_name_is_encoded_and_folded_within_the_line_limit() -> None:
    from email.header import decode_header, make_header

    name = ("Jürgen Müller-Lüdenscheidt " * 9).strip()
    parsed = parse(
        b"Subject: s\n\nx\n", sender="me@example.org", recipients=["b@example.org"], full_name=name
    )
    assert parsed.raw.isascii()
    folded = header_lines(parsed.raw)[1:-2]
    assert len(folded) > 1
    assert all(len(line) <= 78 for line in folded[:-1])
    assert folded[-1].endswith(b"?= <me@example.org>") and len(folded[-1]) <= 100
    words = b"".join(folded).decode()[len("From: ") : -len(" <me@example.org>")]
    assert str(make_header(decode_header(words))) == name  # RFC 2047 §6.2 decoding


def test_an_existing_from_is_not_touched_by_an_explicit_sender_or_full_name() -> None:
    parsed = parse(BASIC, sender="other@example.org", full_name="Someone Else")
    assert header_lines(parsed.raw)[0] == b"From: Ann <ann@example.org>"
    assert parsed.sender == "other@example.org"


def test_the_subject_is_decoded_for_display() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n =?iso-8859-1?q?_aus_K=F6ln?=\n\nx\n"
    )
    assert parsed.subject == "Grüße aus Köln"


def test_a_raw_utf8_subject_is_shown_and_a_broken_one_does_not_fail() -> None:
    good = parse(b"From: a@example.org\nTo: b@example.org\nSubject: caf\xc3\xa9\n\nx\n")
    assert good.subject == "café"
    bad = parse(b"From: a@example.org\nTo: b@example.org\nSubject: caf\xe9 =?bogus?q?x\n\nx\n")
    assert bad.subject.startswith("caf\ufffd")


def test_the_subject_shown_to_people_carries_no_control_characters() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\n"
        b"Subject: \x1b[2Jred\tand =?utf-8?q?=1B=5B31m=C2=9B?=\n\nx\n"
    )
    assert parsed.subject == "\ufffd[2Jred and \ufffd[31m\ufffd"
    assert b"\x1b[2Jred" in parsed.raw  # the message itself is sent as written


def test_eight_bit_content_is_flagged_and_ascii_content_is_not() -> None:
    assert parse(BASIC).eight_bit is False
    assert parse(BASIC + b"gr\xc3\xbc\xc3\x9fe\n").eight_bit is True


# -- the envelope ------------------------------------------------------------------------


def test_the_sender_is_the_single_from_address() -> None:
    assert parse(BASIC).sender == "ann@example.org"


def test_an_explicit_sender_wins_over_from() -> None:
    assert parse(BASIC, sender="bounce@example.org").sender == "bounce@example.org"


def test_sender_is_used_when_from_has_several_addresses() -> None:
    parsed = parse(
        b"From: a@example.org, b@example.org\nSender: sec@example.org\nTo: c@example.org\n\nx\n"
    )
    assert parsed.sender == "sec@example.org"


def test_from_with_a_single_address_wins_over_sender() -> None:
    parsed = parse(b"From: a@example.org\nSender: sec@example.org\nTo: c@example.org\n\nx\n")
    assert parsed.sender == "a@example.org"


def test_sender_alone_is_enough() -> None:
    parsed = parse(b"Sender: sec@example.org\nTo: c@example.org\n\nx\n")
    assert parsed.sender == "sec@example.org"


def test_recipients_are_to_cc_and_bcc_in_order_then_the_explicit_ones() -> None:
    parsed = parse(
        b"From: a@example.org\nCc: cc@example.org\nTo: Bob <to@example.org>, to2@example.org\n"
        b"Bcc: bcc@example.org\n\nx\n",
        recipients=["extra@example.org"],
    )
    assert parsed.recipients == (
        "cc@example.org",
        "to@example.org",
        "to2@example.org",
        "bcc@example.org",
        "extra@example.org",
    )


def test_several_to_fields_all_count() -> None:
    parsed = parse(b"From: a@example.org\nTo: b@example.org\nTo: c@example.org\n\nx\n")
    assert parsed.recipients == ("b@example.org", "c@example.org")


def test_duplicate_recipients_collapse_on_the_domain_case_but_not_the_local_part() -> None:
    parsed = parse(
        b"From: a@example.org\nTo: bob@Example.ORG, Bob@example.org\nCc: bob@example.org\n\nx\n",
        recipients=["bob@EXAMPLE.org", "Bob@EXAMPLE.ORG"],
    )
    assert parsed.recipients == ("bob@Example.ORG", "Bob@example.org")


def test_without_from_headers_only_explicit_recipients_count() -> None:
    parsed = parse(BASIC, recipients=["x@example.org"], from_headers=False)
    assert parsed.recipients == ("x@example.org",)
    assert b"To: bob@example.org" in parsed.raw  # the header stays as it was


def test_group_syntax_and_comments_and_encoded_names_are_understood() -> None:
    parsed = parse(
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org> (work)\n"
        b'To: friends: a@example.org, "Last, First" <b@example.org>;, (c) c@example.org\n'
        b"Cc: undisclosed-recipients:;\n\nx\n"
    )
    assert parsed.sender == "j@example.org"
    assert parsed.recipients == ("a@example.org", "b@example.org", "c@example.org")


def test_a_resent_message_takes_its_envelope_from_the_resent_fields() -> None:
    parsed = parse(
        b"Resent-From: fwd@example.org\nResent-To: new@example.org\nResent-Cc: cc@example.org\n"
        b"From: orig@example.org\nTo: old@example.org\n\nx\n"
    )
    assert parsed.sender == "fwd@example.org"
    assert parsed.recipients == ("new@example.org", "cc@example.org")


def test_a_resent_message_prefers_resent_sender_when_resent_from_has_several() -> None:
    parsed = parse(
        b"Resent-From: a@example.org, b@example.org\nResent-Sender: s@example.org\n"
        b"Resent-To: new@example.org\nFrom: orig@example.org\n\nx\n"
    )
    assert parsed.sender == "s@example.org"


def test_a_resent_message_without_resent_from_falls_back_to_from() -> None:
    parsed = parse(
        b"Resent-To: new@example.org\nFrom: orig@example.org\nTo: old@example.org\n\nx\n"
    )
    assert parsed.sender == "orig@example.org"
    assert parsed.recipients == ("new@example.org",)


def test_resent_from_alone_does_not_make_a_message_resent() -> None:
    parsed = parse(
        b"Resent-From: fwd@example.org\nFrom: orig@example.org\nTo: b@example.org\n\nx\n"
    )
    assert parsed.sender == "orig@example.org"
    assert parsed.recipients == ("b@example.org",)


def test_utf8_addresses_are_allowed_and_ask_for_smtputf8() -> None:
    parsed = parse("From: jürgen@bücher.example\nTo: b@example.org\n\nx\n".encode())
    assert parsed.sender == "jürgen@bücher.example"
    assert parsed.needs_smtputf8 is True
    assert parse(BASIC).needs_smtputf8 is False
    assert parse(BASIC, recipients=["δοκιμή@παράδειγμα.δοκιμή"]).needs_smtputf8 is True


def test_the_message_id_domain_of_a_utf8_sender_is_punycode() -> None:
    parsed = parse("From: a@bücher.example\nTo: b@example.org\n\nx\n".encode())
    (line,) = [x for x in header_lines(parsed.raw) if x.startswith(b"Message-ID")]
    assert line.endswith(b"@xn--bcher-kva.example>")


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kwargs", "expected"),
    [
        (b"", {}, "empty message"),
        (b" \r\n\t\n", {}, "empty message"),
        (b"From someone@example.org Tue Nov 24\n", {}, "empty message"),
        (b"hello world\n", {}, "not an e-mail message: line 1 is not a header field"),
        (b"%PDF-1.7\n\x00\x01binary", {}, "not an e-mail message: line 1 is not a header field"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", {}, "not an e-mail message: line 1 is not a header field"),
        (b"  indented: x\n\nbody\n", {}, "not an e-mail message: line 1 is indented"),
        (b"To : a@example.org\n\nx\n", {}, "not an e-mail message: line 1 is not a header field"),
        (
            b"From: a@example.org\nTo: b@example.org\nthis is not a header\nBcc: c@example.org\n",
            {},
            "not an e-mail message: line 3 is not a header field (the header ends at the first",
        ),
        (b"To: b@example.org\n\nx\n", {}, "no sender: no address in From or Sender and none given"),
        (
            b"From: a@example.org, b@example.org\nTo: c@example.org\n\nx\n",
            {},
            "no sender: From has several addresses and there is no Sender header",
        ),
        (
            b"From: a@example.org, b@example.org\nSender: s@example.org, t@example.org\n"
            b"To: c@example.org\n\nx\n",
            {},
            "no sender: Sender has several addresses",
        ),
        (b"From: undisclosed:;\nTo: c@example.org\n\nx\n", {}, "no sender"),
        (
            b"From: a@example.org\nSubject: s\n\nx\n",
            {},
            "no recipient: no address in To, Cc or Bcc",
        ),
        (b"From: a@example.org\nTo: list:;\n\nx\n", {}, "no recipient"),
        (
            b"From: a@example.org\nTo: b@example.org\nResent-To: list:;\n\nx\n",
            {},
            "no recipient: no address in Resent-To, Resent-Cc or Resent-Bcc and none given",
        ),
        (BASIC, {"from_headers": False}, "no recipient given"),
        (
            b"From: a@example.org\nTo: b@example.org\n\n" + b"x" * 999 + b"\n",
            {},
            "line 4 is longer than 998 octets (999)",
        ),
        (
            b"From x\nFrom: a@example.org\nTo: b@example.org\nSubject: " + b"y" * 990 + b"\n\nx\n",
            {},
            "line 4 is longer than 998 octets (999)",
        ),
        (b"From: a@example.org\nTo: b@example.org\n\nnul\x00here\n", {}, "line 4 contains a NUL"),
    ],
)
def test_bad_input_is_refused_with_a_precise_reason(
    data: bytes, kwargs: dict[str, object], expected: str
) -> None:
    assert refusal(data, **kwargs).startswith(expected)


def test_a_line_of_exactly_998_octets_is_accepted() -> None:
    parsed = parse(b"From: a@example.org\nTo: b@example.org\n\n" + b"x" * 998 + b"\n")
    assert b"x" * 998 + b"\r\n" in parsed.raw


def test_a_message_over_the_size_limit_is_refused() -> None:
    data = BASIC + (b"x" * 70 + b"\n") * (MAX_MESSAGE_OCTETS // 71 + 1)
    assert refusal(data) == "message larger than 64 MiB"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            b"To: a b@example.org",
            'bad address list "a b@example.org" in To (line 2): local-part is not dot-atom',
        ),
        (
            b'To: "a b"@example.org',
            'bad address "\\"a b\\"@example.org" in To (line 2): contains a space',
        ),
        (b"To: bob", 'bad address list "bob" in To (line 2): addr-spec local part with no domain'),
        (b"To: <bob@example.org> junk", 'bad address list "<bob@example.org> junk" in To'),
        (b"To: x@example.org;RCPT TO:<evil@example.org>", "bad address list"),
        (b"To: x@example.org\x00RCPT TO:<e@example.org>", "line 2 contains a NUL byte"),
        (
            b"To: x@exa\x01mple.org",
            'bad address list "x@exa\\x01mple.org" in To (line 2): contains a control character',
        ),
        (b"To: a@b@example.org", "bad address list"),
        (b"To: a..b@example.org", 'bad address list "a..b@example.org" in To (line 2)'),
        (b"To: a@-example.org", 'bad address "a@-example.org" in To (line 2): the domain is not'),
        (b"To: a@[300.1.1.1]", 'bad address "a@[300.1.1.1]" in To (line 2): the address literal'),
        (b"Cc: b@example.org, \xe9@example.org", 'bad address "\\xe9@example.org" in Cc (line 2)'),
        (b"Bcc: <a@example.org", 'bad address list "<a@example.org" in Bcc (line 2)'),
        (b"To: " + b"l" * 65 + b"@example.org", "the local part is longer than 64 octets"),
    ],
)
def test_a_bad_address_in_the_header_is_refused_and_quoted(field: bytes, expected: str) -> None:
    data = b"From: a@example.org\n" + field + b"\n\nx\n"
    assert expected in refusal(data)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("a@example.org\r\nRCPT TO:<evil@example.org>", "contains a line break"),
        ("a@example.org\nDATA", "contains a line break"),
        ("a@example.org\x00", "contains a NUL character"),
        ("a b@example.org", "contains a space"),
        ("<a@example.org>", "contains an angle bracket"),
        ("a@example.org> SIZE=1", "contains an angle bracket"),
        ("Ann <a@example.org>", "contains a space"),
        ("a@example.org,b@example.org", "the part before @ is not a valid local part"),
        ("a@example.org\tb", "contains a control character"),
        ("", "empty"),
        ("@example.org", "empty local part"),
        ("a@", "empty domain"),
        ("a\u2028@example.org", "contains a character that is not allowed in an address"),
        ("a\udcff@example.org", "contains a character that is not allowed in an address"),
        ("a@exa\u200bmple.org", "contains a character that is not allowed in an address"),
    ],
)
def test_an_explicit_address_that_could_smuggle_a_command_is_refused(
    address: str, reason: str
) -> None:
    if address in RECIPIENT_LISTS:
        # As a recipient word it is an address list, as sendmail reads it (tested below).
        pass
    elif address in ("a b@example.org", "a@example.org> SIZE=1"):
        assert "(recipient)" in refusal(BASIC, recipients=[address])  # a list, and a bad one
    else:
        as_recipient = refusal(BASIC, recipients=[address])
        assert as_recipient.endswith(f"(recipient): {reason}")
    if address == "":
        return  # as the sender, the null reverse-path (MAIL FROM:<>)
    as_sender = refusal(BASIC, sender=address)
    assert as_sender.endswith(f"(envelope sender): {reason}")
    assert "\r" not in as_sender and "\n" not in as_sender


RECIPIENT_LISTS = ("<a@example.org>", "Ann <a@example.org>", "a@example.org,b@example.org")


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("<a@example.org>", ("a@example.org",)),
        ("Ann <a@example.org>", ("a@example.org",)),
        ("a@example.org,b@example.org", ("a@example.org", "b@example.org")),
        ("Some One <x@example.net>, y@example.net", ("x@example.net", "y@example.net")),
        ('"Doe, Jo" <j@example.org>, k@example.org', ("j@example.org", "k@example.org")),
        ("a@example.org (Ann)", ("a@example.org",)),
    ],
)
def test_a_recipient_argument_is_an_address_list(argument: str, expected: tuple[str]) -> None:
    parsed = parse_message(BASIC, recipients=[argument], from_headers=False)
    assert parsed.recipients == expected


def test_a_full_name_with_a_line_break_cannot_inject_a_header() -> None:
    text = refusal(
        b"Subject: s\n\nx\n",
        sender="me@example.org",
        recipients=["b@example.org"],
        full_name="Ann\r\nBcc: spy@example.org",
    )
    assert text == 'full name "Ann\\r\\nBcc: spy@example.org" contains a control character'


def test_refusal_messages_escape_what_they_quote() -> None:
    text = refusal(BASIC, recipients=["a\x1b[31m@example.org"])
    assert "\x1b" not in text
    assert '"a\\x1b[31m@example.org"' in text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Folded before the last space within 998 octets: unfolding gives the line back.
        (
            b"Subject:" + b" word" * 300,
            [b"Subject:" + b" word" * 198, b" word" * 102],
        ),
        # No space to fold at: cut at 998 and the rest starts with a space (Postfix's way).
        (b"Subject: " + b"y" * 1200, [b"Subject:", b" " + b"y" * 997, b" " + b"y" * 203]),
    ],
)
def test_fold_long_lines_folds_a_long_header_field(line: bytes, expected: list[bytes]) -> None:
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\n" + line + b"\n\nx\n", fold_long_lines=True
    )
    header = parsed.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert header[2 : 2 + len(expected)] == expected


def test_fold_long_lines_keeps_an_address_list_without_spaces_whole() -> None:
    addresses = tuple(f"user{n}@example.org" for n in range(80))  # 1,598 octets, no space
    data = b"From: a@example.org\nTo:" + ",".join(addresses).encode() + b"\n\nx\n"
    parsed = parse(data, fold_long_lines=True)
    assert parsed.recipients == addresses
    assert max(map(len, parsed.raw.split(b"\r\n"))) <= 998


def test_fold_long_lines_cuts_body_lines_between_utf8_characters() -> None:
    text = "x" + "é" * 1000  # a 2-octet character straddles octet 998
    parsed = parse(
        b"From: a@example.org\nTo: b@example.org\n\n" + text.encode() + b"\n", fold_long_lines=True
    )
    body = parsed.raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[:-1]
    assert [len(line) for line in body] == [997, 998, 6]
    assert "".join(line.decode("utf-8") for line in body) == text
