"""``outbox desktop install --autostart``: the window starts hidden in the tray at login."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.packaging.conftest import APP_ID, require_tool
from tests.packaging.test_desktop_command import OUTBOX, _entry, _run


def test_autostart_entry_starts_this_outbox_hidden_at_login(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = _run("desktop", "install", "--autostart", env=env)
    assert done.returncode == 0, done.stderr
    autostart = tmp_path / "config" / "autostart" / f"{APP_ID}.desktop"
    assert str(autostart) in done.stdout.splitlines()
    entry = _entry(autostart)
    assert entry["Exec"] == f"{OUTBOX} gui --hidden"
    assert entry["TryExec"] == str(OUTBOX)
    assert entry["Type"] == "Application" and entry["NoDisplay"] == "true"
    assert (tmp_path / "data" / "applications" / f"{APP_ID}.desktop").is_file()  # the menu too

    done = _run("desktop", "uninstall", env=env)
    assert done.returncode == 0 and f"removed {autostart}" in done.stdout
    assert not autostart.exists()


def test_autostart_entry_passes_desktop_file_validate(tmp_path: Path) -> None:
    tool = require_tool("desktop-file-validate")
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert _run("desktop", "install", "--autostart", env=env).returncode == 0
    done = subprocess.run(
        [tool, str(tmp_path / "config" / "autostart" / f"{APP_ID}.desktop")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_without_autostart_nothing_starts_at_login(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert _run("desktop", "install", env=env).returncode == 0
    assert not (tmp_path / "config" / "autostart").exists()
