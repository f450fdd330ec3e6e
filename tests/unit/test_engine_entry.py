"""The flush sequence is written once: the command line and the window go through the engine.

Taking the flush lock, recovering interrupted attempts, importing the drop
folder, pruning old bodies, wiring a flush and opening the store are the
engine's (``relay.engine``). A command or a window module that reached for one
of them itself would be a second copy of the sequence, free to drift from the
first (a lock released too early sends a message twice), so none may.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: module -> the names of it only the engine uses (None: the whole module).
ENGINE_ONLY: dict[str, frozenset[str] | None] = {
    "relay.flushlock": None,
    "relay.attempts": frozenset({"recover_interrupted"}),
    "relay.dropfolder": frozenset({"import_drop_folder"}),
    "relay.retention": frozenset({"prune_expired_bodies"}),
    "relay.flush": frozenset({"prepare_flush", "RelayingManager"}),
    "relay.store.database": frozenset({"connect"}),
}


def reaches_under_the_engine(path: Path) -> list[str]:
    """What ``path`` imports or calls that only the engine may: ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ENGINE_ONLY:
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module in ENGINE_ONLY:
            names = ENGINE_ONLY[node.module]
            for alias in node.names:
                if names is None or alias.name in names:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "open"
            and isinstance(node.value, ast.Name)
            and node.value.id == "Outbox"
        ):
            found.append(f"{node.lineno}: Outbox.open")
    return found


def front_ends() -> list[Path]:
    return sorted([*(REPO / "relay" / "commands").glob("*.py"), *(REPO / "gui").glob("*.py")])


def test_commands_and_window_hold_the_engine_not_the_pieces_of_a_flush() -> None:
    reaching = {
        str(path.relative_to(REPO)): found
        for path in front_ends()
        if (found := reaches_under_the_engine(path))
    }
    assert reaching == {}


def test_the_check_sees_a_front_end_that_reaches_under_the_engine(tmp_path: Path) -> None:
    module = tmp_path / "window.py"
    module.write_text(
        "from relay.flushlock import FlushLock\n"
        "from relay.store.database import DB_NAME, connect\n"
        "def f():\n"
        "    from relay.attempts import Settled, recover_interrupted\n"
        "    return Outbox.open(home)\n"
    )
    assert reaches_under_the_engine(module) == [
        "1: from relay.flushlock import FlushLock",
        "2: from relay.store.database import connect",
        "4: from relay.attempts import recover_interrupted",
        "5: Outbox.open",
    ]


def test_the_front_ends_use_the_engine() -> None:
    users = {
        path.name
        for path in front_ends()
        if "relay.engine" in path.read_text() or "relay.commands.store" in path.read_text()
    }
    assert {"flush.py", "manage.py", "flush_runner.py", "app.py", "store_resync.py"} <= users
