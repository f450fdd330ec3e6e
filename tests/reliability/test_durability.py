"""Durable before announced: a stored message or a recipient marked sent is on disk first.

Power cannot be cut in a test, but what survives a cut can be: a write
survives when the write-ahead log holding it was synced (``fdatasync``)
before anyone was told. So the program runs under ``strace``, which records
in order every write to the store's files, every sync, and every line it
prints; the rule checked is that no id printed by ``enqueue`` and no
``sent`` line printed by ``flush`` comes while the WAL holds writes not yet
synced. With ``synchronous=NORMAL`` (SQLite's WAL default) the WAL is synced
only at checkpoints, and both would fail.

The configuration itself is checked too: every connection to the store runs
in WAL mode with ``synchronous=FULL``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.store.database import connect
from tests.reliability.conftest import DB_NAME, add_account, note
from tests.support.cli import outbox
from tests.support.smtp_servers import threaded_smtp_server

CALL = re.compile(r"^(?P<pid>\d+) +(?P<name>\w+)\((?P<fd>\d+)(?:<(?P<path>[^>]*)>)?(?P<rest>.*)$")
#: A call of another thread that strace printed in two parts, this one its end.
RESUMED = re.compile(r"^(?P<pid>\d+) +<\.\.\. (?P<name>\w+) resumed>")


@dataclass
class Announcement:
    text: str
    wal_writes_before: int


def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    done = subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True)
    return done.returncode == 0  # ptrace may be forbidden in a container


needs_strace = pytest.mark.skipif(not strace_works(), reason="strace (ptrace) is not usable here")


def traced(home: Path, *args: str, input: bytes | None = None, trace: Path) -> int:
    """``outbox --home HOME ARGS`` under strace; the exit status."""
    command = [
        "strace",
        "-f",
        "-y",
        "-s",
        "200",
        "-o",
        str(trace),
        "-e",
        "trace=write,pwrite64,fsync,fdatasync",
        sys.executable,
        "-m",
        "relay.cli",
        "--home",
        str(home),
        *args,
    ]
    return subprocess.run(command, input=input, capture_output=True, timeout=120).returncode


def announcements(trace: Path, printed_on: int, pattern: str) -> list[Announcement]:
    """Each print on fd ``printed_on`` matching ``pattern``; fails if the WAL was dirty then.

    A sync covers the WAL writes made before it began, and only once it has
    returned: with commits synced on a thread of their own, strace prints a
    sync that another thread's calls interrupt in two parts (``<unfinished
    ...>``, then ``<... fdatasync resumed>``).
    """
    wal_writes = 0
    synced = 0  # WAL writes a finished sync covers
    syncing: dict[str, int] = {}  # thread -> WAL writes before its unfinished sync
    found = []
    for line in trace.read_text(errors="replace").splitlines():
        resumed = RESUMED.match(line)
        if resumed is not None:
            if resumed["pid"] in syncing and resumed["name"] in ("fsync", "fdatasync"):
                synced = max(synced, syncing.pop(resumed["pid"]))
            continue
        match = CALL.match(line)
        if match is None:
            continue
        name, fd, path = match["name"], int(match["fd"]), match["path"] or ""
        if path.endswith(f"{DB_NAME}-wal"):
            if name in ("write", "pwrite64"):
                wal_writes += 1
            elif name in ("fsync", "fdatasync"):
                if "<unfinished ...>" in match["rest"]:
                    syncing[match["pid"]] = wal_writes
                else:
                    synced = max(synced, wal_writes)
        elif name == "write" and fd == printed_on and re.search(pattern, match["rest"]):
            assert synced == wal_writes, f"announced before the WAL was synced: {line}"
            found.append(Announcement(match["rest"], wal_writes))
    return found


def test_every_connection_to_the_store_is_wal_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / DB_NAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


@needs_strace
def test_an_enqueued_id_is_printed_only_after_its_message_is_synced(
    home: Path, tmp_path: Path
) -> None:
    files = []
    for n in range(3):
        path = tmp_path / f"{n}.eml"
        path.write_bytes(note(n, tag="durable"))
        files.append(str(path))
    trace = tmp_path / "enqueue.trace"
    assert traced(home, "enqueue", *files, trace=trace) == 0
    printed = announcements(trace, 1, r'"\d+(\\n)?"')
    assert len(printed) >= 1
    assert printed[0].wal_writes_before > 0  # the message really went through the WAL first


@needs_strace
def test_a_sent_line_is_printed_only_after_the_recipient_is_synced(
    home: Path, tmp_path: Path
) -> None:
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        for n in range(5):
            assert outbox(home, "enqueue", "-", input=note(n, tag="durable")).returncode == 0
        trace = tmp_path / "flush.trace"
        assert traced(home, "flush", trace=trace) == 0
    sent = announcements(trace, 2, r"\bsent\b")
    assert sent, trace.read_text()[-3000:]
    assert sum(a.text.count("sent") for a in sent) >= 5
    assert all(a.wal_writes_before > 0 for a in sent)


@needs_strace
def test_sendmail_bs_answers_250_only_after_the_message_is_synced(
    home: Path, tmp_path: Path
) -> None:
    dialogue = (
        b"HELO php\r\n"
        + b"".join(
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
            + note(n, tag="durable").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            + b".\r\n"
            for n in range(3)
        )
        + b"QUIT\r\n"
    )
    trace = tmp_path / "bs.trace"
    assert traced(home, "sendmail", "-bs", input=dialogue, trace=trace) == 0
    queued = announcements(trace, 1, r"250 2\.0\.0 Ok: queued as")
    assert len(queued) == 3
    assert 0 < queued[0].wal_writes_before < queued[1].wal_writes_before
