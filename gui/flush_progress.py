"""The arithmetic of one flush's progress: messages and bytes done of total, and rates.

Pure bookkeeping over engine events, with an injected monotonic clock, so the
status bar's numbers are testable without a server. A message counts as done
when it leaves ``sending`` (whatever its verdict); its bytes count as they go
out, and when it is done its whole size counts, so the bytes never run
backwards. Rates are measured over the last ``WINDOW_S`` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from relay.events import MessageSnapshot
from relay.states import MessageState

WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class ProgressFigures:
    """One reading of a flush's progress: messages and bytes done of total, and their rates."""

    total_messages: int
    done_messages: int
    total_bytes: int
    done_bytes: int
    messages_per_s: float
    bytes_per_s: float


class FlushProgress:
    """Counts a flush's messages and bytes as its events arrive; rates over a recent window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.active = False
        self._total_messages = 0
        self._total_bytes = 0
        self._done_messages = 0
        self._done_bytes = 0
        self._in_flight: dict[int, int] = {}
        self._samples: deque[tuple[float, int, int]] = deque()

    def started(self, message_count: int, total_bytes: int) -> None:
        self.active = True
        self._total_messages = message_count
        self._total_bytes = total_bytes
        self._done_messages = 0
        self._done_bytes = 0
        self._in_flight.clear()
        self._samples.clear()
        self._sample()

    def message_changed(self, message: MessageSnapshot) -> None:
        if not self.active:
            return
        if message.state is MessageState.SENDING:
            self._in_flight.setdefault(message.id, 0)
        elif self._in_flight.pop(message.id, None) is not None:
            self._done_messages += 1
            self._done_bytes += message.size

    def bytes_sent(self, message_id: int, sent_bytes: int) -> None:
        if self.active and message_id in self._in_flight:
            self._in_flight[message_id] = max(self._in_flight[message_id], sent_bytes)

    def finished(self) -> None:
        self.active = False

    def figures(self) -> ProgressFigures:
        self._sample()
        done_bytes = min(
            self._total_bytes or self._done_bytes,
            self._done_bytes + sum(self._in_flight.values()),
        )
        messages_per_s = bytes_per_s = 0.0
        if len(self._samples) >= 2:
            (t0, m0, b0), (t1, m1, b1) = self._samples[0], self._samples[-1]
            if t1 - t0 > 0.2:
                messages_per_s = (m1 - m0) / (t1 - t0)
                bytes_per_s = (b1 - b0) / (t1 - t0)
        return ProgressFigures(
            total_messages=self._total_messages,
            done_messages=min(self._done_messages, self._total_messages),
            total_bytes=self._total_bytes,
            done_bytes=done_bytes,
            messages_per_s=messages_per_s,
            bytes_per_s=bytes_per_s,
        )

    def _sample(self) -> None:
        now = self._clock()
        self._samples.append(
            (now, self._done_messages, self._done_bytes + sum(self._in_flight.values()))
        )
        while len(self._samples) > 2 and now - self._samples[0][0] > WINDOW_S:
            self._samples.popleft()
