"""Python's garbage collector, run on the GUI thread only, in short pauses.

A Qt object must be destroyed on the thread it lives on. Python's automatic
collector runs in whichever thread happens to allocate when a threshold is
crossed, and asyncio runs ``getaddrinfo`` (and any ``run_in_executor`` work) on
worker threads: a cycle holding a ``QTimer`` collected there makes Qt warn
"Timers cannot be stopped from another thread" and can crash. So, as
qutebrowser does, the window turns automatic collection off and collects on a
timer in the GUI thread, by generation, when the counts call for it.

A full collection walks every object the program keeps: 40-60 ms of frozen
window in the middle of a large flush (README, Performance). So what survives a full
collection is frozen (``gc.freeze``, as the start-up's objects are), and the
next full collection walks only what was made since. Cycles among frozen
objects are not looked for until ``collect_everything`` (after a flush,
when the window is idle) unfreezes, collects it all once and freezes again.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000


class GuiThreadCollector(QObject):
    """Python's garbage collector, run by a timer on the GUI thread, freezing what survives."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        self._timer.start()

    def collect(self) -> int:
        """Collect the generations whose counts passed their thresholds; objects freed."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        if counts[2] > thresholds[2]:
            freed = gc.collect(2)
            gc.freeze()  # the survivors are not walked again by the next one
            return freed
        for generation in (1, 0):
            if counts[generation] > thresholds[generation]:
                return gc.collect(generation)
        return 0

    def collect_everything(self) -> int:
        """One collection of every object, frozen ones too (a pause: call it when idle)."""
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        return freed

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()
