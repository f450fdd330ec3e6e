"""What the packaging tests share: the repository's paths and the external tools they need.

A missing tool (``desktop-file-validate``, ``appstreamcli``) skips its test on a
developer's machine and fails it in CI (``CI`` set), where
``.ci/run`` has installed it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
APP_ID = "io.github.outbox.Outbox"


def require_tool(name: str) -> str:
    """The path of the program ``name``; skips the test without it, unless in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def bundle_tests_enabled() -> bool:
    """The bundle tests cost ~30-60 s (a PyInstaller build): in CI, or when asked for.

    ``OUTBOX_TEST_BUNDLE=1`` asks for them; ``=0`` leaves them out even in CI,
    which builds the bundle under one of the Pythons it tests (``.ci/run``).
    """
    asked = os.environ.get("OUTBOX_TEST_BUNDLE", "")
    if asked in ("0", "1"):
        return asked == "1"
    return bool(os.environ.get("CI"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if bundle_tests_enabled():
        return
    skip = pytest.mark.skip(
        reason="builds the bundle: set OUTBOX_TEST_BUNDLE=1 (CI does, under one Python)"
    )
    for item in items:
        if item.get_closest_marker("bundle") is not None:
            item.add_marker(skip)
