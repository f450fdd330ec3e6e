"""The message table repaints only the rows on screen that changed (``gui.outbox_view``)."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.outbox_model import Column, OutboxFilter, OutboxModel
from gui.outbox_view import OutboxView
from relay.states import MessageState
from tests.gui.test_outbox_model import RowCountingModel, snapshot


def shown_table(qtbot: QtBot, count: int) -> tuple[RowCountingModel, OutboxView]:
    model = RowCountingModel()
    view = OutboxView()
    qtbot.addWidget(view)
    view.setModel(OutboxFilter(model))
    view.resize(800, 300)
    model.load([snapshot(i) for i in range(1, count + 1)])
    view.show()
    qtbot.waitExposed(view)
    painted_idle(model)
    return model, view


def painted_idle(model: RowCountingModel) -> None:
    """Process events until a round paints nothing (what showing the view queued is done)."""
    for _ in range(50):
        model.rows_asked.clear()
        QApplication.processEvents()
        if not model.rows_asked:
            return
    raise AssertionError("the view kept repainting")


def change(model: OutboxModel, ids: range, state: MessageState) -> None:
    for message_id in ids:
        model.message_arrived(snapshot(message_id, state))
    model.apply_pending()


def test_rows_changed_off_screen_repaint_no_row_on_screen(qtbot: QtBot) -> None:
    model, view = shown_table(qtbot, 1000)
    first, last = view.rows_on_screen() or (-1, -1)
    assert first == 0 and 3 < last < 500
    model.rows_asked.clear()
    change(model, range(501, 601), MessageState.SENT)  # rows 500-599, one run
    change(model, range(3, 4), MessageState.SENT)  # row 2: something to wait for
    qtbot.waitUntil(lambda: 2 in model.rows_asked)
    # Row 2's rectangle (and a pixel of row 3), not the whole viewport for rows out of sight.
    assert model.rows_asked <= {2, 3}
    # Scrolled into view, the changed rows show what the model holds now.
    view.scrollTo(view.model().index(550, 0))
    qtbot.waitUntil(lambda: 550 in model.rows_asked)
    assert view.model().index(550, Column.STATE).data() == "sent"


def test_a_change_reaching_past_the_screen_repaints_only_its_rows_on_screen(
    qtbot: QtBot,
) -> None:
    model, view = shown_table(qtbot, 1000)
    _, last = view.rows_on_screen() or (-1, -1)
    model.rows_asked.clear()
    change(model, range(6, 801), MessageState.SENT)  # rows 5-799
    qtbot.waitUntil(lambda: last in model.rows_asked)
    assert min(model.rows_asked) == 5  # rows 0-4 did not change: not repainted
    assert view.model().index(5, Column.STATE).data() == "sent"
