"""Before Qt starts on X11: are the libraries its xcb plug-in needs installed?

Qt 6.5 and later load ``libxcb-cursor.so.0`` (and a dozen other X libraries)
through the xcb platform plug-in. PySide6's wheels do not carry them, and a
plain Debian or Ubuntu desktop often lacks ``libxcb-cursor0``: Qt then prints
"Could not load the Qt platform plugin "xcb" … Aborted" and kills the
process from inside ``QApplication()``, where nothing can catch it. So
``main`` asks first, while Qt is not loaded: ``missing_xcb_packages`` tries
each library the plug-in links to (``XCB_LIBRARIES``, read from the
plug-in's ``DT_NEEDED`` entries, less what every platform needs) with the
system's own loader (``dlopen`` through ctypes: the same search, the
``LD_LIBRARY_PATH`` and ``ld.so.cache``, as Qt's plug-in loader), and names
the Debian packages that hold the missing ones in one line.

Nothing here imports Qt. The loader is injectable (``can_load``), which is
how the tests name a library missing without uninstalling it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from relay.errors import OutboxError

#: The shared libraries Qt's xcb plug-in (libqxcb.so, libQt6XcbQpa.so.6) needs
#: beyond what the offscreen platform needs too, and the Debian package of each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
}

#: Exit status when the window cannot start for want of a library (sysexits' EX_UNAVAILABLE).
EX_UNAVAILABLE = 69


class MissingQtLibraries(OutboxError):
    """Qt's X11 plug-in would abort: the message names the packages to install."""

    exit_code = EX_UNAVAILABLE

    def __init__(self, packages: list[str]) -> None:
        self.packages = packages
        super().__init__(
            "the window cannot start on X11: Qt's xcb platform plug-in needs libraries that are"
            f" not installed; on Debian/Ubuntu: sudo apt-get install {' '.join(packages)}"
            " (or use the command line: outbox --help)"
        )


def will_use_xcb(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will pick its xcb (X11) platform plug-in in this environment.

    ``QT_QPA_PLATFORM`` decides when set (its first choice); otherwise Qt 6
    on Linux takes Wayland in a Wayland session and X11 where there is a
    ``DISPLAY``.
    """
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        first = chosen.split(";", 1)[0]
        return first.split(":", 1)[0].strip() == "xcb"
    if env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"):
        return False
    if env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
        return False
    return bool(env.get("DISPLAY"))


def missing_xcb_packages(can_load: Callable[[str], bool] | None = None) -> list[str]:
    """The Debian packages holding xcb libraries that cannot be loaded, sorted; [] if none."""
    load = can_load or _can_load
    return sorted({package for name, package in XCB_LIBRARIES.items() if not load(name)})


def check_xcb_libraries(
    environ: Mapping[str, str] | None = None, can_load: Callable[[str], bool] | None = None
) -> None:
    """Raise ``MissingQtLibraries`` if Qt is about to use xcb and a library it needs is missing."""
    if not will_use_xcb(environ):
        return
    missing = missing_xcb_packages(can_load)
    if missing:
        raise MissingQtLibraries(missing)


def _can_load(name: str) -> bool:
    """Whether the system's loader finds and loads ``name`` (or Qt's own copy of it)."""
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError:
        pass
    else:
        return True
    # A bundle (PyInstaller) may carry the library next to Qt's own.
    for folder in _qt_library_folders():
        candidate = folder / name
        if candidate.exists():
            try:
                ctypes.CDLL(str(candidate))
            except OSError:
                continue
            return True
    return False


def _qt_library_folders() -> list[Path]:
    import importlib.util

    folders = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        folders.append(Path(bundle))
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "Qt" / "lib")
    return folders
