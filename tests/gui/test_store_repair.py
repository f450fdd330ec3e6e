"""A damaged store at start-up: the dialog's Repair sets the file aside and the window opens
on a fresh store with what could be read; a flush running elsewhere keeps it from starting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from gui.app import main
from gui.main_window import MainWindow
from relay.flushlock import FlushLock
from relay.store.database import DB_NAME
from tests.cli.test_check import fill
from tests.reliability.test_machine_problems import damaged_truncated
from tests.support.machine import fill_disk, small_tmpfs

DAMAGED = b"not a database\n" * 100


def damaged_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / DB_NAME).write_bytes(DAMAGED)
    return home


def answer(steps: list[Callable[[], bool]]) -> None:
    """Run each step once it can act (on the dialog or window up now), in order."""

    def tick() -> None:
        if steps and steps[0]():
            steps.pop(0)
        if steps:
            QTimer.singleShot(20, tick)

    QTimer.singleShot(0, tick)


def read_plain(box: QMessageBox, seen: list[str]) -> None:
    """Note what ``box`` says; it must show it as typed (a path may hold ``<b>``)."""
    if box.textFormat() is not Qt.TextFormat.PlainText:
        box.done(0)  # let the program go on, then fail
        raise AssertionError(f"{box.objectName()} would read its text as HTML")
    seen.append(box.informativeText())


def click_in(name: str, button: str, seen: list[str]) -> Callable[[], bool]:
    def step() -> bool:
        box = QApplication.activeModalWidget()
        if not (isinstance(box, QMessageBox) and box.objectName() == name and box.isVisible()):
            return False
        read_plain(box, seen)
        found = box.findChild(QAbstractButton, button)
        if found is None:
            box.done(0)  # let the program go on, then fail
            raise AssertionError(f"no button {button} in {name}")
        found.click()
        return True

    return step


def close_the_window(windows: list[MainWindow]) -> bool:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow) and widget.isVisible():
            windows.append(widget)
            widget.quit_app()
            return True
    return False


def test_repair_sets_the_damaged_file_aside_and_the_window_opens_on_a_fresh_store(
    qtbot: QtBot, tmp_path: Path
) -> None:
    home = damaged_home(tmp_path)
    seen: list[str] = []
    windows: list[MainWindow] = []
    answer(
        [
            click_in("machine_problem", "repair_store", seen),
            _ok("store_repaired", seen),
            lambda: close_the_window(windows),
        ]
    )
    assert main(home) == 0
    offer, result = seen
    assert "damaged" in offer and "Repair" in offer and "`outbox" not in offer
    (aside,) = home.glob(f"{DB_NAME}.damaged-*")
    assert aside.read_bytes() == DAMAGED  # renamed aside, never deleted
    assert str(aside) in result and "0 messages" in result
    assert windows  # the window came up on the fresh store


def _ok(name: str, seen: list[str]) -> Callable[[], bool]:
    def step() -> bool:
        box = QApplication.activeModalWidget()
        if not (isinstance(box, QMessageBox) and box.objectName() == name and box.isVisible()):
            return False
        read_plain(box, seen)
        box.done(0)
        return True

    return step


def test_repair_waits_for_a_flush_running_elsewhere_and_touches_nothing(
    qtbot: QtBot, tmp_path: Path
) -> None:
    home = damaged_home(tmp_path)
    elsewhere = FlushLock(home)
    assert elsewhere.try_acquire()
    seen: list[str] = []
    try:
        answer(
            [
                click_in("machine_problem", "repair_store", seen),
                _ok("store_not_repaired", seen),
            ]
        )
        assert main(home) == 74
    finally:
        elsewhere.release()
    assert "sending from this outbox" in seen[1]
    assert (home / DB_NAME).read_bytes() == DAMAGED
    assert list(home.glob(f"{DB_NAME}.damaged-*")) == []


def test_a_repair_the_disk_fills_under_says_so_and_leaves_the_store_in_its_place(
    qtbot: QtBot, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "mnt", "16m") as mountpoint:
        home = mountpoint / "home"
        fill(home)
        damaged_truncated(home)  # the store cannot be opened: Repair is offered
        damaged = (home / DB_NAME).read_bytes()
        fill_disk(mountpoint, leave_bytes=100 * 1024)
        seen: list[str] = []
        answer(
            [
                click_in("machine_problem", "repair_store", seen),
                _ok("store_not_repaired", seen),
            ]
        )
        assert main(home) == 74
        assert "disk is full" in seen[1]
        assert (home / DB_NAME).read_bytes() == damaged
        assert list(home.glob(f"{DB_NAME}.damaged-*")) == []


def test_a_repair_of_a_store_cut_short_does_not_say_nothing_was_lost(
    qtbot: QtBot, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    fill(home, 30)
    damaged_truncated(home)
    seen: list[str] = []
    windows: list[MainWindow] = []
    answer(
        [
            click_in("machine_problem", "repair_store", seen),
            _ok("store_repaired", seen),
            lambda: close_the_window(windows),
        ]
    )
    assert main(home) == 0
    assert "Not one message of the damaged file could be listed" in seen[1]
