"""Fixtures for the intake tests: a fresh home, and what the store holds after a command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.store.outbox import DB_NAME, Outbox


@dataclass(frozen=True)
class Stored:
    """One message as the store holds it: what the relayer will send."""

    id: int
    sender: str
    recipients: tuple[str, ...]
    subject: str
    account: str | None
    raw: bytes


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def stored_messages(home: Path) -> list[Stored]:
    """Every message in the outbox at ``home``, oldest first; [] if there is none yet."""
    if not (home / DB_NAME).exists():
        return []
    with Outbox.open(home) as outbox:
        return [
            Stored(
                id=snapshot.id,
                sender=snapshot.sender,
                recipients=tuple(r.address for r in snapshot.recipients),
                subject=snapshot.subject,
                account=snapshot.account,
                raw=outbox.raw(snapshot.id),
            )
            for snapshot in outbox.messages()
        ]
