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

Qt aborts the same way when the display it is given cannot be opened: a
``DISPLAY`` left over from a session that ended (an X server that is gone, an
ssh login without forwarding), one this user may not use, or a
``WAYLAND_DISPLAY`` whose socket nobody listens on. ``check_display`` opens
the display first as Qt would (``xcb_connect`` from the same libxcb; a
connection to the Wayland socket) and says so in one line instead.

Nothing here imports Qt. The loader is injectable (``can_load``), which is
how the tests name a library missing without uninstalling it.
"""

from __future__ import annotations

import os
import socket
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


class DisplayUnreachable(OutboxError):
    """The display the environment names cannot be opened: Qt would abort."""

    exit_code = EX_UNAVAILABLE

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the window cannot open its display: {why}; use the command line (outbox --help),"
            " or set QT_QPA_PLATFORM=offscreen"
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


def check_display(
    environ: Mapping[str, str] | None = None,
    *,
    x_opens: Callable[[str], bool] | None = None,
) -> None:
    """Raise ``DisplayUnreachable`` if no platform Qt would try can open its display.

    Qt tries the platforms ``QT_QPA_PLATFORM`` lists, in order (``wayland;xcb``),
    or its own choice: X11 (``will_use_xcb``), else Wayland and then X11. A
    platform without a display of its own (``offscreen``, ``vnc``…) always starts.
    Call it after ``check_xcb_libraries``: the X check loads libxcb.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        platforms = [p.split(":", 1)[0].strip() for p in chosen.split(";") if p.strip()]
    elif will_use_xcb(env):
        platforms = ["xcb"]
    elif env.get("WAYLAND_DISPLAY"):
        platforms = ["wayland", "xcb"]
    else:
        return  # gui.app's NoDisplay says so
    reasons = []
    for platform in platforms:
        if platform == "xcb":
            display = env.get("DISPLAY", "")
            if display and (x_opens or _x_opens)(display):
                return
            reasons.append(_nobody_on(f"DISPLAY={display}") if display else _NO_X_DISPLAY)
        elif platform.startswith("wayland"):
            name = env.get("WAYLAND_DISPLAY") or "wayland-0"  # libwayland's default
            if _wayland_opens(name, env.get("XDG_RUNTIME_DIR", "")):
                return
            reasons.append(_nobody_on(f"WAYLAND_DISPLAY={name}"))
        else:
            return
    if reasons:
        raise DisplayUnreachable(reasons[0])


_NO_X_DISPLAY = "QT_QPA_PLATFORM asks for X11 (xcb) and DISPLAY is not set"


def _nobody_on(display: str) -> str:
    return (
        f"nothing on {display} lets this user in (a display left over from a session that"
        " ended, or another user's)"
    )


def _x_opens(display: str) -> bool:
    """Whether libxcb connects to ``display`` (authorisation included), as Qt's plug-in does."""
    import ctypes

    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # no libxcb: check_xcb_libraries names the package
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode() if display else None, None)
    try:
        return bool(connection) and xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)  # also for the error connection xcb hands back


def _wayland_opens(name: str, runtime_dir: str) -> bool:
    """Whether a Wayland compositor listens on ``name`` (a socket in ``XDG_RUNTIME_DIR``)."""
    path = name if name.startswith("/") else os.path.join(runtime_dir, name)
    if not runtime_dir and not name.startswith("/"):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


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
