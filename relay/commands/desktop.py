"""``outbox desktop install|uninstall``: show Outbox in the desktop's menu.

A Python install (``pipx install .``, ``uv tool install .``) gives a command
but no menu entry. ``install`` copies the desktop entry, the icons (the hicolor
PNGs and the SVG) and the AppStream metainfo into the user's data directory,
``$XDG_DATA_HOME`` (default ``~/.local/share``), or into ``PREFIX/share`` with
``--prefix``, where every freedesktop.org desktop looks for them. ``uninstall``
removes exactly those files again.

``install --autostart`` also writes a freedesktop autostart entry
(``$XDG_CONFIG_HOME/autostart``, default ``~/.config/autostart``) that starts
the window hidden in the tray at login (``outbox gui --hidden``), so mail that
falls due goes even when nobody opened the window. ``uninstall`` removes it too.

The installed entry's ``Exec`` names the ``outbox`` command that ran
``install``, by absolute path: a menu does not see the ``PATH`` a login shell
sets up (``~/.local/bin`` is often missing there), and the bundle is not on
any ``PATH`` at all. Reinstalling after moving Outbox updates it.

Everything here is file copying; no Qt. The resources are found next to the
packages: ``resources/`` in a checkout, ``gui/resources/`` in a wheel and in
the PyInstaller bundle.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relay.errors import OutboxError

APP_ID = "io.github.outbox.Outbox"
DESKTOP_FILE = f"{APP_ID}.desktop"
METAINFO_FILE = f"{APP_ID}.metainfo.xml"

# Characters that make the desktop-entry spec require a quoted Exec argument.
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class DesktopError(OutboxError):
    """Installing or removing the desktop entry failed; the text says where."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "desktop", help="add Outbox to (or remove it from) the desktop's application menu"
    )
    actions = p.add_subparsers(dest="desktop_command", metavar="ACTION", required=True)
    for name, helptext, func in (
        ("install", "install the menu entry and icons for this user", cmd_install),
        ("uninstall", "remove what install put there", cmd_uninstall),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument(
            "--prefix",
            metavar="DIR",
            help="use DIR/share instead of $XDG_DATA_HOME (default ~/.local/share)",
        )
        if func is cmd_install:
            action.add_argument(
                "--autostart",
                action="store_true",
                help="also start Outbox hidden in the tray at login, to send due mail"
                " ($XDG_CONFIG_HOME/autostart)",
            )
        action.set_defaults(func=func)


def cmd_install(args: argparse.Namespace) -> int:
    data_dir = data_dir_for(args.prefix)
    home = home_arguments(args.home)  # a bad --home is bad usage, whatever else is missing
    command = outbox_command()
    written = install(data_dir, command, home)
    if args.autostart:
        written.append(install_autostart(autostart_dir(), command, home))
    icons = sum(1 for path in written if path.suffix in (".png", ".svg"))
    starts = shlex.join([str(command), *home, "gui"])
    print(
        f"Added Outbox to the application menu (it starts {starts}) with"
        f" {icons} icons and its description for software centres; files written:"
    )
    for path in written:
        print(path)
    _refresh_caches(data_dir)
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    data_dir = data_dir_for(args.prefix)
    for path in [*uninstall(data_dir), *uninstall_autostart(autostart_dir())]:
        print(f"removed {path}")
    _refresh_caches(data_dir)
    return 0


def home_arguments(home_arg: str | None) -> list[str]:
    """``["--home", DIR]`` when install was run for a home other than the default one.

    A menu or a login session starts the entry without the shell's ``--home``
    or ``OUTBOX_HOME``: without them in ``Exec`` it would open another (often
    empty) outbox than the one the person installed it for.
    """
    from relay.home import HOME_ENV, resolve_home

    if home_arg is None and not os.environ.get(HOME_ENV):
        return []
    return ["--home", str(resolve_home(home_arg))]


# -- where -------------------------------------------------------------------------------------


def data_dir_for(prefix: str | None, environ: dict[str, str] | None = None) -> Path:
    """``PREFIX/share``, else ``$XDG_DATA_HOME`` (if absolute, as the spec says), else default."""
    if prefix:
        return Path(prefix).expanduser().absolute() / "share"
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".local" / "share"


def autostart_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart`` (if absolute), else ``~/.config/autostart``."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "autostart"


def outbox_command() -> Path:
    """The absolute path of the ``outbox`` program running now, for the entry's ``Exec``."""
    if getattr(sys, "frozen", False):  # the PyInstaller bundle: the executable is the program
        return Path(sys.executable).absolute()
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and not argv0.endswith(".py") and os.path.basename(argv0) != "-c":
        candidate = Path(argv0)
        if os.sep not in argv0:  # run through PATH without a path (some launchers do that)
            found = shutil.which(argv0)
            candidate = Path(found) if found else candidate
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    found = shutil.which("outbox")  # ``python -m relay.cli``: the installed command, if any
    if found:
        return Path(found).absolute()
    raise DesktopError(
        "cannot find the outbox command to put in the menu entry;"
        " install Outbox (pipx install . or uv tool install .) and run outbox desktop install"
    )


def resources_dir() -> Path:
    """``resources/`` of a checkout, or ``gui/resources/`` of a wheel or the bundle."""
    root = Path(__file__).resolve().parent.parent.parent
    for candidate in (root / "gui" / "resources", root / "resources"):
        if (candidate / DESKTOP_FILE).is_file():
            return candidate
    raise DesktopError(f"the desktop entry is missing from this installation (looked in {root})")


# -- what ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    source: Path
    target: Path  # relative to the data dir


def _items(resources: Path) -> Iterator[_Item]:
    yield _Item(resources / METAINFO_FILE, Path("metainfo") / METAINFO_FILE)
    yield _Item(resources / "outbox.svg", Path("icons/hicolor/scalable/apps") / f"{APP_ID}.svg")
    hicolor = resources / "hicolor"
    for png in sorted(hicolor.glob(f"*/apps/{APP_ID}.png")):
        yield _Item(png, Path("icons/hicolor") / png.relative_to(hicolor))


def install(data_dir: Path, command: Path, home: list[str] | None = None) -> list[Path]:
    """Write the entry (``Exec`` → ``command`` and ``home``), icons and metainfo under
    ``data_dir``.

    The entry is written last, so a menu never shows it before its icon is there.
    """
    resources = resources_dir()
    written: list[Path] = []
    umask = os.umask(0o022)  # the CLI's is 077, but a desktop's other tools read these
    try:
        for item in _items(resources):
            target = data_dir / item.target
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, item.source.read_bytes())
            written.append(target)
        template = (resources / DESKTOP_FILE).read_text(encoding="utf-8")
        entry = desktop_entry(template, command, home)
        target = data_dir / "applications" / DESKTOP_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, entry.encode("utf-8"))
        written.append(target)
    except OSError as exc:
        raise DesktopError(f"cannot install into {data_dir}: {exc.strerror or exc}") from exc
    finally:
        os.umask(umask)
    return written


def uninstall(data_dir: Path) -> list[Path]:
    """Remove what ``install`` wrote under ``data_dir`` (the entry first); what was there."""
    targets = [data_dir / "applications" / DESKTOP_FILE]
    targets += [data_dir / item.target for item in _items(resources_dir())]
    removed: list[Path] = []
    for target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DesktopError(f"cannot remove {target}: {exc.strerror or exc}") from exc
        removed.append(target)
    return removed


def install_autostart(directory: Path, command: Path, home: list[str] | None = None) -> Path:
    """Write the autostart entry (``outbox gui --hidden`` at login); its path."""
    target = directory / DESKTOP_FILE
    umask = os.umask(0o022)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write(target, autostart_entry(command, home).encode("utf-8"))
    except OSError as exc:
        raise DesktopError(f"cannot install into {directory}: {exc.strerror or exc}") from exc
    finally:
        os.umask(umask)
    return target


def uninstall_autostart(directory: Path) -> list[Path]:
    """Remove the autostart entry if it is there; what was removed."""
    target = directory / DESKTOP_FILE
    try:
        target.unlink()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DesktopError(f"cannot remove {target}: {exc.strerror or exc}") from exc
    return [target]


def autostart_entry(command: Path, home: list[str] | None = None) -> str:
    """The login entry: the window starts hidden in the tray (shown where there is none)."""
    return (
        "\n".join(
            [
                "[Desktop Entry]",
                "Type=Application",
                "Version=1.4",
                "Name=Outbox",
                "Comment=Send mail that falls due, from the tray",
                f"Icon={APP_ID}",
                "Exec="
                + " ".join(map(exec_argument, [str(command), *(home or []), "gui", "--hidden"])),
                "TryExec=" + _escape_string(str(command)),
                "Terminal=false",
                "NoDisplay=true",
                "X-GNOME-Autostart-enabled=true",
            ]
        )
        + "\n"
    )


def desktop_entry(template: str, command: Path, home: list[str] | None = None) -> str:
    """The entry with ``Exec`` and ``TryExec`` naming ``command`` (quoted as the spec says),
    ``home`` (``home_arguments``) after it."""
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            rest = line.removeprefix("Exec=").split(" ", 1)[1:]  # the arguments after "outbox"
            named = map(exec_argument, [str(command), *(home or [])])
            line = "Exec=" + " ".join([*named, *rest])
        elif line.startswith("TryExec="):
            line = "TryExec=" + _escape_string(str(command))
        lines.append(line)
    return "\n".join(lines) + "\n"


def exec_argument(argument: str) -> str:
    """One ``Exec`` argument, quoted if it holds a reserved character, then string-escaped.

    Desktop Entry Specification, "The Exec key": inside double quotes, ``"``,
    `` ` ``, ``$`` and ``\\`` are escaped with a backslash; ``%`` is doubled;
    and the value as a whole is a string whose backslashes are escaped again.
    """
    argument = argument.replace("%", "%%")
    if any(char in _EXEC_RESERVED for char in argument):
        inner = "".join("\\" + char if char in '"`$\\' else char for char in argument)
        argument = f'"{inner}"'
    return _escape_string(argument)


def _escape_string(value: str) -> str:
    return value.replace("\\", "\\\\")


def _write(target: Path, data: bytes) -> None:
    """Replace ``target`` in one step (a menu may be reading it)."""
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def _refresh_caches(data_dir: Path) -> None:
    """Update the MIME cache, so "Open with" offers Outbox for .eml files at once.

    Only when the tool is there; desktops rescan on their own otherwise. No icon
    cache is written: a user-level ``icon-theme.cache`` goes stale when other
    programs add icons without updating it, and desktops find icons without one.
    """
    applications = data_dir / "applications"
    if shutil.which("update-desktop-database") is None or not applications.is_dir():
        return
    umask = os.umask(0o022)
    try:
        subprocess.run(
            ["update-desktop-database", "--quiet", str(applications)],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.umask(umask)
