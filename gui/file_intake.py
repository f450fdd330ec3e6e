"""Messages from files: the Add messages… dialog and .eml files dropped on the window.

Each file is read, checked by ``relay.message.parse_message`` and stored on its
own (one transaction each), like ``outbox enqueue``: one bad file does not keep
the others out, and each refused file gets its one-line reason.

Only a regular file is opened (a link to one is followed: the person chose it).
A named pipe or a device is refused unopened: reading one would block the
window until some other program writes, or never end (``/dev/zero``). At most
one byte more than the largest message is read, so a file that grows after it
was looked at cannot hold the window either.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMimeData

from relay.engine import Engine
from relay.errors import OutboxError
from relay.message import MAX_MESSAGE_OCTETS, parse_message


@dataclass(slots=True)
class AddResult:
    """What ``add_files`` did: the ids of the messages stored, and each refused file with why."""

    added: list[int] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)


def add_files(engine: Engine, paths: Iterable[Path]) -> AddResult:
    result = AddResult()
    for path in paths:
        try:
            snapshot = engine.enqueue(parse_message(_read_message_file(path)))
        except OSError as exc:
            result.refused.append((path, exc.strerror or str(exc)))
        except OutboxError as exc:
            result.refused.append((path, str(exc)))
        else:
            result.added.append(snapshot.id)
    return result


def _read_message_file(path: Path) -> bytes:
    before = path.stat()
    if stat.S_ISDIR(before.st_mode):
        raise OutboxError("a folder, not a message file")
    if not stat.S_ISREG(before.st_mode):
        raise OutboxError("not a regular file")
    if before.st_size > MAX_MESSAGE_OCTETS:
        raise OutboxError(f"larger than {MAX_MESSAGE_OCTETS // (1024 * 1024)} MiB, not read")
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as file:
        after = os.fstat(file.fileno())
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise OutboxError("replaced while being read")
        return file.read(MAX_MESSAGE_OCTETS + 1)  # parse_message refuses one byte more


def dropped_files(mime: QMimeData) -> list[Path]:
    """The local files in a drag: any file is offered to the parser, which judges it."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
