"""Render resources/outbox.svg into the PNG sizes desktops want.

Writes ``resources/hicolor/<N>x<N>/apps/io.github.outbox.Outbox.png`` for every
size in ``SIZES`` -- the layout of the hicolor icon theme, so ``outbox desktop
install`` copies the tree as it is. The PNGs are committed; run this again
after changing the SVG::

    uv run python packaging/render_icons.py

Qt's own SVG renderer draws them (QSvgRenderer on the offscreen platform), so
no display and no extra tool is needed, and the PNGs look like the icon the
window draws at run time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_ID = "io.github.outbox.Outbox"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def render(svg: Path, size: int, target: Path) -> None:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(target), "PNG"):
        raise SystemExit(f"render_icons: could not write {target}")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication(sys.argv[:1])
    svg = RESOURCES / "outbox.svg"
    for size in SIZES:
        target = RESOURCES / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        render(svg, size, target)
        print(target.relative_to(RESOURCES.parent))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
