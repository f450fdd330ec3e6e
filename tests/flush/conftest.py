"""Fixtures for the command line's flush stories."""

from __future__ import annotations

from tests.support.gated_servers import fast, slow  # noqa: F401 (fixtures)
