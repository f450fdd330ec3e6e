"""A server that closes the connection at each stage of the dialogue, through ``outbox flush``.

Every close before the final dot leaves the message owed (deferred, due
again later) with an error saying the connection was closed and where; a
message whose turn never came stays queued, "not tried", no attempt counted; a
close after a successful transaction (at QUIT) leaves it sent; and the
healthy account in the same flush delivers regardless. A close after the
final dot -- the one that makes a message *uncertain* -- is
tests/flush/test_flush_cli.py::test_a_lost_reply_after_the_final_dot_is_uncertain_and_never_resent_unasked.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.reliability.conftest import add_account, note, record_figures
from tests.support.cli import listed, outbox
from tests.support.fault_server import DROP, threaded_fault_server
from tests.support.smtp_servers import threaded_smtp_server

# name -> (faults, messages on that account, expected final states in order)
STAGES: dict[str, tuple[dict[str, Any], int, tuple[str, ...]]] = {
    "greeting": ({"greeting": DROP}, 1, ("deferred",)),
    "ehlo": ({"ehlo": DROP}, 1, ("deferred",)),
    "mail": ({"mail": DROP}, 1, ("deferred",)),
    "rcpt": ({"rcpt_default": DROP}, 1, ("deferred",)),
    "data": ({"data": DROP}, 1, ("deferred",)),
    "inside-data": ({"drop_after_data_bytes": 1000}, 1, ("deferred",)),
    # The close comes before the second message's turn: it was never offered.
    "rset": ({"mail": ["550 5.7.1 not you", "250 OK"], "rset": DROP}, 2, ("failed", "queued")),
    "quit": ({"quit": DROP}, 1, ("sent",)),
}


def test_a_close_at_every_stage_defers_only_what_was_unfinished(home: Path, tmp_path: Path) -> None:
    with ExitStack() as stack:
        servers = {}
        for name, (faults, _, _) in STAGES.items():
            servers[name] = stack.enter_context(threaded_fault_server(**faults))
            # One connection each: the RSET stage needs two messages in one session.
            add_account(
                home,
                servers[name].port,
                "--from",
                f"*@{name}.example",
                "--max-connections",
                "1",
                name=name,
                timeout=2,
            )
        healthy = stack.enter_context(threaded_smtp_server())
        add_account(home, healthy.port, "--from", "*@healthy.example", name="healthy")
        files = []
        for name, (_, count, _) in [*STAGES.items(), ("healthy", ({}, 2, ()))]:
            for n in range(count):
                path = tmp_path / f"{name}-{n}.eml"
                lines = 20000 if name == "inside-data" else 1  # more than one read
                path.write_bytes(note(n, tag=name, sender=f"ann@{name}.example", body_lines=lines))
                files.append(str(path))
        assert outbox(home, "enqueue", *files).returncode == 0
        flushed = outbox(home, "flush")

    assert flushed.returncode == 1  # the 550 at MAIL is a permanent failure
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for item in listed(home):
        by_tag.setdefault(item["subject"].split()[0], []).append(item)
    assert [m["state"] for m in by_tag["healthy"]] == ["sent", "sent"]
    assert len(healthy.received) == 2
    problems = []
    for name, (_, _, expected) in STAGES.items():
        items = by_tag[name]
        states = tuple(m["state"] for m in items)
        if states != expected:
            problems.append(f"{name}: {states} ({[m['last_error'] for m in items]})")
        for item in items:
            if item["state"] == "deferred":
                error = item["last_error"] or ""
                if not any(w in error for w in ("closed", "closing", "lost", "reset")):
                    problems.append(f"{name}: the error does not name the close: {error}")
                if item["next_attempt"] is None:
                    problems.append(f"{name}: deferred without a next attempt")
            if item["state"] == "queued" and not (
                (item["last_error"] or "").startswith("not tried:") and item["attempts"] == 0
            ):
                problems.append(f"{name}: an untried message counted or misdescribed: {item}")
    assert problems == [], flushed.stderr.decode()
    # Nothing the server was left holding incomplete counts as delivered.
    assert [m.complete for m in servers["inside-data"].messages] == [False]
    record_figures("test_closing_servers", stages=len(STAGES))
