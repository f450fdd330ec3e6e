"""Desktop notifications that act, against a notification server of our own on a private bus.

The window speaks org.freedesktop.Notifications to ``tests.support.notification_server``
(a real D-Bus daemon, a real service); the service clicks "Retry" or "Show"
when a test asks it to.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import NOTIFY_SETTING, MainWindow
from gui.settings import open_settings
from relay.states import MessageState
from tests.gui.conftest import OFFSCREEN_NOISE
from tests.gui.driving import click_action, shown_state
from tests.gui.messages import enqueue
from tests.support.gated_servers import GatedHandler
from tests.support.notification_server import NotificationServer, running_notification_server
from tests.support.smtp_servers import RunningServer

FLUSH_TIMEOUT_MS = 30_000
SUBJECT = "Quarterly figures, confidential"
NOBODY = "nobody@example.net"


@pytest.fixture
def notify_bus(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NotificationServer]:
    """A private session bus with our notification server; the window opened after uses it."""
    if shutil.which("dbus-daemon") is None:
        if os.environ.get("CI"):
            pytest.fail("dbus-daemon is not installed (.ci/run installs dbus)")
        pytest.skip("dbus-daemon is not installed")
    click = getattr(request, "param", None)
    with running_notification_server(click=click) as server:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", server.bus_address)
        yield server


def fail_one(
    window: MainWindow, qtbot: QtBot, handler: GatedHandler, *, notifying: bool = True
) -> tuple[int, int]:
    """A flush where one message fails and one is sent; their ids."""
    handler.refuse[NOBODY] = "550 5.1.1 <nobody@example.net>: no such user"
    failing = enqueue(window.outbox, NOBODY, SUBJECT)
    fine = enqueue(window.outbox, "ann@example.net", "Fine")
    qtbot.waitUntil(lambda: shown_state(window, fine) == "queued")
    if notifying:
        qtbot.waitUntil(lambda: window.notifier.available, timeout=10_000)
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    return failing, fine


def test_a_failure_raises_a_notification_with_retry_and_show_and_never_the_message(
    notify_bus: NotificationServer, window: MainWindow, qtbot: QtBot, handler: GatedHandler
) -> None:
    balloons: list[str] = []
    window.tray.notified.connect(lambda title, text: balloons.append(text))
    with qtbot.waitSignal(window.notifier.notified, timeout=FLUSH_TIMEOUT_MS):
        fail_one(window, qtbot, handler)
    (shown,) = notify_bus.notifications()
    assert shown["signature"] == "susssasa{sv}i"
    assert shown["app_name"] == "Outbox" and shown["summary"] == "Outbox: mail not sent"
    assert "1 message failed" in shown["body"]
    assert shown["actions"] == ["retry", "Retry", "show", "Show", "default", "Show"]
    text = shown["summary"] + shown["body"]
    assert SUBJECT not in text and "quick brown fox" not in text and NOBODY not in text
    assert balloons == []  # the desktop notification, not also a tray balloon


@pytest.mark.parametrize("notify_bus", ["retry"], indirect=True)
def test_retry_in_the_notification_retries_exactly_those_messages(
    notify_bus: NotificationServer,
    window: MainWindow,
    qtbot: QtBot,
    handler: GatedHandler,
    server: RunningServer,
) -> None:
    failing, fine = fail_one(window, qtbot, handler)
    # The server clicks Retry: the failed message is tried again (and fails again).
    qtbot.waitUntil(lambda: window.outbox.get(failing).attempts == 2, timeout=FLUSH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(notify_bus.notifications()) == 2, timeout=FLUSH_TIMEOUT_MS)
    assert window.outbox.get(fine).attempts == 1
    assert window.outbox.get(failing).state is MessageState.FAILED
    assert [r.rcpt_tos for r in server.received] == [("ann@example.net",)]


@pytest.mark.parametrize("notify_bus", ["show"], indirect=True)
@pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE, "This plugin does not support raise()")
def test_show_in_the_notification_brings_up_the_window_with_those_messages_selected(
    notify_bus: NotificationServer, window: MainWindow, qtbot: QtBot, handler: GatedHandler
) -> None:
    failing, _fine = fail_one(window, qtbot, handler)
    qtbot.waitUntil(lambda: window.selected_ids() == [failing], timeout=FLUSH_TIMEOUT_MS)
    assert window.isVisible()


def test_notifications_off_means_none(
    notify_bus: NotificationServer, window: MainWindow, qtbot: QtBot, handler: GatedHandler
) -> None:
    window.action_notifications.trigger()
    assert not window.action_notifications.isChecked()
    assert str(window.settings.value("notifications/enabled")).lower() == "false"
    balloons: list[str] = []
    window.tray.notified.connect(lambda title, text: balloons.append(text))
    failing, _fine = fail_one(window, qtbot, handler, notifying=False)
    assert window.outbox.get(failing).state is MessageState.FAILED
    assert notify_bus.notifications() == [] and balloons == []
    assert not window.notifier.available


def test_notifications_off_from_the_start_never_reach_for_the_notification_service(
    notify_bus: NotificationServer, account_home: Path, loop: object, qtbot: QtBot
) -> None:
    # Asking the service anything (even its capabilities) may start a notification
    # daemon by D-Bus activation: with notifications off, the window asks nothing.
    settings = open_settings()
    settings.setValue(NOTIFY_SETTING, False)
    settings.sync()
    window = create_main_window(account_home)
    qtbot.addWidget(window)
    window.show()
    turned: list[bool] = []
    QTimer.singleShot(0, lambda: turned.append(True))  # after the window's first turn
    qtbot.waitUntil(lambda: turned == [True])
    assert not window.action_notifications.isChecked()
    assert window.notifier._task is None  # no connection to the session bus at all

    window.action_notifications.trigger()  # turned on: now it connects
    qtbot.waitUntil(lambda: window.notifier.available, timeout=10_000)
    window.action_notifications.trigger()
    assert not window.notifier.available and window.notifier._task is None


def test_without_a_session_bus_the_tray_says_it(
    window: MainWindow, qtbot: QtBot, handler: GatedHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # read when it connects
    handler.refuse[NOBODY] = "550 5.1.1 no such user"
    message = enqueue(window.outbox, NOBODY, SUBJECT)
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    with qtbot.waitSignal(window.tray.notified, timeout=FLUSH_TIMEOUT_MS) as balloon:
        click_action(qtbot, window, window.action_flush)
    assert not window.notifier.available
    assert "1 message failed" in balloon.args[1]


def test_when_the_session_bus_goes_away_the_tray_says_it_instead(
    notify_bus: NotificationServer, window: MainWindow, qtbot: QtBot, handler: GatedHandler
) -> None:
    qtbot.waitUntil(lambda: window.notifier.available, timeout=10_000)
    notify_bus.stop_bus()  # the desktop session's bus ends (logout, a crash)
    qtbot.waitUntil(lambda: not window.notifier.available, timeout=10_000)
    handler.refuse[NOBODY] = "550 5.1.1 no such user"
    message = enqueue(window.outbox, NOBODY, SUBJECT)
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")
    with qtbot.waitSignal(window.tray.notified, timeout=FLUSH_TIMEOUT_MS) as balloon:
        click_action(qtbot, window, window.action_flush)
    assert "1 message failed" in balloon.args[1]
