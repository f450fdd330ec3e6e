"""The project's documents name only what is there, and every window class says what it is.

A file moved or renamed without its documents following fails here, not in a
reader's hands: every path under one of the project's top-level folders named
in README.md, RELIABILITY.md, packaging/README.md and docs/*.md must exist,
and so must the target of every relative Markdown link.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        ROOT / "RELIABILITY.md",
        ROOT / "packaging" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)

#: A path under one of the project's folders, as prose and tables name it:
#: ``relay/smtp/wire.py``, ``tests/unit/``, ``tests/flush/test_dsn.py::test_x``.
PATH = re.compile(
    r"(?<![\w./~<>$-])((?:relay|gui|tests|docs|packaging|resources|scripts)/[\w./-]*)"
)
#: Paths of what is built, not of the tree: the wheel carries resources/ as gui/resources/.
BUILT = frozenset({"gui/resources/"})

#: A Markdown link or image: ``[text](target)``.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def named_paths(text: str) -> set[str]:
    return {match.group(1).rstrip(".") for match in PATH.finditer(text)}


def test_the_documents_are_found() -> None:
    names = {path.name for path in DOCUMENTS}
    assert {"README.md", "architecture.md", "command-line.md", "decisions.md"} <= names


def test_every_path_a_document_names_exists() -> None:
    missing = [
        f"{document.relative_to(ROOT)}: {name}"
        for document in DOCUMENTS
        for name in sorted(named_paths(document.read_text(encoding="utf-8")))
        if not (ROOT / name).exists() and name not in BUILT
    ]
    assert missing == []


def test_every_relative_link_of_a_document_leads_somewhere() -> None:
    broken = []
    for document in DOCUMENTS:
        for match in LINK.finditer(document.read_text(encoding="utf-8")):
            target = match.group(1).split("#", 1)[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # an anchor on the same page, or https:, mailto: …
            if not (document.parent / target).exists():
                broken.append(f"{document.relative_to(ROOT)}: {match.group(1)}")
    assert broken == []


def test_the_checks_see_a_missing_path_and_a_broken_link() -> None:
    text = (
        "See `relay/smtp/nowhere.py` and relay/store/, then [this](docs/none.md)"
        " and tests/flush/test_dsn.py::test_x."
    )
    assert named_paths(text) == {
        "relay/smtp/nowhere.py",
        "relay/store/",
        "docs/none.md",
        "tests/flush/test_dsn.py",
    }
    assert [m.group(1) for m in LINK.finditer(text)] == ["docs/none.md"]
    assert not (ROOT / "relay/smtp/nowhere.py").exists()
    assert named_paths("~/.local/share/outbox, <home>/drop/new/, $XDG_DATA_HOME/docs/x") == set()


def test_every_class_of_the_window_has_a_docstring() -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        for path in sorted((ROOT / "gui").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and not ast.get_docstring(node)
    ]
    assert missing == []


def test_the_architecture_says_where_every_module_lives() -> None:
    """Each module of relay/ and gui/ has its line in docs/architecture.md.

    Named by its path, or by its name on the line of its package
    (``relay/oauth/`` … ``providers.py``).
    """
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    named = named_paths(text)
    unplaced = []
    for path in sorted([*(ROOT / "relay").rglob("*.py"), *(ROOT / "gui").rglob("*.py")]):
        name = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" and name != "relay/__init__.py":
            continue
        package = path.parent.relative_to(ROOT).as_posix() + "/"
        if name in named or any(
            line.startswith(f"| `{package}`") and f"`{path.stem}" in line for line in lines
        ):
            continue
        unplaced.append(name)
    assert unplaced == []
