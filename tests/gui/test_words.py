"""The window words one thing one way: a size, a count."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.outbox_model import Column
from tests.gui.messages import enqueue, message_bytes


def test_a_message_size_is_decimal_in_the_table(window: MainWindow, qtbot: QtBot) -> None:
    octets = len(message_bytes("ann@example.org", "Big", body_bytes=8_610_000))
    enqueue(window.outbox, "ann@example.org", "Big", body_bytes=8_610_000)
    model = window.view.model()
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert model.index(0, Column.SIZE).data() == f"{octets / 1e6:.1f} MB" == "8.6 MB"


def test_the_tray_tooltip_counts_as_the_status_bar_does(window: MainWindow, qtbot: QtBot) -> None:
    enqueue(window.outbox, "ann@example.org")
    held = enqueue(window.outbox, "bob@example.org")
    window.outbox.hold([held])
    qtbot.waitUntil(lambda: "held" in window.status.counts_label.text())
    counts = window.status.counts_label.text()
    assert counts == "1 queued · 1 held"
    assert window.tray.icon.toolTip() == f"Outbox: {counts}"
