"""A real store in the test's tmp dir for the unit tests of the engine's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.message import ParsedMessage
from relay.store.outbox import Outbox


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "home") as store:
        yield store


def enqueue(outbox: Outbox, *recipients: str) -> int:
    """A small queued message to ``recipients``; its id."""
    raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    return outbox.add_message(ParsedMessage("a@example.org", recipients, raw, "hi")).id
