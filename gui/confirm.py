"""Asking a person before doing something that cannot be undone, without blocking.

A window-modal ``QMessageBox`` opened with ``open()``, never ``exec()``: a
nested event loop started from an engine callback or a coroutine misbehaves
under qasync, and ``open()`` leaves the loop (and a running flush) alone. The
answer arrives through the ``on_accept`` callback. Tests find the box as
``QApplication.activeModalWidget()`` or by its object name and click its
buttons.

A box's text, its informative text included, is plain text: it quotes file
names, headers and servers' replies, which Qt would show as HTML when they
look like it (a dropped file's ``From: <h1>Your bank</h1>`` as a heading).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from gui.command_hints import for_window


def ask(
    parent: QWidget,
    *,
    name: str,
    title: str,
    text: str,
    detail: str,
    accept_text: str,
    on_accept: Callable[[], None],
    warning: bool = False,
    on_decline: Callable[[], None] | None = None,
) -> QMessageBox:
    """Show the question; call ``on_accept`` if the person clicks ``accept_text``, else
    ``on_decline`` (if given)."""
    box = QMessageBox(parent)
    box.setObjectName(name)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setIcon(QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(text)
    box.setInformativeText(detail)
    accept = box.addButton(accept_text, QMessageBox.ButtonRole.AcceptRole)
    accept.setObjectName("accept")
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    cancel.setObjectName("cancel")
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def answered(_result: int) -> None:
        if box.clickedButton() is accept:
            on_accept()
        elif on_decline is not None:
            on_decline()

    box.finished.connect(answered)
    box.open()
    return box


def tell(parent: QWidget, *, name: str, title: str, text: str, detail: str = "") -> QMessageBox:
    """A non-blocking warning with one OK button."""
    box = QMessageBox(parent)
    box.setObjectName(name)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(for_window(text))
    if detail:
        box.setInformativeText(for_window(detail))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def send_again_text(messages: int) -> str:
    """The question's headline for ``messages`` uncertain messages: one, or how many."""
    if messages == 1:
        return "The server may already have this message."
    return f"The server may already have these {messages} messages."


def ask_to_save(
    parent: QWidget,
    *,
    name: str,
    text: str,
    detail: str,
    on_save: Callable[[], None],
    on_discard: Callable[[], None],
) -> QMessageBox:
    """Save, Discard or Cancel for unsaved changes; Cancel (the default) does nothing."""
    box = QMessageBox(parent)
    box.setObjectName(name)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Unsaved changes")
    box.setText(text)
    box.setInformativeText(detail)
    buttons = QMessageBox.StandardButton
    box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
    for button, object_name in ((buttons.Save, "save"), (buttons.Discard, "discard"),
                                (buttons.Cancel, "cancel")):  # fmt: skip
        box.button(button).setObjectName(object_name)
    box.setDefaultButton(buttons.Save)
    box.setEscapeButton(buttons.Cancel)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def answered(_result: int) -> None:
        clicked = box.standardButton(box.clickedButton())
        if clicked == buttons.Save:
            on_save()
        elif clicked == buttons.Discard:
            on_discard()

    box.finished.connect(answered)
    box.open()
    return box
