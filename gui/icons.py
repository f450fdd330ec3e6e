"""Icons: the SVG files in ``resources/icons``, drawn for the current theme.

Action icons are one-colour line drawings whose SVG says ``currentColor``;
they are rendered in the palette's text colour, so they read on a dark theme as
well as on a light one. State icons are a coloured disc with a white glyph and
look the same everywhere. The application icon (``resources/outbox.svg``, the
one the desktop entry uses too) keeps its own colours.

Rendering goes through ``QSvgRenderer`` into pixmaps at the sizes toolbars,
menus and tables ask for; results are cached per name and colour.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from relay.states import MessageState

_SIZES = (16, 22, 24, 32, 48, 64)
APP_ICON = "outbox"  # the same SVG the desktop entry's PNGs are rendered from


def resources_dir() -> Path:
    """``resources/`` next to the package (a checkout), or inside it (a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if (candidate / "icons").is_dir():
            return candidate
    raise FileNotFoundError(f"no resources/icons next to {here}")


def icon_path(name: str) -> Path:
    """``resources/icons/<name>.svg``; the application icon is ``resources/outbox.svg``."""
    if name == APP_ICON:
        return resources_dir() / f"{APP_ICON}.svg"
    return resources_dir() / "icons" / f"{name}.svg"


def action_icon(name: str) -> QIcon:
    """A line icon in the current palette's text colour (disabled: its disabled colour)."""
    palette = QGuiApplication.palette()
    normal = palette.color(palette.ColorGroup.Active, palette.ColorRole.WindowText)
    disabled = palette.color(palette.ColorGroup.Disabled, palette.ColorRole.WindowText)
    return _tinted(name, normal.name(), disabled.name())


def state_icon(state: MessageState) -> QIcon:
    return _coloured(f"state-{state.value}")


def app_icon() -> QIcon:
    return _coloured(APP_ICON)


@cache
def _svg(name: str) -> bytes:
    return icon_path(name).read_bytes()


@cache
def _tinted(name: str, colour: str, disabled_colour: str) -> QIcon:
    icon = QIcon()
    for mode, hex_colour in ((QIcon.Mode.Normal, colour), (QIcon.Mode.Disabled, disabled_colour)):
        data = _svg(name).replace(b"currentColor", hex_colour.encode())
        for size in _SIZES:
            icon.addPixmap(_render(data, size), mode)
    return icon


@cache
def _coloured(name: str) -> QIcon:
    icon = QIcon()
    data = _svg(name)
    for size in _SIZES:
        icon.addPixmap(_render(data, size))
    return icon


def _render(data: bytes, size: int) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(data))
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap
