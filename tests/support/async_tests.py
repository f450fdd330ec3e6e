"""``async def`` tests, each run in a fresh event loop with ``asyncio.run``.

The project has no asyncio plugin for pytest: a test directory whose tests
are coroutines imports this hook into its ``conftest.py``. A fresh loop per
test keeps one test's tasks and servers from outliving it into the next.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test with ``asyncio.run``; leave any other test to pytest."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    wanted = inspect.signature(function).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in wanted}
    asyncio.run(function(**kwargs))
    return True
