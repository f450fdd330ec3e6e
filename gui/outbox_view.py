"""The table of messages: a ``QTableView`` that repaints only the changed rows on screen.

Qt's table view answers a ``dataChanged`` that spans several rows, none of
them on screen, by repainting its whole viewport: every cell on screen asked
again for its text, icon and alignment, which for this window (a Python model
behind a filter proxy) costs about 9 ms of the event loop a time, measured on
the bench machine. A flush changes rows in batches (claimed pages, replies, a
pass over what another process changed), most of them off screen in a large
outbox: 30 batches a second made the loop spend most of each frame repainting
rows that had not changed.

``OutboxView.dataChanged`` keeps to the rows on screen: a change that spans
several rows is narrowed to the part of it that is visible, and dropped when
none is. A change of one row, and everything else (scrolling, resizing, new or
removed rows, sorting), is Qt's own. The view has no editors
(``NoEditTriggers``), so there is no editor data a dropped change could leave
stale; a row scrolled into view later is painted from the model as it is then.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtWidgets import QTableView

ModelIndex = QModelIndex | QPersistentModelIndex


class OutboxView(QTableView):
    """A table view whose multi-row changes repaint only the rows on screen."""

    def dataChanged(
        self,
        topLeft: ModelIndex,
        bottomRight: ModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        top, bottom = topLeft.row(), bottomRight.row()
        if top != bottom and topLeft.isValid() and bottomRight.isValid():
            shown = self.rows_on_screen()
            if shown is not None:
                first, last = max(top, shown[0]), min(bottom, shown[1])
                if first > last:
                    return  # none of it is on screen: nothing to repaint
                model, parent = topLeft.model(), topLeft.parent()
                topLeft = model.index(first, topLeft.column(), parent)
                bottomRight = model.index(last, bottomRight.column(), parent)
        super().dataChanged(topLeft, bottomRight, list(roles))

    def rows_on_screen(self) -> tuple[int, int] | None:
        """The first and last row (of the view's model) the viewport shows; None if none."""
        first = self.rowAt(0)
        if first < 0:
            return None
        last = self.rowAt(self.viewport().height() - 1)
        if last < 0:  # the rows end above the viewport's bottom edge
            last = self.model().rowCount(self.rootIndex()) - 1
        return first, last
