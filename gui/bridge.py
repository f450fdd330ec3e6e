"""The bridge: engine events in, typed Qt signals out.

The engine publishes plain dataclasses on ``relay.events.EventBus``, after each
commit, synchronously, in whatever task made the change. ``EngineBridge``
subscribes once and re-emits each event as the Qt signal of its type, carrying
the event itself. Everything runs on the one GUI thread (the engine runs on the
Qt loop through qasync), so connections are direct and cost one Python call.

The window never polls the store for progress: these signals are its only
source of news about its own process's work. Changes other processes make come
through ``gui.store_watcher`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, Signal

from relay.events import (
    AttemptStarted,
    AuthenticationRefused,
    Event,
    FlushFinished,
    FlushStarted,
    MessageChanged,
    MessageDeleted,
    MessageQueued,
    PhaseChanged,
    ProgressMade,
    SessionFailed,
)


class EventSource(Protocol):
    """What publishes the engine's events: ``relay.engine.Engine`` (or its ``EventBus``)."""

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]: ...


class EngineBridge(QObject):
    """Re-emits every event of ``bus`` as a Qt signal; ``close()`` stops listening."""

    message_queued = Signal(MessageQueued)
    message_changed = Signal(MessageChanged)
    message_deleted = Signal(MessageDeleted)
    attempt_started = Signal(AttemptStarted)
    phase_changed = Signal(PhaseChanged)
    progress_made = Signal(ProgressMade)
    flush_started = Signal(FlushStarted)
    flush_finished = Signal(FlushFinished)
    authentication_refused = Signal(AuthenticationRefused)
    session_failed = Signal(SessionFailed)

    def __init__(self, bus: EventSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        unsubscribe = bus.subscribe(self._on_event)
        self._unsubscribe: Callable[[], None] | None = unsubscribe
        # Never emit from a deleted object: a flush may outlive its window by a moment.
        self.destroyed.connect(lambda *_: unsubscribe())

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: Event) -> None:
        match event:
            case ProgressMade():  # the most frequent: first
                self.progress_made.emit(event)
            case MessageChanged():
                self.message_changed.emit(event)
            case PhaseChanged():
                self.phase_changed.emit(event)
            case AttemptStarted():
                self.attempt_started.emit(event)
            case MessageQueued():
                self.message_queued.emit(event)
            case MessageDeleted():
                self.message_deleted.emit(event)
            case FlushStarted():
                self.flush_started.emit(event)
            case FlushFinished():
                self.flush_finished.emit(event)
            case AuthenticationRefused():
                self.authentication_refused.emit(event)
            case SessionFailed():
                self.session_failed.emit(event)
