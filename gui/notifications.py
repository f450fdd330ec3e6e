"""Desktop notifications that act: freedesktop.org notifications over D-Bus.

When mail fails or turns *uncertain*, a tray balloon is easy to miss and can
do nothing. ``DesktopNotifier`` speaks the Desktop Notifications
Specification (``org.freedesktop.Notifications`` on the session bus) with
actions where the server offers them ("Retry", "Show"); a click on one comes
back as ``retry_requested`` / ``show_requested`` carrying exactly the message
ids that notification was about.

Rules it keeps:

- never a message's body, nor its subject: only counts, and the words a
  person needs (a notification can show on a locked screen);
- where there is no session bus or no notification server, ``available`` is
  false and the window falls back to its tray balloon; nothing else changes;
- the D-Bus client is jeepney's asyncio router (a pure-Python D-Bus library
  keyring already brings on Linux), on the window's qasync loop: no thread,
  no blocking call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
APP_NAME = "Outbox"
ICON = "io.github.outbox.Outbox"
RETRY, SHOW, DEFAULT = "retry", "show", "default"
CALL_TIMEOUT_S = 5.0
EARLY_KEPT = 16

log = logging.getLogger(__name__)


class DesktopNotifier(QObject):
    """Sends desktop notifications over D-Bus and reports a click on their Retry or Show."""

    #: A person clicked "Retry": the ``list[int]`` of the notification's message ids.
    retry_requested = Signal(list)
    #: A person clicked "Show" (or the notification itself): its message ids.
    show_requested = Signal(list)
    #: The service answered (True) or is not there (False).
    availability_changed = Signal(bool)
    #: A notification went out: (summary, body).
    notified = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, bus: str = "SESSION") -> None:
        super().__init__(parent)
        self._bus = bus
        self._router: Any = None
        self._actions = False
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._about: dict[int, list[int]] = {}  # notification id -> message ids
        # A click can overtake the reply that tells us a notification's id (the server
        # may send both at once): kept until that reply, a few at most.
        self._early: dict[int, str] = {}
        self.available = False

    def start(self) -> None:
        """Connect on the running loop; without one (or a bus) stay unavailable."""
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._serve())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.available = False

    def notify(self, summary: str, body: str, message_ids: Sequence[int]) -> bool:
        """Show a notification about ``message_ids``; false when there is no server."""
        if not self.available or self._router is None:
            return False
        task = asyncio.get_running_loop().create_task(
            self._notify(summary, body, list(message_ids))
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    # -- inside ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        from jeepney import DBusAddress, MessageType, new_method_call
        from jeepney.bus_messages import MatchRule, message_bus
        from jeepney.io.asyncio import open_dbus_router

        try:
            async with contextlib.AsyncExitStack() as stack:
                router = await asyncio.wait_for(
                    stack.enter_async_context(open_dbus_router(self._bus)), CALL_TIMEOUT_S
                )
                rule = MatchRule(type="signal", interface=NAME, path=PATH)
                queue: asyncio.Queue[Any] = asyncio.Queue()
                stack.enter_context(router.filter(rule, queue=queue, bufsize=64))
                await router.send_and_get_reply(message_bus.AddMatch(rule))
                address = DBusAddress(PATH, bus_name=NAME, interface=NAME)
                reply = await asyncio.wait_for(
                    router.send_and_get_reply(new_method_call(address, "GetCapabilities")),
                    CALL_TIMEOUT_S,
                )
                if reply.header.message_type is MessageType.error:
                    log.debug("no notification server: %s", reply.body)
                    return
                self._actions = "actions" in reply.body[0]
                self._router = router
                self._set_available(True)
                # When the bus goes away (the session ends, the daemon dies) jeepney's
                # receiver ends but a filter's queue just stays empty: wait for both, or
                # the notifier would stay "available" and every later notification
                # would vanish instead of falling back to the tray.
                receiving: asyncio.Future[Any] = router._rcv_task
                while not receiving.done():
                    signal = asyncio.ensure_future(queue.get())
                    await asyncio.wait({signal, receiving}, return_when=asyncio.FIRST_COMPLETED)
                    if not signal.done():
                        signal.cancel()
                        break
                    self._on_signal(signal.result())
                log.debug("the session bus went away: notifications through the tray")
        except asyncio.CancelledError:
            raise
        except Exception:  # no bus, refused, gone: the tray it is
            log.debug("desktop notifications are not available", exc_info=True)
        finally:
            self._router = None
            self._set_available(False)

    async def _notify(self, summary: str, body: str, message_ids: list[int]) -> None:
        from jeepney import DBusAddress, MessageType, new_method_call

        actions = [RETRY, "Retry", SHOW, "Show", DEFAULT, "Show"] if self._actions else []
        address = DBusAddress(PATH, bus_name=NAME, interface=NAME)
        call = new_method_call(
            address,
            "Notify",
            "susssasa{sv}i",
            (APP_NAME, 0, ICON, summary, body, actions, {"desktop-entry": ("s", ICON)}, -1),
        )
        try:
            reply = await asyncio.wait_for(self._router.send_and_get_reply(call), CALL_TIMEOUT_S)
        except Exception:
            log.debug("a notification was not shown", exc_info=True)
            return
        if reply.header.message_type is MessageType.error:
            log.debug("a notification was refused: %s", reply.body)
            return
        notification = int(reply.body[0])
        self._about[notification] = message_ids
        self.notified.emit(summary, body)
        action = self._early.pop(notification, None)
        if action is not None:
            self._act(notification, action)

    def _on_signal(self, message: Any) -> None:
        from jeepney import HeaderFields

        member = message.header.fields.get(HeaderFields.member)
        if member == "ActionInvoked":
            notification, action = int(message.body[0]), str(message.body[1])
            if notification in self._about:
                self._act(notification, action)
            elif self._sending:  # ours, its id not known yet -- or another program's
                self._early[notification] = action
                while len(self._early) > EARLY_KEPT:
                    del self._early[next(iter(self._early))]
        elif member == "NotificationClosed":
            self._about.pop(int(message.body[0]), None)

    def _act(self, notification: int, action: str) -> None:
        ids = self._about.get(notification, [])
        if action == RETRY:
            self.retry_requested.emit(list(ids))
        elif action in (SHOW, DEFAULT):
            self.show_requested.emit(list(ids))

    def _set_available(self, available: bool) -> None:
        if available != self.available:
            self.available = available
            with contextlib.suppress(RuntimeError):  # the window (and this) is being deleted
                self.availability_changed.emit(available)
