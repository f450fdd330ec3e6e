"""Python's garbage collector, run on the GUI thread only, in short pauses.

A Qt object must be destroyed on the thread it lives on. Python's automatic
collector runs in whichever thread happens to allocate when a threshold is
crossed, and asyncio runs ``getaddrinfo`` (and any ``run_in_executor`` work) on
worker threads: a cycle holding a ``QTimer`` collected there makes Qt warn
"Timers cannot be stopped from another thread" and can crash. So, as
qutebrowser does, the window turns automatic collection off and collects on a
timer in the GUI thread, by generation, when the counts call for it.

A full collection walks every object the program keeps: 40-60 ms of frozen
window in the middle of a large flush (README, Performance). A collection of
the middle generation walks every survivor of the young collections since the
last freeze: during a flush of 10,000 messages (whose results the flush keeps
to its end) that one took 13.7 ms, ten seconds in, against about 1.5 ms for a
young one. So what survives any collection is frozen (``gc.freeze``, as the
start-up's objects are), and each collection walks only what was made since
the one before: about a second's worth. Objects that die by their reference
count are freed as before, frozen or not; only cycles among frozen objects
wait, for ``collect_everything``, which unfreezes, collects it all once and
freezes again: after a flush, when the window is idle, and whenever the
full generation's count comes due (every hundred or so collections) while
``quiet()`` says nothing is being sent.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000


class GuiThreadCollector(QObject):
    """Python's garbage collector, run by a timer on the GUI thread, freezing what survives."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        #: Whether a pause of a full collection is fine now (the window: no flush runs).
        self.quiet: Callable[[], bool] = lambda: True
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
        if counts[2] > thresholds[2] and self.quiet():
            return self.collect_everything()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                freed = gc.collect(generation)
                gc.freeze()  # the survivors are not walked again by the next one
                return freed
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
