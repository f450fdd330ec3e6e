"""Shared pieces of the crash, fault and hostile-input campaign (RELIABILITY.md).

Everything here runs the real program: ``outbox`` as a subprocess on a real
home in the test's tmp dir, real SMTP servers on 127.0.0.1. Figures a test
wants in RELIABILITY.md (kills survived, inputs tried, duplicates seen) go
through :func:`record_figures`: printed (``pytest -s`` shows them) and, when
``OUTBOX_RELIABILITY_FIGURES`` names a file, appended to it as JSON lines.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.cli import outbox

FIGURES_ENV = "OUTBOX_RELIABILITY_FIGURES"
SEED_ENV = "OUTBOX_RELIABILITY_SEED"
DB_NAME = "outbox.sqlite3"  # the store's file in the home (README), read here with plain SQL


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def rng() -> random.Random:
    """Seeded, so a failing run can be replayed (``OUTBOX_RELIABILITY_SEED``)."""
    seed = int(os.environ.get(SEED_ENV, "20261124"))
    return random.Random(seed)


def env_int(name: str, default: int) -> int:
    """A count a person may raise for a longer campaign (``OUTBOX_RELIABILITY_KILLS=200``)."""
    return int(os.environ.get(name, str(default)))


def record_figures(test: str, **figures: object) -> None:
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(f"\nreliability figures: {line}")
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(line + "\n")


def integrity(home: Path) -> str:
    """``PRAGMA integrity_check`` of the store, opened read-only by the test."""
    with closing(sqlite3.connect(f"file:{home / DB_NAME}?mode=ro", uri=True)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def add_account(
    home: Path,
    port: int,
    *extra: str,
    env: dict[str, str] | None = None,
    password: str = "",
    name: str = "test",
    timeout: float = 3,
    security: str = "none",
) -> None:
    seconds = f"{timeout:g}"
    done = outbox(
        home,
        "account",
        "add",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        security,
        "--command-timeout",
        seconds,
        "--data-timeout",
        seconds,
        "--connect-timeout",
        seconds,
        *extra,
        env=env,
        input=password.encode() or None,
    )
    assert done.returncode == 0, done.stderr.decode()


def note(
    n: int,
    *,
    to: str = "bob@example.org",
    sender: str = "ann@example.org",
    tag: str = "note",
    body_lines: int = 1,
) -> bytes:
    """A small, valid message whose Message-ID (``<tag-n@example.org>``) names it."""
    lines = [
        f"From: Ann <{sender}>",
        f"To: {to}",
        f"Subject: {tag} {n}",
        f"Message-ID: <{tag}-{n}@example.org>",
        "Date: Tue, 24 Nov 2026 12:00:00 +0000",
        "",
        *(f"Line {k} of message {n}." for k in range(body_lines)),
        "",
    ]
    return "\r\n".join(lines).encode()


def message_tag(body: bytes) -> str:
    """The ``tag-n`` of a message's Message-ID, read from its bytes."""
    marker = b"Message-ID: <"
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"@", start)].decode()
