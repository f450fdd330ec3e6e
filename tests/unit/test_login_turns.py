"""``LoginTurns``: one session logs in until the server's verdict; then all, or none."""

from __future__ import annotations

import asyncio

from relay.login_turns import LoginTurns


async def _run(
    turns: LoginTurns, names: list[str], log: list[str], verdicts: dict[str, str]
) -> None:
    """Each name is a session asking for its turn; ``verdicts`` says what its AUTH came to."""
    first_inside = asyncio.Event()

    async def session(name: str) -> None:
        async with turns.turn() as may:
            log.append(f"{name} {'logs in' if may else 'quits'}")
            if not may:
                return
            if name == names[0]:
                first_inside.set()
            await asyncio.sleep(0)  # the others queue up meanwhile (a loop turn, not a timer)
            verdict = verdicts.get(name)
            if verdict == "taken":
                turns.credentials_taken()
            elif verdict == "refused":
                turns.credentials_refused()
            log.append(f"{name} {verdict or 'no verdict'}")

    first = asyncio.create_task(session(names[0]))
    await first_inside.wait()
    await asyncio.gather(first, *(session(name) for name in names[1:]))


def test_while_one_logs_in_the_others_wait_and_then_all_log_in_at_once() -> None:
    log: list[str] = []
    asyncio.run(_run(LoginTurns(), ["a", "b", "c"], log, {"a": "taken"}))
    assert log[:2] == ["a logs in", "a taken"]
    # Both log in before either has a verdict: side by side, not one after the other.
    assert log[2:4] == ["b logs in", "c logs in"]


def test_a_refusal_sends_every_waiting_session_away_without_logging_in() -> None:
    log: list[str] = []
    turns = LoginTurns()
    asyncio.run(_run(turns, ["a", "b", "c"], log, {"a": "refused"}))
    assert log == ["a logs in", "a refused", "b quits", "c quits"]
    assert turns.refused


def test_a_session_ending_without_a_verdict_passes_the_turn_to_one_other() -> None:
    log: list[str] = []
    asyncio.run(_run(LoginTurns(), ["a", "b", "c"], log, {"b": "refused"}))
    assert log == ["a logs in", "a no verdict", "b logs in", "b refused", "c quits"]


def test_without_a_user_name_nobody_waits() -> None:
    async def scenario() -> None:
        turns = LoginTurns(needed=False)
        inside: list[bool] = []
        both = asyncio.Event()

        async def session() -> None:
            async with turns.turn() as may:
                inside.append(may)
                if len(inside) == 2:
                    both.set()
                await both.wait()  # both inside at once, or this never ends

        await asyncio.wait_for(asyncio.gather(session(), session()), 5.0)
        assert inside == [True, True]

    asyncio.run(scenario())


def test_a_session_cancelled_while_logging_in_passes_the_turn_on() -> None:
    async def scenario() -> list[str]:
        turns = LoginTurns()
        log: list[str] = []
        inside = asyncio.Event()

        async def stuck() -> None:
            async with turns.turn():
                inside.set()
                await asyncio.Event().wait()  # until cancelled

        async def next_one() -> None:
            async with turns.turn() as may:
                log.append(f"next {'logs in' if may else 'quits'}")

        first = asyncio.create_task(stuck())
        await inside.wait()
        second = asyncio.create_task(next_one())
        await asyncio.sleep(0)
        assert log == []  # waiting for its turn
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await second
        return log

    assert asyncio.run(scenario()) == ["next logs in"]
