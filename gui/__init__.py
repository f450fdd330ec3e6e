"""The window: PySide6 on a qasync loop, a thin layer over ``relay`` (docs/architecture.md)."""
