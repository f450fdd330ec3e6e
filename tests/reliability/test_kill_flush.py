"""SIGKILL an ``outbox flush`` at random moments while it sends a few hundred messages.

The server is a threaded aiosmtpd that keeps each message the moment its
data ends and then thinks for a few milliseconds before its 250, so kills
land in every phase: between transactions, inside the data, and -- the
dangerous one -- after the final dot, before the verdict. After each kill the
next command settles what the dead process left in ``sending``; after the
last, flushes run until nothing is due.

What must hold:

- nothing is lost: every message reaches the server at least once;
- nothing is sent twice behind anyone's back: before a person retries,
  no message has reached the server twice;
- a message the server may have is never left owed: every message the
  server received is ``sent`` or ``uncertain``, never queued or deferred;
- ``uncertain`` is only what was in flight: at most one message per
  connection per kill;
- retrying the uncertain ones by id sends them; then everything is ``sent``
  and the only duplicates are among those retried;
- the store passes ``PRAGMA integrity_check``.

``OUTBOX_RELIABILITY_KILLS`` (default 8) and ``OUTBOX_RELIABILITY_MESSAGES``
(default 300) make a longer campaign.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.reliability.conftest import (
    add_account,
    env_int,
    integrity,
    message_tag,
    note,
    record_figures,
)
from tests.support.cli import listed, outbox
from tests.support.gated_servers import GatedHandler, gated_server
from tests.support.smtp_servers import RecordingHandler, threaded_smtp_server

CONNECTIONS = 3
PER_CONNECTION = 20


@dataclass
class ThinkingHandler(RecordingHandler):
    """Keeps the message as soon as its data ends, then thinks before answering 250."""

    think_s: float = 0.004

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.think_s)
        return reply


def start_flush(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after(
    proc: subprocess.Popen[bytes], handler: RecordingHandler, more: int, extra_s: float
) -> bool:
    """SIGKILL ``proc`` once the server has ``more`` messages more (plus ``extra_s``).

    Returns false when the flush finished first (nothing left to kill).
    """
    target = len(handler.received) + more
    deadline = time.monotonic() + 30
    while len(handler.received) < target:
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the flush made no progress"
        time.sleep(0.001)
    if extra_s:
        time.sleep(extra_s)  # the fault's moment, not a synchronisation
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return proc.returncode == -signal.SIGKILL


def states(home: Path) -> dict[int, str]:
    """Every message's state; ``list`` also settles what a dead flush left in ``sending``."""
    return {int(m["id"]): m["state"] for m in listed(home)}


def test_sigkill_during_flush_loses_nothing_and_duplicates_only_what_a_person_retries(
    home: Path, tmp_path: Path, rng: random.Random
) -> None:
    kills_wanted = env_int("OUTBOX_RELIABILITY_KILLS", 8)
    count = env_int("OUTBOX_RELIABILITY_MESSAGES", 300)
    handler = ThinkingHandler()
    started = time.monotonic()
    with threaded_smtp_server(handler=handler) as server:
        add_account(
            home,
            server.port,
            "--max-connections",
            str(CONNECTIONS),
            "--max-messages-per-connection",
            str(PER_CONNECTION),
        )
        files = []
        for n in range(count):
            path = tmp_path / f"m{n:05d}.eml"
            path.write_bytes(note(n, tag="kill", body_lines=rng.randint(1, 400)))
            files.append(str(path))
        done = outbox(home, "enqueue", *files)
        assert done.returncode == 0, done.stderr.decode()
        ids = [int(line) for line in done.stdout.split()]
        tag_of = {i: f"kill-{n}" for n, i in enumerate(ids)}

        kills = 0
        uncertain_per_kill: list[int] = []
        uncertain_before: set[int] = set()
        rounds = 0
        while kills < kills_wanted and rounds < kills_wanted * 3:
            rounds += 1
            proc = start_flush(home)
            spread = max(1, count // (kills_wanted * 2))
            if not kill_after(proc, handler, rng.randint(1, spread), rng.uniform(0, 0.008)):
                break  # it finished: everything left was sent
            kills += 1
            now = states(home)
            assert "sending" not in now.values()
            uncertain = {i for i, s in now.items() if s == "uncertain"}
            assert uncertain >= uncertain_before  # never silently resolved
            uncertain_per_kill.append(len(uncertain - uncertain_before))
            assert len(uncertain - uncertain_before) <= CONNECTIONS
            uncertain_before = uncertain

        # Restart until nothing is due (deferred-by-the-kill messages are due at once).
        for _ in range(5):
            finish = outbox(home, "flush")
            assert finish.returncode in (0, 75), finish.stderr.decode()
            if "queued" not in states(home).values() and "deferred" not in states(home).values():
                break
        final = states(home)
        uncertain = {i for i, s in final.items() if s == "uncertain"}
        assert set(final.values()) <= {"sent", "uncertain"}, collections.Counter(final.values())
        assert uncertain == uncertain_before  # only kills make messages uncertain here

        received = collections.Counter(message_tag(r.body) for r in handler.received)
        # Nobody has retried yet: nothing may have reached the server twice.
        assert max(received.values()) == 1, [t for t, c in received.items() if c > 1]
        # Lost: only an uncertain message may be missing at the server.
        missing = {i for i in ids if received[tag_of[i]] == 0}
        assert missing <= uncertain
        # A message the server may have is never owed again without a person.
        assert all(final[i] in ("sent", "uncertain") for i in ids if received[tag_of[i]])

        if uncertain:
            retried = outbox(home, "retry", *map(str, sorted(uncertain)))
            assert retried.returncode == 0, retried.stderr.decode()
            assert b"twice" in retried.stderr
            again = outbox(home, "flush")
            assert again.returncode == 0, again.stderr.decode()
        assert set(states(home).values()) == {"sent"}

    received = collections.Counter(message_tag(r.body) for r in handler.received)
    assert {tag_of[i] for i in ids} == set(received)  # every message delivered
    duplicated = {t for t, c in received.items() if c > 1}
    assert duplicated <= {tag_of[i] for i in uncertain}
    assert max(received.values()) <= 2
    assert integrity(home) == "ok"
    assert kills >= min(kills_wanted, 3)  # the campaign really killed something
    record_figures(
        "test_kill_flush",
        messages=count,
        kills=kills,
        uncertain=len(uncertain),
        uncertain_per_kill=uncertain_per_kill,
        duplicates=len(duplicated),
        missing_before_retry=len(missing),
        seconds=round(time.monotonic() - started, 1),
    )


def test_messages_a_killed_flush_claimed_but_never_tried_keep_their_place(
    home: Path, tmp_path: Path
) -> None:
    """Killed while its first message waits for the verdict, the rest of its batch
    (claimed in several pages) never went out: they stay queued, not tried,
    with no deferral, no attempt and no lifetime running."""
    handler = GatedHandler(gated=True)
    with gated_server(handler) as server:
        add_account(
            home, server.port, "--max-connections", "1", "--max-messages-per-connection", "250"
        )
        files = []
        for n in range(250):
            path = tmp_path / f"m{n:03d}.eml"
            path.write_bytes(note(n, tag="claimed"))
            files.append(str(path))
        done = outbox(home, "enqueue", *files)
        assert done.returncode == 0, done.stderr.decode()
        proc = start_flush(home)
        assert handler.waiting.wait(30), "the first message never reached its verdict"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

        after = listed(home)
        in_flight = [m for m in after if m["state"] == "uncertain"]
        assert len(in_flight) == 1  # the one whose final dot had left
        untried = [m for m in after if m is not in_flight[0]]
        assert {m["state"] for m in untried} == {"queued"}
        assert {m["attempts"] for m in untried} == {0}
        assert {m["next_attempt"] for m in untried} == {None}
        assert all("not tried" in m["last_error"] for m in untried)

        handler.open_gate()
        assert outbox(home, "flush").returncode == 0
        final = {m["id"]: m["state"] for m in listed(home)}
        assert final.pop(in_flight[0]["id"]) == "uncertain"
        assert set(final.values()) == {"sent"}
    received = collections.Counter(message_tag(r.body) for r in handler.received)
    assert len(received) >= 249 and max(received.values()) == 1  # the uncertain one waits
