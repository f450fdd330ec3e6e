"""OAuth2 tests: a real authorization server (Authlib's) and an SMTP server that checks its tokens.

``async def`` tests run with ``asyncio.run`` (no asyncio plugin in this project).
Time is a ``FakeClock`` the test moves: tokens expire by it, nobody sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from tests.support.oauth_server import AuthorizationServerRunning, serving


class FakeClock:
    """Seconds since the epoch that move only when told."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    wanted = inspect.signature(function).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in wanted}
    asyncio.run(function(**kwargs))
    return True


@pytest.fixture
def server_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_server(server_clock: FakeClock) -> Iterator[AuthorizationServerRunning]:
    """Access tokens live 5 s of ``server_clock``."""
    with serving(access_lifetime_s=5, clock=server_clock) as running:
        yield running
