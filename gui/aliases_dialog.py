"""File → Aliases…: where mail to a local name (``root``, a cron job's user) goes.

The window's side of ``relay.aliases`` (its rules hold here unchanged: a name
maps to full addresses, ``default`` catches every local name without an alias
of its own). The table lists what is stored; picking a row puts it in the
fields below, where Save stores it (replacing what the name meant) and Remove
forgets it. Every change goes straight to the config file through
``relay.aliases``, so the command line and a running ``sendmail`` see it at
once; mail already in the outbox keeps the addresses it was stored with.

Closing with a name or addresses typed and not saved asks first (Save,
Discard, Cancel), as the Accounts dialog does. Opened with ``open()`` like
every dialog of the window, never ``exec()``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.confirm import ask_to_save
from relay.aliases import DEFAULT_ALIAS, load_aliases, remove_alias, set_alias
from relay.errors import OutboxError

EXPLANATION = (
    "Programs on this computer (cron, at, mail) send to local names such as root."
    " An alias says which addresses such mail goes to; the alias"
    f" “{DEFAULT_ALIAS}” catches every local name without one of its own."
)


class AliasesDialog(QDialog):
    """File → Aliases…: the aliases in a table, and fields to set or remove one."""

    #: An alias was stored or removed.
    aliases_changed = Signal()

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aliases_dialog")
        self.setWindowTitle("Aliases")
        self._home = home
        self._stored: dict[str, tuple[str, ...]] = {}
        self._closing_anyway = False

        explanation = QLabel(EXPLANATION)
        explanation.setWordWrap(True)

        self.table = QTableWidget(0, 2)
        self.table.setObjectName("aliases_table")
        self.table.setAccessibleName("Aliases")
        self.table.setHorizontalHeaderLabels(["Local name", "Addresses"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)

        self.name = QLineEdit()
        self.name.setObjectName("alias_name")
        self.name.setAccessibleName("Local name")
        self.name.setPlaceholderText(f"root, or {DEFAULT_ALIAS}")
        self.addresses = QLineEdit()
        self.addresses.setObjectName("alias_addresses")
        self.addresses.setAccessibleName("Addresses")
        self.addresses.setPlaceholderText("me@example.org, other@example.org")
        form = QFormLayout()
        form.addRow("&Local name:", self.name)
        form.addRow("A&ddresses:", self.addresses)

        self.error = QLabel()
        self.error.setObjectName("aliases_error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #dc2626")
        self.error.hide()

        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("alias_save")
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("alias_remove")
        self.remove_button.clicked.connect(self.remove)
        self.new_button = QPushButton("New")
        self.new_button.setObjectName("alias_new")
        self.new_button.clicked.connect(self._new)
        row = QHBoxLayout()
        row.addWidget(self.new_button)
        row.addStretch()
        row.addWidget(self.remove_button)
        row.addWidget(self.save_button)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("aliases_close")
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(self.table)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.name.textChanged.connect(self._update_buttons)
        self.addresses.textChanged.connect(self._update_buttons)
        self.resize(520, 380)
        self._reload()

    # -- what a person does ---------------------------------------------------------------------

    def save(self) -> bool:
        """Store the alias in the fields; false (and the reason shown) if it cannot be."""
        targets = [self.addresses.text()]
        try:
            name, _ = set_alias(self._home, self.name.text().strip(), targets)
        except OutboxError as exc:
            self._show_error(str(exc))
            return False
        self._reload(select=name)
        self.aliases_changed.emit()
        return True

    def remove(self) -> None:
        name = self._selected_name()
        if name is None:
            return
        try:
            remove_alias(self._home, name)
        except OutboxError as exc:
            self._show_error(str(exc))
            return
        self._reload()
        self._new()
        self.aliases_changed.emit()

    def unsaved(self) -> bool:
        """Whether the fields say something the stored aliases do not."""
        name = self.name.text().strip().lower()
        typed = tuple(a.strip() for a in self.addresses.text().split(",") if a.strip())
        if not name and not typed:
            return False
        return self._stored.get(name) != typed

    def reject(self) -> None:
        """Close, Escape: ask first when something typed is not saved."""
        if self._closing_anyway or not self.unsaved():
            super().reject()
            return
        self._ask_to_save()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing_anyway or not self.unsaved():
            super().closeEvent(event)
            return
        event.ignore()
        self._ask_to_save()

    # -- inside ---------------------------------------------------------------------------------

    def _ask_to_save(self) -> None:
        ask_to_save(
            self,
            name="aliases_unsaved",
            text="Save the alias before closing?",
            detail=f"“{self.name.text().strip()}” has changes that are not saved yet.",
            on_save=self._save_and_close,
            on_discard=self._close_anyway,
        )

    def _save_and_close(self) -> None:
        if self.save():
            self._close_anyway()

    def _close_anyway(self) -> None:
        self._closing_anyway = True
        self.reject()

    def _reload(self, select: str | None = None) -> None:
        self._show_error("")  # before reading: a config that cannot be read says so below
        try:
            self._stored = load_aliases(self._home)
        except OutboxError as exc:
            self._stored = {}
            self._show_error(str(exc))
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for name, targets in self._stored.items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(", ".join(targets)))
            if name == select:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self.table.resizeColumnToContents(0)
        self._update_buttons()

    def _selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.text() if item is not None else None

    def _on_selection_changed(self) -> None:
        name = self._selected_name()
        if name is not None:
            self.name.setText(name)
            self.addresses.setText(", ".join(self._stored.get(name, ())))
            self._show_error("")
        self._update_buttons()

    def _new(self) -> None:
        self.table.clearSelection()
        self.name.clear()
        self.addresses.clear()
        self.name.setFocus()

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(self.unsaved())
        self.remove_button.setEnabled(self._selected_name() is not None)

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
