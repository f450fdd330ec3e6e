"""Copy Address and Copy Reply on the detail pane's recipients: a reply goes into a ticket whole.

The actions live on the list itself (its context menu, and Ctrl+C / Ctrl+Shift+C
while it has the focus) and copy the current recipient's address or the
server's full reply: the column shows it on one line, the item keeps it whole,
line by line, under ``COPY_ROLE``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QTreeWidget

#: The text Copy puts on the clipboard for a column, when it is not the text shown.
COPY_ROLE = Qt.ItemDataRole.UserRole + 1
ADDRESS_COLUMN = 0
REPLY_COLUMN = 2


def add_copy_actions(tree: QTreeWidget) -> tuple[QAction, QAction]:
    """Give ``tree`` Copy Address and Copy Reply; the two actions."""
    copy_address = _action(tree, "copy_address", "Copy Address", QKeySequence.StandardKey.Copy)
    copy_address.triggered.connect(lambda: _copy(tree, ADDRESS_COLUMN))
    copy_reply = _action(tree, "copy_reply", "Copy Reply", "Ctrl+Shift+C")
    copy_reply.triggered.connect(lambda: _copy(tree, REPLY_COLUMN))
    tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    return copy_address, copy_reply


def _action(
    tree: QTreeWidget, name: str, text: str, keys: QKeySequence.StandardKey | str
) -> QAction:
    action = QAction(text, tree)
    action.setObjectName(name)
    action.setShortcut(QKeySequence(keys))
    action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    tree.addAction(action)
    return action


def _copy(tree: QTreeWidget, column: int) -> None:
    item = tree.currentItem()
    if item is None:
        return
    copied = item.data(column, COPY_ROLE)
    text = copied if isinstance(copied, str) and copied else item.text(column)
    if text:
        QGuiApplication.clipboard().setText(text)
