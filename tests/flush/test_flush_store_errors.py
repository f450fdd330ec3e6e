"""``outbox flush`` when the store fails under it: one line, every session ended, nothing twice.

The story of the window's test (tests/gui/test_window_store_errors.py) on the
command line: two accounts, one slow server, another process holding the
store's write lock past the busy timeout when one session must commit.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.accounts import save_accounts
from relay.message import parse_message
from relay.outbox import Outbox
from relay.states import MessageState
from tests.gui.servers import GATE_TIMEOUT_S, GatedHandler, gated_server
from tests.support.smtp_servers import RecordingHandler, RunningServer
from tests.support.store_lock import write_lock_held

WAIT_S = 30.0
BUSY_TIMEOUT_S = 0.5

#: ``outbox flush`` itself, in a process of its own, whose store waits half a
#: second for a lock instead of a minute.
FLUSH = f"""
import sys
import relay.storefile
relay.storefile.BUSY_TIMEOUT_S = {BUSY_TIMEOUT_S}
from relay.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class FirstReplyHeld(GatedHandler):
    """Holds the verdict on the first message it gets until ``open_gate``; not the others."""

    held: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.held:
            self.held = True
            self.waiting.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._gate.acquire, True, GATE_TIMEOUT_S)
        return await RecordingHandler.handle_DATA(self, server, session, envelope)


@pytest.fixture
def fast() -> Iterator[tuple[RunningServer, GatedHandler]]:
    handler = GatedHandler(gated=True)
    with gated_server(handler) as server:
        yield server, handler


@pytest.fixture
def slow() -> Iterator[tuple[RunningServer, FirstReplyHeld]]:
    handler = FirstReplyHeld()
    with gated_server(handler) as server:
        yield server, handler


def subjects(server: RunningServer) -> list[str]:
    return [str(message_from_bytes(r.body)["Subject"]) for r in server.received]


def flush(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", FLUSH, "--home", str(home), "flush"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_locked_store_ends_the_flush_with_one_line_every_session_closed_and_nothing_twice(
    tmp_path: Path,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
) -> None:
    fast_server, fast_handler = fast
    slow_server, slow_handler = slow
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    save_accounts(
        home,
        [
            fast_server.account(name="fast", default=True, max_connections=1),
            slow_server.account(name="slow", max_connections=1, data_timeout_s=60.0),
        ],
    )
    with Outbox.open(home) as outbox:
        ids = {
            subject: outbox.add_message(
                parse_message(
                    f"From: a@example.org\r\nTo: {subject}@example.net\r\n"
                    f"Subject: {subject}\r\n\r\nHello.\r\n".encode()
                ),
                account=account,
            ).id
            for subject, account in [
                ("a1", "fast"), ("a2", "fast"),
                ("b1", "slow"), ("b2", "slow"), ("b3", "slow"), ("b4", "slow"),
            ]
        }
        db = outbox.path

    first = flush(home)
    try:
        assert fast_handler.waiting.wait(WAIT_S) and slow_handler.waiting.wait(WAIT_S)
        with write_lock_held(db):
            fast_handler.let_one_through()  # its session's next commit meets the lock
            _, err = first.communicate(timeout=WAIT_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    text = err.decode()
    assert "Traceback" not in text
    assert first.returncode == 75, text  # EX_TEMPFAIL: another program held the store
    last = text.strip().splitlines()[-1]
    assert last.startswith("outbox: the flush stopped: the outbox could not be written")
    assert "database is locked" in last

    # The next flush takes up what was left; the slow server answers only now.
    fast_handler.open_gate()
    second = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
        capture_output=True,
        timeout=WAIT_S,
    )
    assert second.returncode in (0, 75), second.stderr.decode()
    slow_handler.open_gate()
    received = Counter(subjects(fast_server) + subjects(slow_server))
    assert [s for s, n in received.items() if n > 1] == []
    with Outbox.open(home) as outbox:
        states = {s: outbox.get(i).state for s, i in ids.items()}
    uncertain = {s for s, state in states.items() if state is MessageState.UNCERTAIN}
    assert uncertain <= {"a1", "b1"}  # past their final dot when the flush failed
    assert all(states[s] is MessageState.SENT for s in set(states) - uncertain)
    assert {"a2", "b2", "b3", "b4"} <= set(received)
