"""``outbox desktop install|uninstall`` as a user runs it: the installed command, real dirs."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import APP_ID, require_tool

OUTBOX = Path(sys.executable).parent / "outbox"  # the venv's console script, as pipx makes one


def _run(*args: str, env: dict[str, str], argv0: Path = OUTBOX) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(argv0), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_install_puts_entry_icons_and_metainfo_into_xdg_data_home(data_home: Path) -> None:
    done = _run("desktop", "install", env={"XDG_DATA_HOME": str(data_home)})
    assert done.returncode == 0, done.stderr
    desktop = data_home / "applications" / f"{APP_ID}.desktop"
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"Added Outbox to the application menu (it starts {OUTBOX} gui) with 10 icons"
        " and its description for software centres; files written:"
    )
    assert str(desktop) in lines[1:]
    for size in (16, 32, 48, 64, 128, 256, 512):
        assert (data_home / f"icons/hicolor/{size}x{size}/apps/{APP_ID}.png").is_file()
    assert (data_home / f"icons/hicolor/scalable/apps/{APP_ID}.svg").is_file()
    assert (data_home / f"metainfo/{APP_ID}.metainfo.xml").is_file()
    # readable by the desktop's own processes despite the command line's umask 077
    assert desktop.stat().st_mode & 0o777 == 0o644
    assert (data_home / "applications").stat().st_mode & 0o777 == 0o755


def test_installed_entry_runs_this_outbox_command_by_absolute_path(data_home: Path) -> None:
    assert _run("desktop", "install", env={"XDG_DATA_HOME": str(data_home)}).returncode == 0
    entry = _entry(data_home / "applications" / f"{APP_ID}.desktop")
    assert entry["Exec"] == f"{OUTBOX} gui %F"
    assert entry["TryExec"] == str(OUTBOX)
    assert entry["MimeType"] == "message/rfc822;"


def test_installed_entry_passes_desktop_file_validate(data_home: Path) -> None:
    tool = require_tool("desktop-file-validate")
    assert _run("desktop", "install", env={"XDG_DATA_HOME": str(data_home)}).returncode == 0
    done = subprocess.run(
        [tool, str(data_home / "applications" / f"{APP_ID}.desktop")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_a_command_path_with_spaces_is_quoted_in_exec(tmp_path: Path, data_home: Path) -> None:
    odd = tmp_path / "my $apps" / "outbox"
    odd.parent.mkdir()
    odd.symlink_to(OUTBOX)
    done = _run("desktop", "install", env={"XDG_DATA_HOME": str(data_home)}, argv0=odd)
    assert done.returncode == 0, done.stderr
    entry = _entry(data_home / "applications" / f"{APP_ID}.desktop")
    # the spec's two levels: \$ inside the quotes, then every backslash doubled
    assert entry["Exec"] == f'"{tmp_path}/my \\\\$apps/outbox" gui %F'


def test_prefix_installs_under_prefix_share(tmp_path: Path, data_home: Path) -> None:
    prefix = tmp_path / "prefix"
    env = {"XDG_DATA_HOME": str(data_home)}
    done = _run("desktop", "install", "--prefix", str(prefix), env=env)
    assert done.returncode == 0, done.stderr
    assert (prefix / "share/applications" / f"{APP_ID}.desktop").is_file()
    assert not data_home.exists()


def test_uninstall_removes_exactly_what_install_put_there(data_home: Path) -> None:
    env = {"XDG_DATA_HOME": str(data_home)}
    other = data_home / "applications" / "someone-else.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\n")
    assert _run("desktop", "install", env=env).returncode == 0
    done = _run("desktop", "uninstall", env=env)
    assert done.returncode == 0, done.stderr
    left = {
        path.relative_to(data_home).as_posix() for path in data_home.rglob("*") if path.is_file()
    }
    assert left <= {"applications/someone-else.desktop", "applications/mimeinfo.cache"}
    assert "applications/someone-else.desktop" in left
    assert f"removed {data_home / 'applications' / f'{APP_ID}.desktop'}" in done.stdout


def test_uninstall_when_nothing_is_installed_is_not_an_error(data_home: Path) -> None:
    done = _run("desktop", "uninstall", env={"XDG_DATA_HOME": str(data_home)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_an_unwritable_data_dir_gets_one_line_naming_it(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    done = _run("desktop", "install", env={"XDG_DATA_HOME": str(blocked)})
    assert done.returncode == 1
    assert done.stderr.startswith(f"outbox: cannot install into {blocked}")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["--home", "OUTBOX_HOME"])
def test_an_entry_installed_for_another_home_opens_that_home(tmp_path: Path, how: str) -> None:
    """A menu or a login session has neither the shell's --home nor its OUTBOX_HOME: the
    entries carry the home they were installed for, or they open another outbox."""
    tool = require_tool("desktop-file-validate")
    home = tmp_path / "my mail"
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    args = ["desktop", "install", "--autostart"]
    if how == "--home":
        done = _run("--home", str(home), *args, env=env)
    else:
        done = _run(*args, env={**env, "OUTBOX_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    menu = tmp_path / "data" / "applications" / f"{APP_ID}.desktop"
    login = tmp_path / "config" / "autostart" / f"{APP_ID}.desktop"
    assert _entry(menu)["Exec"] == f'{OUTBOX} --home "{home}" gui %F'
    assert _entry(login)["Exec"] == f'{OUTBOX} --home "{home}" gui --hidden'
    for entry in (menu, login):
        checked = subprocess.run([tool, str(entry)], capture_output=True, text=True)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
