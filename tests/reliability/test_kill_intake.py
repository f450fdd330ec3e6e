"""SIGKILL during intake: ``sendmail``, ``enqueue`` and the drop-folder import.

A message is either fully in the outbox -- its row, its exact bytes and every
recipient -- or not at all; a program told "stored" (exit 0, or an id
printed) finds it stored; a drop-folder file is never removed before its
message is committed. The store is read here with plain SQL, read-only, so
a half-written message could not hide behind the store's own code.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.conftest import (
    DB_NAME,
    env_int,
    integrity,
    message_tag,
    note,
    record_figures,
)
from tests.support.cli import outbox


@dataclass(frozen=True)
class Row:
    id: int
    size: int
    raw: bytes | None
    recipients: tuple[str, ...]


def caught_files(home: Path, new: Path) -> int:
    """Drop files a kill caught between their commit and their removal (still in new/)."""
    conn = sqlite3.connect(f"file:{home / DB_NAME}?mode=ro", uri=True)
    try:
        files = [r[0] for r in conn.execute("SELECT file FROM drop_imports")]
    finally:
        conn.close()
    return sum((new / f.split("\0")[0]).exists() for f in files)


def rows(home: Path) -> list[Row]:
    """Every message as stored, body and recipients looked up separately (no joins that
    would hide a message without a body)."""
    if not (home / DB_NAME).exists():
        return []
    conn = sqlite3.connect(f"file:{home / DB_NAME}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "messages" not in tables:
            return []  # killed before the first migration committed
        result = []
        for message_id, size in conn.execute("SELECT id, size FROM messages ORDER BY id"):
            body = conn.execute(
                "SELECT raw FROM bodies WHERE message_id = ?", (message_id,)
            ).fetchone()
            recipients = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT address FROM recipients WHERE message_id = ? ORDER BY position",
                    (message_id,),
                )
            )
            result.append(Row(message_id, size, bytes(body[0]) if body else None, recipients))
        return result
    finally:
        conn.close()


def whole(row: Row, sent: dict[str, bytes], recipients: dict[str, tuple[str, ...]]) -> str:
    """The tag of a stored message, after checking it is exactly one of those handed in."""
    assert row.raw is not None, f"message {row.id} has no body"
    tag = message_tag(row.raw)
    assert row.raw == sent[tag], f"message {row.id} ({tag}) is not what was handed in"
    assert row.size == len(row.raw)
    assert row.recipients == recipients[tag], f"message {row.id} lost recipients"
    return tag


def big_note(n: int, rng: random.Random, tag: str) -> bytes:
    """Mostly small messages, some of a few MiB, so kills land inside the write too."""
    lines = rng.choice([1, 1, 20, 2000, 60000])
    raw = note(n, tag=tag, body_lines=lines)
    return raw.replace(b"To: bob@example.org", f"To: bob@example.org, c{n}@example.net".encode())


def test_sigkill_during_sendmail_leaves_each_message_whole_or_absent(
    home: Path, rng: random.Random
) -> None:
    runs = env_int("OUTBOX_RELIABILITY_INTAKE_KILLS", 48)
    sent: dict[str, bytes] = {}
    recipients: dict[str, tuple[str, ...]] = {}
    confirmed: set[str] = set()
    killed = 0
    # Kill moments spread over [0, window); the window follows the machine's speed so
    # that kills land on both sides of the commit, on a quiet or a busy machine alike.
    window = 0.4
    batch = 0
    while batch < runs or not (killed and confirmed):
        assert batch < runs * 4, f"kills never landed on both sides ({killed} killed)"
        killed_before, confirmed_before = killed, len(confirmed)
        started = []
        for n in range(batch, batch + 8):  # eight processes at a time
            tag = f"sm-{n}"
            raw = big_note(n, rng, "sm")
            sent[tag], recipients[tag] = raw, ("bob@example.org", f"c{n}@example.net")
            proc = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-t", "-i"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((tag, raw, proc, time.monotonic() + rng.uniform(0.0, window)))
        for _tag, raw, proc, _kill_at in started:
            assert proc.stdin is not None
            try:
                proc.stdin.write(raw)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        for tag, _raw, proc, kill_at in started:
            time.sleep(max(0.0, kill_at - time.monotonic()))  # the fault's moment
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.returncode == 0:
                confirmed.add(tag)
            else:
                assert proc.returncode == -signal.SIGKILL
                killed += 1
        batch += 8
        if len(confirmed) == confirmed_before:
            window *= 2  # every one was killed: give them longer
        elif killed == killed_before:
            window /= 2  # none was: kill sooner

    stored = [whole(row, sent, recipients) for row in rows(home)]
    counts = collections.Counter(stored)
    assert max(counts.values(), default=1) == 1  # nothing stored twice
    assert confirmed <= set(counts)  # exit 0 means stored
    assert killed > 0 and confirmed  # the kills landed on both sides of the commit
    if (home / DB_NAME).exists():
        assert integrity(home) == "ok"
    # The outbox still works after all that: one more message goes in.
    done = outbox(home, "sendmail", "-t", input=note(999, tag="after"))
    assert done.returncode == 0, done.stderr.decode()
    record_figures(
        "test_kill_intake::sendmail",
        runs=batch,
        killed=killed,
        killed_but_stored=len(set(counts) - confirmed),
        confirmed=len(confirmed),
    )


def test_sigkill_during_enqueue_keeps_every_printed_id_and_stores_files_in_order(
    home: Path, tmp_path: Path, rng: random.Random
) -> None:
    kills = env_int("OUTBOX_RELIABILITY_ENQUEUE_KILLS", 6)
    sent: dict[str, bytes] = {}
    recipients: dict[str, tuple[str, ...]] = {}
    expected_order: list[str] = []
    runs: list[tuple[list[str], list[int]]] = []
    for run in range(kills):
        files, tags = [], []
        for n in range(40):
            tag = f"enq-{run * 100 + n}"
            raw = big_note(run * 100 + n, rng, "enq")
            sent[tag], recipients[tag] = raw, ("bob@example.org", f"c{run * 100 + n}@example.net")
            path = tmp_path / f"{tag}.eml"
            path.write_bytes(raw)
            files.append(str(path))
            tags.append(tag)
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), "enqueue", *files],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one message is in: now kill somewhere later
        assert first.strip().isdigit()
        time.sleep(rng.uniform(0.0, 0.15))  # the fault's moment
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(timeout=30)
        proc.stdout.close()
        printed = [int(x) for x in (first + rest).split()]
        runs.append((tags, printed))
        expected_order.extend(tags)

    by_id = {row.id: whole(row, sent, recipients) for row in rows(home)}
    seen = 0
    for tags, printed in runs:
        mine = [t for t in by_id.values() if t in set(tags)]
        # The files went in one by one, in order, each whole: a prefix of them.
        assert mine == tags[: len(mine)]
        # Every id printed is stored and is that file; at most one more was committed
        # before the kill without its id being printed.
        assert [by_id[i] for i in printed] == tags[: len(printed)]
        assert len(printed) <= len(mine) <= len(printed) + 1
        seen += len(mine)
    assert integrity(home) == "ok"
    record_figures("test_kill_intake::enqueue", kills=kills, files=len(expected_order), stored=seen)


def test_sigkill_during_drop_folder_import_never_removes_a_file_before_its_commit(
    home: Path, rng: random.Random
) -> None:
    kills_wanted = env_int("OUTBOX_RELIABILITY_DROP_KILLS", 6)
    count = 150
    assert outbox(home, "list").returncode == 0  # creates the home
    new = home / "drop" / "new"
    (home / "drop" / "tmp").mkdir(parents=True, mode=0o700)
    new.mkdir(mode=0o700)
    sent: dict[str, bytes] = {}
    recipients: dict[str, tuple[str, ...]] = {}
    for n in range(count):
        raw = big_note(n, rng, "drop") if n % 10 else note(n, tag="drop")
        tag = f"drop-{n}"
        if n % 10 == 0:
            recipients[tag] = ("bob@example.org",)
        else:
            recipients[tag] = ("bob@example.org", f"c{n}@example.net")
        sent[tag] = raw
        tmp = home / "drop" / "tmp" / f"{n:06d}.msg"
        tmp.write_bytes(raw)
        os.rename(tmp, new / tmp.name)  # the Maildir way: complete, then visible

    kills = caught = 0
    for _ in range(kills_wanted):
        waiting = len(os.listdir(new))
        if waiting == 0:
            break
        # ``flush`` imports the drop folder first (then finds no account and stops).
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = waiting - rng.randint(1, max(1, count // (kills_wanted + 1)))
        deadline = time.monotonic() + 30
        while len(os.listdir(new)) > target and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            caught += caught_files(home, new)
        # The promise, checked at the moment of death: no file gone without its message.
        stored = {whole(row, sent, recipients) for row in rows(home)}
        still_waiting = {f"drop-{int(name.split('.')[0])}" for name in os.listdir(new)}
        gone = set(sent) - still_waiting
        assert gone <= stored, sorted(gone - stored)

    finish = outbox(home, "flush")
    assert b"no account configured" in finish.stderr
    assert os.listdir(new) == []
    counts = collections.Counter(whole(row, sent, recipients) for row in rows(home))
    assert set(counts) == set(sent)  # every file's message is in
    duplicates = sum(c - 1 for c in counts.values())
    # Not even the file caught between its commit and its removal is stored twice.
    assert duplicates == 0
    assert kills >= 2
    assert integrity(home) == "ok"
    record_figures(
        "test_kill_intake::drop",
        files=count,
        kills=kills,
        duplicates=duplicates,
        caught_between_commit_and_removal=caught,
    )
