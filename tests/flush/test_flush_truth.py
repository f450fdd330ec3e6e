"""What ``outbox flush`` does and says must be true: against real processes and servers.

Many recipients over a server's limit, a hold while a flush runs, a stop,
messages whose turn never came, transcripts, and a flush with nothing due.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.flush.test_flush_cli import add_account, enqueue, message, states
from tests.support.cli import listed, outbox
from tests.support.fault_server import threaded_fault_server

PIPELINING = ("PIPELINING", "8BITMIME", "SIZE 104857600", "ENHANCEDSTATUSCODES")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def crowd_message(count: int) -> tuple[bytes, list[str]]:
    addresses = [f"r{n}@example.net" for n in range(count)]
    raw = (
        "From: ann@example.org\r\nTo: " + ",\r\n ".join(addresses) + "\r\n"
        "Subject: to many\r\n\r\nHello all.\r\n"
    ).encode()
    return raw, addresses


def show(home: Path, mid: str) -> dict[str, object]:
    done = outbox(home, "show", mid, "--json")
    assert done.returncode == 0, done.stderr.decode()
    shown: dict[str, object] = json.loads(done.stdout)
    return shown


def flush_in_background(home: Path, *ids: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "flush", *ids],
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def wait_for(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    """Until ``ready()`` (checked every 50 ms of the process's life; bounded at 10 s)."""
    for _ in range(200):
        if ready():
            return
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError("the flush ended first")
    raise AssertionError("not ready within 10 s")


@pytest.mark.parametrize("pipelining", ["on", "off"])
def test_300_recipients_to_a_server_taking_100_go_in_one_flush_once_each(
    home: Path, pipelining: str
) -> None:
    raw, addresses = crowd_message(300)
    with threaded_fault_server(extensions=PIPELINING, rcpt_limit=100) as server:
        add_account(home, server.port, "--pipelining", pipelining)
        mid = enqueue(home, raw)
        after = enqueue(home, message(2))
        done = outbox(home, "flush")
        received = [m.rcpt_tos for m in server.messages]
    assert done.returncode == 0, done.stderr.decode()
    # The small one may go first, or over another connection: in any order, but the
    # crowd's three transactions in order, a hundred recipients each.
    assert [r for r in received if r != ["bob@example.org"]] == [
        addresses[:100],
        addresses[100:200],
        addresses[200:],
    ]
    assert received.count(["bob@example.org"]) == 1
    assert states(home) == {mid: "sent", after: "sent"}
    (item,) = [m for m in listed(home) if m["id"] == mid]
    assert {r["state"] for r in item["recipients"]} == {"sent"}
    # One line for the message, saying it was sent.
    lines = [line for line in done.stderr.decode().splitlines() if line.startswith(f"{mid} ")]
    assert len(lines) == 1 and ": sent" in lines[0]


def test_a_thousand_recipients_through_smtp_sink_in_one_flush(home: Path) -> None:
    from tests.support.postfix_sink import postfix_sink

    raw, addresses = crowd_message(1000)
    with postfix_sink() as sink:
        add_account(home, sink.port)
        mid = enqueue(home, raw)
        after = enqueue(home, message(2))
        done = outbox(home, "flush")
        received = sink.received()
    assert done.returncode == 0, done.stderr.decode()
    # smtp-sink's files come in no particular order.
    assert sorted((m.rcpt_tos for m in received), key=len) == [["bob@example.org"], addresses]
    assert states(home) == {mid: "sent", after: "sent"}


def test_each_attempts_transcript_holds_only_its_own_transaction(home: Path) -> None:
    with threaded_fault_server(extensions=PIPELINING) as server:
        add_account(home, server.port)
        ids = [enqueue(home, message(n, to=f"only{n}@example.org")) for n in range(3)]
        assert outbox(home, "flush").returncode == 0
        assert server.pipelined > 0
    for n, mid in enumerate(ids):
        (attempt,) = show(home, mid)["attempt_history"]  # type: ignore[misc]
        transcript = attempt["transcript"]
        assert "S: 220 fault.test ESMTP ready" in transcript  # the session's opening
        assert transcript.count("MAIL FROM:") == 1
        assert f"RCPT TO:<only{n}@example.org>" in transcript
        others = [f"only{k}@example.org" for k in range(3) if k != n]
        assert not any(other in transcript for other in others), transcript


def test_messages_whose_turn_never_came_are_not_tried_and_keep_their_place(
    home: Path,
) -> None:
    # The server leaves after the second message's data: the third (whose
    # commands went out with that data's final dot) and the fourth were claimed
    # by the session but never offered.
    closing = ["250 2.0.0 Queued", "421 4.3.2 going down"]
    with threaded_fault_server(extensions=PIPELINING, end_of_data=closing) as server:
        add_account(home, server.port, "--max-connections", "1")
        ids = [enqueue(home, message(n)) for n in range(4)]
        done = outbox(home, "flush")
        assert len(server.messages) == 2
    assert done.returncode == 75
    items = {m["id"]: m for m in listed(home)}
    assert items[ids[0]]["state"] == "sent"
    assert items[ids[1]]["state"] == "deferred" and items[ids[1]]["attempts"] == 1
    for mid in ids[2:]:
        item = items[mid]
        assert item["state"] == "queued"
        assert item["attempts"] == 0 and item["next_attempt"] is None
        assert item["last_error"] == "not tried: the connection closed before this message's turn"
        assert {r["reply"] for r in item["recipients"]} == {None}  # no server words
    err = done.stderr.decode()
    assert f"{ids[2]} bob@example.org: queued (not tried:" in err
    # They keep their place: the next flush sends them first, once each.
    with threaded_fault_server(extensions=PIPELINING) as healthy:
        outbox(home, "account", "set", "test", "--port", str(healthy.port))
        assert outbox(home, "flush", ids[2], ids[3]).returncode == 0
        assert len(healthy.messages) == 2


def test_a_stopped_flush_exits_75_and_says_how_many_remain(home: Path) -> None:
    with threaded_fault_server(stall_data=(10, 1.5)) as server:
        add_account(
            home, server.port, "--max-messages-per-connection", "1", "--max-connections", "1"
        )
        for n in range(4):
            enqueue(home, message(n))
        with flush_in_background(home) as proc:
            wait_for(proc, lambda: any(c.startswith("DATA") for c in server.commands))
            proc.send_signal(signal.SIGTERM)
            _, err_bytes = proc.communicate(timeout=30)
    err = err_bytes.decode().strip().splitlines()
    assert proc.returncode == 75
    assert err[-1] == "outbox: stopped; 3 messages not sent yet"
    assert list(states(home).values()).count("queued") == 3


def test_flush_with_nothing_due_says_how_many_wait_and_when(home: Path) -> None:
    with threaded_fault_server(mail="450 4.7.1 try later") as server:
        add_account(home, server.port)
        enqueue(home, message(1))
        enqueue(home, message(2))
        assert outbox(home, "flush").returncode == 75
        done = outbox(home, "flush")
    assert done.returncode == 0
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("outbox: nothing due now; 2 deferred messages wait for a later try,")
    assert "the next at " in line and "(in 1 min;" in line


def test_a_message_held_while_the_flush_sends_another_is_not_sent(home: Path) -> None:
    # Two 16 MB messages (one size class: sent in their order) over one
    # connection, and a server that stops reading the data for a while: the
    # flush is inside the first message's data when the holds come.
    line = b"x" * 998 + b"\r\n"
    with threaded_fault_server(extensions=PIPELINING, stall_data=(10, 3.0)) as server:
        add_account(home, server.port, "--max-connections", "1")
        first = enqueue(home, message(1).replace(b"Hello number 1.", line * (16 * 1024)))
        second = enqueue(home, message(2).replace(b"Hello number 2.", line * (16 * 1024)))
        with flush_in_background(home, first, second) as proc:
            wait_for(proc, lambda: any(c.startswith("DATA") for c in server.commands))
            held = outbox(home, "hold", second)
            refused = outbox(home, "hold", first)
            _, err_bytes = proc.communicate(timeout=30)
        received = [m.rcpt_tos for m in server.messages]
    assert held.returncode == 0 and held.stdout.decode().strip() == f"{second}: held"
    # The first one's transaction is under way: the hold says so and changes nothing.
    assert refused.returncode != 0
    assert "being sent now" in refused.stderr.decode()
    assert b"Traceback" not in refused.stderr
    assert proc.returncode == 0, err_bytes.decode()
    assert received == [["bob@example.org"]]  # the first only
    assert states(home) == {first: "sent", second: "held"}
    assert show(home, second)["attempts"] == 0


def test_a_real_postfix_limited_to_100_recipients_delivers_300_once_each(home: Path) -> None:
    from tests.support.postfix_server import postfix_server

    raw, addresses = crowd_message(300)
    with postfix_server(smtpd_recipient_limit="100") as postfix:
        add_account(home, postfix.port)
        mid = enqueue(home, raw)
        after = enqueue(home, message(2, to="after@example.net"))
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        postfix.wait_until(lambda: len(postfix.delivered_to()) >= 301)
        delivered = postfix.delivered_to()
        log = postfix.log()
    assert sorted(delivered) == sorted([*addresses, "after@example.net"])  # once each
    assert "improper command pipelining" not in log
    assert states(home) == {mid: "sent", after: "sent"}
    # Postfix took 100 a transaction: three transactions, each one attempt of the message.
    assert len(show(home, mid)["attempt_history"]) == 3  # type: ignore[arg-type]


def test_a_real_postfix_limited_to_100_takes_1200_recipients_without_hanging_up(
    home: Path,
) -> None:
    """Postfix counts every RCPT past ``smtpd_recipient_limit`` in a transaction and,
    past ``smtpd_recipient_overshoot_limit`` (1,000 by default), each one is an error
    until it says ``421 … too many errors`` and hangs up: offering a transaction all
    1,200 recipients had none delivered, flush after flush. After the first 452 the
    rest wait for the next transaction instead."""
    from tests.support.postfix_server import postfix_server

    raw, addresses = crowd_message(1200)
    with postfix_server(smtpd_recipient_limit="100") as postfix:
        add_account(home, postfix.port)
        mid = enqueue(home, raw)
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        postfix.wait_until(lambda: len(postfix.delivered_to()) >= 1200)
        delivered = postfix.delivered_to()
        log = postfix.log()
    assert "too many errors" not in log
    assert "improper command pipelining" not in log
    assert sorted(delivered) == sorted(addresses)  # once each
    assert states(home) == {mid: "sent"}
    assert len(show(home, mid)["attempt_history"]) == 12  # type: ignore[arg-type]


def test_a_real_postfix_taking_one_connection_per_client_gets_everything_over_it(
    home: Path,
) -> None:
    """Postfix's ``smtpd_client_connection_count_limit = 1`` turns the account's second
    connection away at the greeting (``421 4.7.0 … too many connections``) while the
    first sends. That limits connections, not mail: the open session takes the other's
    messages, nothing is paused, deferred or sent twice."""
    from tests.support.postfix_server import postfix_server

    # Loopback is in mynetworks, which the limits exempt unless told otherwise.
    limit = {"smtpd_client_connection_count_limit": "1", "smtpd_client_event_limit_exceptions": ""}
    with postfix_server(**limit) as postfix:
        add_account(home, postfix.port, "--max-connections", "2")
        ids = [enqueue(home, message(n, to=f"r{n}@example.net")) for n in range(6)]
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        postfix.wait_until(lambda: len(postfix.delivered_to()) >= 6)
        delivered = postfix.delivered_to()
        log = postfix.log()
    assert "Connection concurrency limit exceeded" in log  # the second was turned away
    assert sorted(delivered) == sorted(f"r{n}@example.net" for n in range(6))  # once each
    assert states(home) == dict.fromkeys(ids, "sent")
    assert all(show(home, mid)["attempts"] == 1 for mid in ids)


def test_a_real_postfixs_own_message_rate_limit_pauses_the_account(home: Path) -> None:
    """``smtpd_client_message_rate_limit = 2`` answers the third MAIL ``450 4.7.1 Error:
    too much mail from …``: the account pauses, and the rest wait untried rather than
    each earning its own refusal (and back-off) from a server that counts them."""
    from tests.support.postfix_server import postfix_server

    limit = {"smtpd_client_message_rate_limit": "2", "smtpd_client_event_limit_exceptions": ""}
    with postfix_server(**limit) as postfix:
        add_account(home, postfix.port, "--max-connections", "1")
        ids = [enqueue(home, message(n, to=f"r{n}@example.net")) for n in range(5)]
        done = outbox(home, "flush")
        log = postfix.log()
    assert done.returncode == 75
    assert "paused until" in done.stderr.decode()
    assert "Message delivery request rate limit exceeded" in log
    assert [states(home)[mid] for mid in ids[:2]] == ["sent", "sent"]
    # The third got the refusal; the other two were not tried against the limit.
    assert [show(home, mid)["attempts"] for mid in ids[3:]] == [0, 0]
