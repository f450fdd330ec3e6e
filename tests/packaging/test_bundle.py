"""The PyInstaller bundle, built by packaging/build.sh and run as a user would, without Python.

The bundled program runs with a bare environment (no virtualenv, no
PYTHONPATH, a minimal PATH): everything it needs must be inside the bundle.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gui.single_instance import server_name
from relay import __version__
from tests.packaging.conftest import ROOT
from tests.support.smtp_servers import USER, threaded_smtp_server

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(300)]

START_DEADLINE_S = 30


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build.sh"), str(dist)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dist


@pytest.fixture
def bare_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """What a desktop session gives a program, and nothing of the test's Python."""
    runtime = Path(os.environ.get("TMPDIR", "/tmp")) / f"obx-rt-{os.getpid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    yield {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(runtime),
        "QT_QPA_PLATFORM": "offscreen",
    }
    for leftover in runtime.iterdir():
        leftover.unlink()
    runtime.rmdir()


def _run(
    dist: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(dist / "outbox" / "outbox"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _message(subject: str) -> bytes:
    return (
        f"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\nHello\r\n"
    ).encode()


def test_bundle_prints_its_version(dist: Path, bare_env: dict[str, str]) -> None:
    done = _run(dist, bare_env, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"outbox {__version__}"


def test_tarball_holds_the_bundle(dist: Path) -> None:
    (tarball,) = dist.glob(f"outbox-{__version__}-linux-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert "outbox/outbox" in names
    assert "outbox/_internal/gui/resources/outbox.svg" in names


def test_bundle_leaves_out_the_qt_parts_outbox_never_loads(dist: Path) -> None:
    internal = dist / "outbox" / "_internal"
    plugins = internal / "PySide6" / "Qt" / "plugins"
    assert (plugins / "platforms" / "libqxcb.so").is_file()
    assert (plugins / "platforms" / "libqoffscreen.so").is_file()
    assert (plugins / "iconengines" / "libqsvgicon.so").is_file()
    for unwanted in ("sqldrivers", "qmltooling", "tls", "designer", "printsupport"):
        assert not (plugins / unwanted).exists(), unwanted
    assert not list(internal.rglob("libqgtk3*")) and not list(internal.rglob("libgtk-3*"))
    assert not list(internal.rglob("libQt6Qml*")) and not list(internal.rglob("libQt6Quick*"))


def test_bundle_enqueues_and_lists_json(
    dist: Path, bare_env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    message = tmp_path / "hello.eml"
    message.write_bytes(_message("from the bundle"))
    done = _run(dist, bare_env, "--home", str(home), "enqueue", str(message))
    assert done.returncode == 0, done.stderr
    done = _run(dist, bare_env, "--home", str(home), "list", "--json")
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)
    assert item["subject"] == "from the bundle"
    assert item["state"] == "queued"
    assert item["recipients"] == [{"address": "bob@example.org", "state": "pending", "reply": None}]


def test_bundle_flushes_to_a_loopback_server(
    dist: Path, bare_env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    message = tmp_path / "hello.eml"
    message.write_bytes(_message("over the wire"))
    with threaded_smtp_server() as server:
        done = _run(
            dist, bare_env, "--home", str(home), "account", "add", "local",
            "--host", server.host, "--port", str(server.port), "--security", "none", "--default",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _run(dist, bare_env, "--home", str(home), "enqueue", str(message)).returncode == 0
        done = _run(dist, bare_env, "--home", str(home), "flush")
        assert done.returncode == 0, done.stderr
        received = list(server.received)
    assert [r.rcpt_tos for r in received] == [("bob@example.org",)]
    assert b"Subject: over the wire" in received[0].body
    listed = json.loads(_run(dist, bare_env, "--home", str(home), "list", "--json").stdout)
    assert [item["state"] for item in listed] == ["sent"]


@pytest.mark.parametrize("users_libraries", [None, "/opt/site/lib"])
def test_a_password_command_gets_the_users_libraries_not_the_bundles(
    dist: Path, bare_env: dict[str, str], tmp_path: Path, users_libraries: str | None
) -> None:
    """``pass`` or ``gpg`` handed the bundle's older libraries would not start elsewhere."""
    if users_libraries is not None:
        bare_env["LD_LIBRARY_PATH"] = users_libraries
    home = tmp_path / "home"
    seen = tmp_path / "environment"
    message = tmp_path / "hello.eml"
    message.write_bytes(_message("password from a command"))
    command = f"env -0 > {shlex.quote(str(seen))}; echo s3cret"
    with threaded_smtp_server(password="s3cret") as server:
        done = _run(
            dist, bare_env, "--home", str(home), "account", "add", "local",
            "--host", server.host, "--port", str(server.port), "--security", "none",
            "--user", USER, "--password-command", command,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _run(dist, bare_env, "--home", str(home), "enqueue", str(message)).returncode == 0
        done = _run(dist, bare_env, "--home", str(home), "flush")
        assert done.returncode == 0, done.stderr
        assert len(server.received) == 1
    environment = dict(
        entry.split("=", 1) for entry in seen.read_text().split("\0") if "=" in entry
    )
    assert environment.get("LD_LIBRARY_PATH") == users_libraries
    for name in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH", "LD_LIBRARY_PATH_ORIG"):
        assert name not in environment, f"{name}={environment[name]}"
    assert environment["PATH"] == bare_env["PATH"]


def test_bundle_window_opens_offscreen_takes_a_file_and_closes_cleanly(
    dist: Path, bare_env: dict[str, str], tmp_path: Path
) -> None:
    """The window is up when a second launch's file is in the outbox: only its loop answers."""
    home = tmp_path / "home"
    window = subprocess.Popen(
        [str(dist / "outbox" / "outbox"), "--home", str(home)],  # no command: the window
        env=bare_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        name = server_name(home, bare_env)
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            assert window.poll() is None, window.communicate()[1]
            assert time.monotonic() < deadline, "the bundled window never started listening"
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(name)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    time.sleep(0.05)
        message = tmp_path / "opened.eml"
        message.write_bytes(_message("opened with Outbox"))
        second = _run(dist, bare_env, "--home", str(home), "gui", str(message))
        assert second.returncode == 0, second.stderr
        listed = json.loads(_run(dist, bare_env, "--home", str(home), "list", "--json").stdout)
        assert [item["subject"] for item in listed] == ["opened with Outbox"]
    finally:
        if window.poll() is None:
            window.send_signal(signal.SIGTERM)
    _, stderr = window.communicate(timeout=30)
    assert window.returncode == 0, stderr
    for bad in ("Traceback", "Error", "Cannot load", "Could not"):
        assert bad not in stderr, stderr
