"""The engine's advice, reworded for the window: what to click, never a command to type.

The engine speaks to the command line ("add one with `outbox account add NAME
--host HOST`"); the window shows the same problems, so it turns each quoted
``outbox`` command into the place in the window that does the same. Aliases
have no place in the window yet: their advice is left as it is.
"""

from __future__ import annotations

import re

ACCOUNTS = "File → Accounts…"

_QUOTED_COMMAND = re.compile(r"(?:with )?[`'](outbox [^`']+)[`']")


def for_window(text: str) -> str:
    """``text`` with every quoted ``outbox account`` command replaced by where to click."""
    return _QUOTED_COMMAND.sub(_instead, text)


def _instead(match: re.Match[str]) -> str:
    command = match.group(1)
    if not command.startswith("outbox account"):
        return match.group(0)
    if "--default" in command:
        return f"by ticking “Default account” in {ACCOUNTS}"
    if "--address" in command:
        return f"in {ACCOUNTS} (Own address)"
    return f"in {ACCOUNTS}"
