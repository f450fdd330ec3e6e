"""``outbox account add|set|list|remove|test``: the accounts mail goes out through.

Every value a person types is checked here or in ``relay.accounts`` and a bad
one is a one-line ``ConfigError`` (exit 78), not argparse's usage dump: ports,
limits and timeouts are taken as text and parsed by ``relay.accounts``.

A password is read from standard input (``--password-stdin``) or a hidden
prompt on a terminal, goes straight to the keyring and nowhere else; or the
account names a ``--password-command`` that prints it when it is needed
(``relay.password_command``), and then nothing is stored at all. The
order of an ``add`` or a ``set`` is: check everything, ask for the password,
(``add --test``: open a session with it as ``account test`` does, and stop
there unless it worked), then, under the config lock, check again, store the
password and write the config, so a refused account never leaves a password
behind and a keyring that does not work leaves the config untouched.

An account may sign in with OAuth2 instead (``--oauth2 google|microsoft|custom``
with ``--user``, the mailbox, and the client ID the person registered); it
has no password, and ``outbox account login NAME`` (``relay.commands.login``)
gets and keeps its refresh token.

Imports of keyring and aiosmtplib stay inside the functions: the command line
imports this module for every command, ``outbox sendmail`` included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relay.accounts import (
    Account,
    Security,
    add_account,
    default_account,
    editing_accounts,
    find_account,
    load_accounts,
    make_account,
    parse_limit,
    parse_port,
    parse_security,
    parse_timeout,
    remove_account,
    update_account,
    validate_account,
)
from relay.config_values import MAX_CONNECTIONS
from relay.errors import ConfigError, UsageError
from relay.home import ensure_home, resolve_home
from relay.oauth.providers import PRESETS, OAuth2Settings, parse_provider


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "account",
        help="add, change, list, test and remove the accounts mail goes out through",
        description="Accounts: the servers mail goes out through. Passwords are kept only"
        " in the system keyring.",
    )
    actions = parser.add_subparsers(dest="account_action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="add an account",
        description="Add an account. The first account becomes the default. Ports default"
        " by security: 465 (tls), 587 (starttls), 25 (none). With --test it is saved only"
        " if connecting and logging in to its server works.",
    )
    add.add_argument("name", metavar="NAME", help="a name of your choice for the account")
    _add_settings(add, adding=True)
    found = add.add_argument_group("finding the server from --address")
    found.add_argument(
        "--discover",
        action="store_true",
        help="find host, port, security and sign-in from --address (Outbox's table of large"
        " providers, the provider's autoconfig file, DNS SRV records); flags given win",
    )
    found.add_argument(
        "--dry-run",
        action="store_true",
        help="only show what would be added (and, with --test, test it); save nothing",
    )
    add.add_argument(
        "--test",
        action="store_true",
        help="before saving, connect, secure and log in as 'account test' does (sends"
        " nothing); save only if that works, else exit as 'account test' does (75 or 1)",
    )
    add.set_defaults(func=run_add)

    change = actions.add_parser(
        "set",
        help="change an account (only what is given)",
        description="Change the given settings of an account and nothing else. --from"
        " replaces the account's patterns; --user or --password-stdin stores a new password.",
    )
    change.add_argument("name", metavar="NAME", help="the account to change (see account list)")
    _add_settings(change, adding=False)
    change.set_defaults(func=run_set)

    listing = actions.add_parser("list", help="list the accounts")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(func=run_list)

    remove = actions.add_parser(
        "remove", help="remove an account and its password from the keyring"
    )
    remove.add_argument("name", metavar="NAME", help="the account to remove")
    remove.set_defaults(func=run_remove)

    test = actions.add_parser(
        "test",
        help="connect, secure, log in and report what the server offers (sends nothing)",
    )
    test.add_argument("name", metavar="NAME", nargs="?", help="default: the default account")
    test.add_argument(
        "--transcript",
        action="store_true",
        help="also print the SMTP conversation on standard error (credentials masked)",
    )
    test.set_defaults(func=run_test)

    from relay.commands.login import register_login

    register_login(actions)


def _add_settings(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument(
        "--host",
        metavar="HOST",
        help="the SMTP server" + (" (required unless --oauth2 names a provider)" if adding else ""),
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        help="default: by security (465/587/25)"
        if adding
        else "a port left at its default follows a new --security (465/587/25)",
    )
    parser.add_argument(
        "--security",
        metavar="tls|starttls|none",
        help="implicit TLS, STARTTLS (required), or none"
        + (" (default: starttls)" if adding else ""),
    )
    parser.add_argument("--user", metavar="USER", help="log in as USER (a password is needed)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else asked for on a terminal)",
    )
    parser.add_argument(
        "--password-command",
        metavar="CMD",
        help="run CMD (with sh -c) whenever the password is needed and use what it prints"
        " (e.g. 'pass show mail/work | head -n 1'); nothing is stored in the keyring",
    )
    parser.add_argument(
        "--ca-file", metavar="PEM", help="trust the certificates in PEM instead of the system's"
    )
    parser.add_argument(
        "--from",
        dest="from_patterns",
        metavar="PATTERN",
        action="extend",
        nargs="+",
        help="send mail from senders matching PATTERN (e.g. '*@example.org') this way",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="the account's own mailbox: the sender of mail whose caller names none"
        " (cron, at, mail without -r)",
    )
    parser.add_argument("--max-connections", metavar="N", help="at once (default 2)")
    parser.add_argument(
        "--max-messages-per-connection", metavar="N", help="before reconnecting (default 100)"
    )
    parser.add_argument("--connect-timeout", metavar="S", help="seconds (default 30)")
    parser.add_argument("--command-timeout", metavar="S", help="seconds per reply (default 120)")
    parser.add_argument(
        "--data-timeout", metavar="S", help="seconds for the verdict on a message (default 600)"
    )
    parser.add_argument(
        "--pipelining",
        metavar="on|off",
        choices=("on", "off"),
        help="send each message's commands as one group when the server offers PIPELINING"
        " (RFC 2920; default on); off: one command, one reply",
    )
    parser.add_argument("--default", action="store_true", help="make this the default account")
    oauth = parser.add_argument_group(
        "signing in with OAuth2 (instead of a password; then `outbox account login NAME`)"
    )
    oauth.add_argument(
        "--oauth2",
        metavar="google|microsoft|custom",
        help="sign in with OAuth2 at this provider; --user is the mailbox",
    )
    oauth.add_argument(
        "--oauth-client-id", metavar="ID", help="the client ID you registered with the provider"
    )
    oauth.add_argument(
        "--oauth-client-secret-stdin",
        action="store_true",
        help="read the client secret from standard input (Google's desktop clients have one)",
    )
    oauth.add_argument("--oauth-token-url", metavar="URL", help="the token endpoint (https)")
    oauth.add_argument(
        "--oauth-authorize-url", metavar="URL", help="the authorization endpoint (https)"
    )
    oauth.add_argument("--oauth-scope", metavar="SCOPE", help="the scope to ask for")
    oauth.add_argument(
        "--oauth-device-url", metavar="URL", help="the device authorization endpoint (https)"
    )
    if not adding:
        oauth.add_argument(
            "--no-oauth2",
            action="store_true",
            help="stop signing in with OAuth2 (forgets the sign-in; a password is asked for)",
        )
        parser.add_argument(
            "--no-user", action="store_true", help="stop logging in (forgets the password)"
        )
        parser.add_argument(
            "--no-password-command",
            action="store_true",
            help="stop running the password command (a password for the keyring is asked for)",
        )
        parser.add_argument(
            "--no-ca-file", action="store_true", help="trust the system's certificates again"
        )
        parser.add_argument("--no-from", action="store_true", help="forget the from patterns")
        parser.add_argument("--no-address", action="store_true", help="forget the address")


def _settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Account`` fields given on the command line, parsed; absent ones left out."""
    fields: dict[str, Any] = {}
    if args.host is not None:
        fields["host"] = args.host.strip()
    if args.security is not None:
        fields["security"] = parse_security(args.security)
    if args.port is not None:
        fields["port"] = parse_port(args.port)
    if args.user is not None:
        fields["user"] = args.user
    if args.password_command is not None:
        if args.password_stdin:
            raise UsageError("--password-command and --password-stdin contradict each other")
        fields["password_command"] = args.password_command
    if args.ca_file is not None:
        fields["ca_file"] = Path(args.ca_file).expanduser().absolute()
    if args.from_patterns is not None:
        fields["from_patterns"] = tuple(args.from_patterns)
    if args.address is not None:
        fields["address"] = args.address.strip()
    if args.max_connections is not None:
        fields["max_connections"] = parse_limit(
            args.max_connections, "max connections", high=MAX_CONNECTIONS
        )
    if args.max_messages_per_connection is not None:
        fields["max_messages_per_connection"] = parse_limit(
            args.max_messages_per_connection, "max messages per connection"
        )
    if args.connect_timeout is not None:
        fields["connect_timeout_s"] = parse_timeout(args.connect_timeout, "connect timeout")
    if args.command_timeout is not None:
        fields["command_timeout_s"] = parse_timeout(args.command_timeout, "command timeout")
    if args.data_timeout is not None:
        fields["data_timeout_s"] = parse_timeout(args.data_timeout, "data timeout")
    if args.pipelining is not None:
        fields["pipelining"] = args.pipelining == "on"
    if args.default:
        fields["default"] = True
    return fields


_OAUTH_FLAGS = {
    "oauth_client_id": "client_id",
    "oauth_token_url": "token_url",
    "oauth_authorize_url": "authorize_url",
    "oauth_scope": "scope",
    "oauth_device_url": "device_url",
}


def _oauth2_from_args(args: argparse.Namespace, current: OAuth2Settings | None) -> Any:
    """The account's new ``OAuth2Settings``, None to drop them, or ``...`` for no change."""
    given = {
        attr: getattr(args, flag).strip()
        for flag, attr in _OAUTH_FLAGS.items()
        if getattr(args, flag) is not None
    }
    if getattr(args, "no_oauth2", False):
        if args.oauth2 is not None or given:
            raise UsageError("--no-oauth2 and the --oauth… settings contradict each other")
        return None
    if args.oauth2 is not None:
        provider = parse_provider(args.oauth2)
        if current is not None and current.provider is provider:
            return dataclasses.replace(current, **given)
        if "client_id" not in given:
            raise UsageError(
                "--oauth2 needs --oauth-client-id: the client ID you registered with the"
                " provider (see the README: Signing in with OAuth2)"
            )
        return OAuth2Settings(provider=provider, **given)
    if given or args.oauth_client_secret_stdin:
        if current is None:
            raise UsageError("the --oauth… settings need --oauth2 google|microsoft|custom")
        return dataclasses.replace(current, **given)
    return ...


def _discover_into(args: argparse.Namespace, fields: dict[str, Any]) -> None:
    """Fill what the person did not give from what discovery finds for ``--address``."""
    import asyncio

    from relay.discovery.discover import discover
    from relay.discovery.seam import discovery_overrides

    if not args.address:
        raise UsageError("--discover needs --address ADDR, the account's e-mail address")
    found = asyncio.run(discover(args.address, **discovery_overrides(os.environ)))
    if found is None:
        raise ConfigError(
            f"found no outgoing server for {args.address}: give --host (and --port, --security)"
        )
    print(f"found for {args.address}: {found.describe()}")
    fields.setdefault("host", found.host)
    if "security" not in fields:
        fields["security"] = found.security
        fields.setdefault("port", found.port)
    fields.setdefault("user", found.user)
    if found.oauth2 is not None and args.oauth2 is None:
        if args.oauth_client_id is not None:
            args.oauth2 = found.oauth2.value
        else:
            print(
                f"{found.host} wants OAuth2: add --oauth2 {found.oauth2.value}"
                " --oauth-client-id ID (see the README: Signing in with OAuth2)"
            )


def _stdin_text(what: str) -> str:
    """Standard input as UTF-8 text; else one line saying so (exit 64).

    Read as bytes: text that is not UTF-8 (a password file saved as Latin-1)
    would otherwise reach the keyring as undecodable characters, and every
    flush after it would end in a traceback encoding them for the server.
    """
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"the {what} on standard input is not UTF-8 text; convert it"
            " (e.g. iconv -f latin1 -t utf-8) and give it again"
        ) from None


def _read_client_secret() -> str:
    text = _stdin_text("client secret").strip()
    if not text or any(c.isspace() for c in text):
        raise UsageError("the client secret on standard input is empty or spans words")
    return text


def _read_password(account: Account, *, from_stdin: bool) -> str:
    """The password for ``account.user``: standard input, or a hidden prompt on a terminal."""
    if from_stdin:
        text = _stdin_text("password")
        # One trailing line ending is the end of the line, not part of the password.
        password = text.removesuffix("\n").removesuffix("\r")
        if "\n" in password or "\r" in password:
            raise UsageError("the password on standard input spans several lines")
    elif sys.stdin.isatty():
        import getpass

        try:
            password = getpass.getpass(f"Password for {account.user} (account {account.name}): ")
        except EOFError:
            raise UsageError("no password given") from None
    else:
        raise UsageError(
            f"account {account.name!r} needs the password of {account.user!r}: give it on"
            " standard input with --password-stdin, or run this on a terminal to be asked"
        )
    if not password:
        raise UsageError("the password is empty")
    return password


def run_add(args: argparse.Namespace) -> int:
    from relay import credentials
    from relay.oauth import store as oauth_store

    fields = _settings_from_args(args)
    if args.discover:
        _discover_into(args, fields)
    elif args.dry_run:
        raise UsageError("--dry-run goes with --discover")
    oauth2 = _oauth2_from_args(args, None)
    if oauth2 is not ...:
        fields["oauth2"] = oauth2
        if args.password_stdin:
            raise UsageError("an account that signs in with OAuth2 has no password")
    if "host" not in fields:
        preset = PRESETS.get(oauth2.provider) if isinstance(oauth2, OAuth2Settings) else None
        if preset is None:
            raise UsageError("--host is required (the SMTP server)")
        fields["host"] = preset.smtp_host
    new = make_account(
        args.name,
        fields.pop("host"),
        port=fields.pop("port", None),
        security=fields.pop("security", Security.STARTTLS),
        **fields,
    )
    if args.password_stdin and new.user is None:
        raise UsageError("--password-stdin needs --user: a password goes with a user name")
    validate_account(new)
    if args.dry_run and not args.test:
        print(f"would add account {new.name}: {_describe(new)}; nothing was saved")
        return 0
    home = resolve_home(args.home)
    if not args.dry_run:
        home = ensure_home(home)
        add_account(load_accounts(home), new)  # refuse before asking for a password
    password = None
    client_secret = _read_client_secret() if args.oauth_client_secret_stdin else None
    if new.user and new.password_command is None and new.oauth2 is None:
        password = _read_password(new, from_stdin=args.password_stdin)
    if args.test:
        tested = _test_before_saving(new, password)
        if tested != 0 or args.dry_run:
            verdict = "the test failed; " if tested != 0 else ""
            print(f"account {new.name} was not added: {verdict}nothing was saved")
            return tested
    with editing_accounts(home) as accounts:
        updated = add_account(accounts, new)
        if password is not None:
            credentials.store_password(home, new.name, password)
        if client_secret is not None:
            oauth_store.store_client_secret(home, new.name, client_secret)
        accounts[:] = updated
    added = find_account(updated, new.name)
    print(f"added account {added.name}: {_describe(added)}")
    if added.oauth2 is not None:
        print(f"sign in with `outbox account login {added.name}` before sending")
    return 0


def _test_before_saving(account: Account, password: str | None) -> int:
    """``account test`` for an account not saved yet, with the password just given.

    A password command runs as it would for a flush. An OAuth2 account has no
    refresh token before ``account login``: its server is tested up to the
    sign-in, which is left out (and said so).
    """
    if account.oauth2 is not None:
        print(f"not signing in: account {account.name} has no OAuth2 token before it is saved")
        return _probe(dataclasses.replace(account, user=None), None, show_transcript=False)
    if account.password_command is not None:
        password = _run_password_command(account)
    return _probe(account, password, show_transcript=False)


def run_set(args: argparse.Namespace) -> int:
    from relay import credentials
    from relay.oauth import store as oauth_store

    changes = _settings_from_args(args)
    if args.no_user:
        if "user" in changes:
            raise UsageError("--user and --no-user contradict each other")
        changes["user"] = None
    if args.no_ca_file:
        if "ca_file" in changes:
            raise UsageError("--ca-file and --no-ca-file contradict each other")
        changes["ca_file"] = None
    if args.no_from:
        if "from_patterns" in changes:
            raise UsageError("--from and --no-from contradict each other")
        changes["from_patterns"] = ()
    if args.no_address:
        if "address" in changes:
            raise UsageError("--address and --no-address contradict each other")
        changes["address"] = None
    if args.no_password_command:
        if "password_command" in changes:
            raise UsageError("--password-command and --no-password-command contradict each other")
        changes["password_command"] = None
    home = resolve_home(args.home)
    before = find_account(load_accounts(home), args.name)
    oauth2 = _oauth2_from_args(args, before.oauth2)
    if oauth2 is not ...:
        changes["oauth2"] = oauth2
    if not changes and not args.password_stdin and not args.oauth_client_secret_stdin:
        raise UsageError("nothing to change: give at least one setting (see 'account set -h')")
    if args.password_stdin or args.no_user:
        changes["password_command"] = None  # a typed password replaces the command
    home = ensure_home(home)
    after = find_account(update_account(load_accounts(home), args.name, **changes), args.name)
    if after.oauth2 is not None and args.password_stdin:
        raise UsageError(f"account {args.name!r} signs in with OAuth2: it has no password")
    client_secret = _read_client_secret() if args.oauth_client_secret_stdin else None
    password = None
    wants_password = (
        args.password_stdin
        or changes.get("user") is not None
        or (before.password_command is not None and after.password_command is None)
        or (before.oauth2 is not None and after.oauth2 is None)
    )
    if wants_password and after.password_command is None and after.oauth2 is None:
        if after.user is None:
            raise UsageError(
                f"account {args.name!r} has no user to go with a password: give --user"
            )
        password = _read_password(after, from_stdin=args.password_stdin)
    with editing_accounts(home) as accounts:
        updated = update_account(accounts, args.name, **changes)
        if password is not None:
            credentials.store_password(home, args.name, password)
        elif after.user is None and before.user is not None and before.password_command is None:
            credentials.delete_password(home, args.name)
        elif (
            before.user
            and before.password_command is None
            and before.oauth2 is None
            and (after.password_command is not None or after.oauth2 is not None)
        ):
            _forget_stored_password(home, args.name)
        if oauth_store.sign_in_invalidated(before, after):
            oauth_store.forget_sign_in(home, args.name)
        if client_secret is not None:
            oauth_store.store_client_secret(home, args.name, client_secret)
        accounts[:] = updated
    print(f"changed account {args.name}: {_describe(find_account(updated, args.name))}")
    return 0


def _forget_stored_password(home: Path, name: str) -> None:
    """The account now runs a command: drop the keyring's copy, if a keyring answers."""
    import contextlib

    from relay import credentials
    from relay.errors import KeyringUnavailable

    # No keyring (often why the command is used): nothing could be stored there.
    with contextlib.suppress(KeyringUnavailable):
        credentials.delete_password(home, name)


def run_remove(args: argparse.Namespace) -> int:
    from relay import credentials
    from relay.oauth import store as oauth_store

    home = resolve_home(args.home)
    find_account(load_accounts(home), args.name)
    with editing_accounts(home) as accounts:
        removed = find_account(accounts, args.name)
        # First the secret: a keyring that does not answer keeps the account
        # listed, so the password is never left behind unnamed.
        if removed.oauth2 is not None:
            oauth_store.forget_sign_in(home, args.name)
        elif removed.user is not None and removed.password_command is None:
            credentials.delete_password(home, args.name)
        accounts[:] = remove_account(accounts, args.name)
    print(f"removed account {args.name}")
    chosen = default_account(accounts)
    if removed.default and chosen is not None:
        print(f"the default account is now {chosen.name}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    accounts = load_accounts(home)
    if args.json:
        json.dump([account_as_json(a, home) for a in accounts], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not accounts:
        print("no accounts: add one with 'outbox account add NAME --host HOST'", file=sys.stderr)
        return 0
    _print_table(accounts)
    return 0


def run_test(args: argparse.Namespace) -> int:
    """Open a session as the relayer would (``relay.smtp.opening``), report it, send nothing."""
    from relay import credentials
    from relay.oauth.tokens import TokenSource, token_source_for

    home = resolve_home(args.home)
    accounts = load_accounts(home)
    if args.name is not None:
        account = find_account(accounts, args.name)
    else:
        chosen = default_account(accounts)
        if chosen is None:
            raise ConfigError(
                "no account to test: add one with 'outbox account add NAME --host HOST'"
            )
        account = chosen
    validate_account(account)  # the CA file too, now that it is about to be used
    password: str | TokenSource | None = None
    if account.oauth2 is not None:
        password = token_source_for(home, account)
    elif account.password_command is not None:
        password = _run_password_command(account)
    elif account.user is not None:
        password = credentials.get_password(home, account.name)
        if password is None:
            raise ConfigError(
                f"no password stored for account {account.name!r}: set one with"
                f" 'outbox account set {account.name} --password-stdin'"
            )
    return _probe(account, password, show_transcript=args.transcript)


def _run_password_command(account: Account) -> str:
    import asyncio

    from relay.password_command import run_password_command

    assert account.password_command is not None
    return asyncio.run(run_password_command(account.name, account.password_command))


def _probe(account: Account, password: Any, *, show_transcript: bool) -> int:
    """Connect, secure, greet and log in as the relayer would; print the outcome, send nothing.

    ``password`` is a password, an OAuth2 token source or None. The exit code
    is ``account test``'s: 0, or ``_TEST_EXIT_CODES``' 75 / 1 on a failure.
    """
    import asyncio

    from relay.report import SessionFailure
    from relay.smtp.opening import open_session
    from relay.smtp.transcript import Transcript

    print(f"account {account.name}: {_describe(account)}")
    sys.stdout.flush()
    transcript = Transcript()

    async def probe() -> str | SessionFailure:
        opened = await open_session(account, password, transcript=transcript)
        if isinstance(opened, SessionFailure):
            return opened
        try:
            return str(opened.offer)
        finally:
            await opened.quit()

    outcome = asyncio.run(probe())
    if show_transcript:
        print(transcript.render(), file=sys.stderr)
    if isinstance(outcome, SessionFailure):
        print(f"outbox: account {account.name}: {outcome.text}", file=sys.stderr)
        if outcome.reply is not None and outcome.reply.temporary:
            return 75  # the server said "not now" (454 to AUTH or STARTTLS, a 4xx greeting)
        return _TEST_EXIT_CODES.get(outcome.kind.value, 1)
    print(outcome)
    print("nothing was sent")
    return 0


# ``account test`` exits like ``flush``: 75 when trying again later may work (and
# whenever the server's reply was a 4xx), 1 when a person has to change something
# (credentials, TLS, the server's answers).
_TEST_EXIT_CODES = {
    "connect": 75,
    "timeout": 75,
    "dropped": 75,
    "closing": 75,
    "sign-in": 75,
}


def account_as_json(account: Account, home: Path | None = None) -> dict[str, Any]:
    """The ``account list --json`` item: the settings, never a password or a token.

    ``auth`` says how the account authenticates (``password``, ``oauth2``,
    or null when it does not log in); for an OAuth2 account,
    ``refresh_token_stored`` says whether it is signed in (null when the
    keyring cannot be asked).
    """
    oauth2 = account.oauth2
    stored: bool | None = None
    if oauth2 is not None and home is not None:
        from relay.errors import OutboxError
        from relay.oauth.store import get_refresh_token

        try:
            stored = get_refresh_token(home, account.name) is not None
        except OutboxError:
            stored = None
    return {
        "name": account.name,
        "default": account.default,
        "host": account.host,
        "port": account.port,
        "security": account.security.value,
        "user": account.user,
        "ca_file": str(account.ca_file) if account.ca_file is not None else None,
        "from": list(account.from_patterns),
        "max_connections": account.max_connections,
        "max_messages_per_connection": account.max_messages_per_connection,
        "connect_timeout": account.connect_timeout_s,
        "command_timeout": account.command_timeout_s,
        "data_timeout": account.data_timeout_s,
        "pipelining": account.pipelining,
        "address": account.address,
        "auth": account.auth,
        "password_command": account.password_command,
        "oauth2": (
            {
                "provider": oauth2.provider.value,
                "client_id": oauth2.client_id,
                "authorize_url": oauth2.authorize_url,
                "token_url": oauth2.token_url,
                "device_url": oauth2.device_url,
                "scope": oauth2.scope,
            }
            if oauth2 is not None
            else None
        ),
        "refresh_token_stored": stored,
    }


def _describe(account: Account) -> str:
    words = [f"{account.host}:{account.port}", account.security.value]
    if account.user:
        words.append(f"as {account.user}")
    if account.password_command is not None:
        words.append("(password from its command)")
    if account.oauth2 is not None:
        words.append(f"(signs in with {account.oauth2.label})")
    if account.default:
        words.append("(default)")
    return " ".join(words)


def _print_table(accounts: Sequence[Account]) -> None:
    rows = [("", "NAME", "SERVER", "SECURITY", "USER", "FROM")]
    for a in accounts:
        rows.append(
            (
                "*" if a.default else "",
                a.name,
                f"{a.host}:{a.port}",
                a.security.value,
                a.user or "-",
                " ".join(a.from_patterns) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print(" ".join([*cells, row[-1]]).rstrip())
