"""The drop folder: ``<home>/drop/``, a Maildir-style inbox for the outbox.

A program that cannot run ``outbox sendmail`` writes a message into
``drop/tmp/`` and, once it is complete, renames it into ``drop/new/`` (rename
is atomic, so the importer never sees half a message). Every flush and the
window's start-up call :func:`import_drop_folder`, which:

- takes ``drop/.import.lock`` (``flock``), so two importers never take the
  same file;
- looks at each entry of ``new/`` whose name does not start with a dot, in
  name order (Maildir names start with the delivery time);
- never follows a symbolic link and never opens a FIFO, socket or device: the
  entry is ``lstat``-ed, only a regular file is opened, with ``O_NOFOLLOW``
  and ``O_NONBLOCK``, and the opened file must be the one that was looked at;
- refuses files over ``MAX_DROP_FILE_OCTETS`` without reading them;
- stores a good message (one transaction) and only then removes its file,
  so a crash never loses it. The same transaction records the file's
  identity (name, device, inode, size, modification time) in the store; a
  crash between the commit and the removal leaves that record, and the next
  import removes the file instead of storing it twice. Records whose file is
  gone are forgotten at the start of every import;
- takes a message's envelope from its first line when it starts with
  ``X-Outbox-Envelope:`` (written by ``relay.dropdelivery`` when intake found
  the store busy), else from its header;
- moves a bad one to ``drop/rejected/`` with ``NAME.error`` beside it, holding
  the one-line reason.

The outcome is a value, :class:`DropImport`; nothing here raises for a bad file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from relay.dropdelivery import Envelope, drop_paths, split_envelope
from relay.errors import ConfigError, InvalidMessage
from relay.localnames import LocalNames
from relay.message import MAX_MESSAGE_OCTETS, ParsedMessage, parse_message
from relay.store.outbox import Outbox

#: The largest file the drop folder imports; bigger ones are rejected unread.
MAX_DROP_FILE_OCTETS = MAX_MESSAGE_OCTETS

LOCK_NAME = ".import.lock"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A file moved to ``rejected/``: its name there, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class DropImport:
    """What one import did: the ids of the stored messages, the files refused."""

    imported: tuple[int, ...] = ()
    rejected: tuple[Rejection, ...] = ()


class _Refused(Exception):
    """A drop file that will not be imported; the text says why."""


def import_drop_folder(outbox: Outbox, home: Path) -> DropImport:
    """Import every complete message waiting in ``<home>/drop/new/``."""
    drop, _tmp, new, rejected_dir = drop_paths(home)
    imported: list[int] = []
    rejected: list[Rejection] = []
    local = LocalNames(home)  # a local sender or recipient, as sendmail resolves them
    lock_fd = os.open(drop / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        identities = {
            name: drop_file_identity(new / name)
            for name in sorted(os.listdir(new))
            if not name.startswith(".")
        }
        stored = outbox.stored_drop_files()
        if stale := stored - set(identities.values()):
            outbox.forget_drop_files(sorted(stale))
        removed: list[str] = []
        for name, identity in identities.items():
            path = new / name
            if identity in stored:  # committed before a crash that stopped its removal
                with suppress(FileNotFoundError):
                    os.unlink(path)
                removed.append(identity)
                continue
            try:
                parsed, envelope = _parse_drop_file(_read_regular_file(path), local)
            except FileNotFoundError:
                continue  # gone meanwhile (removed by its writer)
            except (_Refused, InvalidMessage, ConfigError) as exc:
                with suppress(FileNotFoundError):  # unless it is gone meanwhile
                    rejected.append(_reject(path, rejected_dir, str(exc)))
                continue
            if envelope is None:
                snapshot = outbox.add_message(parsed, drop_file=identity)
            else:
                snapshot = outbox.add_message(
                    parsed,
                    account=envelope.account,
                    drop_file=identity,
                    dsn=envelope.dsn,
                    not_before=envelope.not_before,
                )
            imported.append(snapshot.id)
            os.unlink(path)
            removed.append(identity)
        if removed:  # one commit for all; a crash before it is tidied up next time
            outbox.forget_drop_files(removed)
    finally:
        os.close(lock_fd)  # releases the flock
    return DropImport(tuple(imported), tuple(rejected))


def _parse_drop_file(data: bytes, local: LocalNames) -> tuple[ParsedMessage, Envelope | None]:
    """The message of a drop file, and the envelope line it starts with (if any).

    Without an envelope line (``relay.dropdelivery``) the envelope comes from
    the header; with one, it was resolved already when ``sendmail`` took it.
    """
    try:
        envelope, message = split_envelope(data)
    except ValueError as exc:
        raise _Refused(str(exc)) from exc
    if envelope is None:
        return parse_message(message, local=local), None
    parsed = parse_message(
        message,
        sender=envelope.sender,
        recipients=envelope.recipients,
        from_headers=False,
        local=local,
    )
    return parsed, envelope


def drop_file_identity(path: Path) -> str:
    """Who a drop file is: its name and what ``lstat`` says (``""`` when it is gone)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return ""
    # A name that is not UTF-8 (bytes any writer may use) cannot go into SQLite
    # as it is; its bytes are written out. The inode keeps identities apart.
    name = os.fsencode(path.name).decode("utf-8", "backslashreplace")
    return f"{name}\0{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def _read_regular_file(path: Path) -> bytes:
    before = os.lstat(path)  # FileNotFoundError: the caller skips the entry
    if stat.S_ISLNK(before.st_mode):
        raise _Refused("a symbolic link, not a message file")
    if not stat.S_ISREG(before.st_mode):
        raise _Refused("not a regular file")
    if before.st_size > MAX_DROP_FILE_OCTETS:
        raise _Refused(f"larger than {MAX_DROP_FILE_OCTETS // (1024 * 1024)} MiB")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused("a symbolic link, not a message file") from exc
        raise _Refused(f"cannot read: {exc.strerror or exc}") from exc
    try:
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(
            after.st_mode
        ):
            raise _Refused("replaced while being read")
        chunks: list[bytes] = []
        remaining = MAX_DROP_FILE_OCTETS + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise _Refused(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_DROP_FILE_OCTETS:
        raise _Refused(f"larger than {MAX_DROP_FILE_OCTETS // (1024 * 1024)} MiB")
    return data


def _reject(path: Path, rejected_dir: Path, reason: str) -> Rejection:
    """Move ``path`` (whatever it is; rename never follows a link) into
    ``rejected/`` under a name free for it and its ``.error`` file."""
    target = _free_name(rejected_dir, path.name)
    os.rename(path, rejected_dir / target)
    error_path = rejected_dir / (target + ".error")
    fd = os.open(error_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as stream:
        stream.write(reason + "\n")
    return Rejection(target, reason)


def _free_name(directory: Path, name: str) -> str:
    candidate = name
    number = 1
    while os.path.lexists(directory / candidate) or os.path.lexists(
        directory / (candidate + ".error")
    ):
        candidate = f"{name}.{number}"
        number += 1
    return candidate
