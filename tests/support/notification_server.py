"""A notification server of our own: org.freedesktop.Notifications on a private D-Bus.

``running_notification_server(tmp)`` starts a private ``dbus-daemon`` (no
service directories: nothing is activated behind our back) and this module
as a program on it. The program owns ``org.freedesktop.Notifications``,
answers ``GetCapabilities`` (``actions``, ``body``), ``GetServerInformation``,
``Notify`` and ``CloseNotification`` as the Desktop Notifications
Specification says, writes every ``Notify`` as one JSON line to its log, and
clicks an action by itself when told: ``click`` names the action key it
invokes on the first notification, if that offers it (``ActionInvoked``,
then ``NotificationClosed`` with reason 2, "dismissed by the user").

Both processes stop when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.secret_service import _BUS_CONFIG, _log, _stop, _wait_for_owner

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


@dataclass(frozen=True)
class NotificationServer:
    bus_address: str
    log: Path
    #: The private bus daemon (a test may end it: the session bus going away).
    bus: subprocess.Popen[bytes]

    def stop_bus(self) -> None:
        _stop(self.bus)

    def notifications(self) -> list[dict[str, Any]]:
        """Every ``Notify`` the server took, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text("utf-8").splitlines() if line]


@contextlib.contextmanager
def running_notification_server(
    *, click: str | None = None, timeout_s: float = 30.0
) -> Iterator[NotificationServer]:
    base = Path(tempfile.mkdtemp(prefix="outbox-nt-"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        config = base / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=base / "bus"), "utf-8")
        with (base / "dbus.log").open("wb") as log:
            bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        started.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        if not address:
            raise RuntimeError(f"dbus-daemon did not start: {_log(base / 'dbus.log')}")
        calls = base / "notify.jsonl"
        with (base / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "tests.support.notification_server", address,
                 str(calls), click or ""],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=Path(__file__).resolve().parents[2],
            )  # fmt: skip
        started.append(server)
        try:
            _wait_for_owner(address, NAME, timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"the notification server did not start: {_log(base / 'server.log')}"
            ) from None
        yield NotificationServer(address, calls, bus)
    finally:
        for process in reversed(started):
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


def serve(address: str, log: Path, click: str) -> None:
    """The server's loop (runs until its process is terminated)."""
    from jeepney import HeaderFields, MessageType, new_method_return, new_signal
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import DBusAddress

    emitter = DBusAddress(PATH, interface=NAME)
    with open_dbus_connection(bus=address) as connection:
        connection.send_and_get_reply(message_bus.RequestName(NAME))
        next_id = 0
        while True:
            message = connection.receive()
            if message.header.message_type is not MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member == "GetCapabilities":
                connection.send(new_method_return(message, "as", (["actions", "body"],)))
            elif member == "GetServerInformation":
                reply = ("outbox-test", "outbox", "1", "1.2")
                connection.send(new_method_return(message, "ssss", reply))
            elif member == "Notify":
                app, _replaces, icon, summary, body, actions, hints, _timeout = message.body
                next_id += 1
                with log.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({
                        "id": next_id, "app_name": app, "icon": icon, "summary": summary,
                        "body": body, "actions": actions, "hints": sorted(hints),
                        "signature": message.header.fields.get(HeaderFields.signature),
                    }) + "\n")  # fmt: skip
                connection.send(new_method_return(message, "u", (next_id,)))
                if click and click in actions[::2] and next_id == 1:  # the first one only
                    connection.send(new_signal(emitter, "ActionInvoked", "us", (next_id, click)))
                    connection.send(new_signal(emitter, "NotificationClosed", "uu", (next_id, 2)))
            elif member == "CloseNotification":
                connection.send(new_method_return(message))
                connection.send(
                    new_signal(emitter, "NotificationClosed", "uu", (message.body[0], 3))
                )


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
