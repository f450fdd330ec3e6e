"""Starting on a damaged store: the window offers Repair, where the command line has ``check``.

When the store cannot be opened because it is damaged, the start-up dialog
offers *Repair* beside *Quit*. Repair is ``relay.store.check.repair_store``,
the same as ``outbox check --repair``: the damaged file is renamed aside
(never deleted), a fresh store gets every message still readable whole, and
a second dialog says what was kept and what was not. It holds the flush
lock (``relay.engine.no_flush_running``) while it works, as the command
does: with a flush running elsewhere (another window, ``outbox flush``) it
refuses and says so.

Both dialogs run with ``exec()``: nothing else runs yet (no qasync loop).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from relay.engine import StoreError
from relay.machineproblems import MachineProblem, explain

TITLE = "Outbox cannot open its outbox"
OFFER = (
    "Repair sets the damaged file aside (renamed, never deleted) and starts a fresh store"
    " with every message that can still be read whole."
)
# relay.machineproblems words the damage, then the commands that repair it.
_COMMANDS = "; run `outbox check`"


def offer_repair(home: Path, problem: str, application: str) -> bool:
    """Say what is damaged and offer Repair; true once the store is repaired."""
    what = problem.partition(_COMMANDS)[0]
    box = QMessageBox(QMessageBox.Icon.Critical, application, TITLE)
    box.setObjectName("machine_problem")
    box.setTextFormat(Qt.TextFormat.PlainText)  # paths and SQLite's words, shown as typed
    box.setInformativeText(f"{what}.\n\n{OFFER}")
    repair = box.addButton("Repair", QMessageBox.ButtonRole.AcceptRole)
    repair.setObjectName("repair_store")
    leave = box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    leave.setObjectName("quit")
    box.setDefaultButton(repair)
    box.setEscapeButton(leave)
    box.exec()
    if box.clickedButton() is not repair:
        return False
    text, repaired = _repair(home)
    done = QMessageBox(
        QMessageBox.Icon.Information if repaired else QMessageBox.Icon.Critical,
        application,
        "The outbox is repaired" if repaired else "The outbox is not repaired",
    )
    done.setObjectName("store_repaired" if repaired else "store_not_repaired")
    done.setTextFormat(Qt.TextFormat.PlainText)
    done.setInformativeText(text)
    done.exec()
    return repaired


def _repair(home: Path) -> tuple[str, bool]:
    """What the repair did, in words, and whether the store can be opened now."""
    from relay.engine import no_flush_running, store_path
    from relay.errors import FlushRunning
    from relay.store.check import repair_store

    try:
        with no_flush_running(home):
            report = repair_store(home)
    except FlushRunning:
        return (
            "Another Outbox is sending from this outbox (a flush on the command line?):"
            " repair once it is done.",
            False,
        )
    except (OSError, StoreError, MachineProblem) as exc:  # a full disk puts the file back
        problem = explain(exc, store=store_path(home), home=home)
        return (str(problem) if problem is not None else f"the repair failed: {exc}", False)
    text = (
        f"The damaged file is set aside as {report.set_aside}. The fresh store holds"
        f" {_count(len(report.kept), 'message')} and {_count(report.attempts_kept, 'attempt')}."
    )
    if report.unlisted:
        text += (
            " Not one message of the damaged file could be listed (it may be cut short), so"
            " none was kept; they may still be found in the file set aside."
        )
    if report.lost:
        shown = ", ".join(map(str, report.lost[:20])) + (" …" if len(report.lost) > 20 else "")
        text += (
            f" {_count(len(report.lost), 'message')} could not be read whole and"
            f" {'was' if len(report.lost) == 1 else 'were'} not kept: {shown}."
        )
    return text, True


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
