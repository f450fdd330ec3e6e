"""One window per outbox: a second ``outbox gui FILE`` hands its files to the first, as processes.

Both launches are real processes on Qt's offscreen platform. Waiting for the
first window means waiting until its socket accepts a connection: a condition
checked against the process, with a deadline, not a guess at how long start-up takes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gui.single_instance import server_name

START_DEADLINE_S = 30


def _message(subject: str) -> bytes:
    return (
        f"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\nHello\r\n"
    ).encode()


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short private dir: a Unix socket path must fit in 108 bytes; tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="obx-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(runtime_dir: Path) -> dict[str, str]:
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "QT_QPA_PLATFORM": "offscreen"}


def _outbox(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "relay.cli", "--home", str(home), *args]


def _wait_until_listening(name: str, window: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        assert window.poll() is None, window.communicate()[1].decode()
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(name)
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)
                continue
            return
    raise AssertionError(f"the first window never listened on {name}")


def _close(window: subprocess.Popen[bytes]) -> str:
    """SIGTERM (closes the window as Quit does); its stderr, after checking it exited 0."""
    window.send_signal(signal.SIGTERM)
    _, stderr = window.communicate(timeout=30)
    assert window.returncode == 0, stderr.decode()
    return stderr.decode()


def _subjects(home: Path) -> list[str]:
    done = subprocess.run(_outbox(home, "list", "--json"), capture_output=True, check=True)
    return sorted(item["subject"] for item in json.loads(done.stdout))


def test_a_second_launch_hands_its_files_to_the_running_window_and_exits(
    tmp_path: Path, env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    files = []
    for subject in ("first", "second"):
        path = tmp_path / f"{subject}.eml"
        path.write_bytes(_message(subject))
        files.append(path)
    window = subprocess.Popen(
        _outbox(home, "gui"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_until_listening(server_name(home, env), window)
        assert _subjects(home) == []
        # relative names too: the window's working directory is not this launch's
        second = subprocess.run(
            _outbox(home, "gui", str(files[0]), files[1].name),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=60,  # a second window would run until this kills it
        )
        assert second.returncode == 0, second.stderr.decode()
        assert _subjects(home) == ["first", "second"]
        assert window.poll() is None  # the first window is still the one open
    finally:
        if window.poll() is None:
            stderr = _close(window)
            assert "Traceback" not in stderr, stderr


def test_a_socket_left_by_a_crashed_window_does_not_stop_the_next_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    name = server_name(home, env)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(name)  # bound, never listening, never unlinked: what a crash leaves
    stale.close()
    window = subprocess.Popen(
        _outbox(home, "gui"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_until_listening(name, window)
        path = tmp_path / "late.eml"
        path.write_bytes(_message("late"))
        second = subprocess.run(
            _outbox(home, "gui", str(path)), env=env, capture_output=True, timeout=60
        )
        assert second.returncode == 0, second.stderr.decode()
        assert _subjects(home) == ["late"]
    finally:
        if window.poll() is None:
            _close(window)


def test_two_outbox_homes_get_a_window_each(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert server_name(tmp_path / "a", env) != server_name(tmp_path / "b", env)
    assert server_name(tmp_path / "a", env) == server_name(tmp_path / "a", env)
    assert Path(server_name(tmp_path / "a", env)).parent == tmp_path
