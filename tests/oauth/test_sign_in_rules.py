"""Which account changes make a stored refresh token meaningless, by table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relay.accounts import Account
from relay.oauth.providers import OAuth2Settings, Provider
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
