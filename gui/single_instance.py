"""One window per outbox: a second launch hands its files to the running window.

Opening an .eml file from a file manager runs ``outbox gui FILE``. When a window
on the same outbox home is already open, that launch must not open a second
window: it connects to the first one's ``QLocalServer``, sends the file names,
waits for the acknowledgement and exits. The running window adds the files to
the outbox (``MainWindow.add_files``: ``relay.message.parse_message`` and
``Outbox.add_message``, refusals explained) and comes to the front. A launch
without files just brings the running window to the front.

The rules:

- The server's name is a socket path derived from the home's absolute path,
  in ``$XDG_RUNTIME_DIR`` (private to the user) or else the temp dir with the
  user id in the name; two outboxes (two ``--home``) still get a window each.
- Deciding "am I first?" and starting to listen happen under an exclusive
  ``flock`` on a lock file next to the socket, so two launches at the same moment
  cannot both become the window, and a socket left by a crashed window (nobody
  answers) is removed and reused.
- The message is one line of JSON, ``{"files": [absolute paths]}``; the answer
  is ``ok``. Paths are made absolute by the sender: the window's working
  directory is not the second launch's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

if TYPE_CHECKING:
    from gui.main_window import MainWindow

CONNECT_TIMEOUT_MS = 1000
REPLY_TIMEOUT_MS = 5000
MAX_REQUEST_BYTES = 1024 * 1024  # a few thousand paths; more is not a file manager talking


def server_name(home: Path, environ: dict[str, str] | None = None) -> str:
    """The local socket for the window on ``home`` (a path, so Qt uses it as is)."""
    env = os.environ if environ is None else environ
    digest = hashlib.sha256(str(home.absolute()).encode()).hexdigest()[:16]
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return str(Path(runtime) / f"outbox-{digest}.sock")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return str(Path(tempfile.gettempdir()) / f"outbox-{uid}-{digest}.sock")


class SingleInstance(QObject):
    """The running window's end: a listening server that hears later launches."""

    files_received = Signal(list)  # list[Path], possibly empty: "come to the front"

    def __init__(self, server: QLocalServer) -> None:
        super().__init__()
        self._server = server
        server.setParent(self)
        server.newConnection.connect(self._on_new_connection)

    @property
    def name(self) -> str:
        return self._server.fullServerName()

    def serve(self, window: MainWindow) -> None:
        """Hand what later launches send to ``window``: add their files, show the window."""

        def deliver(paths: list[Path]) -> None:
            window.showNormal()
            window.raise_()
            window.activateWindow()
            if paths:
                window.add_files(paths)

        self.files_received.connect(deliver)

    def close(self) -> None:
        self._server.close()

    def _on_new_connection(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.setParent(self)
            buffer = bytearray()

            def read(socket: QLocalSocket = socket, buffer: bytearray = buffer) -> None:
                buffer.extend(bytes(socket.readAll().data()))
                if b"\n" not in buffer and len(buffer) < MAX_REQUEST_BYTES:
                    return
                socket.readyRead.disconnect()
                paths = _parse_request(bytes(buffer))
                socket.write(b"ok\n" if paths is not None else b"bad request\n")
                socket.disconnectFromServer()
                if paths is not None:
                    self.files_received.emit(paths)

            socket.readyRead.connect(read)
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable():
                read()


def start(home: Path, files: Sequence[Path]) -> SingleInstance | None:
    """Become the window on ``home``, or hand ``files`` to the one that is (``None``).

    A QCoreApplication must exist. Returns the listening instance when this
    process is the first; ``None`` once a running window has acknowledged the files.
    """
    name = server_name(home)
    request = json.dumps({"files": [str(Path(f).absolute()) for f in files]}).encode() + b"\n"
    with _decision_lock(name):
        if _send(name, request):
            return None
        QLocalServer.removeServer(name)  # a socket nobody answers on: a window that crashed
        server = QLocalServer()
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(name):
            # Not fatal: the window still works, later launches just open their own.
            print(f"outbox: cannot listen on {name}: {server.errorString()}", file=sys.stderr)
        return SingleInstance(server)


def _send(name: str, request: bytes) -> bool:
    """Whether a running window took ``request`` (connected, sent, answered ``ok``)."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    try:
        socket.write(request)
        if not socket.waitForBytesWritten(REPLY_TIMEOUT_MS):
            return False
        reply = bytearray()
        while b"\n" not in reply:
            if not socket.waitForReadyRead(REPLY_TIMEOUT_MS):
                break
            reply.extend(bytes(socket.readAll().data()))
        return bytes(reply).startswith(b"ok\n")
    finally:
        socket.abort()


def _parse_request(data: bytes) -> list[Path] | None:
    try:
        message = json.loads(data.split(b"\n", 1)[0])
    except (UnicodeDecodeError, ValueError):
        return None
    files = message.get("files") if isinstance(message, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return [Path(f) for f in files]


@contextlib.contextmanager
def _decision_lock(name: str) -> Iterator[None]:
    """Serialise "is a window there? else listen" between launches (Unix: ``flock``)."""
    try:
        import fcntl
    except ImportError:  # Windows: named pipes refuse a second server by themselves
        yield
        return
    fd = os.open(name + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
