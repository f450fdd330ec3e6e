"""Where an account's OAuth2 refresh token (and client secret) are kept: the keyring only.

A refresh token is as good as a password for as long as it lives, so it is
kept like one (``relay.credentials``: the system keyring, never a file) and
per home *and* account: two homes with an account of the same name sign in
to different mailboxes and must not share a token.

The keyring key is ``relay.credentials.secret_key``'s, as for passwords (the
home's id, the account, the kind of secret); everything here goes through
``_key``. Access tokens are never stored: they live in memory for an hour at
most (``relay.oauth.tokens``). Windows' credential store holds at most 2,560 bytes a
secret, and Microsoft's refresh tokens come close; the keyring backend's own
error says so if one does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relay.credentials import SecretKey, delete_secret, get_secret, secret_key, store_secret

if TYPE_CHECKING:
    from relay.accounts import Account

REFRESH_TOKEN = "OAuth2 refresh token"
CLIENT_SECRET = "OAuth2 client secret"


def keyring_entry(home: Path, account_name: str, kind: str) -> tuple[str, str]:
    """The keyring (service, user name) of ``kind`` of ``account_name`` in ``home``.

    The key is ``relay.credentials``' for every secret: the home's id and the
    account name are part of it, so a second home with an account of the
    same name gets entries of its own.
    """
    key = _key(home, account_name, kind)
    return key.service, key.username


def _key(home: Path, account_name: str, kind: str) -> SecretKey:
    return secret_key(home, account_name, kind)


def is_token_text(token: str) -> bool:
    """Whether ``token`` can be a refresh token: one word of printable ASCII.

    RFC 6749 appendix A.17 allows only visible ASCII (and spaces, which no
    provider uses and a pasted token gains by mistake); anything else is
    a wrong paste or a broken endpoint, and would only fail later, far away.
    """
    return bool(token) and all("!" <= c <= "~" for c in token)


def store_refresh_token(home: Path, account_name: str, token: str) -> None:
    if not is_token_text(token):
        raise ValueError("a refresh token is one word of printable ASCII characters")
    store_secret(_key(home, account_name, REFRESH_TOKEN), token)


def get_refresh_token(home: Path, account_name: str) -> str | None:
    return get_secret(_key(home, account_name, REFRESH_TOKEN))


def delete_refresh_token(home: Path, account_name: str) -> None:
    delete_secret(_key(home, account_name, REFRESH_TOKEN))


def store_client_secret(home: Path, account_name: str, secret: str) -> None:
    store_secret(_key(home, account_name, CLIENT_SECRET), secret)


def get_client_secret(home: Path, account_name: str) -> str | None:
    return get_secret(_key(home, account_name, CLIENT_SECRET))


def delete_client_secret(home: Path, account_name: str) -> None:
    delete_secret(_key(home, account_name, CLIENT_SECRET))


def forget_sign_in(home: Path, account_name: str) -> None:
    """Delete the account's refresh token and client secret (nothing stored is fine)."""
    delete_refresh_token(home, account_name)
    delete_client_secret(home, account_name)


def sign_in_invalidated(before: Account, after: Account) -> bool:
    """Whether changing ``before`` into ``after`` leaves its refresh token meaningless.

    A refresh token belongs to one mailbox, one client and one authorization
    server: another provider, client ID, token URL or user needs a new sign-in.
    """
    old, new = before.oauth2, after.oauth2
    if old is None:
        return False
    if new is None or after.user != before.user:
        return True
    return (new.provider, new.client_id, new.token_url) != (
        old.provider,
        old.client_id,
        old.token_url,
    )
