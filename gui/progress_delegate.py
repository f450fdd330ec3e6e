"""Draws the progress column: a bar with bytes sent of total while a message is sent.

Before the first byte, and while the server is deciding, the cell shows the
phase in words ("connecting", "awaiting verdict"); a row that is not being sent
shows nothing. The bar is the style's own progress bar, so it follows the
platform theme, light or dark.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from gui.outbox_model import PROGRESS_ROLE, Progress
from relay.sizes import size_text


class ProgressDelegate(QStyledItemDelegate):
    """Paints a message's progress cell as a bar while it is sent, the usual way otherwise."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        progress = index.data(PROGRESS_ROLE)
        if not isinstance(progress, Progress) or progress.phase != "sending":
            super().paint(painter, option, index)
            return
        # The selection background first, so a selected row stays highlighted.
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter, widget)

        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.direction = option.direction
        bar.fontMetrics = option.fontMetrics
        bar.palette = option.palette
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = int(progress.fraction * 1000)
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.text = f"{size_text(progress.sent_bytes)} of {size_text(progress.total_bytes)}"
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)
