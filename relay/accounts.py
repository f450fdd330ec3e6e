"""Accounts: where mail goes out (TOML config, no secrets) and their passwords (keyring).

The config lives in ``<home>/config.toml``; a password is stored only through
keyring (service ``outbox``, the account name as user name), never on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


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
