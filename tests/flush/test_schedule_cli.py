"""``enqueue --at`` and ``flush --due`` as a user runs them: real processes, real servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.flush.test_flush_cli import add_account, message, states
from tests.support.cli import listed, outbox
from tests.support.fault_server import threaded_fault_server
from tests.support.smtp_servers import threaded_smtp_server

GMAIL_DAILY = "550 5.4.5 Daily user sending limit exceeded. For more information, go to"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def enqueue_at(home: Path, when: str, n: int) -> str:
    done = outbox(home, "enqueue", "--at", when, "-", input=message(n))
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def enqueue(home: Path, n: int) -> str:
    done = outbox(home, "enqueue", "-", input=message(n))
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


@pytest.mark.parametrize("when", ["tomorrow", "25:61", "2026-02-30 10:00", ""])
def test_a_bad_when_is_refused_clearly_and_stores_nothing(home: Path, when: str) -> None:
    done = outbox(home, "enqueue", "--at", when, "-", input=message(1))
    assert done.returncode == 64
    error = done.stderr.decode()
    assert "--at" in error and "HH:MM" in error and "Traceback" not in error
    assert listed(home) == []


@pytest.mark.parametrize(
    "when",
    ["9999-12-31 23:59", "0001-01-01 00:00", "9999-12-31T23:59:59.5Z", "0001-01-01T00:30+01:00"],
)
def test_a_when_beyond_the_calendar_is_refused_clearly_and_stores_nothing(
    home: Path, when: str
) -> None:
    done = outbox(home, "enqueue", "--at", when, "-", input=message(1), env={"TZ": "Europe/Berlin"})
    assert done.returncode == 64, done.stderr.decode()
    assert "out of the range" in done.stderr.decode()
    assert listed(home) == []


@pytest.mark.parametrize("when", ["9999-12-31 23:59", "9999-12-30T12:00Z", "0001-01-01T12:00Z"])
def test_a_when_no_other_zone_could_show_is_refused_too(home: Path, when: str) -> None:
    """Stored in UTC, such a time made `outbox list` in a zone east (or west) of UTC die
    with an OverflowError for good."""
    done = outbox(home, "enqueue", "--at", when, "-", input=message(1), env={"TZ": "UTC"})
    assert done.returncode == 64, done.stderr.decode()
    assert "out of the range" in done.stderr.decode()
    assert listed(home) == []
    assert outbox(home, "list", env={"TZ": "Pacific/Kiritimati"}).returncode == 0


def test_a_local_time_the_clock_skips_is_read_as_after_the_jump_never_before(home: Path) -> None:
    # Berlin skips 02:00-03:00 on 2027-03-28; it repeats 02:00-03:00 on 2027-10-31.
    berlin = {"TZ": "Europe/Berlin"}
    for when in ("2027-03-28 02:30", "2027-10-31 02:30"):
        done = outbox(home, "enqueue", "--at", when, "-", input=message(1), env=berlin)
        assert done.returncode == 0, done.stderr.decode()
    skipped, twice = (item["next_attempt"] for item in listed(home))
    assert skipped == "2027-03-28T01:30:00+00:00"  # 03:30 CEST, not 01:30 CET
    assert twice == "2027-10-31T00:30:00+00:00"  # the first 02:30 (CEST)


def test_a_message_sent_later_waits_for_its_time_unless_named(home: Path) -> None:
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        later = enqueue_at(home, when.isoformat(), 1)
        (item,) = listed(home)
        assert item["state"] == "queued"
        assert datetime.fromisoformat(item["next_attempt"]) == when
        for flush in (("flush",), ("flush", "--due")):
            done = outbox(home, *flush)
            assert done.returncode == 0, done.stderr.decode()
            assert server.received == []
        done = outbox(home, "flush", later)
        assert done.returncode == 0, done.stderr.decode()
        assert len(server.received) == 1 and states(home) == {later: "sent"}


def test_local_hh_mm_is_stored_as_the_next_such_local_time(home: Path) -> None:
    outbox(home, "enqueue", "--at", "23:59", "-", input=message(1))
    (item,) = listed(home)
    moment = datetime.fromisoformat(item["next_attempt"]).astimezone()
    assert (moment.hour, moment.minute, moment.second) == (23, 59, 0)
    assert timedelta(0) < moment - datetime.now(UTC) <= timedelta(days=1)


def test_flush_due_sends_what_came_due_and_leaves_new_mail_alone(home: Path) -> None:
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        fresh = enqueue(home, 1)
        done = outbox(home, "enqueue", "--at", "2026-01-01T08:00Z", "-", input=message(2))
        assert done.returncode == 0 and "due now" in done.stderr.decode()
        due = done.stdout.decode().strip()
        done = outbox(home, "flush", "--due")
        assert done.returncode == 0, done.stderr.decode()
        assert [r.body.count(b"number 2") for r in server.received] == [1]
        assert states(home) == {fresh: "queued", due: "sent"}
        again = outbox(home, "flush", "--due")
        assert again.returncode == 0 and "nothing due" in again.stderr.decode()
        assert len(server.received) == 1


def test_flush_due_retries_a_deferred_message_once_its_back_off_is_over(home: Path) -> None:
    with threaded_fault_server(end_of_data="451 4.3.0 try later") as busy:
        add_account(home, busy.port)
        (home / "config.toml").write_text(
            (home / "config.toml").read_text() + "\n[queue]\nfirst_retry_s = 0.001\n"
        )
        deferred = enqueue(home, 1)
        assert outbox(home, "flush").returncode == 75
    assert states(home) == {deferred: "deferred"}
    with threaded_smtp_server() as server:
        assert outbox(home, "account", "set", "test", "--port", str(server.port)).returncode == 0
        done = outbox(home, "flush", "--due")
        assert done.returncode == 0, done.stderr.decode()
        assert len(server.received) == 1 and states(home) == {deferred: "sent"}


def test_flush_due_refuses_named_messages(home: Path) -> None:
    done = outbox(home, "flush", "--due", "1")
    assert done.returncode == 64 and "--due" in done.stderr.decode()


def test_a_daily_limit_is_said_as_a_pause_and_the_next_flush_waits(home: Path) -> None:
    with threaded_fault_server(end_of_data=GMAIL_DAILY) as server:
        # One connection: the second message is not already in flight on another one.
        add_account(home, server.port, "--max-connections", "1")
        first, second = enqueue(home, 1), enqueue(home, 2)
        done = outbox(home, "flush")
        assert done.returncode == 75
        error = done.stderr.decode()
        assert "test: paused until " in error and "(daily sending limit)" in error
        assert states(home) == {first: "deferred", second: "queued"}
        connections = server.connections
        again = outbox(home, "flush")
        assert again.returncode == 75 and "(daily sending limit)" in again.stderr.decode()
        assert server.connections == connections
    with threaded_smtp_server() as healthy:
        assert outbox(home, "account", "set", "test", "--port", str(healthy.port)).returncode == 0
        assert outbox(home, "flush").returncode == 75  # paused: nothing goes through it
        due = outbox(home, "flush", "--due")  # the deferred one waits for the pause's end
        assert due.returncode == 0 and "nothing due" in due.stderr.decode()
        assert healthy.received == []
        named = outbox(home, "flush", second)  # a person names it: it goes all the same
        assert named.returncode == 0, named.stderr.decode()
        assert len(healthy.received) == 1 and states(home)[second] == "sent"
