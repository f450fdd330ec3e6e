"""Problems of the machine, each turned into one plain line and a sysexits code.

A full disk, a read-only file system, a damaged or busy store, a home that
cannot be made: none of these is a bug in Outbox, so none may end in a
traceback. The command line (``relay.cli``) and the window (``gui.app``)
hand whatever ``sqlite3`` or the operating system raised to :func:`explain`,
which names the file, what is wrong with it and what to do, and picks the
exit status a calling program understands (``sysexits.h``):

========================  ====  ==============================================
problem                   code  why that code
========================  ====  ==============================================
store busy (locked)       75    EX_TEMPFAIL: the caller keeps the message and
                                retries (``sendmail`` first tries the drop
                                folder, see ``relay.dropdelivery``)
disk full                 75    EX_TEMPFAIL: freeing space fixes it; nothing
                                was half-stored (every change is one
                                transaction)
store damaged / not one   74    EX_IOERR, with a pointer to ``outbox check``
read-only file system     74    EX_IOERR
permission denied         77    EX_NOPERM
home cannot be made       73    EX_CANTCREAT
no home to be found       78    EX_CONFIG (``HOME`` unset and no ``--home``)
other I/O error           74    EX_IOERR
========================  ====  ==============================================

This module is imported only once something went wrong, so its cost never
touches ``outbox sendmail``'s start-up.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

from relay.errors import ConfigError, OutboxError

EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77

#: Where a person reads how to back up and repair a store.
REPAIR_POINTER = "see 'Backup and repair' in Outbox's README"

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


class MachineProblem(OutboxError):
    """Something about the machine (disk, file system, another process), not a mistake."""

    exit_code = EX_IOERR


class StoreDamaged(MachineProblem):
    """The store file is not an SQLite database, is truncated, or fails its checks."""

    exit_code = EX_IOERR


class StoreBusy(MachineProblem):
    """Another process held the store's write lock for longer than we wait."""

    exit_code = EX_TEMPFAIL


class DiskFull(MachineProblem):
    exit_code = EX_TEMPFAIL


class ReadOnlyFileSystem(MachineProblem):
    exit_code = EX_IOERR


class PermissionDenied(MachineProblem):
    exit_code = EX_NOPERM


class HomeUnusable(MachineProblem):
    """The outbox's home cannot be created or is not a directory."""

    exit_code = EX_CANTCREAT


class StoreTooNew(MachineProblem):
    """The store was written by a newer Outbox (a schema this one does not know)."""

    exit_code = ConfigError.exit_code  # EX_CONFIG: this program does not fit the data

    def __init__(self, store: str, version: int, known: int) -> None:
        super().__init__(
            f"{store}: this outbox was written by a newer Outbox (store schema {version};"
            f" this one knows up to {known}) and is left untouched: upgrade Outbox, or"
            " choose another home with --home"
        )


class HomeUnknown(ConfigError):
    """No home given and none to be derived (``HOME`` unset, a user without a home)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"cannot tell where the outbox lives ({detail}): set HOME, OUTBOX_HOME,"
            " or pass --home DIR"
        )


def store_busy(store: Path, waited_s: float) -> StoreBusy:
    return StoreBusy(
        f"{store}: the outbox store is busy (another program has held its write lock for"
        f" {waited_s:g} s); try again later -- a flush stopped with Ctrl-Z holds it until"
        " resumed (fg)"
    )


def explain(
    exc: BaseException, *, store: Path | None = None, home: Path | None = None
) -> MachineProblem | None:
    """The problem ``exc`` reveals, as one line fit to show; None if it is not the machine's.

    ``store`` is the store file the failing code was using (named for
    ``sqlite3`` errors, which do not say); ``home`` the outbox's home, so a
    failure to create it is told as such.
    """
    if isinstance(exc, MachineProblem):
        return exc
    if isinstance(exc, sqlite3.Error):
        return _explain_sqlite(exc, store, home)
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        return _explain_os(exc, home)
    return None


def _explain_sqlite(
    exc: sqlite3.Error, store: Path | None, home: Path | None
) -> MachineProblem | None:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    where = str(store) if store is not None else "the outbox store"
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in text:
        from relay.store.database import BUSY_TIMEOUT_S

        return store_busy(store or Path("outbox.sqlite3"), BUSY_TIMEOUT_S)
    if primary == _SQLITE_FULL or (store is not None and disk_is_full(store)):
        return disk_full(store or home or Path.cwd())
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text:
        return StoreDamaged(
            f"{where}: the outbox store is damaged ({text}); run `outbox check` to see what"
            f" can be read and `outbox check --repair` to set the file aside and start a"
            f" fresh store with every message still readable ({REPAIR_POINTER})"
        )
    if primary == _SQLITE_READONLY or (store is not None and _read_only(store)):
        if store is not None and not _read_only(store):
            return PermissionDenied(
                f"{where}: cannot write the outbox store ({text}): {_not_yours(store)};"
                " give it back to this user (chmod u+w, chown), or choose another home"
                " with --home"
            )
        return ReadOnlyFileSystem(
            f"{where}: cannot write the outbox store ({text}): its file system is read-only"
            " or the file is not writable; remount it read-write, or choose another home"
            " with --home"
        )
    if primary == _SQLITE_PERM:
        return PermissionDenied(f"{where}: permission denied ({text})")
    if primary == _SQLITE_CANTOPEN or "unable to open" in text:
        if store is not None and store.is_dir():
            return StoreDamaged(
                f"{where} is a directory, not the outbox store; move it away (or choose"
                " another home with --home)"
            )
        if store is not None and home is not None and not os.access(home, os.W_OK):
            return PermissionDenied(
                f"{where}: cannot open the outbox store: its folder {home} is not writable"
            )
        if store is not None and store.exists() and not os.access(store, os.R_OK | os.W_OK):
            return PermissionDenied(
                f"{where}: cannot open the outbox store: {_not_yours(store)}; give it back to"
                " this user (chmod u+rw, chown), or choose another home with --home"
            )
        return MachineProblem(f"{where}: cannot open the outbox store ({text})")
    if primary == _SQLITE_IOERR:
        return MachineProblem(
            f"{where}: the disk reported an error while reading or writing the outbox"
            f" store ({text}); check the disk (dmesg) and try again"
        )
    return None


def _not_yours(store: Path) -> str:
    """Why this user may not write ``store``: its owner and mode, or its folder's."""
    for path in (store, store.parent):
        try:
            info = path.stat()
        except OSError:
            continue
        if not os.access(path, os.W_OK):
            what = "it" if path == store else f"its folder {path}"
            return (
                f"{what} may not be written by this user (owner uid {info.st_uid},"
                f" mode {info.st_mode & 0o7777:04o})"
            )
    return "this user may not write it"


def _explain_os(exc: OSError, home: Path | None) -> MachineProblem:
    path = Path(os.fsdecode(exc.filename)) if exc.filename is not None else None
    where = str(path) if path is not None else "a file of the outbox"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(path or home or Path.cwd())
    if home is not None and path is not None and (path == home or path in home.parents):
        if exc.errno == errno.EEXIST and not path.is_dir():
            reason = "not a directory"
        return HomeUnusable(
            f"cannot use {home} as the outbox's home ({where}: {reason}); choose another"
            " with --home DIR or OUTBOX_HOME"
        )
    if exc.errno == errno.EROFS:
        return ReadOnlyFileSystem(
            f"{where}: the file system is read-only; remount it read-write, or choose"
            " another home with --home"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"{where}: permission denied")
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return HomeUnusable(f"{where}: {reason}; move it away or choose another home with --home")
    return MachineProblem(f"{where}: {reason}")


def disk_full(path: Path) -> DiskFull:
    return DiskFull(
        f"{path}: the disk is full; free some space and try again (nothing was half-stored)"
    )


def disk_is_full(path: Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no block left for us.

    SQLite reports a full disk as SQLITE_FULL when a write fails, but as a
    plain "disk I/O error" when it cannot grow its shared-memory file: this
    tells the two apart.
    """
    for candidate in (path, *path.parents):
        try:
            info = os.statvfs(candidate)
        except OSError:
            continue
        return info.f_bavail * info.f_frsize < 64 * 1024
    return False


def _read_only(path: Path) -> bool:
    for candidate in (path, *path.parents):
        try:
            info = os.statvfs(candidate)
        except OSError:
            continue
        return bool(info.f_flag & os.ST_RDONLY)
    return False


def quiet_machine_problems(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event loop's exception handler that leaves a machine's problem to the caller.

    A flush that ends on a full disk has sibling sessions whose own ends hit
    the same full disk; asyncio would print each as "Task exception was never
    retrieved" or "unhandled exception during asyncio.run() shutdown", with a
    traceback. The flush's caller already says it once, in one line.
    """
    exc = context.get("exception")
    if isinstance(exc, BaseException) and explain(exc) is not None:
        return
    loop.default_exception_handler(context)
