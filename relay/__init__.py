"""Outbox's engine: the store, intake, the managed relayer and the attempt manager.

This package never imports Qt; the window in ``gui/`` is a thin layer over it.
"""

__version__ = "0.1.0"
