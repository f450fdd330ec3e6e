"""Where an outbox lives: ``--home DIR``, else ``OUTBOX_HOME``, else the user data dir.

The home is created 0700 and every file in it 0600: it holds mail people have
not sent yet.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "OUTBOX_HOME"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir("outbox", appauthor=False))


def ensure_home(home: Path) -> Path:
    """Create ``home`` (0700) if needed; tighten it if it is ours and too open."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = home.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(home, 0o700)
    return home
