"""Errors that are a person's mistake or a fact about their setup.

Each carries a message fit to show as is, one line, and the command line
turns it into that line on stderr and a non-zero exit. Outcomes of delivery
are never exceptions: see ``relay.report``.
"""

from __future__ import annotations


class OutboxError(Exception):
    """Base of every error the command line shows as one plain line."""

    exit_code = 1


class NoSuchMessage(OutboxError):
    def __init__(self, message_id: object) -> None:
        super().__init__(f"no message {message_id}")
        self.message_id = message_id


class BodyPruned(OutboxError):
    """A sent message whose body was pruned (retention): only its history is left."""

    def __init__(self, message_id: int) -> None:
        super().__init__(
            f"message {message_id} was sent and its body has been pruned (retention);"
            " only its recipients, replies and attempts are kept"
        )
        self.message_id = message_id


class InvalidMessage(OutboxError):
    """Intake refused a message; the text names the problem."""

    exit_code = 65  # EX_DATAERR


class UsageError(OutboxError):
    exit_code = 64  # EX_USAGE


class ConfigError(OutboxError):
    exit_code = 78  # EX_CONFIG


class KeyringUnavailable(ConfigError):
    """No usable keyring backend: the message says how to get one."""


class StoreFailed(OutboxError):
    """The outbox's database could not be written (busy past the timeout, disk full, I/O).

    75 (EX_TEMPFAIL) when another program held it too long; 74 (EX_IOERR) otherwise.
    """

    def __init__(self, text: str, *, busy: bool) -> None:
        super().__init__(text)
        self.exit_code = 75 if busy else 74


class FlushRunning(OutboxError):
    exit_code = 75  # EX_TEMPFAIL

    def __init__(self) -> None:
        super().__init__("a flush is already running for this outbox")
