"""End to end: the window, the real engine on the qasync loop, a real aiosmtpd server.

Each test clicks real widgets and checks three things: what the view shows,
what the outbox holds, and what the server received.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytestqt.qtbot import QtBot

from gui.app import create_main_window
from gui.main_window import MainWindow
from gui.outbox_model import Column
from relay.accounts import save_accounts
from relay.states import MessageState, RecipientState
from tests.gui.driving import (
    click_action,
    click_button,
    click_rows,
    modal,
    shown,
    shown_progress,
    shown_state,
)
from tests.gui.messages import enqueue
from tests.gui.test_window_store_errors import engine_tasks
from tests.support.fault_server import SILENCE, threaded_fault_server
from tests.support.gated_servers import GatedHandler
from tests.support.smtp_servers import RunningServer

FLUSH_TIMEOUT_MS = 30_000


def states_seen(window: MainWindow, message_id: int) -> list[str]:
    """Record each state word the view shows for the message, as it redraws."""
    seen: list[str] = []

    def redrawn() -> None:
        state = shown_state(window, message_id)
        if state is not None and (not seen or seen[-1] != state):
            seen.append(state)

    window.view.model().dataChanged.connect(redrawn)
    return seen


def test_send_all_takes_rows_through_sending_to_sent_with_the_progress_bar_moving(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    big = enqueue(
        window.outbox, "bob@example.net", "The big one", body_bytes=24_000_000, line_bytes=998
    )
    small = enqueue(window.outbox, "carol@example.net", "A small one")
    qtbot.waitUntil(lambda: shown_state(window, small) == "queued")
    total = window.outbox.get(big).size
    big_states = states_seen(window, big)
    small_states = states_seen(window, small)
    # The small one goes first (small messages never wait behind large ones); then
    # the server stops reading right after the big one's 354.
    handler.freeze_in_data = True
    handler.freeze_after = 1

    click_action(qtbot, window, window.action_flush)
    assert not window.action_flush.isEnabled()
    assert window.action_stop.isEnabled()
    # The kernel takes what fits in its buffers, then the relayer waits: part sent.
    qtbot.waitUntil(lambda: handler.frozen.is_set(), timeout=FLUSH_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: (p := shown_progress(window, big)) is not None and p.sent_bytes > 0,
        timeout=FLUSH_TIMEOUT_MS,
    )
    part = shown_progress(window, big)
    assert part is not None and 0 < part.sent_bytes < total
    assert shown_state(window, big) == "sending"
    assert shown(window, big, Column.PROGRESS) == f"{part.fraction:.0%}"
    assert not window.view.grab().isNull()  # the delegate draws the bar

    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.thaw()

    qtbot.waitUntil(lambda: shown_state(window, big) == "sent")
    # Claimed, it may read "waiting" for a moment before its transaction starts.
    assert [state for state in big_states if state != "waiting"] == ["sending", "sent"]
    assert small_states[-1] == "sent"
    assert shown_progress(window, big) is None
    assert window.outbox.get(big).state is MessageState.SENT
    assert window.outbox.get(small).state is MessageState.SENT
    assert [(r.rcpt_tos, r.body) for r in server.received] == [
        (("carol@example.net",), window.outbox.raw(small)),
        (("bob@example.net",), window.outbox.raw(big)),
    ]
    assert window.status.counts_label.text() == "2 sent"


def test_a_refused_recipient_shows_failed_with_the_servers_reply_and_retry_sends_only_to_it(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    handler.refuse["nobody@example.net"] = "550 5.1.1 <nobody@example.net>: no such user"
    message = enqueue(window.outbox, ["ann@example.net", "nobody@example.net"], "Minutes")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

    with (
        qtbot.waitSignal(window.tray.notified, timeout=FLUSH_TIMEOUT_MS) as notified,
        qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS),
    ):
        click_action(qtbot, window, window.action_flush)

    qtbot.waitUntil(lambda: shown_state(window, message) == "failed")
    assert shown(window, message, Column.LAST_RESULT) == (
        "550 5.1.1 <nobody@example.net>: no such user"
    )
    stored = {r.address: r for r in window.outbox.get(message).recipients}
    assert stored["ann@example.net"].state is RecipientState.SENT
    assert stored["nobody@example.net"].state is RecipientState.FAILED
    assert [r.rcpt_tos for r in server.received] == [("ann@example.net",)]
    assert "1 message failed" in notified.args[1]
    assert "failed" in window.tray.icon.toolTip()

    # The detail pane shows each recipient's reply and the attempt's transcript.
    click_rows(qtbot, window, message)
    pane = window.detail
    replies = {
        pane.recipients.topLevelItem(i).text(0): pane.recipients.topLevelItem(i).text(2)
        for i in range(pane.recipients.topLevelItemCount())
    }
    assert replies["nobody@example.net"] == "550 5.1.1 <nobody@example.net>: no such user"
    assert pane.attempts.topLevelItemCount() == 1
    assert "RCPT TO:<nobody@example.net>" in pane.transcript.toPlainText()
    assert "Subject: Minutes" in pane.headers.toPlainText()

    # The server is healed; Retry sends again, to the refused recipient only.
    handler.refuse.clear()
    assert window.action_retry.isEnabled() and window.action_retry.text() == "Retry"
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_retry)
    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")
    assert window.outbox.get(message).state is MessageState.SENT
    assert [r.rcpt_tos for r in server.received] == [
        ("ann@example.net",),
        ("nobody@example.net",),
    ]
    assert pane.attempts.topLevelItemCount() == 2


def test_stop_in_the_middle_finishes_the_message_in_flight_and_loses_nothing(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    ids = [enqueue(window.outbox, f"r{i}@example.net", f"Number {i}") for i in range(5)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    handler.gated = True  # each message's verdict waits for the test

    click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: shown_state(window, ids[0]) == "sending")
    click_action(qtbot, window, window.action_stop)
    assert window.action_stop.text() == "Stop Now"  # stopping already: again drops it
    # The status bar says so, not a stale "Sending 0 of 5".
    assert window.status.flush_label.text().startswith("Stopping after the messages in flight")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.open_gate()

    qtbot.waitUntil(lambda: shown_state(window, ids[0]) == "sent")
    messages = {m.id: m for m in window.outbox.messages()}
    assert sorted(messages) == ids
    assert messages[ids[0]].state is MessageState.SENT
    assert [messages[i].state for i in ids[1:]] == [MessageState.QUEUED] * 4
    assert [shown_state(window, i) for i in ids[1:]] == ["queued"] * 4
    assert [r.rcpt_tos for r in server.received] == [("r0@example.net",)]

    # Nothing was lost and nothing goes twice: the next Send all sends the rest once.
    assert window.action_flush.isEnabled()
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "sent" for i in ids))
    assert sorted(r.rcpt_tos[0] for r in server.received) == [f"r{i}@example.net" for i in range(5)]


def test_stop_again_drops_a_server_that_never_answers_and_the_message_is_uncertain(
    qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path
) -> None:
    # The final dot goes out and no reply ever comes: Stop alone would wait out
    # the data timeout (ten minutes by default) for the verdict.
    with threaded_fault_server(end_of_data=SILENCE) as server:
        account = server.account(name="silent", max_connections=1, data_timeout_s=600.0)
        save_accounts(home, [account])
        window = create_main_window(home)
        qtbot.addWidget(window)
        window.show()
        first = enqueue(window.outbox, "ann@example.net", "Into the void")
        second = enqueue(window.outbox, "bob@example.net", "Behind it")
        qtbot.waitUntil(lambda: shown_state(window, second) == "queued")

        click_action(qtbot, window, window.action_flush)
        qtbot.waitUntil(lambda: any(m.complete for m in server.messages), timeout=10_000)
        click_action(qtbot, window, window.action_stop)
        assert window.runner.running
        assert window.action_stop.text() == "Stop Now"
        with qtbot.waitSignal(window.runner.finished, timeout=10_000):
            click_action(qtbot, window, window.action_stop)

        assert engine_tasks(loop) == []  # no session of the flush runs on
        qtbot.waitUntil(lambda: shown_state(window, first) == "uncertain")
        assert window.outbox.get(first).state is MessageState.UNCERTAIN
        assert window.outbox.get(second).state is MessageState.QUEUED
        assert [m.rcpt_tos for m in server.messages] == [["ann@example.net"]]
        assert window.action_stop.text() == "Stop" and not window.action_stop.isEnabled()


def test_stop_now_clicked_before_the_flush_began_ends_it_and_frees_the_lock(
    window: MainWindow, qtbot: QtBot, loop: asyncio.AbstractEventLoop
) -> None:
    message_id = enqueue(window.outbox, "ann@example.net", "Not yet")
    qtbot.waitUntil(lambda: shown_state(window, message_id) == "queued")
    # Three quick clicks, handled before the loop ran the flush's first step.
    click_action(qtbot, window, window.action_flush)
    click_action(qtbot, window, window.action_stop)
    click_action(qtbot, window, window.action_stop)  # Stop Now

    qtbot.waitUntil(lambda: not window.runner.running, timeout=5000)
    assert engine_tasks(loop) == []
    assert not window.engine.flush_running_elsewhere()  # the flush lock is free again
    assert window.outbox.get(message_id).state is MessageState.QUEUED
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)  # and the next click sends
    assert window.outbox.get(message_id).state is MessageState.SENT


def test_send_selected_sends_only_the_selection(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    ids = [enqueue(window.outbox, f"s{i}@example.net", f"Pick {i}") for i in range(3)]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    click_rows(qtbot, window, ids[0], ids[2])
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush_selected)
    qtbot.waitUntil(lambda: shown_state(window, ids[2]) == "sent")
    assert [window.outbox.get(i).state for i in ids] == [
        MessageState.SENT,
        MessageState.QUEUED,
        MessageState.SENT,
    ]
    assert sorted(r.rcpt_tos[0] for r in server.received) == ["s0@example.net", "s2@example.net"]


def test_send_again_on_an_uncertain_message_warns_first_and_then_sends(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    message = enqueue(window.outbox, "dora@example.net", "Did it arrive?")
    # What a process that died right after the final dot leaves behind: the
    # engine's own crash recovery turns it into an uncertain recipient.
    outbox = window.outbox
    outbox.claim([message])
    attempt = outbox.start_attempt(message, account="test", server="elsewhere:25")
    outbox.mark_data_completed(attempt, ["dora@example.net"])
    window.runner.probe_lock()
    from relay.attempts import recover_interrupted
    from relay.store.outbox import utc_now

    recover_interrupted(outbox, utc_now)
    qtbot.waitUntil(lambda: shown_state(window, message) == "uncertain")

    click_rows(qtbot, window, message)
    assert window.action_retry.text() == "Send Again…"
    click_action(qtbot, window, window.action_retry)
    box = modal(qtbot, "confirm_send_again")
    assert box.text() == "The server may already have this message."  # type: ignore[attr-defined]
    assert "dora@example.net" in box.informativeText()  # type: ignore[attr-defined]
    click_button(qtbot, box, "cancel")
    assert window.outbox.get(message).state is MessageState.UNCERTAIN
    assert server.received == []

    click_action(qtbot, window, window.action_retry)
    box = modal(qtbot, "confirm_send_again")
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_button(qtbot, box, "accept")
    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")
    assert [r.rcpt_tos for r in server.received] == [("dora@example.net",)]


def test_send_again_confirmed_while_a_flush_runs_sends_it_after_that_flush(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    message = enqueue(window.outbox, "dora@example.net", "Did it arrive?")
    outbox = window.outbox  # left uncertain by a process that died after the final dot
    outbox.claim([message])
    attempt = outbox.start_attempt(message, account="test", server="elsewhere:25")
    outbox.mark_data_completed(attempt, ["dora@example.net"])
    window.runner.probe_lock()
    from relay.attempts import recover_interrupted
    from relay.store.outbox import utc_now

    recover_interrupted(outbox, utc_now)
    other = enqueue(window.outbox, "emil@example.net", "Another one")
    qtbot.waitUntil(lambda: shown_state(window, message) == "uncertain")
    qtbot.waitUntil(lambda: shown_state(window, other) == "queued")
    click_rows(qtbot, window, message)
    click_action(qtbot, window, window.action_retry)
    box = modal(qtbot, "confirm_send_again")
    # While the question is open, Send All from the tray's menu starts a flush.
    handler.gated = True
    window.action_flush.trigger()
    qtbot.waitUntil(handler.waiting.is_set, timeout=FLUSH_TIMEOUT_MS)

    click_button(qtbot, box, "accept")
    assert window.statusBar().currentMessage() == "Sending 1 message again after this flush…"
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        handler.open_gate()

    qtbot.waitUntil(lambda: shown_state(window, message) == "sent", timeout=FLUSH_TIMEOUT_MS)
    assert sorted(r.rcpt_tos for r in server.received) == [
        ("dora@example.net",),
        ("emil@example.net",),
    ]


def test_send_again_confirmed_after_one_of_the_messages_was_deleted_sends_the_others(
    window: MainWindow, qtbot: QtBot, server: RunningServer, home: Path
) -> None:
    from relay.attempts import recover_interrupted
    from relay.store.outbox import Outbox, utc_now

    outbox = window.outbox  # both left uncertain by a process that died after the final dot
    kept = enqueue(outbox, "dora@example.net", "Did it arrive?")
    gone = enqueue(outbox, "emil@example.net", "Did this one?")
    outbox.claim([kept, gone])
    for message, to in ((kept, "dora@example.net"), (gone, "emil@example.net")):
        attempt = outbox.start_attempt(message, account="test", server="elsewhere:25")
        outbox.mark_data_completed(attempt, [to])
    window.runner.probe_lock()
    recover_interrupted(outbox, utc_now)
    qtbot.waitUntil(lambda: shown_state(window, gone) == "uncertain")
    click_rows(qtbot, window, kept, gone)
    click_action(qtbot, window, window.action_retry)
    box = modal(qtbot, "confirm_send_again")
    with Outbox.open(home) as elsewhere:  # `outbox delete` while the question is open
        elsewhere.delete([gone])

    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_button(qtbot, box, "accept")
    assert window.outbox.get(kept).state is MessageState.SENT
    assert [r.rcpt_tos for r in server.received] == [("dora@example.net",)]


def test_hold_keeps_a_message_out_of_send_all_until_released(
    window: MainWindow, qtbot: QtBot, server: RunningServer
) -> None:
    kept, other = (enqueue(window.outbox, f"{n}@example.net", n) for n in ("kept", "other"))
    qtbot.waitUntil(lambda: shown_state(window, other) == "queued")
    click_rows(qtbot, window, kept)
    assert not window.action_release.isEnabled()
    click_action(qtbot, window, window.action_hold)
    qtbot.waitUntil(lambda: shown_state(window, kept) == "held")
    assert window.outbox.get(kept).state is MessageState.HELD
    assert window.action_release.isEnabled() and not window.action_hold.isEnabled()

    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: shown_state(window, other) == "sent")
    assert [r.rcpt_tos for r in server.received] == [("other@example.net",)]
    assert window.outbox.get(kept).state is MessageState.HELD

    click_action(qtbot, window, window.action_release)
    qtbot.waitUntil(lambda: shown_state(window, kept) == "queued")
    assert window.outbox.get(kept).state is MessageState.QUEUED


def test_delete_asks_first_and_removes_only_when_confirmed(
    window: MainWindow, qtbot: QtBot
) -> None:
    doomed, spared = (enqueue(window.outbox, f"{n}@example.net", n) for n in ("doomed", "spared"))
    qtbot.waitUntil(lambda: shown_state(window, spared) == "queued")
    click_rows(qtbot, window, doomed)

    click_action(qtbot, window, window.action_delete)
    click_button(qtbot, modal(qtbot, "confirm_delete"), "cancel")
    assert window.outbox.ids() == [doomed, spared]

    click_action(qtbot, window, window.action_delete)
    box = modal(qtbot, "confirm_delete")
    assert box.text() == "Delete 1 message from the outbox?"  # type: ignore[attr-defined]
    click_button(qtbot, box, "accept")
    qtbot.waitUntil(lambda: shown_state(window, doomed) is None)
    assert window.outbox.ids() == [spared]
    assert window.view.model().rowCount() == 1


def test_retry_all_failed_sends_every_failed_message_again(
    window: MainWindow, qtbot: QtBot, server: RunningServer, handler: GatedHandler
) -> None:
    handler.refuse["x@example.net"] = "554 5.7.1 Relay access denied"
    handler.refuse["y@example.net"] = "554 5.7.1 Relay access denied"
    ids = [enqueue(window.outbox, f"{n}@example.net", n) for n in ("x", "y", "z")]
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "queued" for i in ids))
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        click_action(qtbot, window, window.action_flush)
    qtbot.waitUntil(lambda: [shown_state(window, i) for i in ids] == ["failed", "failed", "sent"])
    assert window.action_retry_failed.isEnabled()

    handler.refuse.clear()
    with qtbot.waitSignal(window.runner.finished, timeout=FLUSH_TIMEOUT_MS):
        window.action_retry_failed.trigger()  # in the Messages menu
    qtbot.waitUntil(lambda: all(shown_state(window, i) == "sent" for i in ids))
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "x@example.net",
        "y@example.net",
        "z@example.net",
    ]
    assert not window.action_retry_failed.isEnabled()
