"""OAuth2 tests: a real authorization server (Authlib's) and an SMTP server that checks its tokens.

``async def`` tests run with ``asyncio.run`` (no asyncio plugin in this project).
Time is a ``FakeClock`` the test moves: tokens expire by it, nobody sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.async_tests import pytest_pyfunc_call  # noqa: F401 (the hook)
from tests.support.oauth_server import AuthorizationServerRunning, serving


class FakeClock:
    """Seconds since the epoch that move only when told."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_server(server_clock: FakeClock) -> Iterator[AuthorizationServerRunning]:
    """Access tokens live 5 s of ``server_clock``."""
    with serving(access_lifetime_s=5, clock=server_clock) as running:
        yield running
