"""Running ``outbox`` as a user would: a real process, real arguments, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def outbox(
    home: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), *args],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )


def listed(home: Path, *args: str) -> list[dict[str, Any]]:
    """``outbox list --json`` parsed; fails loudly if the command did."""
    done = outbox(home, "list", "--json", *args)
    assert done.returncode == 0, done.stderr.decode()
    items: list[dict[str, Any]] = json.loads(done.stdout)
    return items
