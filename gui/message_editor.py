"""Open in Editor: a held or queued message, edited in the person's own editor.

The stored message is copied to a private temporary ``.eml`` file and opened
with ``$VISUAL``, else ``$EDITOR``, else whatever ``xdg-open`` picks for the
file. The editor runs as a ``QProcess``: the window (and a flush) go on while
it is open. When it exits, the copy is read back and replaces the stored
message only if ``relay.message.parse_message`` accepts it, as ``outbox
enqueue`` would (local names through the message's account), and only if the
message is still held or queued: ``Outbox.replace_message`` checks that and
writes body, envelope and recipients in one transaction. Anything else changes
nothing and the person is told why; a copy that was not used stays where it
was, so no edit is lost.

Bcc recipients are in the envelope but no longer in the stored header (they
were stripped when the message was stored): the copy carries them in a Bcc
field, so they can be seen and edited, and storing the copy strips it again.

``xdg-open`` hands the file over and returns at once: then the window asks
whether to use the edited copy once the person has saved it; Cancel ends the
edit and keeps the copy where it is.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtWidgets import QWidget

from gui.confirm import ask, tell
from relay.address import domain_key
from relay.engine import Engine, StoreError
from relay.errors import ConfigError, InvalidMessage, OutboxError
from relay.localnames import LocalNames
from relay.machineproblems import explain
from relay.message import parse_message
from relay.states import MessageState

EDITABLE = frozenset({MessageState.HELD, MessageState.QUEUED})
#: What opens the copy when neither ``$VISUAL`` nor ``$EDITOR`` is set.
DESKTOP_OPENER = "xdg-open"
#: How long quitting waits for an editor asked to end (then it is killed).
QUIT_GRACE_MS = 2000


def editor_command(environ: Mapping[str, str]) -> list[str]:
    """``$VISUAL``, else ``$EDITOR`` (split as a shell would), else ``xdg-open``."""
    for name in ("VISUAL", "EDITOR"):
        words = shlex.split(environ.get(name, ""))
        if words:
            return words
    return [DESKTOP_OPENER]


def editable_copy(raw: bytes, recipients: Sequence[str], named: Sequence[str]) -> bytes:
    """``raw`` with a Bcc field naming the ``recipients`` its header fields do not (``named``)."""
    in_header = {domain_key(address) for address in named}
    hidden = [address for address in recipients if domain_key(address) not in in_header]
    if not hidden:
        return raw
    end = raw.find(b"\r\n\r\n")
    at = len(raw) if end < 0 else end + 2
    field = ("Bcc: " + ",\r\n ".join(hidden) + "\r\n").encode("utf-8")
    return raw[:at] + field + raw[at:]


@dataclass
class _Edit:
    """One Open in Editor under way: the copy's file, the editor's process and what to keep."""

    message_id: int
    folder: Path
    path: Path
    original: bytes
    local: LocalNames
    process: QProcess
    #: The envelope to keep (sender, recipients) when it was not the header's: a
    #: message given its recipients apart from its header (``sendmail RCPT`` without
    #: ``-t``, ``-f``) keeps them, whatever the edited header names. None: the edited
    #: header's own addresses (plus the Bcc field the copy shows) are the envelope.
    envelope: tuple[str, tuple[str, ...]] | None = None

    def copy_changed(self) -> bool:
        """Whether the copy now differs from what was written (an unreadable one: no)."""
        try:
            return self.path.read_bytes() != self.original
        except OSError:
            return False


class MessageEditor(QObject):
    """Runs one editor per message being edited and applies what comes back."""

    #: A line for the status bar (edited, unchanged).
    notice = Signal(str)
    #: An edit is over, applied or not (its message id).
    done = Signal(int)

    def __init__(self, engine: Engine, parent: QWidget) -> None:
        super().__init__(parent)
        self._engine = engine
        self._outbox = engine.outbox
        self._home = engine.home
        self._window = parent
        self._edits: dict[int, _Edit] = {}

    def editing(self, message_id: int) -> bool:
        return message_id in self._edits

    def open(self, message_id: int) -> None:
        """Open ``message_id``'s copy in the editor (if it is held or queued)."""
        if message_id in self._edits:
            self.notice.emit(f"Message {message_id} is already open in your editor.")
            return
        try:
            snapshot = self._outbox.get(message_id)
            if snapshot.state not in EDITABLE:
                raise OutboxError(
                    f"message {message_id} is {snapshot.state}: only a held or queued"
                    " message can be edited"
                )
            raw = self._outbox.raw(message_id)
        except OutboxError as exc:
            self._refuse(message_id, str(exc))
            return
        local = LocalNames(self._home, account=snapshot.account)
        try:
            named: Sequence[str] = parse_message(raw, local=local).recipients
        except (InvalidMessage, ConfigError):
            named = ()
        stored = [r.address for r in snapshot.recipients]
        header_keys = {domain_key(address) for address in named}
        # The envelope followed the header when every address the header names is a
        # recipient (the others are Bcc, which the copy shows again); otherwise it was
        # given apart from the header, and an edit keeps it as it is.
        envelope: tuple[str, tuple[str, ...]] | None = None
        if not header_keys <= {domain_key(address) for address in stored}:
            envelope = (snapshot.sender, tuple(stored))
            named = stored
        original = editable_copy(raw, stored, named)
        folder = Path(tempfile.mkdtemp(prefix="outbox-edit-"))
        path = folder / f"message-{message_id}.eml"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(original)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._refuse(message_id, f"cannot write a copy to edit: {exc.strerror or exc}")
            return
        command = editor_command(os.environ)
        process = QProcess(self)
        process.setProgram(command[0])
        process.setArguments([*command[1:], str(path)])
        process.setProcessChannelMode(QProcess.ProcessChannelMode.ForwardedChannels)
        edit = _Edit(message_id, folder, path, original, local, process, envelope)
        self._edits[message_id] = edit
        process.finished.connect(
            lambda code, status: self._editor_exited(edit, command, code, status)
        )
        process.errorOccurred.connect(lambda error: self._editor_failed(edit, command, error))
        process.start()
        self.notice.emit(f"Message {message_id} is open in {command[0]}.")

    def _editor_failed(self, edit: _Edit, command: list[str], error: QProcess.ProcessError) -> None:
        if error is not QProcess.ProcessError.FailedToStart:
            return  # a crash ends with finished() as well
        self._end(edit, keep=False)
        self._refuse(
            edit.message_id,
            f"the editor could not be started ({shlex.join(command)}):"
            f" {edit.process.errorString()}",
            "Set VISUAL or EDITOR to an editor that opens its own window.",
        )

    def _editor_exited(
        self, edit: _Edit, command: list[str], code: int, status: QProcess.ExitStatus
    ) -> None:
        if edit.message_id not in self._edits:
            return
        if status is not QProcess.ExitStatus.NormalExit or code != 0:
            # Not used, but what the person saved before the editor failed is kept.
            changed = edit.copy_changed()
            self._end(edit, keep=changed)
            self._refuse(
                edit.message_id,
                f"the editor ({command[0]}) ended with status {code}",
                f"Your edited copy is kept in {edit.path}." if changed else "",
            )
            return
        if command == [DESKTOP_OPENER]:
            ask(
                self._window,
                name="use_edited_copy",
                title="Use the edited message?",
                text=f"Message {edit.message_id} is open in another application.",
                detail=f"Save it there ({edit.path}), then click Use Edited Copy.",
                accept_text="Use Edited Copy",
                on_accept=lambda: self._apply(edit),
                on_decline=lambda: self._decline(edit),
            )
            return
        self._apply(edit)

    def _apply(self, edit: _Edit) -> None:
        message_id = edit.message_id
        try:
            data = edit.path.read_bytes()
        except OSError as exc:
            self._end(edit, keep=False)
            self._refuse(message_id, f"the edited copy cannot be read: {exc.strerror or exc}")
            return
        if data == edit.original:
            self._end(edit, keep=False)
            self.notice.emit(f"Message {message_id} was not changed in the editor.")
            return
        kept = f"Your edited copy is kept in {edit.path}."
        try:
            if edit.envelope is None:
                parsed = parse_message(data, local=edit.local)
            else:
                sender, recipients = edit.envelope
                parsed = parse_message(
                    data,
                    sender=sender,
                    recipients=recipients,
                    from_headers=False,
                    local=edit.local,
                )
            self._engine.replace(message_id, parsed)
        except (OutboxError, StoreError) as exc:
            reason = str(exc)
            if isinstance(exc, StoreError):
                problem = explain(exc, store=self._outbox.path, home=self._home)
                if problem is None:
                    raise
                reason = str(problem)
            elif isinstance(exc, InvalidMessage | ConfigError):
                reason = f"the edited copy is not a message Outbox can send: {exc}"
            self._end(edit, keep=True)
            self._refuse(message_id, reason, kept)
            return
        self._end(edit, keep=False)
        self.notice.emit(f"Message {message_id} was replaced by your edited copy.")

    def close(self) -> None:
        """The window is quitting: end each editor still open and keep its copy.

        A ``QProcess`` still running when it is destroyed is killed (SIGKILL), which
        loses what the editor had not saved. Asked to end instead (SIGTERM), an
        editor can save or preserve it; the copy is not used and, when it was
        changed, standard error says where it is (the window is gone).
        """
        for edit in list(self._edits.values()):
            process = edit.process
            process.finished.disconnect()
            process.errorOccurred.disconnect()
            self._edits.pop(edit.message_id, None)
            process.terminate()
            if not process.waitForFinished(QUIT_GRACE_MS):
                process.kill()
                process.waitForFinished(QUIT_GRACE_MS)
            if not edit.copy_changed():
                shutil.rmtree(edit.folder, ignore_errors=True)
                continue
            print(
                f"outbox: message {edit.message_id} was open in your editor and is not"
                f" changed; your edited copy is kept in {edit.path}",
                file=sys.stderr,
            )

    def _decline(self, edit: _Edit) -> None:
        """Not used: the edit is over (the message can be opened again), its copy kept."""
        self._end(edit, keep=True)
        self.notice.emit(
            f"Message {edit.message_id} was not changed. Your edited copy is kept in {edit.path}."
        )

    def _end(self, edit: _Edit, *, keep: bool) -> None:
        self._edits.pop(edit.message_id, None)
        edit.process.deleteLater()
        if not keep:
            shutil.rmtree(edit.folder, ignore_errors=True)
        self.done.emit(edit.message_id)

    def _refuse(self, message_id: int, reason: str, detail: str = "") -> None:
        text = f"Message {message_id} was not changed: {reason.rstrip('.')}."
        self.notice.emit(text)
        tell(self._window, name="edit_not_used", title="Message not changed", text=text,
             detail=detail)  # fmt: skip
