"""End to end: the sandbox's signed webhooks reach the running app, and a real worker refreshes the cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hubspot_sandbox import objects as remote
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import sync
from hubspot_sync.models import SyncKind, WebhookEvent
from orders.models import Order
from tests.conftest import WorkerProcess, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SECRET = "live-webhook-secret-0123456789"


@pytest.fixture
def portal(live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    sandbox = start_sandbox(
        seed_contacts=5,
        seed_orders=10,
        seed_carts=3,
        webhook_url=f"{live_server.url}/hubspot/webhooks/",
        webhook_secret=SECRET,
    )
    # The app in this process (the live server) and the worker process both talk to this sandbox.
    for name, value in (
        ("HUBSPOT_API_BASE", sandbox.url),
        ("HUBSPOT_ACCESS_TOKEN", sandbox.config.token or ""),
        ("HUBSPOT_CLIENT_SECRET", SECRET),
    ):
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


def test_a_remote_change_reaches_the_cache_within_seconds(
    portal: Sandbox, celery_worker_process: WorkerProcess
) -> None:
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    order_id = next(iter(portal.state.live("orders"))).id

    remote.update_record(portal.state, "orders", order_id, {"hs_order_name": "Renamed in HubSpot"})

    try:
        wait_until(lambda: Order.objects.get(hubspot_id=order_id).name == "Renamed in HubSpot", timeout_s=30)
    except AssertionError:
        pytest.fail("the cache was not refreshed; worker log:\n" + celery_worker_process.output())
    event = WebhookEvent.objects.filter(object_id=order_id).first()
    assert event is not None and event.object_type == "orders"


def test_a_remote_deletion_archives_the_cached_order(
    portal: Sandbox, celery_worker_process: WorkerProcess
) -> None:
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    order_id = next(iter(portal.state.live("orders"))).id

    remote.archive_record(portal.state, "orders", order_id)

    wait_until(lambda: Order.objects.get(hubspot_id=order_id).archived, timeout_s=30)
