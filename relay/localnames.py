"""What a name without ``@domain`` means when a message is stored.

Programs written for a machine with its own mail system name local users:
cron writes ``From: root (Cron Daemon)`` and ``To: root``, atd and
``mail(1)`` give no sender at all, ``sendmail -f root`` is common. Outbox
relays through a provider's server, where none of that means anything, so at
intake (never later: the stored envelope is what will be sent):

- a sender that is missing or only a local name becomes the address of an
  account (the one asked for with ``-a``, else the default account, else the
  first account that has an ``address``);
- a recipient that is a local name becomes the addresses of its alias
  (``relay.aliases``), or of the ``default`` alias.

:class:`LocalNames` reads ``config.toml`` once and only when a message needs
it: the usual message, with full addresses, never pays for TOML or the
accounts module (``outbox sendmail`` starts once per message).
"""

from __future__ import annotations

from relay.errors import ConfigError

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    from pathlib import Path


class LocalNames:
    """The sender address and the aliases of one home, read on first use."""

    __slots__ = ("_account", "_aliases", "_home", "_sender")

    def __init__(self, home: Path, *, account: str | None = None) -> None:
        self._home = home
        self._account = account
        self._sender: str | None = None
        self._aliases: dict[str, tuple[str, ...]] | None = None

    def sender(self) -> str:
        """The address that stands in for a missing or local sender; ``ConfigError`` if none."""
        if self._sender is None:
            self._sender = _sender_address(self._home, self._account)
        return self._sender

    def expand(self, name: str) -> tuple[str, ...]:
        """The addresses local name ``name`` stands for; ``ConfigError`` if it has none."""
        from relay.aliases import DEFAULT_ALIAS, expand, load_aliases

        if self._aliases is None:
            self._aliases = load_aliases(self._home)
        found = expand(self._aliases, name)
        if found is None:
            raise ConfigError(
                f"no alias for the local name {name!r} and no {DEFAULT_ALIAS!r} alias:"
                f" set one with 'outbox alias set {name} ADDR'"
                f" (or 'outbox alias set {DEFAULT_ALIAS} ADDR' for every local name)"
            )
        return found


def _sender_address(home: Path, account_name: str | None) -> str:
    from relay.accounts import default_account, find_account, load_accounts

    accounts = load_accounts(home)
    candidates = []
    if account_name is not None:
        candidates.append(find_account(accounts, account_name))
    chosen = default_account(accounts)
    if chosen is not None:
        candidates.append(chosen)
    candidates.extend(accounts)
    for account in candidates:
        if account.address:
            return account.address
    if not accounts:
        raise ConfigError(
            "the message names no sender (or only a local name) and there is no account:"
            " add one with 'outbox account add NAME --host HOST --address ADDR'"
        )
    name = (chosen or accounts[0]).name
    raise ConfigError(
        "the message names no sender (or only a local name) and no account has an address:"
        f" set one with 'outbox account set {name} --address ADDR'"
    )
