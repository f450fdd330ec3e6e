"""Start-up: the QApplication, the qasync loop and the main window.

``create_main_window(home)`` builds the window over the outbox at ``home``
without starting any loop: the caller owns the QApplication and the qasync
loop (tests do). ``main(home)`` is the program: it checks there is a display
to open a window on, on X11 that the libraries Qt's xcb plug-in loads are
installed, and that the display opens (``gui.platform_check``; Qt would abort
with a message about plug-ins otherwise), creates the
application and a qasync loop, shows the window and runs until it closes. The
engine runs on that loop; there are no threads for SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relay.engine import store_path
from relay.errors import OutboxError
from relay.machineproblems import explain

if TYPE_CHECKING:  # Qt is imported when the window is made, after the display check
    from PySide6.QtWidgets import QApplication
    from qasync import QEventLoop

    from gui.garbage import GuiThreadCollector
    from gui.main_window import MainWindow

APPLICATION_NAME = "Outbox"
#: The desktop entry (resources/io.github.outbox.Outbox.desktop): Wayland app id, too.
DESKTOP_FILE_NAME = "io.github.outbox.Outbox"
COLLECT_AFTER_FLUSH_MS = 2000
#: How long the window's own store calls wait for another process's write lock.
#: They run on the window's loop, so SQLite's busy handler would freeze it: a
#: store busy for longer is told in a dialog instead (``relay.machineproblems``),
#: and intake that found it busy left its mail in the drop folder.
STORE_BUSY_TIMEOUT_S = 0.5
#: ... and in all, while that process keeps committing (many ``sendmail`` calls at once).
STORE_MAX_WAIT_S = 2.0


class NoDisplay(OutboxError):
    """There is nowhere to show a window (no X11/Wayland display, no Qt platform chosen)."""

    exit_code = 69  # EX_UNAVAILABLE, as for a display that cannot be opened (gui.platform_check)

    def __init__(self) -> None:
        super().__init__(
            "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set);"
            " use the command line (outbox --help), or set QT_QPA_PLATFORM=offscreen"
        )


def has_display(environ: dict[str, str] | None = None) -> bool:
    """Whether a window can be shown: always on macOS and Windows; on X11/Wayland, a display."""
    env = os.environ if environ is None else environ
    if env.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def create_main_window(home: Path) -> MainWindow:
    """The main window over the outbox at ``home``; the caller runs the loop and shows it.

    A QApplication must exist. The window owns the ``relay.engine.Engine`` it
    opens and closes it when the window is destroyed.
    """
    from PySide6.QtCore import QCoreApplication

    from gui.main_window import MainWindow
    from gui.settings import open_settings
    from relay.engine import Engine

    if QCoreApplication.instance() is None:
        raise RuntimeError("create a QApplication before the main window")
    engine = Engine.open(
        home,
        busy_timeout_s=STORE_BUSY_TIMEOUT_S,
        max_busy_wait_s=STORE_MAX_WAIT_S,
        background_checkpoints=True,  # its flushes commit on the window's loop
    )
    try:
        window = MainWindow(engine, open_settings())
    except BaseException:
        engine.close()
        raise
    window.destroyed.connect(lambda *_: engine.close())
    _import_drop_folder(window)
    return window


def main(home: Path, files: Sequence[Path] = (), *, hidden: bool = False) -> int:
    """Run the window over ``home`` until it is closed; the exit status.

    ``files`` (message files opened with Outbox from a file manager) are added
    to the outbox once the window shows, refusals explained as for a drop.
    ``hidden`` starts it in the tray (at login), unless there is no tray.
    """
    if not has_display():
        raise NoDisplay()
    from gui.platform_check import check_display, check_xcb_libraries

    check_xcb_libraries()
    check_display()

    from PySide6.QtCore import QTimer

    from gui.single_instance import start as start_single_instance

    app = make_application()
    # A window on this outbox is open already: it takes the files and comes to the front.
    instance = start_single_instance(home, files)
    if instance is None:
        return 0
    started = open_or_say_why(app, home)
    if isinstance(started, int):
        instance.close()
        return started
    window = started.window
    instance.serve(window)
    if not (hidden and window.tray.available()):
        window.show()
    if files:
        QTimer.singleShot(0, lambda: window.add_files(list(files)))
    with started.loop:
        started.loop.run_forever()
    instance.close()
    started.collector.stop()
    return 0


def open_or_say_why(app: QApplication, home: Path) -> OpenedWindow | int:
    """``open_window``, or the exit status once a dialog said why it cannot open.

    A damaged store is offered a repair first (``gui.store_repair``); once
    repaired, the window opens on the fresh store.
    """
    from gui.store_repair import offer_repair
    from relay.machineproblems import StoreDamaged

    repaired = False
    while True:
        try:
            return open_window(app, home)
        except Exception as exc:
            problem = explain(exc, store=store_path(home), home=home)
            if problem is None:
                raise
            if isinstance(problem, StoreDamaged) and not repaired:
                print(f"outbox: {problem}", file=sys.stderr)
                if offer_repair(home, str(problem), APPLICATION_NAME):
                    repaired = True
                    continue
                return problem.exit_code
            show_problem_dialog(str(problem))
            return problem.exit_code


def show_problem_dialog(text: str) -> None:
    """A problem of the machine before there is a window: a dialog, then the program ends.

    ``exec()`` is safe here: no qasync loop runs yet. The same line goes to
    standard error, for a person who started the window from a terminal.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from gui.command_hints import for_window

    print(f"outbox: {text}", file=sys.stderr)  # the terminal's words: commands stay
    box = QMessageBox(QMessageBox.Icon.Critical, APPLICATION_NAME, "Outbox cannot open its outbox")
    box.setObjectName("machine_problem")
    box.setTextFormat(Qt.TextFormat.PlainText)  # paths and the system's words, as typed
    box.setInformativeText(for_window(text))
    box.exec()


def make_application() -> QApplication:
    """The QApplication (made once), named and with its icon."""
    from PySide6.QtWidgets import QApplication

    from gui.icons import app_icon

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "outbox"])
    assert isinstance(app, QApplication)
    app.setApplicationName(APPLICATION_NAME)
    app.setApplicationDisplayName(APPLICATION_NAME)
    app.setOrganizationName(APPLICATION_NAME)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(True)
    return app


@dataclass
class OpenedWindow:
    """What ``open_window`` set up: the qasync loop, the GUI-thread collector and the window."""

    loop: QEventLoop
    window: MainWindow
    collector: GuiThreadCollector


def open_window(app: QApplication, home: Path) -> OpenedWindow:
    """The program's set-up after the application: loop, collector, window; nothing runs yet.

    ``main`` and the window benchmark (tests/bench/window.py) share it, so the
    benchmark measures the program's own start-up. The caller shows the window
    and runs the loop.
    """
    import qasync
    from PySide6.QtCore import QTimer

    from gui.garbage import GuiThreadCollector
    from relay.machineproblems import quiet_machine_problems

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(quiet_machine_problems)  # the window says them in a dialog
    windows: list[MainWindow] = []

    def interrupted() -> None:
        """Ctrl-C or SIGTERM: close the way the Quit action does (a flush stops first)."""
        if windows:
            windows[0].quit_app()
        else:
            app.quit()

    # Installed before the window exists, so a signal during start-up waits for the loop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, interrupted)
    collector = GuiThreadCollector(app)
    try:
        window = create_main_window(home)
    except BaseException:
        collector.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        asyncio.set_event_loop(None)
        loop.close()
        raise
    windows.append(window)
    # Objects made at start-up live as long as the app: keep the collector off them.
    QTimer.singleShot(0, gc.freeze)
    # After a flush, in a quiet moment, look for cycles among what was frozen meanwhile;
    # and only while none runs when the full generation comes due.
    collector.quiet = lambda: not window.runner.running
    window.runner.finished.connect(
        lambda _result: QTimer.singleShot(COLLECT_AFTER_FLUSH_MS, collector.collect_everything)
    )
    return OpenedWindow(loop, window, collector)


def _import_drop_folder(window: MainWindow) -> None:
    """Take in what waits in the drop folder; say what was refused."""
    try:
        result = window.engine.import_drop_folder()
    except OutboxError as exc:
        window.status.notice(f"Drop folder: {exc}")
        return
    if result.imported:
        window.status.notice(f"Imported {len(result.imported)} from the drop folder.")
    if result.rejected:
        window.status.notice(
            f"Drop folder: {len(result.rejected)} refused, see drop/rejected/"
            f" ({result.rejected[0].reason})"
        )
