"""Relayer tests: ``async def`` tests each run in a fresh event loop; shared TLS material."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.async_tests import pytest_pyfunc_call  # noqa: F401 (the hook)
from tests.support.smtp_servers import TestCertificates


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """A private CA for the whole run; ``certs.ca_file`` is what an account trusts."""
    directory: Path = tmp_path_factory.mktemp("tls")
    return TestCertificates.create(directory)
