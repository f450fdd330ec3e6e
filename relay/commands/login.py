"""``outbox account login NAME [--device | --refresh-token-stdin]``: sign an account in.

For an account with ``--oauth2``. Without a flag the system browser opens
the provider's sign-in page (``webbrowser``; the URL is also printed, for a
browser elsewhere on this machine) and Outbox waits on 127.0.0.1 for the
browser to come back. ``--device`` prints a code and a URL to finish the
sign-in on another device. ``--refresh-token-stdin`` takes a refresh token
another tool obtained, tries it once, and keeps it.

The refresh token goes to the keyring (``relay.oauth.store``) and nowhere
else: it is never printed, and a sign-in that fails stores nothing and keeps
the token stored before.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from relay.errors import ConfigError, UsageError


def register_login(actions: Any) -> None:
    login = actions.add_parser(
        "login",
        help="sign an OAuth2 account in (browser, device code, or an imported refresh token)",
        description="Sign in an account that uses --oauth2: the browser opens the provider's"
        " page and Outbox waits on 127.0.0.1 for it to come back. The refresh token is kept"
        " only in the system keyring.",
    )
    login.add_argument("name", metavar="NAME", help="the account to sign in (see account list)")
    how = login.add_mutually_exclusive_group()
    how.add_argument(
        "--device",
        action="store_true",
        help="print a code and a URL to sign in from another device (RFC 8628)",
    )
    how.add_argument(
        "--refresh-token-stdin",
        action="store_true",
        help="read a refresh token another tool obtained from standard input",
    )
    login.add_argument(
        "--timeout",
        metavar="S",
        help="seconds to wait for the browser to come back (default 300)",
    )
    login.add_argument(
        "--no-browser",
        action="store_true",
        help="only print the sign-in URL; do not open a browser",
    )
    login.set_defaults(func=run_login)


def run_login(args: argparse.Namespace) -> int:
    import asyncio

    from relay.accounts import find_account, load_accounts, parse_timeout
    from relay.home import resolve_home
    from relay.oauth.login import (
        BROWSER_TIMEOUT_S,
        DeviceCode,
        check_refresh_token,
        sign_in_with_browser,
        sign_in_with_device,
    )
    from relay.oauth.providers import endpoints
    from relay.oauth.store import get_client_secret, is_token_text, store_refresh_token
    from relay.visible import visible

    timeout_s = BROWSER_TIMEOUT_S
    if args.timeout is not None:
        try:
            timeout_s = parse_timeout(args.timeout, "--timeout")
        except ConfigError as exc:  # a word of this command line, not of the config
            raise UsageError(str(exc)) from None
    home = resolve_home(args.home)
    account = find_account(load_accounts(home), args.name)
    if account.oauth2 is None or account.user is None:
        raise ConfigError(
            f"account {account.name!r} does not sign in with OAuth2"
            f" (set it up with `outbox account set {account.name} --oauth2 PROVIDER"
            " --oauth-client-id ID --user MAILBOX`)"
        )
    where = endpoints(account.oauth2)
    secret = get_client_secret(home, account.name)

    if args.refresh_token_stdin:
        given = sys.stdin.buffer.read().decode("utf-8", "replace").strip()
        if not is_token_text(given):
            raise UsageError(
                "the refresh token on standard input is empty, spans words or holds"
                " characters other than printable ASCII"
            )
        job = check_refresh_token(where, given, account_name=account.name, client_secret=secret)
    elif args.device:

        def show(code: DeviceCode) -> None:
            # The server's words, shown as what they are (relay.visible).
            print(
                f"To sign in account {account.name}, open {visible(code.verification_uri)}"
                f" and enter the code {visible(code.user_code)}"
            )
            if code.verification_uri_complete:
                print(f"(or open {visible(code.verification_uri_complete)})")
            print(f"Waiting up to {code.expires_in_s:g} s…")
            sys.stdout.flush()

        job = sign_in_with_device(where, account_name=account.name, show=show, client_secret=secret)
    else:

        def open_url(url: str) -> None:
            print(f"Sign in account {account.name} as {account.user} in your browser:")
            print(url)
            print(f"Waiting up to {timeout_s:g} s for the browser to come back…")
            sys.stdout.flush()
            if not args.no_browser:
                import webbrowser

                webbrowser.open(url)

        job = sign_in_with_browser(
            where,
            account_name=account.name,
            open_url=open_url,
            client_secret=secret,
            login_hint=account.user,
            timeout_s=timeout_s,
        )
    refresh_token = asyncio.run(job)
    store_refresh_token(home, account.name, refresh_token)
    print(f"account {account.name} is signed in as {account.user} (refresh token in the keyring)")
    return 0
