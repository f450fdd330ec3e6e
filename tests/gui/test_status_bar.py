"""The status bar during and after a flush: the session's phase, an unreachable server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.command_hints import for_window
from gui.main_window import MainWindow
from relay.accounts import Security, make_account, save_accounts
from relay.events import PhaseChanged, ProgressMade
from relay.states import Phase
from tests.gui.driving import click_action, shown_state
from tests.gui.messages import enqueue


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
def unreachable_window(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path
) -> Iterator[MainWindow]:
    account = make_account(
        "local2",
        "127.0.0.1",
        port=free_port(),
        security=Security.NONE,
        default=True,
        connect_timeout_s=3.0,
    )
    save_accounts(home, [account])
    win = create_main_window(home)
    qtbot.addWidget(win)
    win.show()
    yield win


def test_an_unreachable_server_is_said_prominently_with_its_account(
    unreachable_window: MainWindow, qtbot: QtBot
) -> None:
    window = unreachable_window
    ids = [enqueue(window.outbox, f"{n}@example.net") for n in ("ann", "bob")]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    with qtbot.waitSignal(window.runner.finished, timeout=20_000):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "deferred" for i in ids))
    label = window.status.server_label
    assert label.isVisible()
    assert label.text().startswith("Server unreachable (account “local2”): ")
    assert "refused" in label.text()


def test_the_connecting_notice_goes_once_data_flows(window: MainWindow, qtbot: QtBot) -> None:
    bar = window.statusBar()
    window.engine.bus.publish(PhaseChanged("test", Phase.CONNECTING, None))
    assert bar.currentMessage() == "test: connecting…"
    window.engine.bus.publish(ProgressMade(1, 1000, 5000))
    assert bar.currentMessage() == ""


@pytest.mark.parametrize(
    ("engine", "window_text"),
    [
        (
            "no account configured: add one with `outbox account add NAME --host HOST …`",
            "no account configured: add one in File → Accounts…",
        ),
        (
            "no password stored for account w:"
            " set one with `outbox account set w --password-stdin`",
            "no password stored for account w: set one in File → Accounts…",
        ),
        (
            "(make one the default with 'outbox account set NAME --default')",
            "(make one the default by ticking “Default account” in File → Accounts…)",
        ),
        (
            "no alias: set one with 'outbox alias set root ADDR'",
            "no alias: set one in File → Aliases…",
        ),
    ],
)
def test_the_window_says_what_to_click_not_what_to_type(engine: str, window_text: str) -> None:
    assert for_window(engine) == window_text
