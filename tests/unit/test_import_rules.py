"""The layers' import rules, read from the source tree (docs/architecture.md, "Layers").

Every ``import`` and ``from … import`` of every module counts, wherever it
stands: at the top, inside a function (a lazy import is still a dependency)
or under ``if TYPE_CHECKING:``. ``test_layering.py`` checks the first rule
again by running the command line with Qt made unimportable.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Qt and the loop that runs asyncio on it.
QT = ("PySide6", "shiboken6", "qasync")

#: ``outbox gui`` is the command line's one door to the window: it imports
#: ``gui.app`` inside the command, so no other command ever loads Qt.
RELAY_MAY_IMPORT_GUI = frozenset({"relay/commands/gui.py"})


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved, each ``from X import y`` as X."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
                if node.module is None:  # from . import x: x may be a module
                    yield from (".".join([*base, alias.name]) for alias in node.names)
            else:
                assert node.module is not None
                yield node.module


def within(name: str, *roots: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def violations(paths: list[Path], *forbidden: str, root: Path = ROOT) -> list[str]:
    """``file: module`` for each import of a module under one of ``forbidden``."""
    return [
        f"{path.relative_to(root).as_posix()}: {name}"
        for path in paths
        for name in imported_modules(path, root)
        if within(name, *forbidden)
    ]


def sources(*patterns: str) -> list[Path]:
    found = sorted({path for pattern in patterns for path in ROOT.glob(pattern)})
    assert found, f"no source files match {patterns}"
    return found


def test_relay_never_imports_qt() -> None:
    assert violations(sources("relay/**/*.py"), *QT) == []


def test_relay_never_imports_the_window_except_to_open_it() -> None:
    paths = [
        path
        for path in sources("relay/**/*.py")
        if path.relative_to(ROOT).as_posix() not in RELAY_MAY_IMPORT_GUI
    ]
    assert violations(paths, "gui") == []


def test_the_one_door_to_the_window_imports_it_inside_its_command() -> None:
    """``relay/commands/gui.py`` imports ``gui`` only within a function, never at load."""
    for name in RELAY_MAY_IMPORT_GUI:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                module = node.module if isinstance(node, ast.ImportFrom) else None
                assert not any(within(n, "gui") for n in [*names, module or ""]), name


def test_the_relayer_and_the_smtp_package_never_import_the_store() -> None:
    """The relayer reports; only the attempt manager writes and publishes (RelayObserver)."""
    paths = sources("relay/relayer.py", "relay/smtp/*.py")
    assert violations(paths, "relay.store", "sqlite3", "relay.events", "relay.attempts") == []


def test_the_store_never_imports_the_layers_above_it() -> None:
    """The store stores: it neither sends, nor decides, nor knows who drives it."""
    above = (
        "relay.engine",
        "relay.flush",
        "relay.attempts",
        "relay.relayer",
        "relay.smtp",
        "relay.commands",
        "relay.cli",
    )
    assert violations(sources("relay/store/*.py"), *above) == []


def test_the_store_publishes_nothing() -> None:
    """Snapshots are the store's to make; the bus is the engine's (relay/engine.py)."""
    for path in sources("relay/store/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "relay.events":
                names = {alias.name for alias in node.names}
                assert "EventBus" not in names, path.relative_to(ROOT)
            assert not (isinstance(node, ast.Attribute) and node.attr == "publish"), path


#: Pure rules and plain values: no I/O of their own, a clock is a parameter.
PURE = (
    "relay.address",
    "relay.config_values",
    "relay.dsn",
    "relay.errors",
    "relay.policy",
    "relay.report",
    "relay.schedule",
    "relay.sizes",
    "relay.states",
    "relay.throttle",
    "relay.visible",
)

#: What would give a pure module I/O, a network or a clock of its own.
IMPURE = (
    "sqlite3",
    "socket",
    "ssl",
    "asyncio",
    "subprocess",
    "time",
    "aiosmtplib",
    "keyring",
    "httpx",
    "authlib",
)


def test_pure_rules_import_only_pure_rules_and_the_standard_library() -> None:
    paths = [ROOT / (name.replace(".", "/") + ".py") for name in PURE]
    impure_relay = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in imported_modules(path)
        if within(name, "relay") and not within(name, *PURE)
    ]
    assert impure_relay == []
    assert violations(paths, *IMPURE, *QT) == []


#: The modules that open the store's file: the window reaches them only through the engine.
STORE_FILE = (
    "relay.store.database",
    "relay.store.body",
    "relay.store.checkpoint",
    "relay.store.check",
)


def sqlite_connects(path: Path) -> list[str]:
    """``file:line`` of each ``sqlite3.connect`` in ``path``."""
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr == "connect"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sqlite3"
    ]


#: A store too damaged for the engine to open is repaired from the start-up
#: dialog with ``relay.store.check``, as ``outbox check --repair`` does.
WINDOW_MAY_REPAIR = frozenset({"gui/store_repair.py: relay.store.check"})


def test_the_window_never_opens_the_store_file_itself() -> None:
    """The window holds one engine (relay.engine.Engine); no SQLite connection of its own."""
    paths = sources("gui/**/*.py")
    assert [v for v in violations(paths, *STORE_FILE) if v not in WINDOW_MAY_REPAIR] == []
    assert [place for path in paths for place in sqlite_connects(path)] == []


def test_the_window_never_imports_sqlite() -> None:
    assert violations(sources("gui/**/*.py"), "sqlite3") == []


def test_a_forbidden_import_is_found_wherever_it_stands(tmp_path: Path) -> None:
    """The checker itself: a lazy import, a relative one and one under TYPE_CHECKING count."""
    probe = tmp_path / "relay" / "smtp" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import PySide6.QtCore\n"
        "def later():\n"
        "    from ..store import outbox\n"
        "    from .. import store\n"
        "    import sqlite3\n",
        encoding="utf-8",
    )
    assert set(imported_modules(probe, tmp_path)) >= {
        "PySide6.QtCore",
        "relay.store",
        "sqlite3",
    }
    assert violations([probe], *QT, root=tmp_path) == ["relay/smtp/probe.py: PySide6.QtCore"]
    assert len(violations([probe], "relay.store", "sqlite3", root=tmp_path)) == 3
