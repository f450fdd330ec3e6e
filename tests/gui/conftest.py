"""Fixtures for the window's tests: offscreen Qt, a qasync loop, a home with an account.

- Every test here fails on a Qt warning (``qt_log_level_fail``), as a Python
  warning fails every test of the project.
- ``QSettings`` write to the test's own directory, never to the user's.
- ``loop`` is a qasync loop that asyncio sees as *running* while the test's
  synchronous body waits in Qt's nested loops (``qtbot.waitSignal`` /
  ``waitUntil``): the engine's coroutines run there, as in the app.
- Keyring is an in-memory backend (``tests.support.keyrings.MemoryKeyring``).
- Qt's default locale is C (dates as ``2026-12-24 14:05``), whatever the machine's
  ``LANG``; a test about locales sets its own with ``QLocale.setDefault``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
import qasync
from PySide6.QtCore import QLocale, QSettings
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import MainWindow
from relay.accounts import Account, save_accounts
from tests.support.gated_servers import (  # noqa: F401 (fixtures: fast, slow)
    GatedHandler,
    fast,
    gated_server,
    slow,
)
from tests.support.keyrings import MemoryKeyring
from tests.support.smtp_servers import RunningServer

HERE = Path(__file__).parent
# What the offscreen platform itself says about features it lacks: not our bugs.
# A popup menu asks it to raise the menu and grab the keyboard.
OFFSCREEN_NOISE = (
    "This plugin does not support propagateSizeHints",
    "This plugin does not support raise",
    "This plugin does not support grabbing the keyboard",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE))


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """As the app does (``gui.garbage``): no automatic collection on a server's thread."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if enabled:
        gc.enable()


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(directory))
    yield directory


@pytest.fixture(autouse=True)
def c_locale() -> Iterator[None]:
    previous = QLocale()
    QLocale.setDefault(QLocale.c())
    yield
    QLocale.setDefault(previous)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    asyncio.events._set_running_loop(event_loop)
    try:
        yield event_loop
    finally:
        pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
        for task in pending:
            task.cancel()
        asyncio.events._set_running_loop(None)
        if pending:
            event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)
        event_loop.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def handler() -> GatedHandler:
    return GatedHandler()


@pytest.fixture
def server(handler: GatedHandler) -> Iterator[RunningServer]:
    with gated_server(handler) as running:
        yield running


@pytest.fixture
def account_home(home: Path, server: RunningServer) -> Path:
    """A home whose one account sends to ``server`` (plain, no password, one connection)."""
    account: Account = server.account(name="test", default=True, max_connections=1)
    save_accounts(home, [account])
    return home


@pytest.fixture
def window(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, account_home: Path
) -> Iterator[MainWindow]:
    win = create_main_window(account_home)
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.runner.running:  # a test that failed half-way: drop its flush
        win.runner.abort()
        qtbot.waitUntil(lambda: not win.runner.running, timeout=10_000)
