"""Help → About: the version, where this outbox keeps its data, and where the docs are.

A non-blocking box (``open()``, as ``gui.confirm`` explains) whose links open in
the desktop's file manager and browser; the data folder is the home this
window runs on, so a person can find the store, the config and the drop
folder without knowing the command line's defaults.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QMessageBox, QWidget

from relay import __version__

#: The project's home page, where the README (its documentation) is shown.
DOCS_URL = "https://github.com/outbox/outbox#readme"


def about_text(home: Path) -> str:
    """The box's rich text: version, data folder (a link), documentation (a link)."""
    folder = QUrl.fromLocalFile(str(home)).toString()
    return (
        f"<p><b>Outbox {html.escape(__version__)}</b><br>"
        "A desktop outbox for e-mail: nothing lost, nothing sent twice.</p>"
        f'<p>Data folder: <a href="{html.escape(folder)}">{html.escape(str(home))}</a></p>'
        f'<p>Documentation: <a href="{DOCS_URL}">{DOCS_URL}</a></p>'
    )


def show_about(parent: QWidget, home: Path) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("about_dialog")
    box.setWindowTitle("About Outbox")
    box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    box.setText(about_text(home))
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
