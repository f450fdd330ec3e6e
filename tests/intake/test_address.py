"""Envelope address validation, case by case."""

from __future__ import annotations

import pytest

from relay.address import address_problem, check_address, domain_key, show
from relay.errors import InvalidMessage


@pytest.mark.parametrize(
    "address",
    [
        "a@example.org",
        "first.last+tag@sub.example.co.uk",
        "!#$%&'*+-/=?^_`{|}~@example.org",
        "user@localhost",
        '"quoted.."@example.org',
        '"with\\"quote"@example.org',
        '"at@sign"@example.org',
        "a@[192.0.2.1]",
        "a@[IPv6:2001:db8::1]",
        "jürgen@bücher.example",
        "用户@例子.广告",
        "a@x-y.example",
        "l" * 64 + "@example.org",
        "a@" + ".".join(["d" * 63] * 3) + ".example",
    ],
)
def test_valid_addresses_pass(address: str) -> None:
    assert address_problem(address) is None
    assert check_address(address) == address


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "empty"),
        ("plain", "no @domain"),
        ("@example.org", "empty local part"),
        ("a@", "empty domain"),
        ("a.@example.org", "the part before @ is not a valid local part"),
        (".a@example.org", "the part before @ is not a valid local part"),
        ("a..b@example.org", "the part before @ is not a valid local part"),
        ("a(b)@example.org", "the part before @ is not a valid local part"),
        ('"unterminated@example.org', "the part before @ is not a valid local part"),
        ('"a\\x"@example.org', "the part before @ is not a valid local part"),
        ("a@example..org", "the domain has an empty label"),
        ("a@.example.org", "the domain has an empty label"),
        ("a@example.org.", "the domain has an empty label"),
        ("a@-example.org", "the domain is not a valid host name"),
        ("a@example-.org", "the domain is not a valid host name"),
        ("a@exa_mple.org", "the domain is not a valid host name"),
        ("a@" + "d" * 64 + ".org", "a domain label is longer than 63 octets"),
        ("a@" + ".".join(["d" * 60] * 5), "the domain is longer than 255 octets"),
        ("l" * 65 + "@example.org", "the local part is longer than 64 octets"),
        ("a@[192.0.2.1", "the address literal is not closed"),
        ("a@[192.0.2.256]", "the address literal is neither [IPv4] nor [IPv6:address]"),
        ("a@[2001:db8::1]", "the address literal is neither [IPv4] nor [IPv6:address]"),
        ("a@[IPv6:fe80::1%eth0]", "the address literal has a zone index"),
        ("a@[x:y]", "the address literal is neither [IPv4] nor [IPv6:address]"),
        ("a\r@example.org", "contains a line break"),
        ("a@example.org\n", "contains a line break"),
        ("a\x00@example.org", "contains a NUL character"),
        ("a\x7f@example.org", "contains a control character"),
        ("a\x85@example.org", "contains a character that is not allowed in an address"),
        ("a\u00a0@example.org", "contains a character that is not allowed in an address"),
        ("a\ufeff@example.org", "contains a character that is not allowed in an address"),
        ("a @example.org", "contains a space"),
        ('"a b"@example.org', "contains a space"),
        ('"a<b"@example.org', "contains an angle bracket"),
        ("<a@example.org>", "contains an angle bracket"),
    ],
)
def test_invalid_addresses_are_refused_with_the_rule_they_break(address: str, reason: str) -> None:
    assert address_problem(address) == reason
    with pytest.raises(InvalidMessage) as caught:
        check_address(address, where="(test)")
    assert str(caught.value) == f"bad address {show(address)} (test): {reason}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\r\n\t\x00\x1b\x7f", '"\\r\\n\\t\\x00\\x1b\\x7f"'),
        ("é ü 用", '"é ü 用"'),
        ("\u2028\ufeff", '"\\u2028\\ufeff"'),
        ("\udcff", '"\\xff"'),
    ],
)
def test_show_quotes_and_escapes_what_a_terminal_should_not_interpret(
    text: str, shown: str
) -> None:
    assert show(text) == shown


def test_the_domain_key_folds_only_the_domain() -> None:
    assert domain_key("Bob@Example.ORG") == "Bob@example.org"
    assert domain_key('"a@B"@C.org') == '"a@B"@c.org'
