"""A recording ``RelayObserver``: our test double for the attempt manager.

It keeps every call in order (``calls``) and the facts tests ask about, checks
the call protocol of ``relay.report.RelayObserver`` as calls arrive, and can
run a callback when a given call happens (``on("data_progressed", …)``), so
a test can stop a relayer at an exact moment without sleeping.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relay.report import Reply, SessionFailure, SessionInfo, TransactionReport
from relay.states import Phase


@dataclass
class RecordingObserver:
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    session: SessionInfo | None = None
    handed: list[int] = field(default_factory=list)
    phases: list[tuple[Phase, int | None]] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)  # transaction_may_start
    held: set[int] = field(default_factory=set)  # what transaction_may_start refuses
    replies: dict[int, dict[str, Reply]] = field(default_factory=lambda: defaultdict(dict))
    progress: dict[int, list[tuple[float, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    completed: list[int] = field(default_factory=list)
    reports: dict[int, TransactionReport] = field(default_factory=dict)
    finished_transcript: str | None = None
    failure: SessionFailure | None = None
    unfinished: list[int] | None = None
    failed_transcript: str | None = None
    _hooks: dict[str, list[Callable[..., object]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _open: int | None = None

    def on(self, name: str, callback: Callable[..., object]) -> None:
        """Call ``callback(*args)`` whenever the observer method ``name`` is called."""
        self._hooks[name].append(callback)

    # -- RelayObserver -----------------------------------------------------------------

    def session_started(self, session: SessionInfo, message_ids: Sequence[int]) -> None:
        assert not self.calls, "session_started must come first"
        self.session = session
        self.handed = list(message_ids)
        self._record("session_started", session, list(message_ids))

    def phase_changed(self, phase: Phase, message_id: int | None) -> None:
        self._expect_open_session()
        self.phases.append((phase, message_id))
        self._record("phase_changed", phase, message_id)

    def transaction_may_start(self, message_id: int) -> bool:
        self._expect_open_session()
        assert message_id in self.handed
        self.asked.append(message_id)
        self._record("transaction_may_start", message_id)
        return message_id not in self.held

    def transaction_started(self, message_id: int) -> None:
        self._expect_open_session()
        assert self._open is None, f"transaction {self._open} still open"
        assert message_id in self.handed
        self._open = message_id
        self.started.append(message_id)
        self._record("transaction_started", message_id)

    def recipient_replied(self, message_id: int, address: str, reply: Reply) -> None:
        assert self._open == message_id
        self.replies[message_id][address] = reply
        self._record("recipient_replied", message_id, address, reply)

    def data_progressed(self, message_id: int, sent_bytes: int, total_bytes: int) -> None:
        assert self._open == message_id
        self.progress[message_id].append((time.monotonic(), sent_bytes, total_bytes))
        self._record("data_progressed", message_id, sent_bytes, total_bytes)

    def data_completed(self, message_id: int) -> None:
        assert self._open == message_id
        self.completed.append(message_id)
        self._record("data_completed", message_id)

    def transaction_finished(self, report: TransactionReport) -> None:
        assert self._open == report.message_id, "transaction_finished without its start"
        self._open = None
        self.reports[report.message_id] = report
        self._record("transaction_finished", report)

    def session_finished(self, transcript: str) -> None:
        self._expect_open_session()
        assert self._open is None
        self.finished_transcript = transcript
        self._record("session_finished", transcript)

    def session_failed(
        self, failure: SessionFailure, unfinished: Sequence[int], transcript: str
    ) -> None:
        self._expect_open_session()
        assert self._open is None
        self.failure = failure
        self.unfinished = list(unfinished)
        self.failed_transcript = transcript
        self._record("session_failed", failure, list(unfinished), transcript)

    # -- for assertions -------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    @property
    def ended(self) -> str:
        """How the session ended: ``"finished"`` or ``"failed"`` (exactly one of them)."""
        last = self.names[-1]
        assert last in ("session_finished", "session_failed"), f"ended with {last}"
        assert self.names.count("session_finished") + self.names.count("session_failed") == 1
        return last.removeprefix("session_")

    @property
    def transcript(self) -> str:
        text = self.finished_transcript or self.failed_transcript
        assert text is not None
        return text

    def sent_bytes(self, message_id: int) -> list[int]:
        return [sent for _, sent, _ in self.progress[message_id]]

    def _expect_open_session(self) -> None:
        assert self.calls and self.calls[0][0] == "session_started"
        assert self.names[-1] not in ("session_finished", "session_failed"), "after the end"

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        for callback in self._hooks.get(name, []):
            callback(*args)
