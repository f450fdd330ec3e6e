"""``outbox flush`` uses every connection, and small messages never wait behind large ones.

A real server that holds every large message's verdict until it has received
all the small ones: a flush that queued a small message behind a large one
on the same connection can never satisfy it, and one that used a single
connection for all of them neither (the large one at the gate would hold the
rest). The hold is bounded, so such a flush ends and the test says why.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.accounts import Account, Security, save_accounts
from relay.message import parse_message
from relay.store.outbox import Outbox
from tests.support.cli import listed, outbox
from tests.support.smtp_servers import HOST, RecordingHandler, threaded_smtp_server

LARGE_BYTES = 3 * 1024 * 1024
SMALL_BYTES = 20 * 1024
SMALL_COUNT = 16
HOLD_S = 10.0


@dataclass
class LargeAfterSmall(RecordingHandler):
    """Records in order; a large message's verdict waits until every small one is in."""

    small_expected: int = SMALL_COUNT
    order: list[str] = field(default_factory=list)
    peers: set[object] = field(default_factory=set)
    held_too_long: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _all_small: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        subject = str(message_from_bytes(content)["Subject"])
        self.peers.add(session.peer)
        if len(content) > LARGE_BYTES // 2:
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(None, self._all_small.wait, HOLD_S):
                self.held_too_long.append(subject)
        reply = await super().handle_DATA(server, session, envelope)
        with self._lock:
            self.order.append(subject)
            if sum(s.startswith("small") for s in self.order) == self.small_expected:
                self._all_small.set()
        return reply


def body(size: int) -> bytes:
    line = b"x" * 76 + b"\r\n"
    return line * (size // len(line))


def test_two_connections_carry_every_small_message_before_either_large_one(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    handler = LargeAfterSmall()
    with threaded_smtp_server(handler=handler, size_limit=None) as server:
        # The account's defaults: 2 connections, up to 100 messages on each.
        account = Account(
            name="test", host=HOST, port=server.port, security=Security.NONE, default=True
        )
        save_accounts(home, [account])
        with Outbox.open(home) as store:
            # The large ones first in the queue: the order the messages came in
            # must not decide which waits.
            for name, size in [("large 1", LARGE_BYTES), ("large 2", LARGE_BYTES)] + [
                (f"small {n}", SMALL_BYTES) for n in range(1, SMALL_COUNT + 1)
            ]:
                head = f"From: a@example.org\r\nTo: b@example.net\r\nSubject: {name}\r\n\r\n"
                store.add_message(parse_message(head.encode() + body(size)))
        done = outbox(home, "flush", timeout=120)

    assert done.returncode == 0, done.stderr.decode()
    assert handler.held_too_long == []
    assert sorted(handler.order[:SMALL_COUNT]) == sorted(
        f"small {n}" for n in range(1, SMALL_COUNT + 1)
    )
    assert sorted(handler.order[SMALL_COUNT:]) == ["large 1", "large 2"]
    assert len(handler.peers) == 2  # both connections were used
    assert {item["state"] for item in listed(home)} == {"sent"}
