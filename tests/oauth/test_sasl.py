"""The SASL strings that carry a token: RFC 7628 OAUTHBEARER and XOAUTH2, by table."""

from __future__ import annotations

import base64

import pytest

from relay.oauth.sasl import (
    choose_mechanism,
    error_status,
    failure_answer,
    initial_response,
    oauthbearer,
    xoauth2,
)


def test_oauthbearer_is_rfc_7628_section_3_1() -> None:
    assert oauthbearer("user@example.com", "vF9dft4qmT", "server.example.com", 143) == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmT\x01\x01"
    )


def test_oauthbearer_escapes_comma_and_equals_in_the_user_name() -> None:
    assert oauthbearer("a,b=c", "t", "h", 1).startswith(b"n,a=a=2Cb=3Dc,\x01")


def test_xoauth2_is_googles_format() -> None:
    assert xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        b"\x01\x01"
    )


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"), "OAUTHBEARER"),
        (("XOAUTH2", "PLAIN"), "XOAUTH2"),
        (("OAUTHBEARER",), "OAUTHBEARER"),
        (("PLAIN", "LOGIN"), None),
        ((), None),
    ],
)
def test_oauthbearer_is_preferred_when_offered(
    offered: tuple[str, ...], chosen: str | None
) -> None:
    assert choose_mechanism(offered) == chosen


def test_initial_response_is_base64_of_the_mechanisms_string() -> None:
    encoded = initial_response("XOAUTH2", "u", "t", "h", 587)
    assert base64.b64decode(encoded) == xoauth2("u", "t")


def test_the_error_challenge_is_answered_as_each_mechanism_requires() -> None:
    assert base64.b64decode(failure_answer("OAUTHBEARER")) == b"\x01"  # RFC 7628 3.2.3
    assert failure_answer("XOAUTH2") == ""


def test_error_status_reads_the_json_challenge_and_ignores_garbage() -> None:
    challenge = base64.b64encode(b'{"status":"invalid_token","scope":"x"}').decode()
    assert error_status(challenge) == "invalid_token"
    assert error_status("not base64!") is None
    assert error_status(base64.b64encode(b"[1]").decode()) is None


def test_a_separator_in_a_field_is_refused() -> None:
    with pytest.raises(ValueError):
        xoauth2("u\x01ser", "t")
