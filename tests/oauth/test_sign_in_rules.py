"""Which account changes make a stored refresh token meaningless, by table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relay.accounts import Account
from relay.errors import ConfigError
from relay.oauth.providers import OAuth2Settings, Provider, check_endpoint_url
from relay.oauth.store import sign_in_invalidated

GOOGLE = OAuth2Settings(Provider.GOOGLE, "client-1")
BASE = Account(name="a", host="smtp.gmail.com", port=587, user="me@gmail.com", oauth2=GOOGLE)


@pytest.mark.parametrize(
    ("after", "invalidated"),
    [
        (replace(BASE, port=465), False),
        (replace(BASE, host="smtp.example.org"), False),
        (replace(BASE, oauth2=replace(GOOGLE, scope="https://mail.google.com/ x")), False),
        (replace(BASE, oauth2=None), True),
        (replace(BASE, oauth2=replace(GOOGLE, client_id="client-2")), True),
        (replace(BASE, oauth2=OAuth2Settings(Provider.MICROSOFT, "client-1")), True),
        (replace(BASE, oauth2=replace(GOOGLE, token_url="https://t.example/token")), True),
        (replace(BASE, user="other@gmail.com"), True),
    ],
)
def test_a_change_invalidates_the_sign_in_only_when_the_grant_cannot_follow(
    after: Account, invalidated: bool
) -> None:
    assert sign_in_invalidated(BASE, after) is invalidated


def test_a_password_account_has_no_sign_in_to_invalidate() -> None:
    plain = replace(BASE, oauth2=None)
    assert sign_in_invalidated(plain, BASE) is False


@pytest.mark.parametrize(
    "url",
    [
        "http://auth.example.com/authorize",
        "http://auth.example.com\\@127.0.0.1/authorize",  # a browser goes to auth.example.com
        "https://127.0.0.1@auth.example.com/authorize",
    ],
)
def test_an_endpoint_url_whose_host_a_browser_could_read_otherwise_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_endpoint_url(url, "the OAuth2 authorization URL")


@pytest.mark.parametrize(
    "url", ["https://auth.example.com/a?x=@", "http://127.0.0.1:8080/a", "http://[::1]/a"]
)
def test_an_https_or_loopback_endpoint_url_is_taken(url: str) -> None:
    assert check_endpoint_url(url, "the OAuth2 authorization URL") == url
