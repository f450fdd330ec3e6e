"""Relayer tests: ``async def`` tests each run in a fresh event loop; shared TLS material."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from tests.support.smtp_servers import TestCertificates


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test with ``asyncio.run`` (no asyncio plugin in this project)."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    wanted = inspect.signature(function).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in wanted}
    asyncio.run(function(**kwargs))
    return True


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """A private CA for the whole run; ``certs.ca_file`` is what an account trusts."""
    directory: Path = tmp_path_factory.mktemp("tls")
    return TestCertificates.create(directory)
