"""``outbox flush`` in a real terminal (a pty): the progress bar and the result lines.

stdout and stderr share one pty, as in a person's terminal. What the terminal
shows is rebuilt from the bytes with the two controls the bar uses (carriage
return, erase to end of line), so a line glued onto the bar shows here as it
would on screen.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from relay.sizes import size_text
from tests.flush.test_flush_cli import add_account, enqueue, message
from tests.support.cli import listed
from tests.support.smtp_servers import RecordingHandler, threaded_smtp_server


def run_in_a_terminal(home: Path, *args: str) -> tuple[int, list[str]]:
    """Run ``outbox --home HOME ARGS`` on a pty; its exit status and the screen's lines."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    output = bytearray()
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal side has closed it
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    return process.wait(timeout=60), screen(output.decode())


def screen(text: str) -> list[str]:
    """The lines a terminal shows for ``text`` (``\\r``, ``ESC[K`` and newlines only)."""
    lines: list[str] = []
    line: list[str] = []
    column = 0
    i = 0
    while i < len(text):
        if text.startswith("\x1b[K", i):
            del line[column:]
            i += 3
            continue
        char = text[i]
        i += 1
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("".join(line))
            line, column = [], 0
        else:
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    if line:
        lines.append("".join(line))
    return lines


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_result_lines_never_share_a_line_with_the_progress_bar(home: Path) -> None:
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        ids = [enqueue(home, message(n)) for n in range(3)]
        code, lines = run_in_a_terminal(home, "flush")
    assert code == 0, lines
    results = [line for line in lines if ": sent" in line]
    assert sorted(line.split()[0] for line in results) == sorted(ids)
    assert all("[" not in line for line in results), lines
    bars = [line for line in lines if line.startswith("[")]
    assert bars and lines[-1] == bars[-1]  # the bar ends the output, whole and done
    total = size_text(sum(m["size"] for m in listed(home)))
    assert bars[-1].endswith(f" 3/3 messages, {total} of {total}"), bars[-1]


def test_a_partly_failed_message_names_each_recipients_verdict(home: Path) -> None:
    handler = RecordingHandler(refuse={"cy@example.org": "554 5.7.1 relaying denied"})
    with threaded_smtp_server(handler=handler) as server:
        add_account(home, server.port)
        mid = enqueue(home, message(1, cc="cy@example.org"))
        code, lines = run_in_a_terminal(home, "flush")
    assert code == 1
    (line,) = [line for line in lines if line.startswith(f"{mid} ")]
    assert line == (
        f"{mid} failed: bob@example.org sent; cy@example.org failed (554 5.7.1 relaying denied)"
    )
