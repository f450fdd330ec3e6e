"""The engine stands on its own: nothing in relay/ loads Qt, qasync or the window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCKER = r"""
import importlib.abc, sys, pkgutil, importlib
FORBIDDEN = ("PySide6", "shiboken6", "qasync", "gui")

class Forbid(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"relay imported {name}")
        return None

sys.meta_path.insert(0, Forbid())
import relay
for info in pkgutil.walk_packages(relay.__path__, "relay."):
    importlib.import_module(info.name)
from relay.cli import main
for argv in (["--help"], ["list", "--json"], ["list"]):
    try:
        main(["--home", sys.argv[1], *argv])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
print("CLEAN", sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN))
"""


def test_relay_and_its_command_line_never_import_qt(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "CLEAN []" in done.stdout
