"""The window itself: the testing contract, actions that make sense, intake, memory, start-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6 import __version_info__ as PYSIDE_VERSION
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QTableView, QWidget
from pytestqt.qtbot import QtBot

from gui.app import NoDisplay, create_main_window, has_display, main
from gui.main_window import MainWindow
from gui.outbox_model import Column
from relay.states import MessageState
from tests.gui.driving import click_rows, modal, shown_state
from tests.gui.messages import enqueue, message_bytes
from tests.support.cli import listed

CONTRACT_ACTIONS = (
    "action_flush",
    "action_flush_selected",
    "action_stop",
    "action_retry",
    "action_hold",
    "action_release",
    "action_delete",
    "action_add",
    "action_accounts",
)


def enabled(window: MainWindow) -> set[str]:
    return {name for name in CONTRACT_ACTIONS if window.findChild(QAction, name).isEnabled()}


def test_the_testing_contract_holds(window: MainWindow, qtbot: QtBot) -> None:
    message = enqueue(window.outbox, "ivy@example.net", "Contract")
    for name in CONTRACT_ACTIONS:
        assert isinstance(window.findChild(QAction, name), QAction), name
    view = window.findChild(QTableView, "outbox_view")
    assert view is not None
    model = view.model()
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert model.index(0, 0).data(Qt.ItemDataRole.UserRole) == message
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert model.index(0, headers.index("State")).data() == "queued"


def test_actions_are_enabled_only_when_they_make_sense_for_the_selection(
    window: MainWindow, qtbot: QtBot
) -> None:
    queued = enqueue(window.outbox, "a@example.net", "queued")
    held = enqueue(window.outbox, "b@example.net", "held")
    window.outbox.hold([held])
    qtbot.waitUntil(lambda: shown_state(window, held) == "held")
    always = {"action_add", "action_accounts"}

    assert enabled(window) == always | {"action_flush"}  # nothing selected
    click_rows(qtbot, window, queued)
    assert enabled(window) == always | {
        "action_flush",
        "action_flush_selected",
        "action_hold",
        "action_delete",
    }
    click_rows(qtbot, window, held)
    assert enabled(window) == always | {"action_flush", "action_release", "action_delete"}
    click_rows(qtbot, window, queued, held)
    assert enabled(window) == always | {
        "action_flush",
        "action_flush_selected",
        "action_hold",
        "action_release",
        "action_delete",
    }
    window.outbox.delete([queued])
    qtbot.waitUntil(lambda: shown_state(window, queued) is None)
    assert "action_flush" not in enabled(window)  # nothing due any more


def test_the_state_filter_shows_counts_and_is_remembered(
    window: MainWindow, qtbot: QtBot, account_home: Path
) -> None:
    enqueue(window.outbox, "a@example.net", "one")
    held = enqueue(window.outbox, "b@example.net", "two")
    window.outbox.hold([held])
    qtbot.waitUntil(lambda: shown_state(window, held) == "held")
    combo = window.state_filter
    assert combo.itemText(0) == "All (2)"
    assert combo.itemText(combo.findData("held")) == "Held (1)"
    combo.setCurrentIndex(combo.findData("held"))
    assert window.view.model().rowCount() == 1
    window.view.horizontalHeader().resizeSection(Column.SUBJECT, 333)
    window.resize(700, 500)
    window.close()

    again = create_main_window(account_home)
    qtbot.addWidget(again)
    assert again.state_filter.currentData() == "held"
    assert again.view.model().rowCount() == 1
    assert again.view.horizontalHeader().sectionSize(Column.SUBJECT) == 333
    assert (again.width(), again.height()) == (700, 500)


def test_the_search_box_filters_recipients_and_subjects(window: MainWindow, qtbot: QtBot) -> None:
    enqueue(window.outbox, "jo@example.net", "Quarterly report")
    other = enqueue(window.outbox, "kim@example.org", "Lunch")
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 2)
    qtbot.keyClicks(window.search, "example.org")
    assert [window.view.model().index(0, 0).data(Qt.ItemDataRole.UserRole)] == [other]
    assert window.view.model().rowCount() == 1


def drop(window: MainWindow, paths: list[Path]) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPoint(window.width() // 2, window.height() // 2)
    # PySide6 6.12 takes the position as a QPointF and deprecates the QPoint form,
    # the only one 6.11 (Python 3.11's, see docs/python-versions.md) has.
    enter_at = point.toPointF() if PYSIDE_VERSION >= (6, 12) else point
    enter = QDragEnterEvent(
        enter_at,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(
        point.toPointF(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, event)
    return event


def test_eml_files_dropped_on_the_window_are_added_and_bad_ones_explained(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(message_bytes("lee@example.net", "Dropped in"))
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"this is not an e-mail message\r\nat all\r\n")
    event = drop(window, [good, bad])
    assert event.isAccepted()
    (stored,) = window.outbox.messages()
    assert stored.subject == "Dropped in" and stored.recipients[0].address == "lee@example.net"
    qtbot.waitUntil(lambda: shown_state(window, stored.id) == "queued")
    refused = modal(qtbot, "add_refused")
    assert "bad.eml" in refused.informativeText()  # type: ignore[attr-defined]
    refused.close()


def test_add_messages_opens_a_file_dialog_whose_choice_is_stored(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    chosen = tmp_path / "chosen.eml"
    chosen.write_bytes(message_bytes("max@example.net", "Chosen"))
    window.action_add.trigger()
    dialog = modal(qtbot, "add_dialog")
    assert isinstance(dialog, QFileDialog)
    dialog.filesSelected.emit([str(chosen)])  # what its Open button does
    dialog.close()
    (stored,) = window.outbox.messages()
    assert stored.subject == "Chosen"
    assert stored.state is MessageState.QUEUED


def test_widgets_have_accessible_names(window: MainWindow) -> None:
    for name in ("outbox_view", "state_filter", "search", "detail_pane", "status_counts"):
        widget = window.findChild(QWidget, name)
        assert widget is not None and widget.accessibleName(), name


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="always a display there")
def test_without_a_display_the_window_says_so_plainly(tmp_path: Path) -> None:
    assert not has_display({})
    assert has_display({"DISPLAY": ":0"}) and has_display({"QT_QPA_PLATFORM": "offscreen"})
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    home = tmp_path / "never-made"
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 69  # EX_UNAVAILABLE, as for a display that cannot be opened
    assert done.stderr.startswith("outbox: no display to open the window on")
    assert "Traceback" not in done.stderr and "plugin" not in done.stderr
    assert not home.exists()


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="always a display there")
def test_main_refuses_before_touching_qt_without_a_display(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NoDisplay):
        main(tmp_path / "home")
    assert not (tmp_path / "home").exists()


def test_outbox_without_a_command_opens_the_window_and_ctrl_c_closes_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "config"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(config)}
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The window probes the flush lock as soon as it is up.
        wait_for(lambda: (home / "flush.lock").exists(), process)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        stop(process)
    assert process.returncode == 0, err
    assert (home / "outbox.sqlite3").exists()
    assert list(config.rglob("Outbox.ini")), "the window remembered nothing on closing"


def test_outbox_gui_with_a_message_file_adds_it_to_the_outbox(tmp_path: Path) -> None:
    home = tmp_path / "home"
    opened = tmp_path / "opened.eml"
    opened.write_bytes(message_bytes("nia@example.net", "Opened with Outbox"))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "gui", str(opened)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: bool(listed(home)) if (home / "outbox.sqlite3").exists() else False, process
        )
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        stop(process)
    assert process.returncode == 0, err
    (item,) = listed(home)
    assert item["subject"] == "Opened with Outbox" and item["state"] == "queued"


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll ``condition`` while ``process`` runs (a start-up has no signal to wait on)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the window did not start"
        time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_create_main_window_needs_no_running_loop(
    qtbot: QtBot, home: Path, loop: asyncio.AbstractEventLoop
) -> None:
    window = create_main_window(home)
    qtbot.addWidget(window)
    assert window.view.model().rowCount() == 0
    assert window.status.counts_label.text() == "The outbox is empty"


def test_the_collector_runs_on_the_gui_thread_only(qtbot: QtBot) -> None:
    import gc

    from gui.garbage import GuiThreadCollector

    gc.enable()
    collector = GuiThreadCollector()
    try:
        assert not gc.isenabled()  # no collection on whatever thread allocates
        for _ in range(gc.get_threshold()[0] + 10):
            cycle: list[object] = []
            cycle.append(cycle)
        assert collector.collect() > 0
    finally:
        collector.stop()
    assert gc.isenabled()


def test_every_icon_is_valid_svg_that_draws_something(qtbot: QtBot) -> None:
    from PySide6.QtCore import QByteArray
    from PySide6.QtSvg import QSvgRenderer

    from gui.icons import icon_path, resources_dir

    names = [p.stem for p in (resources_dir() / "icons").glob("*.svg")] + ["outbox"]
    assert len(names) >= 17
    for name in names:
        renderer = QSvgRenderer(QByteArray(icon_path(name).read_bytes()))
        assert renderer.isValid(), name
    for state in MessageState:
        from gui.icons import state_icon

        image = state_icon(state).pixmap(16, 16).toImage()
        assert any(image.pixelColor(x, 8).alpha() for x in range(16)), state


def test_the_screenshot_script_renders_the_window_to_a_png(tmp_path: Path) -> None:
    from PySide6.QtGui import QImage

    output = tmp_path / "shot.png"
    script = Path(__file__).resolve().parents[2] / "scripts" / "render_screenshot.py"
    done = subprocess.run(
        [sys.executable, str(script), str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    image = QImage(str(output))
    assert (image.width(), image.height()) == (1280, 780)


def test_line_icons_follow_a_switch_to_a_dark_theme(window: MainWindow, qtbot: QtBot) -> None:
    from PySide6.QtGui import QColor, QPalette

    def ink() -> QColor:
        image = window.action_add.icon().pixmap(24, 24).toImage()
        inked = [
            image.pixelColor(x, y)
            for x in range(24)
            for y in range(24)
            if image.pixelColor(x, y).alpha() == 255
        ]
        assert inked
        return inked[0]

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    light = app.palette()
    assert ink().lightness() < 128  # dark lines on a light theme
    dark = QPalette(light)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        dark.setColor(group, QPalette.ColorRole.Window, QColor("#202124"))
        dark.setColor(group, QPalette.ColorRole.WindowText, QColor("#e8eaed"))
    try:
        app.setPalette(dark)
        qtbot.waitUntil(lambda: ink().lightness() > 128)  # light lines on a dark theme
    finally:
        app.setPalette(light)


def test_a_dropped_named_pipe_is_refused_unopened_and_the_window_goes_on(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    pipe = tmp_path / "pipe.eml"
    os.mkfifo(pipe)
    # A program waiting to write a message into the pipe: reading it would take that
    # message (or, with no writer, block the window for good).
    writer = threading.Thread(
        target=lambda: pipe.write_bytes(message_bytes("lee@example.net", "Through a pipe"))
    )
    writer.start()
    try:
        drop(window, [pipe])
        assert window.outbox.messages() == []
        refused = modal(qtbot, "add_refused")
        assert "pipe.eml: not a regular file" in refused.informativeText()  # type: ignore[attr-defined]
        refused.close()
    finally:
        reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish
        writer.join(timeout=10)
        os.close(reader)
    assert not writer.is_alive()
