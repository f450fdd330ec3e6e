"""What the packaging tests share: the repository's paths and the external tools they need.

A missing tool (``desktop-file-validate``, ``appstreamcli``) skips its test on a
developer's machine and fails it in CI (``CI`` set), where
``.ci/install-packaging.sh`` has installed it.
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
            pytest.fail(f"{name} is not installed (.ci/install-packaging.sh installs it)")
        pytest.skip(f"{name} is not installed")
    return path
