"""Fixtures for the HubSpot tests: the sandbox (from hubspot_sandbox.testing) and the client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import pytest_configure, sandbox, sandbox_api  # noqa: F401
from hubspot_sync import client, ratelimit


@pytest.fixture
def hubspot_sandbox(sandbox: Sandbox, settings: Any, tmp_path: Path) -> Iterator[Sandbox]:  # noqa: F811
    """The ``sandbox`` fixture with the client's settings pointing at it: its URL and token, a rate limiter
    of this test's own (an SQLite file in tmp_path), and retry waits short enough for tests. Counters start
    at zero."""
    settings.HUBSPOT_API_BASE = sandbox.url
    settings.HUBSPOT_ACCESS_TOKEN = sandbox.config.token
    settings.HUBSPOT_LIMITER_URL = f"sqlite:///{tmp_path / 'hubspot-ratelimit.sqlite3'}"
    settings.HUBSPOT_LIMITER_ENABLED = True
    settings.HUBSPOT_RETRY_BASE_S = 0.01
    settings.HUBSPOT_RETRY_CAP_S = 0.05
    settings.HUBSPOT_RETRY_429_WAIT_S = 0.05
    client.reset_stats()
    try:
        yield sandbox
    finally:
        ratelimit.close_limiters()
