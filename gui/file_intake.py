"""Messages from files: the Add messages… dialog and .eml files dropped on the window.

Each file is read, checked by ``relay.message.parse_message`` and stored on its
own (one transaction each), like ``outbox enqueue``: one bad file does not keep
the others out, and each refused file gets its one-line reason.
"""

from __future__ import annotations

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
            if path.stat().st_size > MAX_MESSAGE_OCTETS:
                raise OutboxError(
                    f"larger than {MAX_MESSAGE_OCTETS // (1024 * 1024)} MiB, not read"
                )
            snapshot = engine.enqueue(parse_message(path.read_bytes()))
        except OSError as exc:
            result.refused.append((path, exc.strerror or str(exc)))
        except OutboxError as exc:
            result.refused.append((path, str(exc)))
        else:
            result.added.append(snapshot.id)
    return result


def dropped_files(mime: QMimeData) -> list[Path]:
    """The local files in a drag: any file is offered to the parser, which judges it."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
