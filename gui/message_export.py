"""Save as .eml: one stored message, exactly as it will be sent, into a file a person picks.

The bytes are the store's (``Outbox.raw``), so what a mail client or an archive
opens is what the server gets. The file is written next to its target and
renamed over it, so a full disk or a crash never leaves half a message under
the chosen name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QWidget

from relay.store.outbox import Outbox


def save_eml(outbox: Outbox, message_id: int, target: Path) -> None:
    """Write message ``message_id`` to ``target`` atomically (raises ``OSError``)."""
    data = outbox.raw(message_id)
    fd, temporary = tempfile.mkstemp(prefix=".outbox-", suffix=".eml", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def suggested_name(message_id: int, subject: str) -> str:
    """``Q3 report.eml``: the subject without characters file systems refuse, or the id.

    Invisible characters go too: a bidirectional override in a subject would
    make ``invoice\\u202efdp.exe.eml`` show as ``invoicelme.exe.pdf``.
    """
    printable = "".join(c if c.isprintable() else " " for c in subject)
    cleaned = " ".join(re.sub(r'[/\\:*?"<>|]', " ", printable).split())
    cleaned = cleaned.strip(" .")[:80].strip()
    return f"{cleaned or f'message {message_id}'}.eml"


def choose_target(
    parent: QWidget, message_id: int, subject: str, on_chosen: Callable[[Path], None]
) -> QFileDialog:
    """A non-blocking Save dialog for one message; ``on_chosen(path)`` when a file is picked."""
    start = Path.home() / suggested_name(message_id, subject)
    dialog = QFileDialog(parent, "Save message as .eml", str(start))
    dialog.setObjectName("save_eml_dialog")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setDefaultSuffix("eml")
    dialog.setNameFilters(["E-mail messages (*.eml)", "All files (*)"])
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.fileSelected.connect(lambda name: on_chosen(Path(name)))
    dialog.open()
    return dialog
