"""Run the window over a home on whatever platform Qt picks; report once it is on screen.

Started as a subprocess by ``test_window_xcb.py`` with ``DISPLAY`` naming an
Xvfb and no ``QT_QPA_PLATFORM``: the program's own start-up (the library
check, ``make_application``, ``open_window``) on a real X server. When the
window's first expose event arrives it prints ``platform=… exposed=… rows=…``
and closes the window, which ends the loop and the process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QGuiApplication

from gui.app import make_application, open_window
from gui.platform_check import check_display, check_xcb_libraries


class _FirstExposure(QObject):
    def __init__(self, report: object) -> None:
        super().__init__()
        self._report = report
        self.done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Expose and not self.done:
            self.done = True
            QTimer.singleShot(0, self._report)  # type: ignore[arg-type]
        return False


def run(home: Path) -> int:
    check_xcb_libraries()
    check_display()
    app = make_application()
    started = open_window(app, home)
    window = started.window

    def report() -> None:
        handle = window.windowHandle()
        exposed = handle is not None and handle.isExposed()
        rows = window.model.rowCount()
        print(f"platform={QGuiApplication.platformName()} exposed={exposed} rows={rows}")
        sys.stdout.flush()
        window.close()

    watcher = _FirstExposure(report)
    window.winId()  # makes the native window, so the filter sees its first expose event
    handle = window.windowHandle()
    assert handle is not None
    handle.installEventFilter(watcher)
    window.show()
    with started.loop:
        started.loop.run_forever()
    started.collector.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
