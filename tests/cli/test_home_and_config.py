"""The home is its owner's alone, and every number in config.toml is finite and in range."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from relay.errors import ConfigError
from relay.home import default_home, ensure_home
from tests.support.cli import outbox

MESSAGE = b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("xdg_data_home", "home"),
    [
        (None, "/home/ann"),
        (None, "/home/ann/"),
        (None, "/"),
        ("", "/home/ann"),
        ("/data/ann", "/home/ann"),
        ("/data/ann/", "/home/ann"),
        ("relative/data", "/home/ann"),
        (" ", "/home/ann"),
        (None, "relative/ann"),
        (None, None),
    ],
)
def test_the_default_home_is_platformdirs_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, xdg_data_home: str | None, home: str | None
) -> None:
    """``default_home`` answers the everyday Linux cases itself: exactly as platformdirs would."""
    from platformdirs import user_data_dir

    for name, value in (("XDG_DATA_HOME", xdg_data_home), ("HOME", home)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    def outcome(find: object) -> object:
        try:
            return find()  # type: ignore[operator]
        except Exception:  # no usable HOME: both must give up
            return "no home"

    ours = outcome(default_home)
    theirs = outcome(lambda: Path(user_data_dir("outbox", appauthor=False)))
    assert ours == theirs


def test_a_new_home_and_its_missing_parents_are_made_private(tmp_path: Path) -> None:
    home = tmp_path / "new" / "outbox"

    ensure_home(home)

    assert mode(home) == 0o700


def test_a_home_writable_by_others_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # what /tmp is

    done = outbox(shared, "enqueue", "-", input=MESSAGE)

    assert done.returncode == 78
    assert done.stderr.decode().splitlines() == [
        f"outbox: the outbox home {shared} may be written by group or others (mode 1777);"
        " refusing to keep mail there: choose another --home, or if it is yours alone run"
        f" 'chmod 700 {shared}'"
    ]
    assert mode(shared) == 0o1777
    assert list(shared.iterdir()) == []


def test_a_home_group_may_write_is_refused_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o770)

    with pytest.raises(ConfigError, match="may be written by group or others"):
        ensure_home(home)
    assert mode(home) == 0o770


def test_a_home_of_another_user_is_refused_and_never_chmod_ed(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        home = tmp_path / "theirs"
        home.mkdir(mode=0o755)
        os.chown(home, 65534, 65534)  # nobody's
    else:
        home = Path("/")  # root's, as seen by anyone else
    before = mode(home)

    with pytest.raises(ConfigError, match="belongs to another user"):
        ensure_home(home)
    assert mode(home) == before


def test_our_own_home_that_others_may_only_read_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o755)

    ensure_home(home)

    assert mode(home) == 0o700


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("[queue]\nlifetime_s = nan\n", "[queue] lifetime_s"),
        ("[queue]\nlifetime_s = inf\n", "[queue] lifetime_s"),
        ("[queue]\nlifetime_s = 1e300\n", "[queue] lifetime_s"),
        ("[queue]\nfirst_retry_s = -60\n", "[queue] first_retry_s"),
        ("[queue]\nmax_retry_s = -inf\n", "[queue] max_retry_s"),
        ("[queue]\nmax_retry_s = 0\n", "[queue] max_retry_s"),
        ('[accounts.work]\nhost = "127.0.0.1"\nconnect_timeout = nan\n', "connect_timeout"),
        ('[accounts.work]\nhost = "127.0.0.1"\ndata_timeout = 1e300\n', "data_timeout"),
        ('[accounts.work]\nhost = "127.0.0.1"\ncommand_timeout = -1\n', "command_timeout"),
        ('[accounts.work]\nhost = "127.0.0.1"\nmax_connections = 9999999999\n', "max_connections"),
        ('[accounts.work]\nhost = "127.0.0.1"\nport = -25\n', "port"),
    ],
)
def test_a_number_out_of_range_in_config_toml_is_a_config_error_naming_it(
    tmp_path: Path, table: str, key: str
) -> None:
    home = tmp_path / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    config = home / "config.toml"
    if not table.startswith("[accounts"):
        table = '[accounts.work]\nhost = "127.0.0.1"\n' + table
    config.write_text(table)

    done = outbox(home, "flush")

    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.decode().splitlines()
    assert key in line and "must be" in line and "Traceback" not in line


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("[retention]\nsent_body_day = 0\n", "'sent_body_day'"),
        ("[queue]\nlifetime = 604800\n", "'lifetime'"),
        ("[retension]\nsent_body_days = 0\n", "'retension'"),
    ],
    ids=["retention", "queue", "top level"],
)
def test_a_misspelt_key_of_the_config_file_is_a_config_error_naming_it(
    tmp_path: Path, table: str, key: str
) -> None:
    """A typo must not silently mean the default (bodies pruned after 30 days, mail failed
    after 5): the key is named, as a misspelt account setting is."""
    home = tmp_path / "home"
    assert outbox(home, "enqueue", "-", input=MESSAGE).returncode == 0
    (home / "config.toml").write_text('[accounts.work]\nhost = "127.0.0.1"\n' + table)

    done = outbox(home, "flush")

    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.decode().splitlines()
    assert key in line and "setting" in line and "Traceback" not in line


@pytest.mark.parametrize("home_args", [["--home", ""], ["--home="]], ids=["--home ''", "--home="])
@pytest.mark.parametrize(
    "command", [["enqueue", "-"], ["sendmail", "bob@example.org"], ["desktop", "install"]]
)
def test_an_empty_home_is_bad_usage_not_the_default_home(
    tmp_path: Path, home_args: list[str], command: list[str]
) -> None:
    """``outbox --home "$DIR" …`` with DIR unset must not act on the user's own outbox."""
    user = tmp_path / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("OUTBOX_HOME", "XDG_DATA_HOME")}
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", *home_args, *command],
        input=MESSAGE,
        capture_output=True,
        env={**env, "HOME": str(user)},
        timeout=60,
    )
    assert done.returncode == 64, done.stderr
    assert done.stderr.decode().startswith("outbox: --home names no directory")
    assert not (user / ".local").exists()
