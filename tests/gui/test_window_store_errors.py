"""A flush from the window whose store fails under it: every session ends before the lock goes.

Two accounts send at once; one server answers slowly. Another process takes
the store's write lock and keeps it past the busy timeout, so one session's
commit fails. The window must end the whole flush as a kill would -- the slow
session cancelled, its connection closed -- before it lets go of the flush
lock; the next flush then sends what was left, and nothing twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

import relay.store.database
from gui.app import create_main_window
from gui.main_window import MainWindow
from relay.accounts import save_accounts
from relay.flush import FlushResult
from relay.flushlock import FlushLock
from relay.message import parse_message
from relay.states import MessageState
from tests.gui.driving import click_action, modal, shown_state
from tests.gui.messages import message_bytes
from tests.support.gated_servers import FirstReplyHeld, GatedHandler
from tests.support.smtp_servers import RunningServer
from tests.support.store_lock import write_lock_held

FLUSH_TIMEOUT_MS = 30_000
BUSY_TIMEOUT_S = 0.5  # the store's busy timeout in this test: the lock is held past it


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's store gives up on a held lock after half a second, not a minute."""
    monkeypatch.setattr(relay.store.database, "BUSY_TIMEOUT_S", BUSY_TIMEOUT_S)


def add(window: MainWindow, account: str, subject: str) -> int:
    parsed = parse_message(message_bytes(f"{subject}@example.net", subject))
    return window.outbox.add_message(parsed, account=account).id


def subjects(server: RunningServer) -> list[str]:
    return [str(message_from_bytes(r.body)["Subject"]) for r in server.received]


def engine_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[object]]:
    """Tasks running the engine's code (relay/) that have not ended."""
    running = []
    for task in asyncio.all_tasks(loop):
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "/relay/" in code.co_filename:
            running.append(task)
    return running


def test_a_locked_store_in_one_session_stops_every_session_before_the_lock_goes_and_nothing_goes_twice(  # noqa: E501
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    short_busy_timeout: None,
    fast: tuple[RunningServer, GatedHandler],
    slow: tuple[RunningServer, FirstReplyHeld],
) -> None:
    fast_server, fast_handler = fast
    slow_server, slow_handler = slow
    save_accounts(
        home,
        [
            fast_server.account(name="fast", default=True, max_connections=1),
            # Patient: its session would wait a minute for the verdict it is denied.
            slow_server.account(name="slow", max_connections=1, data_timeout_s=60.0),
        ],
    )
    window = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    a = [add(window, "fast", f"a{i}") for i in (1, 2)]
    b = [add(window, "slow", f"b{i}") for i in (1, 2, 3, 4)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in a + b))

    # What the window's flush did at the moment it said it had ended.
    at_the_end: list[tuple[bool, int, int]] = []

    def ended(result: FlushResult) -> None:
        probe = FlushLock(home)
        free = probe.try_acquire()
        probe.release()
        at_the_end.append((free, len(engine_tasks(loop)), slow_handler.open_connections))

    window.runner.finished.connect(ended)

    click_action(qtbot, window, window.action_flush)
    # Both sessions are in flight: each has sent a message's final dot and awaits
    # the verdict (its "the dot is leaving" record is on disk).
    qtbot.waitUntil(fast_handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
    qtbot.waitUntil(slow_handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)

    with write_lock_held(window.outbox.path):
        # The fast server answers; its session's next commit meets the lock.
        with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
            fast_handler.let_one_through()
        box = modal(qtbot, "flush_problem")
        assert "database is locked" in box.text()  # type: ignore[attr-defined]
        ok = box.button(QMessageBox.StandardButton.Ok)  # type: ignore[attr-defined]
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    # When the window let go of the flush lock, no session of that flush ran.
    assert len(at_the_end) == 1
    free, engine_running, _ = at_the_end[0]
    assert free
    assert engine_running == 0
    # And the slow server lost its connection: nothing more can come over it.
    qtbot.waitUntil(lambda: slow_handler.open_connections == 0, timeout=5_000)

    # The next flush (the lock is free again) takes up what was left.
    fast_handler.open_gate()
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    assert at_the_end[1][:2] == (True, 0)
    # The slow server would answer now; a session it still had would go on sending.
    slow_handler.open_gate()
    qtbot.waitUntil(lambda: slow_handler.open_connections == 0, timeout=10_000)

    received = Counter(subjects(fast_server) + subjects(slow_server))
    assert [s for s, n in received.items() if n > 1] == []  # nothing went twice
    states = {i: window.outbox.get(i).state for i in a + b}
    # Only a message past its final dot when the flush failed may be uncertain.
    uncertain = {i for i, state in states.items() if state is MessageState.UNCERTAIN}
    assert uncertain <= {a[0], b[0]}
    assert all(states[i] is MessageState.SENT for i in set(a + b) - uncertain)
    assert {f"{s}" for s in ("a2", "b2", "b3", "b4")} <= set(received)
    qtbot.waitUntil(lambda: all(shown_state(window, i) == states[i].value for i in a + b))
