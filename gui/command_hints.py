"""The engine's advice, reworded for the window: what to click, never a command to type.

The engine speaks to the command line ("add one with `outbox account add NAME
--host HOST`"); the window shows the same problems, so it turns each quoted
``outbox`` command into the place in the window that does the same. Every
place the window shows the engine's words goes through ``for_window``: the
status bar's notices, its message boxes (``gui.confirm.tell``), the Accounts
dialog's errors and the attempts' errors in the detail pane.

A damaged store is the one problem with nothing to click: the check that sets
it aside runs with the window closed, so the window names the README's section
instead of the command.
"""

from __future__ import annotations

import re

ACCOUNTS = "File → Accounts…"
ALIASES = "File → Aliases…"

_QUOTED_COMMAND = re.compile(r"(?:\b(with|run) )?[`'](outbox [^`']+)[`']")
# relay.localnames: "set one with 'outbox alias set NAME ADDR' (or 'outbox alias set
# default ADDR' for every local name)".
_ALIAS_ADVICE = re.compile(
    r"set one with '(outbox alias set (\S+) ADDR)' \(or '(outbox alias set (\S+) ADDR)'"
    r" for every local name\)"
)
# relay.machineproblems: "run `outbox check` to see what can be read and `outbox check
# --repair` to set the file aside and start a fresh store ...".
_CHECK_ADVICE = re.compile(
    r"run `outbox check` to see what can be read and `outbox check --repair` to set"
)


def for_window(text: str) -> str:
    """``text`` with every quoted ``outbox`` command replaced by where to click."""
    text = _ALIAS_ADVICE.sub(_alias_instead, text)
    text = _CHECK_ADVICE.sub(
        "close Outbox and use its store check to see what can be read and to set", text
    )
    return _QUOTED_COMMAND.sub(_instead, text)


def _alias_instead(match: re.Match[str]) -> str:
    return (
        f"add an alias for “{match.group(2)}” in {ALIASES}"
        f" (or one named “{match.group(4)}” for every local name)"
    )


def _instead(match: re.Match[str]) -> str:
    verb, command = match.group(1), match.group(2)
    if command.startswith("outbox account login"):
        return f"sign in again in {ACCOUNTS}" if verb == "run" else f"in {ACCOUNTS}"
    if command.startswith("outbox alias"):
        return f"in {ALIASES}"
    if command.startswith("outbox account"):
        if "--default" in command:
            return f"by ticking “Default account” in {ACCOUNTS}"
        if "--address" in command:
            return f"in {ACCOUNTS} (Own address)"
        if command.startswith("outbox account test"):
            return f"Test Connection in {ACCOUNTS}"
        return f"in {ACCOUNTS}"
    # A command the window has no place for: named as a thing to do, not typed.
    return "from Outbox's command line" if verb else "Outbox's command line"
