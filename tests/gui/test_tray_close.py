"""Closing the window keeps Outbox in the tray when there is one; Quit quits."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from tests.gui.conftest import OFFSCREEN_NOISE


def test_without_a_tray_closing_the_window_closes_it(window: MainWindow, qtbot: QtBot) -> None:
    assert not window.tray.available()  # Qt's offscreen platform has no tray
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert not window.runner._probe.isActive()  # shut down, as before


# Offscreen has no window stacking; the conftest's own noise repeated (the nearest mark wins).
@pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE, "This plugin does not support raise()")
def test_with_a_tray_closing_hides_the_window_and_it_keeps_sending(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The desktop's tray is the one part no offscreen test has: say it is there.
    monkeypatch.setattr(window.tray, "available", lambda: True)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert window.runner._probe.isActive()  # still running: nothing was shut down
    assert window.auto_send.enabled
    window.action_show.trigger()
    qtbot.waitUntil(window.isVisible)
    window.action_quit.trigger()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert not window.runner._probe.isActive()
