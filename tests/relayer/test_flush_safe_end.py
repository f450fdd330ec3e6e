"""A flush whose session fails unexpectedly ends every other session before ``run()`` ends.

The engine alone (``relay.flush.RelayingManager``) in the test's loop, two
accounts on two scripted servers that never answer the end of the data, so
both sessions wait for a verdict. Then one session meets a bug (a subscriber
of the engine's events raising): the flush must cancel the other session,
wait for it, and only then raise -- leaving the store as a kill would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from relay.events import Event, PhaseChanged
from relay.flush import RelayingManager
from relay.message import ParsedMessage
from relay.policy import RetryPolicy
from relay.states import MessageState, Phase
from relay.store.outbox import Outbox, utc_now
from tests.support.fault_server import SILENCE, FaultServer
from tests.support.flushes import flush_through, queue_notes


class Bug(Exception):
    pass


def engine_tasks() -> list[asyncio.Task[object]]:
    """Tasks running the engine's code (relay/) that have not ended."""
    running = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "/relay/" in code.co_filename:
            running.append(task)
    return running


async def test_a_bug_in_one_session_cancels_the_other_and_waits_for_it(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids: dict[str, list[int]] = {}
    for account in ("one", "two"):
        ids[account] = [
            outbox.add_message(
                ParsedMessage(
                    "a@example.org",
                    (f"{account}{n}@example.net",),
                    f"From: a@example.org\r\nSubject: {account} {n}\r\n\r\nhi\r\n".encode(),
                    f"{account} {n}",
                ),
                account=account,
            ).id
            for n in (1, 2)
        ]
    async with FaultServer(end_of_data=SILENCE) as one, FaultServer(end_of_data=SILENCE) as two:
        accounts = {
            "one": one.account(name="one", max_connections=1, data_timeout_s=60.0),
            "two": two.account(name="two", max_connections=1, data_timeout_s=60.0),
        }
        awaiting: list[str] = []

        def second_verdict_awaited_is_a_bug(event: Event) -> None:
            if isinstance(event, PhaseChanged) and event.phase is Phase.AWAITING_VERDICT:
                awaiting.append(event.account)
                if len(awaiting) == 2:  # both sessions are past a final dot now
                    raise Bug("a subscriber's bug")

        manager = RelayingManager(
            outbox,
            choose_account=lambda message: accounts[message.account or ""],
            password_for=lambda _account: None,
            policy=RetryPolicy(),
            clock=utc_now,
        )
        manager.bus.subscribe(second_verdict_awaited_is_a_bug)
        with pytest.raises(Bug):
            await manager.run()
        # run() raised only once no session of it was left.
        assert engine_tasks() == []
        assert manager.running_sessions == 0
    assert sorted(awaiting) == ["one", "two"]
    # Each server got one message's data, to its final dot, and nothing more.
    assert [m.complete for m in one.messages] == [True]
    assert [m.complete for m in two.messages] == [True]
    # As a kill leaves it, then recovered at once (the store takes writes): the
    # two messages past their final dot are uncertain, the others (their turn never
    # came) untried, queued in their place.
    states = {i: outbox.get(i).state for i in ids["one"] + ids["two"]}
    assert [states[ids[a][0]] for a in ("one", "two")] == [MessageState.UNCERTAIN] * 2
    assert [states[ids[a][1]] for a in ("one", "two")] == [MessageState.QUEUED] * 2
    outbox.close()


@pytest.mark.parametrize(
    ("reply", "logins"),
    [("535 5.7.8 Authentication credentials invalid", 1), ("235 2.7.0 OK", 2)],
)
async def test_a_password_is_tried_on_one_connection_before_the_others_send_it(
    tmp_path: Path, reply: str, logins: int
) -> None:
    outbox = Outbox.open(tmp_path / "home")
    ids = queue_notes(outbox, 4)
    async with FaultServer(auth_mechanisms=("PLAIN",), auth=reply) as server:
        account = server.account(user="ann", max_connections=2)
        manager = flush_through(outbox, account, password="secret")
        result = await manager.run()
    # Every connection the account allows opens; a refused password is tried
    # once per flush, not once per connection, and each connection says QUIT.
    assert server.verbs().count("AUTH") == logins
    assert server.connections == 2
    assert server.verbs().count("QUIT") == 2
    assert result.auth_refused is (logins == 1)
    sent = [outbox.get(i).state is MessageState.SENT for i in ids]
    assert sent == [not result.auth_refused] * 4
    outbox.close()
