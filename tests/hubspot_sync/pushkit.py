"""What the outbox and push tests share: a seeded sandbox with the orders cached locally, settings (and the
environment a worker process inherits) pointed at it, and small readers of HubSpot's side."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import client, ratelimit, sync, worker
from hubspot_sync.models import SyncKind, SyncStatus
from orders.models import Order

SEED = {"seed_contacts": 10, "seed_orders": 30, "seed_carts": 5}

# Push settings for tests: no debounce unless a test asks for one, short leases and waits, so a killed
# worker's changes come back in seconds. Strings, as a worker process reads them from its environment.
PUSH_ENV = {
    "HUBSPOT_PUSH_DEBOUNCE_S": "0",
    "HUBSPOT_PUSH_FILL_S": "0",
    "HUBSPOT_PUSH_LEASE_S": "3",
    "HUBSPOT_PUSH_GHOST_WINDOW_S": "1",
    "HUBSPOT_PUSH_RETRY_BASE_S": "0.2",
    "HUBSPOT_PUSH_RETRY_CAP_S": "2",
    "HUBSPOT_PUSH_SWEEP_S": "1",
    "HUBSPOT_PUSH_QUEUE_STALE_S": "2",
    "HUBSPOT_RETRY_BASE_S": "0.01",
    "HUBSPOT_RETRY_CAP_S": "0.05",
    "HUBSPOT_RETRY_429_WAIT_S": "0.05",
    "HUBSPOT_READ_TIMEOUT_S": "2",
}


def configure(
    settings: Any, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, tmp_path: Path, **extra: str
) -> None:
    """Point this process and any worker it starts at the sandbox, with a rate limiter of the test's own."""
    values = {
        **PUSH_ENV,
        "HUBSPOT_API_BASE": sandbox.url,
        "HUBSPOT_ACCESS_TOKEN": str(sandbox.config.token),
        "HUBSPOT_LIMITER_URL": f"sqlite:///{tmp_path / 'hubspot-ratelimit.sqlite3'}",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
        current = getattr(settings, name, None)
        setattr(settings, name, type(current)(value) if isinstance(current, (int, float)) else value)
    client.reset_stats()


def start_portal(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **options: Any) -> Sandbox:
    sandbox = start_sandbox(**{**SEED, **options})
    configure(settings, monkeypatch, sandbox, tmp_path)
    run = sync.run_sync(SyncKind.FULL, ["orders"], manual=True)
    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    sandbox.stats.reset()
    client.reset_stats()
    return sandbox


@contextmanager
def serving_portal(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **options: Any
) -> Iterator[Sandbox]:
    """A seeded sandbox whose orders and pipelines are cached here; settings and environment point at it."""
    sandbox = start_portal(settings, monkeypatch, tmp_path, **options)
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)
        ratelimit.close_limiters()


def remote(sandbox: Sandbox, object_type: str, hubspot_id: str) -> dict[str, str]:
    record = sandbox.state.get(object_type, hubspot_id)
    assert record is not None, f"HubSpot has no {object_type} {hubspot_id}"
    return dict(record.properties)


def history(sandbox: Sandbox, object_type: str, hubspot_id: str, name: str) -> list[str]:
    """The values HubSpot's history shows written to the property, newest first."""
    record = sandbox.state.get(object_type, hubspot_id)
    assert record is not None
    return [written for written, _, _ in record.history.get(name, [])]


def writes_of(sandbox: Sandbox, object_type: str, hubspot_id: str, name: str, value: str) -> int:
    """How many times HubSpot's history shows the value written to the property."""
    return history(sandbox, object_type, hubspot_id, name).count(value)


def batch_calls(sandbox: Sandbox, object_type: str, operation: str) -> int:
    """Requests the sandbox answered on an object batch endpoint (e.g. "update", "read"), retries included."""
    routes = sandbox.stats.json()["by_route"]
    return sum(
        count
        for route, count in routes.items()
        if route.startswith("POST ")
        and route.endswith(f"/batch/{operation}")
        and object_type_in(route, object_type)
    )


def object_type_in(route: str, object_type: str) -> bool:
    return "{objectType}" in route or f"/{object_type}/" in route


def an_order(**filters: Any) -> Order:
    order = (
        Order.objects.filter(archived=False, stage__isnull=False, **filters).order_by("hubspot_id").first()
    )
    assert order is not None
    return order


class BeatProcess(worker.CeleryProcess):
    """`celery beat` sending its schedule (the outbox sweep among it) to a test's queue."""

    def __init__(self, queue: str, tmp_path: Path) -> None:
        from django.conf import settings

        from tests.conftest import database_url_for_subprocess

        env = worker.process_env(
            database_url=database_url_for_subprocess(), queue=queue, broker_url=settings.CELERY_BROKER_URL
        )
        super().__init__(
            worker.beat_command(schedule=tmp_path / "beat-schedule"), env=env, log_path=tmp_path / "beat.log"
        )
        self.start()
