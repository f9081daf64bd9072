"""pytest support: a sandbox served in-process on a free port, one per test.

In a conftest::

    from hubspot_sandbox.testing import pytest_configure, sandbox, sandbox_api  # noqa: F401

``sandbox`` yields a started ``Sandbox`` with the default properties and pipelines and a small
deterministic seed; ``@pytest.mark.sandbox(empty=True, ...)`` starts it without records, and any other
keyword is a ``SandboxConfig`` field (``@pytest.mark.sandbox(ten_second_limit=5)``). ``sandbox_api``
is a ``requests`` session bound to it. ``make_sandbox_fixture`` builds fixtures with other defaults
or scopes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
import requests

from hubspot_sandbox.server import Sandbox, SandboxConfig

# Small enough to start in milliseconds, big enough for lists to have a second page at limit=10.
DEFAULT_SEED: dict[str, int] = {"seed_contacts": 6, "seed_orders": 12, "seed_carts": 4}
MARKER = "sandbox"
Scope = Literal["session", "package", "module", "class", "function"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(empty=False, **config): options for the sandbox fixture (SandboxConfig fields)",
    )


def start_sandbox(*, empty: bool = False, **overrides: Any) -> Sandbox:
    """Start a sandbox on a free port: defaults installed, seeded unless ``empty``."""
    options: dict[str, Any] = {} if empty else dict(DEFAULT_SEED)
    options.update(overrides)
    sandbox = Sandbox(SandboxConfig(**options))
    sandbox.start()
    return sandbox


def make_sandbox_fixture(*, empty: bool = False, scope: Scope = "function", **overrides: Any) -> Any:
    """A fixture yielding a started sandbox; a ``sandbox`` marker on the test adds to ``overrides``."""

    @pytest.fixture(scope=scope)
    def fixture(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
        options = dict(overrides)
        marker = request.node.get_closest_marker(MARKER) if scope == "function" else None
        if marker is not None:
            options.update(marker.kwargs)
        is_empty = bool(options.pop("empty", empty))
        sandbox = start_sandbox(empty=is_empty, **options)
        try:
            yield sandbox
        finally:
            sandbox.stop(save_snapshot=False)

    return fixture


class SandboxSession(requests.Session):
    """A session that sends the sandbox's token and takes paths relative to its base URL."""

    def __init__(self, base_url: str, token: str | None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith("/"):
            text = self.base_url + text
        kwargs.setdefault("timeout", 30)
        return super().request(method, text, *args, **kwargs)


sandbox = make_sandbox_fixture()


@pytest.fixture
def sandbox_api(sandbox: Sandbox) -> Iterator[SandboxSession]:
    """A requests session on the ``sandbox`` fixture, with its token."""
    with SandboxSession(sandbox.url, sandbox.config.token or "any-token") as session:
        yield session
