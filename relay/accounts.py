"""Accounts: where mail goes out (TOML config, no secrets).

The config lives in ``<home>/config.toml``; a password is stored only through
keyring (``relay.credentials``: keyed by the home and the account name), never
on disk. Every number in the file is checked finite and in range
(``relay.config_values``).
An account that signs in with OAuth2 instead has an ``[accounts.NAME.oauth2]``
table (provider, client ID, endpoint overrides: ``relay.oauth.providers``);
its refresh token is in the keyring too (``relay.oauth.store``).

The rules this module keeps:

- Account names are unique; exactly one account is the default as soon as
  there is one (the first added, until another is made the default).
- Ports default by security: 465 for implicit TLS, 587 for STARTTLS, 25 for
  none.
- No account may send a password in the clear to anything but a loopback
  address (``is_loopback_host``): ``security = "none"`` with a user is refused
  off loopback, whatever the port.
- A password is the keyring's, or printed by the account's
  ``password_command`` (then nothing is stored); either needs a ``user``.
- A message goes out through the account with the most specific ``from``
  pattern that matches its sender (``account_for_sender``; an account's own
  ``address`` is one such pattern), else the default.

The file is written atomically (a temporary file in the same directory, then
``rename``), mode 0600, under an advisory lock so two processes editing
accounts at once do not lose each other's change. Tables other than
``accounts`` (and the top-level ``default_account`` key) are kept as they are:
other parts of Outbox may keep their settings in the same file.

Everything here is plain functions over sequences of immutable ``Account``
values; only ``load_accounts``, ``queue_settings``, ``save_accounts`` and
``editing_accounts`` touch the disk. ``ssl``, ``tomllib`` and ``tempfile`` are
imported where used: every ``outbox`` command imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import ipaddress
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from relay.config_values import (
    MAX_CONNECTIONS,
    MAX_MESSAGES_PER_CONNECTION,
    MAX_TIMEOUT_S,
    number_in_range,
)
from relay.errors import ConfigError
from relay.oauth.providers import OAuth2Settings, parse_provider, validate_oauth2


class Security(StrEnum):
    TLS = "tls"  # implicit TLS from the first byte (RFC 8314), port 465
    STARTTLS = "starttls"  # plain connect, STARTTLS required before anything else, port 587
    NONE = "none"  # plain text, port 25; no password is ever sent this way off loopback


DEFAULT_PORTS = {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25}


@dataclass(frozen=True, slots=True)
class Account:
    """One outgoing server and how to talk to it.

    Timeouts follow RFC 5321 section 4.5.3.2 in spirit: connecting gets less
    patience than the standard's five minutes, a command's reply waits up to
    the two minutes the standard gives DATA initiation, and the final dot's
    verdict up to its ten minutes.
    """

    name: str
    host: str
    port: int
    security: Security = Security.STARTTLS
    user: str | None = None
    ca_file: Path | None = None
    from_patterns: tuple[str, ...] = field(default_factory=tuple)
    max_connections: int = 2
    max_messages_per_connection: int = 100
    default: bool = False
    connect_timeout_s: float = 30.0
    command_timeout_s: float = 120.0
    data_timeout_s: float = 600.0
    pipelining: bool = True
    #: The account's own mailbox: the sender of mail whose caller names none (cron, at).
    address: str | None = None
    #: A shell command that prints the password (``relay.password_command``); when
    #: set, the keyring is not used for this account.
    password_command: str | None = None
    #: Sign in with OAuth2 (``user`` is the mailbox) instead of a password.
    oauth2: OAuth2Settings | None = None

    @property
    def auth(self) -> str | None:
        """How the account logs in: ``password`` (the keyring's), ``password-command``,
        ``oauth2``, or None (it does not)."""
        if self.user is None:
            return None
        if self.oauth2 is not None:
            return "oauth2"
        return "password-command" if self.password_command is not None else "password"


CONFIG_NAME = "config.toml"

# The fields a person may change with ``account set`` (``default`` has its own rules).
EDITABLE_FIELDS = frozenset(
    f.name for f in dataclasses.fields(Account) if f.name not in ("name", "default")
)

# config.toml key <-> Account field. Keys are what a person would type; the
# ``_s`` suffix of the timeouts is said in the file's comment instead.
_KEYS = {
    "host": "host",
    "port": "port",
    "security": "security",
    "user": "user",
    "ca_file": "ca_file",
    "from": "from_patterns",
    "max_connections": "max_connections",
    "max_messages_per_connection": "max_messages_per_connection",
    "connect_timeout": "connect_timeout_s",
    "command_timeout": "command_timeout_s",
    "data_timeout": "data_timeout_s",
    "pipelining": "pipelining",
    "address": "address",
    "password_command": "password_command",
    "oauth2": "oauth2",
}
# [accounts.NAME.oauth2] key <-> OAuth2Settings field.
_OAUTH2_KEYS = {
    "provider": "provider",
    "client_id": "client_id",
    "authorize_url": "authorize_url",
    "token_url": "token_url",
    "device_url": "device_url",
    "scope": "scope",
}
_ALWAYS_WRITTEN = ("host", "port", "security")

_NAME_RE = re.compile(r"[\w][\w.@+-]*")


# -- reading and checking values -------------------------------------------------------


def config_path(home: Path) -> Path:
    return home / CONFIG_NAME


def parse_security(value: str) -> Security:
    try:
        return Security(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in Security)
        raise ConfigError(f"unknown security {value!r} (choose one of {choices})") from None


def parse_port(value: str | int) -> int:
    return int(number_in_range(value, "port", low=1, high=65535, whole=True))


def parse_limit(value: str | int, what: str, *, high: int = MAX_MESSAGES_PER_CONNECTION) -> int:
    """A count that must be at least 1 (``max_connections`` and the like), at most ``high``."""
    return int(number_in_range(value, what, low=1, high=high, whole=True))


def parse_timeout(value: str | float, what: str) -> float:
    """A timeout in seconds: a positive, finite number, at most a day."""
    return float(
        number_in_range(
            value, what, low=0, low_inclusive=False, high=MAX_TIMEOUT_S, unit="of seconds"
        )
    )


def host_problem(host: str) -> str | None:
    """What is wrong with ``host`` as a server's name or address; None if nothing.

    An IP address (an IPv6 one bare or in brackets) or a DNS name: labels of
    letters (any script: an internationalised name), digits, ``-`` and ``_``,
    at most 63 characters each and 253 in all, an end dot allowed. A port
    written into the host (``smtp.example.org:587``), a space or an invisible
    character would only fail later, at every flush, as a name DNS cannot find.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(bare)
        return None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and name:
        return f"the port goes in its own setting (--port {port}), not in the host"
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or any(not label or len(label) > 63 for label in labels):
        return "not a host name (an empty label, or one over 63 characters)"
    if not all(c.isalnum() or c in "-_" for label in labels for c in label):
        return "a host name holds only letters, digits, '-', '_' and dots"
    return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine without asking DNS.

    Only ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1, and
    ::ffff:127.x.y.z) count. A name is never resolved to decide: what a name
    resolves to can change, and a password sent in the clear cannot be taken
    back.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def validate_account(account: Account, *, check_files: bool = True) -> Account:
    """Return ``account`` if it is usable, else raise ``ConfigError`` saying why.

    ``check_files`` also checks that the CA file exists and holds certificates;
    loading the config skips it, so a CA file that went away breaks only the
    accounts that use it, when they connect, and not ``account list``.
    """
    where = f"account {account.name!r}"
    if not _NAME_RE.fullmatch(account.name):
        raise ConfigError(
            f"bad account name {account.name!r}: use letters, digits and . _ @ + -"
            " (not starting with a punctuation mark)"
        )
    if not account.host.strip():
        raise ConfigError(f"{where}: the host is empty")
    problem = host_problem(account.host)
    if problem is not None:
        raise ConfigError(f"{where}: bad host {account.host!r}: {problem}")
    parse_port(account.port)
    if account.user is not None and (not account.user or "\n" in account.user):
        raise ConfigError(f"{where}: the user name is empty or spans lines")
    if account.password_command is not None:
        if not account.password_command.strip() or "\0" in account.password_command:
            raise ConfigError(f"{where}: the password command is empty")
        if account.user is None:
            raise ConfigError(
                f"{where}: a password command needs a user name to log in as (--user)"
            )
    parse_limit(account.max_connections, "max connections", high=MAX_CONNECTIONS)
    parse_limit(account.max_messages_per_connection, "max messages per connection")
    parse_timeout(account.connect_timeout_s, "connect timeout")
    parse_timeout(account.command_timeout_s, "command timeout")
    parse_timeout(account.data_timeout_s, "data timeout")
    if account.address is not None:
        from relay.address import address_problem

        problem = address_problem(account.address)
        if problem is not None:
            raise ConfigError(f"{where}: bad address {account.address!r}: {problem}")
    for pattern in account.from_patterns:
        problem = from_pattern_problem(pattern)
        if problem is not None:
            raise ConfigError(f"{where}: bad from pattern {pattern!r}: {problem}")
    if (
        account.security is Security.NONE
        and account.user is not None
        and not is_loopback_host(account.host)
    ):
        raise ConfigError(
            f"{where}: refusing to send the password for {account.user!r} without TLS"
            f" to {account.host}; use --security tls or starttls"
            " (plain text is allowed only to a loopback address)"
        )
    if account.oauth2 is not None:
        if account.password_command is not None:
            raise ConfigError(
                f"{where}: an account signs in with OAuth2 or takes a password command, not both"
                " (--no-oauth2 or --no-password-command)"
            )
        if account.user is None:
            raise ConfigError(
                f"{where}: signing in with OAuth2 needs --user, the mailbox to sign in as"
            )
        validate_oauth2(account.oauth2, where)
    if check_files and account.ca_file is not None:
        _check_ca_file(account.ca_file, where)
    return account


def from_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot select senders, or None: an address with ``*``/``?`` wildcards.

    A pattern is matched against the whole address, so one without a single
    ``@`` between a local part and a domain (``example.org``, ``*``, ``a@b@c``)
    would match nothing or everything: a typo, refused when it is made.
    """
    if not pattern or any(c.isspace() for c in pattern):
        return "empty or has a space"
    local, at, domain = pattern.partition("@")
    if not at or "@" in domain or not local or not domain:
        return "write an address with wildcards, such as '*@example.org' or 'alice@*'"
    if pattern.count("[") != pattern.count("]"):
        return "an unclosed [ ]"
    return None


def _check_ca_file(path: Path, where: str) -> None:
    import ssl

    if not path.is_file():
        raise ConfigError(f"{where}: CA file {path} does not exist")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise ConfigError(
            f"{where}: CA file {path} holds no usable PEM certificate ({reason})"
        ) from None


# -- building and changing ---------------------------------------------------------------


def make_account(
    name: str,
    host: str,
    *,
    port: int | None = None,
    security: Security = Security.STARTTLS,
    **fields: Any,
) -> Account:
    """An account with the port defaulted by security; not yet validated."""
    if port is None:
        port = DEFAULT_PORTS[security]
    return Account(name=name, host=host, port=port, security=security, **fields)


def find_account(accounts: Sequence[Account], name: str) -> Account:
    for account in accounts:
        if account.name == name:
            return account
    raise ConfigError(f"no account {name!r}" + _known_names(accounts))


def default_account(accounts: Sequence[Account]) -> Account | None:
    for account in accounts:
        if account.default:
            return account
    return None


def add_account(accounts: Sequence[Account], new: Account) -> list[Account]:
    """``accounts`` plus ``new`` (validated). The first account becomes the default."""
    validate_account(new)
    if any(a.name == new.name for a in accounts):
        raise ConfigError(f"an account {new.name!r} already exists (change it with 'account set')")
    result = [*accounts, dataclasses.replace(new, default=False)]
    if new.default or default_account(accounts) is None:
        return set_default(result, new.name)
    return result


def update_account(accounts: Sequence[Account], name: str, **changes: Any) -> list[Account]:
    """``accounts`` with only the given fields of ``name`` changed (validated).

    Changing the security without giving a port moves the port along when it
    was the old security's default (587 becomes 465 for ``tls``); a port the
    person chose stays. ``default=True`` makes the account the default;
    ``default=False`` is refused, since some account must be the default.
    """
    current = find_account(accounts, name)
    unknown = set(changes) - EDITABLE_FIELDS - {"default"}
    if unknown:
        raise TypeError(f"not account fields: {sorted(unknown)}")
    make_default = changes.pop("default", None)
    if make_default is False:
        raise ConfigError(
            f"account {name!r}: make another account the default instead of unsetting it"
        )
    if (
        "security" in changes
        and "port" not in changes
        and current.port == DEFAULT_PORTS[current.security]
    ):
        changes["port"] = DEFAULT_PORTS[changes["security"]]
    updated = validate_account(dataclasses.replace(current, **changes))
    result = [updated if a.name == name else a for a in accounts]
    return set_default(result, name) if make_default else result


def remove_account(accounts: Sequence[Account], name: str) -> list[Account]:
    """``accounts`` without ``name``; if it was the default, the first left takes over."""
    removed = find_account(accounts, name)
    result = [a for a in accounts if a.name != name]
    if removed.default and result:
        return set_default(result, result[0].name)
    return result


def set_default(accounts: Sequence[Account], name: str) -> list[Account]:
    find_account(accounts, name)
    return [dataclasses.replace(a, default=a.name == name) for a in accounts]


# -- choosing the account for a message -------------------------------------------------


def account_for_sender(accounts: Sequence[Account], sender: str) -> Account:
    """The account a message from ``sender`` (an envelope address) goes out through.

    Patterns are shell-style (``*@example.org``, ``alice@*``), matched
    case-insensitively against the whole address, an internationalised domain in
    either spelling (``bücher.example`` or ``xn--bcher-kva.example``). When several accounts match,
    the most specific pattern wins (the one with the most characters that are
    not wildcards), then the account listed first; an exact address thus beats
    ``*@domain``. No match: the default account. The null sender (``<>``,
    bounces) always goes through the default.
    """
    address = _comparable(sender.strip().removeprefix("<").removesuffix(">").strip())
    best: tuple[int, int] | None = None
    chosen: Account | None = None
    if address:
        for index, account in enumerate(accounts):
            for pattern in account.from_patterns:
                if fnmatch.fnmatchcase(address, _comparable(pattern)):
                    rank = (_specificity(_comparable(pattern)), -index)
                    if best is None or rank > best:
                        best, chosen = rank, account
            # The account's own address: an exact pattern (its '*' or '?' are not wildcards).
            if account.address and _comparable(account.address) == address:
                rank = (len(address), -index)
                if best is None or rank > best:
                    best, chosen = rank, account
    if chosen is not None:
        return chosen
    fallback = default_account(accounts)
    if fallback is not None:
        return fallback
    if not accounts:
        raise ConfigError(
            "no account to send through: add one with 'outbox account add NAME --host HOST'"
        )
    raise ConfigError(
        f"no account matches sender {sender!r} and none is the default"
        " (make one the default with 'outbox account set NAME --default')"
    )


def _comparable(address: str) -> str:
    """``address`` (or a from pattern) lowercased, with every IDNA label of its domain
    (``xn--bcher-kva``) in its Unicode form (``bücher``), in NFC.

    One domain has several spellings, and a sender may use any whatever a
    pattern uses: ``x@xn--bcher-kva.example`` (or ``bu`` and a combining
    diaeresis, or ``。`` for the dot, which IDNA reads as a dot) is mail from
    ``*@bücher.example``. A label that does not decode (a wildcard in it, a
    bad one) is left as written.
    """
    local, at, domain = unicodedata.normalize("NFC", address.lower()).rpartition("@")
    labels = []
    for label in _IDNA_DOTS.split(domain):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                label = label.encode("ascii").decode("idna").lower()
        labels.append(label)
    return f"{local}{at}{'.'.join(labels)}"


#: What IDNA takes for the dot between labels (RFC 3490 §3.1).
_IDNA_DOTS = re.compile("[.\u3002\uff0e\uff61]")


def _specificity(pattern: str) -> int:
    """Characters of ``pattern`` that are literal (a ``[...]`` set counts as one)."""
    without_sets = re.sub(r"\[[^\]]*\]", "x", pattern)
    return sum(1 for c in without_sets if c not in "*?")


# -- the file ------------------------------------------------------------------------------


def load_accounts(home: Path) -> list[Account]:
    """Every account in ``<home>/config.toml``, in file order; [] when there is no file."""
    return _accounts_from_document(_read_document(config_path(home)), config_path(home))


def queue_settings(home: Path) -> dict[str, Any]:
    """The ``[queue]`` table of config.toml (retry back-off, lifetime); {} when absent.

    Its keys are checked by ``relay.policy.RetryPolicy.from_config``; this
    module only keeps the table intact when accounts are written.
    """
    path = config_path(home)
    table = _read_document(path).get("queue", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'queue' must be a table")
    return table


def retention_settings(home: Path) -> dict[str, Any]:
    """The ``[retention]`` table of config.toml; {} when absent (see ``relay.retention``)."""
    path = config_path(home)
    table = _read_document(path).get("retention", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'retention' must be a table")
    return table


def save_accounts(home: Path, accounts: Sequence[Account]) -> None:
    """Write ``accounts`` into ``<home>/config.toml`` (atomically, 0600), keeping the rest."""
    with _config_lock(home):
        _write(home, accounts)


@contextlib.contextmanager
def editing_accounts(home: Path) -> Iterator[list[Account]]:
    """Read, change, write, with other writers kept out in between.

    The list yielded is the accounts as on disk; replace its contents
    (``accounts[:] = add_account(accounts, new)``) and they are written back
    when the block ends without an exception.
    """
    with _config_lock(home):
        accounts = load_accounts(home)
        yield accounts
        _write(home, accounts)


def read_config(path: Path) -> dict[str, Any]:
    """The whole of a config.toml (every table, accounts included); {} when absent."""
    return _read_document(path)


@contextlib.contextmanager
def editing_config(home: Path) -> Iterator[dict[str, Any]]:
    """The whole config document to change in place (a table other than the
    accounts, such as ``[aliases]``); written back, under the accounts' lock and
    as atomically, when the block ends without an exception."""
    import tomli_w

    from relay.home import ensure_home

    ensure_home(home)
    with _config_lock(home):
        document = _read_document(config_path(home))
        yield document
        _atomic_write(config_path(home), (_CONFIG_HEADER + tomli_w.dumps(document)).encode())


_CONFIG_HEADER = (
    "# Outbox settings. Passwords are not here: they are kept in the system keyring.\n"
    "# Timeouts are in seconds.\n\n"
)


def _write(home: Path, accounts: Sequence[Account]) -> None:
    import tomli_w

    path = config_path(home)
    document = _read_document(path)
    document.pop("accounts", None)
    document.pop("default_account", None)
    chosen = default_account(accounts)
    top: dict[str, Any] = {}
    if chosen is not None:
        top["default_account"] = chosen.name
    top.update(document)
    if accounts:
        top["accounts"] = {a.name: _account_to_table(a) for a in accounts}
    text = _CONFIG_HEADER + tomli_w.dumps(top)
    _atomic_write(path, text.encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> None:
    import tempfile

    fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _config_lock(home: Path) -> Iterator[None]:
    """An advisory lock on ``<home>/config.lock`` (POSIX only; elsewhere none)."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    fd = os.open(home / "config.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_document(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


#: What config.toml may hold at its top level; anything else is a misspelling
#: (``[retension]``, ``default_acount``) that would silently mean the default.
_TOP_LEVEL_KEYS = ("default_account", "accounts", "aliases", "queue", "retention")


def _accounts_from_document(document: Mapping[str, Any], path: Path) -> list[Account]:
    unknown = sorted(set(document) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r} (the file holds {', '.join(_TOP_LEVEL_KEYS)})"
        )
    tables = document.get("accounts", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'accounts' must be a table of accounts")
    accounts: list[Account] = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: accounts.{name} must be a table")
        try:
            account = validate_account(_account_from_table(name, table), check_files=False)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        accounts.append(account)
    chosen = document.get("default_account")
    if chosen is not None:
        if not any(a.name == chosen for a in accounts):
            raise ConfigError(f"{path}: default_account {chosen!r} is not an account")
        return set_default(accounts, chosen)
    if accounts:
        return set_default(accounts, accounts[0].name)
    return accounts


def _account_from_table(name: str, table: Mapping[str, Any]) -> Account:
    where = f"account {name!r}"
    unknown = set(table) - set(_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    if "host" not in table:
        raise ConfigError(f"{where}: the host is missing")
    values: dict[str, Any] = {}
    for key, value in table.items():
        attr = _KEYS[key]
        if attr == "security":
            values[attr] = parse_security(_expect(value, str, key, where))
        elif attr == "port":
            values[attr] = parse_port(_expect(value, int, key, where))
        elif attr in ("host", "user", "address", "password_command"):
            values[attr] = _expect(value, str, key, where)
        elif attr == "ca_file":
            values[attr] = Path(_expect(value, str, key, where))
        elif attr == "from_patterns":
            patterns = _expect(value, list, key, where)
            values[attr] = tuple(_expect(p, str, key, where) for p in patterns)
        elif attr in ("max_connections", "max_messages_per_connection"):
            values[attr] = parse_limit(
                _expect(value, int, key, where),
                f"{where}: {key}",
                high=MAX_CONNECTIONS if attr == "max_connections" else MAX_MESSAGES_PER_CONNECTION,
            )
        elif attr.endswith("_timeout_s"):
            seconds = _expect(value, (int, float), key, where)
            values[attr] = parse_timeout(seconds, f"{where}: {key}")
        elif attr == "pipelining":
            values[attr] = _expect(value, bool, key, where)
        elif attr == "oauth2":
            values[attr] = _oauth2_from_table(_expect(value, dict, key, where), where)
    return make_account(name, **values)


def _oauth2_from_table(table: Mapping[str, Any], where: str) -> OAuth2Settings:
    unknown = set(table) - set(_OAUTH2_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown oauth2 setting {sorted(unknown)[0]!r}")
    for needed in ("provider", "client_id"):
        if needed not in table:
            raise ConfigError(f"{where}: oauth2.{needed} is missing")
    values = {
        attr: _expect(table[key], str, f"oauth2.{key}", where)
        for key, attr in _OAUTH2_KEYS.items()
        if key in table
    }
    values["provider"] = parse_provider(values["provider"])
    return OAuth2Settings(**values)


def _expect(value: Any, kind: type | tuple[type, ...], key: str, where: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: {key} has the wrong type")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} has the wrong type")
    return value


def _account_to_table(account: Account) -> dict[str, Any]:
    defaults = make_account(account.name, account.host, security=account.security)
    table: dict[str, Any] = {}
    for key, attr in _KEYS.items():
        value = getattr(account, attr)
        if key not in _ALWAYS_WRITTEN and value == getattr(defaults, attr):
            continue  # unwritten settings follow the defaults of the release in use
        if value is None:
            continue
        if isinstance(value, OAuth2Settings):
            value = {
                key: str(getattr(value, attr))
                for key, attr in _OAUTH2_KEYS.items()
                if getattr(value, attr) is not None
            }
        elif isinstance(value, Security):
            value = value.value
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        table[key] = value
    return table


def _known_names(accounts: Sequence[Account]) -> str:
    if not accounts:
        return " (there are no accounts yet)"
    return " (accounts: " + ", ".join(a.name for a in accounts) + ")"
