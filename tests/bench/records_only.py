"""Row 3r of the benchmarks: the CPU of a flush's records alone, with no wire at all.

Figure 3a compares the CPU of ``outbox flush`` with ``floor.py``'s, which
keeps one row per message. Outbox keeps more, each for a promise of its own:
per-recipient states, an attempt row with its replies and transcript, the
claim and the under-way mark that ``hold`` respects, a change log the window
reads. This script makes exactly those records for the queued messages of a
home, as a flush of 4 pipelined sessions makes them -- the same
``AttemptManager`` calls in the same order, one ``CommitGroup`` for the four,
claims in pages -- but talks to no server: every reply is a 250 made up here.
What it costs is part of any flush of Outbox, whatever its SMTP code does.

Run by ``tests/bench/run.py`` as ``python -m tests.bench.records_only HOME``,
pinned to the client core. It prints the CPU (user + system, every thread)
of the work on standard error: ``records: <messages> messages <seconds> s``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path

from relay.attempts import AttemptManager, CommitGroup
from relay.policy import RetryPolicy
from relay.report import OutgoingMessage, Reply, SessionInfo, Stage, TransactionReport
from relay.store.outbox import Outbox, utc_now

SESSIONS = 4
CLAIM_PAGE = 100
#: What a session's transcript holds for one 2 KB message to smtp-sink (461 characters).
TRANSCRIPT = "\n".join(
    [
        "*: connected to 127.0.0.1:25 (127.0.0.1)",
        "S: 220 smtp-sink ESMTP",
        "C: EHLO [127.0.0.1]",
        *(f"S: 250-{word}" for word in ("smtp-sink", "PIPELINING", "8BITMIME", "DSN")),
        "S: 250 ENHANCEDSTATUSCODES",
        "C: MAIL FROM:<bench@example.org>",
        "C: RCPT TO:<sink@example.net>",
        "C: DATA",
        "S: 250 2.1.0 Ok",
        "S: 250 2.1.5 Ok",
        "S: 354 End data with <CR><LF>.<CR><LF>",
        "C: [message data: 2048 bytes]",
        "C: .",
        "S: 250 2.0.0 Ok",
    ]
)
MAIL = Reply(Stage.MAIL, 250, "2.1.0 Ok")
RCPT = Reply(Stage.RCPT, 250, "2.1.5 Ok")
DATA = Reply(Stage.DATA, 354, "End data with <CR><LF>.<CR><LF>")
QUEUED = Reply(Stage.END_OF_DATA, 250, "2.0.0 Ok")


async def _allowed(answer: bool | Awaitable[bool]) -> bool:
    return answer if isinstance(answer, bool) else await answer


async def session(outbox: Outbox, group: CommitGroup, messages: Sequence[OutgoingMessage]) -> int:
    """One pipelined session's records: the next start rides on each final dot's commit."""
    manager = AttemptManager(
        outbox,
        messages,
        account="sink",
        policy=RetryPolicy(),
        clock=utc_now,
        commits=group,
    )
    manager.session_started(SessionInfo("sink", "127.0.0.1", 25), [m.id for m in messages])
    sent = 0
    allowed = await _allowed(manager.transaction_may_start(messages[0].id))
    for index, message in enumerate(messages):
        if not allowed:
            break
        manager.transaction_started(message.id)
        for address in message.recipients:
            manager.recipient_replied(message.id, address, RCPT)
        recorded = manager.data_completed(message.id)
        following = messages[index + 1] if index + 1 < len(messages) else None
        answer = manager.transaction_may_start(following.id) if following else False
        if recorded is not None:
            await recorded
        allowed = await _allowed(answer)
        manager.transaction_finished(
            TransactionReport(
                message.id,
                mail=MAIL,
                recipients=dict.fromkeys(message.recipients, RCPT),
                data=DATA,
                end_of_data=QUEUED,
                data_completed=True,
                sent_bytes=message.size,
                transcript=TRANSCRIPT,
            )
        )
        sent += 1
    manager.session_finished("")
    return sent


async def flush(outbox: Outbox) -> int:
    due = outbox.due_ids(utc_now())
    dealt = [due[index::SESSIONS] for index in range(SESSIONS)]
    group = CommitGroup(outbox)

    async def claimed_then_sent(ids: list[int]) -> int:
        messages: list[OutgoingMessage] = []
        for start in range(0, len(ids), CLAIM_PAGE):
            messages += outbox.claim(ids[start : start + CLAIM_PAGE])
        return await session(outbox, group, messages) if messages else 0

    try:
        return sum(await asyncio.gather(*(claimed_then_sent(ids) for ids in dealt)))
    finally:
        group.close()


def main(home: str) -> int:
    with Outbox.open(Path(home)) as outbox:
        began = time.process_time()
        sent = asyncio.run(flush(outbox))
        cpu_s = time.process_time() - began
    print(f"records: {sent} messages {cpu_s:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
