"""Aliases: what a local name (``root``, ``ops``, no ``@domain``) means as a recipient.

System programs address mail to local users -- cron to the crontab's owner,
atd to the job's, logwatch and smartd to ``root`` -- as a machine with its own
mail delivery would understand them. Outbox has no local mailboxes, so each
such name must map to real addresses, as msmtp's ``aliases`` file and
nullmailer's ``adminaddr`` do.

The rules this module keeps:

- An alias maps a local name to one or more full addresses (``local@domain``);
  a target that is itself a local name is refused, so resolution is one
  lookup, never a chain or a loop.
- Names are compared without case (``Root`` is ``root``), as local user
  names are on the machines that send to them; they are stored lower-case.
- The alias ``default`` catches every local name that has no alias of its own.
- Only unqualified names are aliased: ``root@example.org`` is an address and
  goes out as written.

Aliases live in the ``[aliases]`` table of ``<home>/config.toml``
(``root = ["me@example.org"]``), written under the same lock and in the same
atomic way as the accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from relay.address import address_problem, local_name_problem
from relay.errors import ConfigError

DEFAULT_ALIAS = "default"
TABLE = "aliases"


def parse_targets(values: Sequence[str]) -> tuple[str, ...]:
    """``a@x.org,b@y.org`` (one or several words) as checked full addresses, in order, once each."""
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            address = item.strip()
            if not address:
                continue
            problem = address_problem(address)
            if problem is not None:
                hint = " (an alias points to full addresses)" if "@" not in address else ""
                raise ConfigError(f"bad alias target {address!r}: {problem}{hint}")
            if address.lower() not in (a.lower() for a in found):
                found.append(address)
    if not found:
        raise ConfigError("an alias needs at least one address")
    return tuple(found)


def check_name(name: str) -> str:
    """``name`` lower-cased if it can be an alias, else ``ConfigError``."""
    problem = local_name_problem(name)
    if problem is not None:
        raise ConfigError(f"bad alias name {name!r}: {problem}")
    return name.lower()


def aliases_from_config(document: Mapping[str, Any], path: Path) -> dict[str, tuple[str, ...]]:
    """The ``[aliases]`` table of a read config document, checked."""
    table = document.get(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{TABLE}' must be a table of name = [addresses]")
    aliases: dict[str, tuple[str, ...]] = {}
    for name, targets in table.items():
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ConfigError(f"{path}: aliases.{name} must be a list of addresses")
        try:
            key = check_name(name)
            if key in aliases:  # ``Root`` and ``root`` typed by hand: neither may win unseen
                raise ConfigError(
                    f"the same name as another alias (case does not matter): merge them"
                    f" into one line {key} = [...]"
                )
            aliases[key] = parse_targets(targets)
        except ConfigError as exc:
            raise ConfigError(f"{path}: alias {name!r}: {exc}") from None
    return aliases


def load_aliases(home: Path) -> dict[str, tuple[str, ...]]:
    """Every alias in ``<home>/config.toml``; {} when there is none."""
    from relay.accounts import config_path, read_config

    path = config_path(home)
    return aliases_from_config(read_config(path), path)


def set_alias(home: Path, name: str, targets: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Make ``name`` an alias of ``targets`` (replacing what it was); the stored pair."""
    from relay.accounts import editing_config

    key = check_name(name)
    addresses = parse_targets(targets)
    with editing_config(home) as document:
        path = home / "config.toml"
        aliases_from_config(document, path)  # a broken table is reported, not overwritten
        table = dict(document.get(TABLE, {}))
        for existing in list(table):
            if existing.lower() == key:
                del table[existing]
        table[key] = list(addresses)
        document[TABLE] = dict(sorted(table.items()))
    return key, addresses


def remove_alias(home: Path, name: str) -> None:
    """Forget the alias ``name``; ``ConfigError`` if there is none."""
    from relay.accounts import editing_config

    key = name.lower()
    with editing_config(home) as document:
        aliases_from_config(document, home / "config.toml")
        table = dict(document.get(TABLE, {}))
        matching = [existing for existing in table if existing.lower() == key]
        if not matching:
            raise ConfigError(f"no alias {name!r}" + _known(table))
        for existing in matching:
            del table[existing]
        if table:
            document[TABLE] = table
        else:
            document.pop(TABLE, None)


def expand(aliases: Mapping[str, tuple[str, ...]], name: str) -> tuple[str, ...] | None:
    """The addresses local name ``name`` stands for: its alias, else ``default``'s, else None."""
    return aliases.get(name.lower()) or aliases.get(DEFAULT_ALIAS)


def _known(table: Mapping[str, object]) -> str:
    if not table:
        return " (there are no aliases)"
    return " (aliases: " + ", ".join(sorted(table)) + ")"
