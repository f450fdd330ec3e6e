"""Stopping a relayer: finish or abort the transaction in flight, hand the rest back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from relay.policy import recipient_verdicts
from relay.relayer import ManagedRelayer
from relay.report import FailureKind
from relay.states import Phase, RecipientState
from tests.relayer.messages import large_body, message
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import SILENCE, FaultServer

MESSAGES = [message(1, "a@example.net"), message(2, "b@example.net"), message(3, "c@example.net")]


async def test_stop_before_run_connects_to_nobody_and_hands_everything_back() -> None:
    async with FaultServer() as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(server.account(), None, MESSAGES, observer)
        relayer.stop()
        await relayer.run()
    assert observer.names == ["session_started", "phase_changed", "session_finished"]
    assert server.connections == 0


async def test_stop_during_a_transaction_finishes_it_and_starts_no_other() -> None:
    async with FaultServer() as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(server.account(), None, MESSAGES, observer)
        observer.on("transaction_started", lambda message_id: relayer.stop())
        await relayer.run()
    assert observer.ended == "finished"
    assert observer.started == [1]
    report = observer.reports[1]
    assert report.end_of_data is not None and report.end_of_data.code == 250
    assert len(server.messages) == 1 and server.messages[0].complete
    assert server.verbs()[-1] == "QUIT"


async def test_stop_while_the_session_opens_gives_up_at_once() -> None:
    async with FaultServer(greeting=SILENCE) as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(server.account(connect_timeout_s=60.0), None, MESSAGES, observer)

        def on_phase(phase: Phase, message_id: int | None) -> None:
            if phase is Phase.CONNECTING:
                relayer.stop()

        observer.on("phase_changed", on_phase)
        await relayer.run()
    assert observer.ended == "finished"
    assert observer.failure is None and observer.started == []
    assert "stopped while opening the session" in observer.transcript


async def test_abort_in_the_middle_of_the_data_reports_the_transaction_as_it_stood() -> None:
    body = large_body(2 * 1024 * 1024)
    async with FaultServer() as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(
            server.account(),
            None,
            [message(1, "a@example.net", body=body), *MESSAGES[1:]],
            observer,
        )
        observer.on("data_progressed", lambda *args: relayer.stop(abort=True))
        await relayer.run()
    assert observer.ended == "finished"  # a stop is not a failure: the rest is handed back
    assert observer.started == [1]
    report = observer.reports[1]
    assert not report.data_completed and report.end_of_data is None
    assert report.connection_error is not None
    assert report.connection_error.kind is FailureKind.DROPPED
    assert report.connection_error.text == "stopped: the transaction was aborted"
    assert not any(m.complete for m in server.messages)


async def test_abort_after_the_final_dot_reports_the_data_as_completed() -> None:
    async with FaultServer(end_of_data=SILENCE) as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(server.account(), None, MESSAGES, observer)

        def on_phase(phase: Phase, message_id: int | None) -> None:
            if phase is Phase.AWAITING_VERDICT:
                relayer.stop(abort=True)

        observer.on("phase_changed", on_phase)
        await relayer.run()
    report = observer.reports[1]
    assert report.data_completed and report.end_of_data is None
    assert report.connection_error is not None
    assert "after the end of the data" in report.connection_error.text
    assert observer.ended == "finished" and observer.started == [1]


class RecordingSlowly(RecordingObserver):
    """Writes the "data completed" record as the attempt manager does: awaited.

    ``while_recording`` runs in the middle of that wait, the moment a real
    commit on the writer thread leaves the loop free.
    """

    def __init__(self, while_recording: Callable[[], None]) -> None:
        super().__init__()
        self._while_recording = while_recording

    def data_completed(self, message_id: int) -> Awaitable[None]:  # type: ignore[override]
        super().data_completed(message_id)

        async def recording() -> None:
            await asyncio.sleep(0)
            self._while_recording()
            await asyncio.sleep(0)

        return recording()


async def test_a_session_lost_while_the_final_dot_waits_for_its_record_never_sent_it() -> None:
    relayer: ManagedRelayer | None = None

    def abort() -> None:
        assert relayer is not None
        relayer.stop(abort=True)

    async with FaultServer() as server:
        observer = RecordingSlowly(abort)
        relayer = ManagedRelayer(server.account(), None, MESSAGES, observer)
        await relayer.run()
    assert observer.completed == [1]  # the record was asked for ...
    report = observer.reports[1]
    assert not report.data_completed  # ... but the dot never left: deferred, not uncertain
    assert report.connection_error is not None
    assert report.connection_error.text == "stopped: the transaction was aborted"
    verdict = recipient_verdicts(report, ["a@example.net"])["a@example.net"]
    assert verdict.state is RecipientState.DEFERRED
    assert not any(m.complete for m in server.messages)


async def test_cancelling_run_still_reports_the_transaction_in_flight() -> None:
    body = large_body(2 * 1024 * 1024)
    async with FaultServer() as server:
        observer = RecordingObserver()
        relayer = ManagedRelayer(
            server.account(), None, [message(1, "a@example.net", body=body)], observer
        )
        task = asyncio.create_task(relayer.run())
        observer.on("data_progressed", lambda *args: task.cancel())
        with pytest.raises(asyncio.CancelledError):
            await task
    assert observer.ended == "finished"
    report = observer.reports[1]
    assert report.connection_error is not None
    assert report.connection_error.text == "stopped: the transaction was cancelled"
    assert not any(m.complete for m in server.messages)
