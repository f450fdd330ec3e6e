"""The engine: one open home, what the command line and the window both hold.

A real SQLite home, a real aiosmtpd server on 127.0.0.1, the real flush lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from relay.accounts import save_accounts
from relay.credentials import store_password
from relay.dropdelivery import deliver_to_drop, drop_paths
from relay.dropfolder import DropImport
from relay.engine import Engine, no_flush_running
from relay.errors import ConfigError, FlushRunning
from relay.events import Event, MessageQueued
from relay.flush import FlushErrorKind, FlushResult
from relay.flushlock import FlushLock
from relay.message import parse_message
from relay.states import MessageState
from relay.store.listing import L_ID, L_STATE
from tests.support.keyrings import MemoryKeyring
from tests.support.smtp_servers import RunningServer, smtp_server

MESSAGE = b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    made = tmp_path / "home"
    made.mkdir(mode=0o700)
    return made


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def use_server(home: Path, server: RunningServer, password: str | None = None) -> None:
    save_accounts(home, [server.account(name="work", address="ann@example.org")])
    if password is not None:
        store_password(home, "work", password)


async def flush_once(engine: Engine) -> FlushResult:
    with engine.begin_flush() as flush:
        return await flush.run()


# -- opening -----------------------------------------------------------------------------


def test_opening_settles_what_a_dead_flush_left_sending(home: Path) -> None:
    with Engine.open(home) as engine:
        message_id = engine.enqueue(parse_message(MESSAGE)).id
        engine.outbox.claim([message_id])  # a flush claimed it, then its process died
        assert engine.outbox.get(message_id).state is MessageState.SENDING
    with Engine.open(home) as engine:
        recovered = engine.outbox.get(message_id)
    # No transaction had started: not tried, it keeps its place, no attempt counted.
    assert recovered.state is MessageState.QUEUED
    assert recovered.next_attempt_at is None
    assert recovered.attempts == 0
    assert recovered.last_error is not None and "not tried" in recovered.last_error


def test_opening_leaves_the_claims_of_a_flush_that_still_runs(home: Path) -> None:
    with Engine.open(home) as engine:
        message_id = engine.enqueue(parse_message(MESSAGE)).id
        engine.outbox.claim([message_id])
    with FlushLock(home), Engine.open(home) as engine:  # another flush holds the lock
        assert engine.outbox.get(message_id).state is MessageState.SENDING
        assert engine.flush_running_elsewhere()


# -- commands, events, the table's rows --------------------------------------------------


def test_commands_change_the_store_and_every_change_is_an_event(home: Path) -> None:
    events: list[Event] = []
    with Engine.open(home) as engine:
        unsubscribe = engine.subscribe(events.append)
        first = engine.enqueue(parse_message(MESSAGE)).id
        second = engine.enqueue(parse_message(MESSAGE)).id
        assert [type(e) for e in events] == [MessageQueued, MessageQueued]
        assert [m.state for m in engine.hold([first])] == [MessageState.HELD]
        assert [m.state for m in engine.release([first])] == [MessageState.QUEUED]
        assert engine.delete([second]) == [second]
        assert len(events) == 5
        unsubscribe()
        engine.hold([first])
        assert len(events) == 5
        rows = engine.read_listed()
    assert [(row[L_ID], row[L_STATE]) for row in rows] == [(first, "held")]


def test_the_table_is_read_a_page_at_a_time(home: Path) -> None:
    with Engine.open(home) as engine:
        ids = [engine.enqueue(parse_message(MESSAGE)).id for _ in range(5)]
        first = engine.read_listed(limit=2)
        rest = engine.read_listed(after_id=first[-1][L_ID])
    assert [row[L_ID] for row in first + rest] == ids


# -- the flush sequence --------------------------------------------------------------------


def test_a_flush_sends_holds_the_lock_while_it_runs_and_then_lets_go(home: Path) -> None:
    async def scenario() -> tuple[FlushResult, RunningServer]:
        async with smtp_server() as server:
            use_server(home, server)
            with Engine.open(home) as engine, Engine.open(home) as other:
                engine.enqueue(parse_message(MESSAGE))
                with engine.begin_flush() as flush:
                    assert engine.flushing
                    assert other.flush_running_elsewhere()
                    with pytest.raises(FlushRunning):
                        other.begin_flush()
                    result = await flush.run()
                assert not engine.flushing
                assert not other.flush_running_elsewhere()
                with other.begin_flush():  # the lock is free again
                    pass
        return result, server

    result, server = asyncio.run(scenario())
    assert result.exit_code == 0
    assert [m.state for m in (s.message for s in result.settled)] == [MessageState.SENT]
    assert [r.rcpt_tos for r in server.received] == [("bob@example.org",)]


def test_a_flush_takes_in_the_drop_folder_first_and_says_what_it_refused(home: Path) -> None:
    """Told before preparing can fail (no account yet), and the lock is let go."""
    Engine.open(home).close()
    deliver_to_drop(home, parse_message(MESSAGE), account=None)
    (drop_paths(home)[2] / "junk").write_bytes(b"not a message at all\r\n")
    heard: list[DropImport] = []
    with Engine.open(home) as engine:
        with pytest.raises(ConfigError, match="no account configured"):
            engine.begin_flush(on_imported=heard.append)
        assert not engine.flushing
        assert not engine.flush_running_elsewhere()
        assert len(engine.outbox.ids()) == 1
    assert len(heard) == 1
    assert len(heard[0].imported) == 1 and len(heard[0].rejected) == 1


def test_nothing_else_may_hold_the_lock_while_check_repairs(home: Path) -> None:
    with Engine.open(home) as engine, no_flush_running(home), pytest.raises(FlushRunning):
        engine.begin_flush()


# -- flush errors are values ---------------------------------------------------------------


def test_a_refused_password_is_an_auth_refused_error_of_that_account(home: Path) -> None:
    async def scenario() -> FlushResult:
        async with smtp_server(password="right") as server:
            use_server(home, server, password="wrong")
            with Engine.open(home) as engine:
                engine.enqueue(parse_message(MESSAGE))
                return await flush_once(engine)

    result = asyncio.run(scenario())
    (error,) = result.errors
    assert (error.kind, error.account, error.message_id) == (
        FlushErrorKind.AUTH_REFUSED,
        "work",
        None,
    )
    assert str(error).startswith("account work: ")
    assert result.exit_code == 1


def test_a_missing_password_and_a_sender_without_account_are_told_apart(home: Path) -> None:
    async def scenario() -> FlushResult:
        async with smtp_server(password="right") as server:
            use_server(home, server)  # no password stored
            with Engine.open(home) as engine:
                engine.enqueue(parse_message(MESSAGE))
                # Queued for an account that was removed since.
                stray = engine.enqueue(parse_message(MESSAGE), account="gone").id
                result = await flush_once(engine)
                assert engine.outbox.get(stray).state is MessageState.QUEUED
                return result

    result = asyncio.run(scenario())
    kinds = {(e.kind, e.account) for e in result.errors}
    assert (FlushErrorKind.NO_CREDENTIALS, "work") in kinds
    (no_account,) = [e for e in result.errors if e.kind is FlushErrorKind.NO_ACCOUNT]
    assert no_account.account is None and no_account.message_id is not None
    assert str(no_account).startswith(f"{no_account.message_id}: ")
