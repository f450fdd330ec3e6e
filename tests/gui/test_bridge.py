"""The bridge turns every engine event into its own Qt signal, and stops when closed."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import SignalInstance
from pytestqt.qtbot import QtBot

from gui.bridge import EngineBridge
from relay.events import (
    AttemptStarted,
    AuthenticationRefused,
    Event,
    EventBus,
    FlushFinished,
    FlushStarted,
    MessageChanged,
    MessageDeleted,
    MessageQueued,
    MessageSnapshot,
    PhaseChanged,
    ProgressMade,
    RecipientSnapshot,
)
from relay.states import MessageState, Phase, RecipientState

SNAPSHOT = MessageSnapshot(
    id=7,
    state=MessageState.QUEUED,
    sender="alice@example.org",
    subject="Hi",
    size=120,
    created_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    attempts=0,
    next_attempt_at=None,
    last_error=None,
    recipients=(RecipientSnapshot("bob@example.net", RecipientState.PENDING, None),),
)

EVENTS: list[tuple[Event, str]] = [
    (MessageQueued(SNAPSHOT), "message_queued"),
    (MessageChanged(SNAPSHOT), "message_changed"),
    (MessageDeleted(7), "message_deleted"),
    (AttemptStarted(7, "work", "smtp.example.org:587"), "attempt_started"),
    (PhaseChanged("work", Phase.AUTHENTICATING, None), "phase_changed"),
    (ProgressMade(7, 65536, 131072), "progress_made"),
    (FlushStarted(3, 4096), "flush_started"),
    (FlushFinished(2, 1, 0, 0, False, None), "flush_finished"),
    (AuthenticationRefused("work", "535 5.7.8 no"), "authentication_refused"),
]


@pytest.mark.parametrize(("event", "signal_name"), EVENTS, ids=[name for _, name in EVENTS])
def test_each_engine_event_comes_out_as_the_signal_of_its_type(
    qtbot: QtBot, event: Event, signal_name: str
) -> None:
    bus = EventBus()
    bridge = EngineBridge(bus)
    heard: dict[str, list[object]] = {name: [] for _, name in EVENTS}
    for _, name in EVENTS:
        signal: SignalInstance = getattr(bridge, name)
        signal.connect(lambda payload, name=name: heard[name].append(payload))
    bus.publish(event)
    assert heard[signal_name] == [event]
    assert all(not got for name, got in heard.items() if name != signal_name)


def test_a_closed_bridge_hears_nothing_more(qtbot: QtBot) -> None:
    bus = EventBus()
    bridge = EngineBridge(bus)
    heard: list[object] = []
    bridge.message_deleted.connect(heard.append)
    bus.publish(MessageDeleted(1))
    bridge.close()
    bus.publish(MessageDeleted(2))
    assert heard == [MessageDeleted(1)]


# PySide6 6.12.0 on CPython 3.11 drops a reference to True on every emit and
# aborts the interpreter within a few thousand; qasync emits on every
# call_soon_threadsafe. In a subprocess, so a regression fails this test
# instead of killing the test session.
BOOL_EMITS = r"""
import asyncio, sys
import qasync
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication

class Flag(QObject):
    flipped = Signal(bool)

app = QApplication([])
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
flag = Flag()
seen = []
flag.flipped.connect(seen.append)

async def emit_many():
    for i in range(20_000):
        flag.flipped.emit(i % 2 == 0)
        if i % 1000 == 0:
            loop.call_soon_threadsafe(lambda: None)  # qasync's own signal, too
            await asyncio.sleep(0)
    return len(seen)

with loop:
    count = loop.run_until_complete(emit_many())
print("EMITTED", count, sum(seen))
"""


def test_a_signal_carrying_a_bool_survives_twenty_thousand_emits_on_a_qasync_loop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BOOL_EMITS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EMITTED 20000 10000" in done.stdout
