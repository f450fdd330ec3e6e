"""Where an outbox lives: ``--home DIR``, else ``OUTBOX_HOME``, else the user data dir.

The home holds mail people have not sent yet, so it must be its owner's alone.
``ensure_home`` creates only what does not exist (the home 0700; files in it
are made 0600 by the modules that write them) and never changes a directory
that exists: running as root with ``--home /tmp`` once made ``/tmp`` mode 0700,
which broke the whole machine. A home that exists but belongs to someone else,
or that group or others may write to, is refused with a line saying why:
whoever can write there can plant a config (another server, another CA file)
or a message, and tightening the mode afterwards would not undo that. A home
of our own that others may only read is tightened, as it always was: ours to
change, and nothing could have been planted.

``home_identity`` names a home for the keyring (see its docstring).

``outbox sendmail`` imports this module on every call and never needs
``home_identity``: ``json`` and ``uuid`` (which loads ``platform``) are imported
only inside it, which saves that once-per-message start-up about 3 ms.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from relay.errors import ConfigError, UsageError

HOME_ENV = "OUTBOX_HOME"
IDENTITY_NAME = "home-id"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit is not None:
        if not os.fspath(explicit):
            # `outbox --home "$DIR" flush` with DIR unset: taking the default home
            # would flush (or purge, or add mail to) an outbox the caller did not name.
            raise UsageError(
                "--home names no directory (an empty word); give the outbox's directory,"
                " or leave --home out for the default"
            )
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return default_home()


def default_home() -> Path:
    """The home unless ``--home`` or ``OUTBOX_HOME`` names one: ``~/.local/share/outbox``."""
    data_home = _linux_data_home()
    if data_home is not None:
        return Path(os.path.join(data_home, "outbox"))
    from platformdirs import user_data_dir

    try:
        return Path(user_data_dir("outbox", appauthor=False))
    except RuntimeError as exc:  # HOME unset and no entry in the password database
        from relay.machineproblems import HomeUnknown

        raise HomeUnknown(str(exc)) from exc


def _linux_data_home() -> str | None:
    """``platformdirs``' user data directory in the everyday Linux cases, without importing it.

    That is ``$XDG_DATA_HOME`` when it is an absolute path, else
    ``$HOME/.local/share`` when ``HOME`` is an absolute path. None leaves the
    answer to ``platformdirs`` (a relative ``XDG_DATA_HOME``, no usable ``HOME``,
    Android, other systems). Why not always ask it: ``outbox sendmail``, started
    once per message by cron and mail clients with no ``--home``, would pay for
    importing it (with ``tempfile``, ``shutil``, ``random`` and the compression
    modules): ~10 ms of CPU a call. A test holds this to ``platformdirs``' answer.
    """
    if (
        sys.platform != "linux"
        or hasattr(sys, "getandroidapilevel")
        or "ANDROID_DATA" in os.environ
    ):
        return None
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg:
        return xdg if os.path.isabs(xdg) else None
    if not os.path.isabs(os.environ.get("HOME", "")):
        return None
    return os.path.expanduser("~/.local/share")


def ensure_home(home: Path) -> Path:
    """Create ``home`` (0700) if it does not exist; refuse one that is not safely ours."""
    try:
        home.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot create the outbox home {home}: {exc.strerror}; choose another with"
            " --home DIR or OUTBOX_HOME"
        ) from None
    check_home_is_private(home)
    return home


def check_home_is_private(home: Path) -> None:
    """Refuse a home owned by another user or writable by group/others; tighten a readable one.

    Only a directory the current user owns is ever chmod-ed here.
    """
    try:
        info = os.stat(home)
    except OSError as exc:
        raise ConfigError(f"cannot use the outbox home {home}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"the outbox home {home} is not a directory; choose another --home")
    mode = stat.S_IMODE(info.st_mode)
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid is not None and info.st_uid != uid:
        raise ConfigError(
            f"the outbox home {home} belongs to another user (uid {info.st_uid}, not {uid});"
            " refusing to keep mail there: choose a directory of your own with --home"
        )
    if mode & 0o022:
        raise ConfigError(
            f"the outbox home {home} may be written by group or others (mode {mode:04o});"
            " refusing to keep mail there: choose another --home, or if it is yours alone"
            f" run 'chmod 700 {home}'"
        )
    if mode & 0o077 and uid is not None:
        os.chmod(home, 0o700)


def home_identity(home: Path) -> str:
    """A stable id of the outbox at ``home``, kept in ``<home>/home-id`` (made on first use).

    The keyring keys every secret by it (``relay.credentials``), so two homes
    with an account of the same name never share a password.

    Why an id kept in the home rather than the home's path: a home that is
    *moved* (``mv``, a renamed user, a new disk) keeps its id and so its
    passwords, where a path key would lose them. A home that is *copied*
    must not keep them: the copy could be pointed at another server and would
    send it the original's password. The file therefore also records the
    resolved path it was made for. When the home is found elsewhere, the id
    file at the recorded path decides: if that place still holds the same id
    (the original is still there) this is a copy, which gets an id of its own
    (its accounts then need their passwords set again); if not, the home was
    moved, and the file is updated to the new place with the same id.
    """
    import uuid

    real = os.path.realpath(home)
    path = home / IDENTITY_NAME
    recorded = _read_identity(path)
    if recorded is None:
        return _write_identity(path, uuid.uuid4().hex, real, exclusive=True)
    home_id, where = recorded
    if where == real:
        return home_id
    original = Path(where)
    with contextlib.suppress(OSError):
        if os.path.samefile(original, real):
            return home_id  # the same directory by another name (a bind mount)
    still_there = _read_identity(original / IDENTITY_NAME)
    if still_there is not None and still_there[0] == home_id:
        return _write_identity(path, uuid.uuid4().hex, real, exclusive=False)  # a copy
    return _write_identity(path, home_id, real, exclusive=False)  # moved


def _read_identity(path: Path) -> tuple[str, str] | None:
    import json

    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "not what Outbox wrote"
        raise ConfigError(
            f"cannot read {path} ({reason}); it names this outbox in the keyring:"
            " if it is damaged, remove it and set the accounts' passwords again"
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("path"), str)
        or not data["id"]
    ):
        raise ConfigError(
            f"{path} is not what Outbox wrote; it names this outbox in the keyring:"
            " remove it and set the accounts' passwords again"
        )
    return data["id"], data["path"]


def _write_identity(path: Path, home_id: str, real: str, *, exclusive: bool) -> str:
    """Write the id file atomically; ``exclusive``: if another process made one first, theirs."""
    import json
    import uuid

    text = json.dumps({"id": home_id, "path": real}) + "\n"
    tmp = path.with_name(f".{IDENTITY_NAME}-{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # never replaces: two first uses agree on one id
            except FileExistsError:
                recorded = _read_identity(path)
                if recorded is not None:
                    return recorded[0]
                raise
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path} (which names this outbox in the keyring): {exc.strerror}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return home_id
