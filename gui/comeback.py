"""Noticing that the network came back, or that the machine woke from sleep.

Mail deferred because the network was gone (a laptop on a train, a closed
lid) should go as soon as it can, not at the end of a back-off that grew
while nothing could work. ``ComebackWatch`` says when that moment is:

- Qt's ``QNetworkInformation`` reports reachability where the platform has a
  backend (on Linux: NetworkManager, ConnMan or GLib's network monitor): a
  change to ``Online`` from anything less is a comeback. Without a backend
  there is simply no such report; nothing else changes.
- A wake from sleep is seen as the wall clock running ahead of the monotonic
  clock, which stands still while the machine is suspended (Linux's
  ``CLOCK_MONOTONIC``): checked every ``TICK_S``, a gap over ``SLEEP_GAP_S``
  is a comeback. No D-Bus, no logind: it works on any desktop, and both
  clocks are injected for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QNetworkInformation

TICK_S = 30.0
SLEEP_GAP_S = 60.0
NETWORK = "network"
WAKE = "wake"

log = logging.getLogger(__name__)


class ComebackWatch(QObject):
    """Says when the network came back or the machine woke, so deferred mail can go at once."""

    #: The network is back, or the machine woke: ``"network"`` or ``"wake"``.
    came_back = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        use_backend: bool = True,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._wall = wall
        self._monotonic = monotonic
        self._last = (wall(), monotonic())
        self._online = True
        self.backend: str | None = None
        if use_backend:
            self._watch_reachability()
        self._tick = QTimer(self)
        self._tick.setInterval(int(TICK_S * 1000))
        self._tick.timeout.connect(self.check_sleep)
        self._tick.start()

    def _watch_reachability(self) -> None:
        try:
            loaded = QNetworkInformation.loadBackendByFeatures(
                QNetworkInformation.Feature.Reachability
            )
            info = QNetworkInformation.instance() if loaded else None
        except Exception:  # a broken plug-in must not keep the window from starting
            log.debug("no network information backend", exc_info=True)
            info = None
        if info is None:
            return
        self.backend = info.backendName()
        self._online = info.reachability() is QNetworkInformation.Reachability.Online
        info.reachabilityChanged.connect(self.reachability_changed)

    def reachability_changed(self, reachability: QNetworkInformation.Reachability) -> None:
        """What the backend reports (and what a test drives)."""
        online = reachability is QNetworkInformation.Reachability.Online
        if online and not self._online:
            self.came_back.emit(NETWORK)
        self._online = online

    def check_sleep(self) -> None:
        """A comeback if the wall clock ran ahead of the monotonic one since the last check."""
        wall, monotonic = self._wall(), self._monotonic()
        gap_s = (wall - self._last[0]) - (monotonic - self._last[1])
        self._last = (wall, monotonic)
        if gap_s > SLEEP_GAP_S:
            self.came_back.emit(WAKE)

    def stop(self) -> None:
        self._tick.stop()
