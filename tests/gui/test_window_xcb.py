"""The window on a real X server (Xvfb), and the check that keeps Qt's xcb plug-in from aborting.

Most window tests run on Qt's offscreen platform; here the program's own
start-up runs against ``Xvfb`` through Qt's xcb plug-in, the one a person's
X11 desktop uses. The library check is tested three ways, each honest about
what is real:

- with an injected loader that calls one library missing (the logic only);
- with the system's real loader on this machine, where ``.ci/run`` has
  installed every package (the check says nothing is missing);
- in a private mount namespace (``unshare -m``, root only) where
  ``libxcb-cursor.so.0`` is covered by ``/dev/null``, so the real loader
  really cannot load it -- what a machine without ``libxcb-cursor0`` looks
  like -- and ``outbox gui`` on a real X display must say so in one line
  instead of Qt aborting.

A display that cannot be opened (an X server that has ended, a Wayland socket
nobody listens on) must be said in one line too, before Qt aborts on it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gui.platform_check import (
    EX_UNAVAILABLE,
    XCB_LIBRARIES,
    DisplayUnreachable,
    MissingQtLibraries,
    check_display,
    check_xcb_libraries,
    missing_xcb_packages,
    will_use_xcb,
)
from relay.message import parse_message
from relay.store.outbox import Outbox
from tests.gui.messages import message_bytes
from tests.support import xvfb

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture
def x_display() -> Iterator[str]:
    if xvfb.missing():
        reason = "needs Xvfb (Debian: apt-get install xvfb)"
        if in_ci():
            pytest.fail(f"CI is set but this {reason}; .ci/run installs it")
        pytest.skip(reason)
    with xvfb.running_xvfb() as display:
        yield display


def outbox_gui(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "gui"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def x_env(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=display, PYTHONPATH=str(REPO), XDG_SESSION_TYPE="x11")
    return env


@pytest.mark.parametrize(
    ("env", "xcb"),
    [
        ({"DISPLAY": ":0"}, True),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb;wayland", "DISPLAY": ":1"}, True),
        ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, True),
        ({}, False),
    ],
)
def test_the_check_runs_only_where_qt_will_take_its_xcb_plugin(
    env: dict[str, str], xcb: bool
) -> None:
    assert will_use_xcb(env, platform="linux") is xcb
    assert will_use_xcb({"DISPLAY": ":0"}, platform="darwin") is False


def test_a_missing_library_is_named_by_its_debian_package_in_one_line() -> None:
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"}

    with pytest.raises(MissingQtLibraries) as caught:
        check_xcb_libraries({"DISPLAY": ":0"}, can_load=lambda name: name not in absent)

    assert caught.value.packages == ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    assert caught.value.exit_code == EX_UNAVAILABLE
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message


def test_on_this_machine_the_real_loader_finds_every_library_ci_installs() -> None:
    missing = missing_xcb_packages()
    if missing and not in_ci():
        pytest.skip(f"this machine lacks {' '.join(missing)} (.ci/run installs them)")
    assert missing == []


def test_the_window_runs_on_a_real_x_server_through_qt_xcb_plugin(
    x_display: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with Outbox.open(home) as outbox:
        outbox.add_message(parse_message(message_bytes("bob@example.net", "On X11")))

    done = subprocess.run(
        [sys.executable, "-m", "tests.gui.xcb_window", str(home)],
        capture_output=True, text=True, env=x_env(x_display), cwd=REPO, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["platform=xcb", "exposed=True", "rows=1"]


def _library_path(name: str) -> Path:
    """The file the loader maps for ``name`` (the real one behind its symlink)."""
    ctypes.CDLL(name)
    stem = name.split(".so")[0] + ".so"
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = Path(line.split()[-1])
        if path.name.startswith(stem):
            return path
    raise AssertionError(f"{name} is not mapped")


def test_without_libxcb_cursor_the_window_says_which_package_instead_of_aborting(
    x_display: str, tmp_path: Path
) -> None:
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs root and mount namespaces (unshare -m) to hide a library for real")
    library = _library_path("libxcb-cursor.so.0")
    script = f'mount --bind /dev/null "{library}" && exec "$@"'

    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh",
         sys.executable, "-m", "relay.cli", "--home", str(tmp_path / "home"), "gui"],
        capture_output=True, text=True, env=x_env(x_display), cwd=REPO, timeout=120,
    )  # fmt: skip

    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert done.stderr.splitlines() == [
        "outbox: the window cannot start on X11: Qt's xcb platform plug-in needs libraries that"
        " are not installed; on Debian/Ubuntu: sudo apt-get install libxcb-cursor0"
        " (or use the command line: outbox --help)"
    ]
    assert "libxcb-cursor.so.0" in XCB_LIBRARIES


NO_DISPLAY_ADVICE = "; use the command line (outbox --help), or set QT_QPA_PLATFORM=offscreen"


def test_a_display_whose_x_server_has_ended_is_said_in_one_line_not_a_qt_abort(
    tmp_path: Path,
) -> None:
    if xvfb.missing():
        pytest.skip("needs Xvfb (Debian: apt-get install xvfb)")
    with xvfb.running_xvfb() as display:
        pass  # the X server ends here: DISPLAY names a display nobody serves any more

    done = outbox_gui(tmp_path / "home", x_env(display))

    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert done.stderr.splitlines() == [
        f"outbox: the window cannot open its display: nothing on DISPLAY={display} lets this"
        " user in (a display left over from a session that ended, or another user's)"
        + NO_DISPLAY_ADVICE
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Wayland is Linux's")
def test_a_wayland_socket_nobody_listens_on_is_said_in_one_line_not_a_qt_abort(
    tmp_path: Path,
) -> None:
    socket_path = tmp_path / "wayland-0"  # a compositor that has ended: nothing listens
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env.update(WAYLAND_DISPLAY=str(socket_path), XDG_SESSION_TYPE="wayland", PYTHONPATH=str(REPO))

    done = outbox_gui(tmp_path / "home", env)

    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert done.stderr.splitlines() == [
        f"outbox: the window cannot open its display: nothing on WAYLAND_DISPLAY={socket_path}"
        " lets this user in (a display left over from a session that ended, or another user's)"
        + NO_DISPLAY_ADVICE
    ]


@pytest.mark.parametrize(
    ("env", "x_server", "refused"),
    [
        ({"DISPLAY": ":5"}, False, True),
        ({"DISPLAY": ":5"}, True, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True, True),  # no DISPLAY at all
        ({"QT_QPA_PLATFORM": "xcb;offscreen", "DISPLAY": ":5"}, False, False),  # Qt falls back
        ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":5"}, False, False),
        ({"QT_QPA_PLATFORM": "wayland"}, True, True),  # no compositor
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":5"}, True, False),
        ({"WAYLAND_DISPLAY": "wayland-9"}, True, True),  # Wayland, then X11 without DISPLAY
        ({"WAYLAND_DISPLAY": "wayland-9", "DISPLAY": ":5"}, True, False),  # X11 first
        ({}, False, False),  # no display named at all: gui.app's NoDisplay says so
    ],
)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland are Linux's")
def test_the_display_check_refuses_only_when_every_platform_qt_would_try_fails(
    env: dict[str, str], x_server: bool, refused: bool, tmp_path: Path
) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path), **env}  # no compositor listens in there
    try:
        check_display(env, x_opens=lambda display: x_server)
    except DisplayUnreachable:
        assert refused
    else:
        assert not refused
