"""Webhook processing: tasks claim their events (each processed once, however many run), one task waits in
the queue however many webhooks arrive, our own pushes coming back cost no call, and old events are pruned."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from hubspot_sandbox import objects as remote
from hubspot_sandbox.server import Sandbox
from hubspot_sync import outbox, push, services, sync, tasks
from hubspot_sync.models import ChangeStatus, WebhookEvent, WebhookOutcome
from orders.models import Order
from tests.hubspot_sync.pushkit import an_order, serving_portal
from tests.hubspot_sync.test_webhooks import SECRET, event, post


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    settings.HUBSPOT_CLIENT_SECRET = SECRET
    with serving_portal(settings, monkeypatch, tmp_path) as sandbox:
        yield sandbox


def stored_event(event_id: str, order_id: str, **payload: Any) -> WebhookEvent:
    return WebhookEvent.objects.create(
        event_id=event_id,
        subscription_type="object.propertyChange",
        object_type="orders",
        object_id=order_id,
        occurred_at=timezone.now(),
        payload={"objectId": order_id, "_touched": [["orders", order_id]], **payload},
    )


def requests_to(sandbox: Sandbox) -> int:
    return int(sandbox.stats.json()["requests"])


@pytest.mark.django_db(transaction=True)
def test_two_tasks_side_by_side_process_each_event_exactly_once(
    portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = list(Order.objects.values_list("hubspot_id", flat=True))
    for i in range(120):
        stored_event(
            f"e{i}", order_ids[i % len(order_ids)], propertyName="hs_order_name", propertyValue=f"v{i}"
        )
    # Small claims, so the two tasks take turns over the same rows instead of one taking all at once.
    monkeypatch.setattr(services, "WEBHOOK_CLAIM_BATCH", 10)
    start = threading.Barrier(2)
    processed: list[int] = []
    errors: list[BaseException] = []

    def task() -> None:
        try:
            start.wait()
            processed.append(services.webhook_events_process())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=task) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(processed) == 120, processed  # not 240: no event went through both tasks
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert WebhookEvent.objects.exclude(claimed_by="").values("claimed_by").distinct().count() <= 2
    assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {WebhookOutcome.REFRESHED}


@pytest.mark.django_db(transaction=True)
def test_a_claim_left_by_a_dead_task_is_taken_after_the_timeout_and_a_live_one_is_not(
    portal: Sandbox,
) -> None:
    order_id = an_order().hubspot_id
    dead = stored_event("dead", order_id)
    live = stored_event("live", order_id)
    WebhookEvent.objects.filter(pk=dead.pk).update(
        claimed_by="gone", claimed_at=timezone.now() - services.WEBHOOK_CLAIM_TIMEOUT - timedelta(seconds=1)
    )
    WebhookEvent.objects.filter(pk=live.pk).update(claimed_by="busy", claimed_at=timezone.now())

    assert services.webhook_events_process() == 1
    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.processed_at is not None and dead.claimed_by not in ("", "gone")
    assert live.processed_at is None and live.claimed_by == "busy"


@pytest.mark.django_db(transaction=True)
def test_a_failed_refresh_releases_its_claim_at_once(
    portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_event("e1", an_order().hubspot_id)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("HubSpot is unreachable")

    monkeypatch.setattr(sync, "refresh_records", unreachable)
    with pytest.raises(ConnectionError):
        services.webhook_events_process()
    left = WebhookEvent.objects.get()
    assert left.processed_at is None and left.claimed_at is None


@pytest.fixture
def own_queue(settings: Any) -> Iterator[str]:
    """Tasks queued by this test go to a broker queue of its own, counted and emptied afterwards."""
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = previous
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)


def waiting_in(queue: str) -> int:
    from config.celery import app

    with app.connection_for_write() as conn:
        return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)


@pytest.mark.django_db
def test_fifty_webhooks_leave_one_processing_task_waiting_in_the_queue(
    client: Any, settings: Any, own_queue: str, django_capture_on_commit_callbacks: Any
) -> None:
    settings.HUBSPOT_CLIENT_SECRET = SECRET
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(50):
            assert post(client, [event(i + 1, str(300 + i))]).status_code == 200
    assert WebhookEvent.objects.count() == 50
    assert waiting_in(own_queue) == 1

    # Once that task has started (it may have claimed its events already) the next webhook queues one more.
    services.webhook_processing_started()
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(50, 60):
            assert post(client, [event(i + 1, str(300 + i))]).status_code == 200
    assert waiting_in(own_queue) == 2


@pytest.mark.django_db(transaction=True)
def test_a_started_task_lets_the_next_webhook_queue_another(
    portal: Sandbox, own_queue: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_events_store(events=[])
        assert services.webhook_processing_queue() is True
        assert services.webhook_processing_queue() is False
    stored_event("e1", an_order().hubspot_id)
    assert tasks.process_webhook_events_task() == 1
    assert services.webhook_processing_queue() is True


@pytest.mark.django_db(transaction=True)
def test_an_echo_of_our_own_push_costs_no_api_call(portal: Sandbox) -> None:
    order = an_order()
    outbox.record_change(obj=order, properties={"hs_order_name": "Renamed by staff"}, by=None)
    push.push_outbox(budget_s=10)
    change = order_change(order)
    assert change.status == ChangeStatus.APPLIED
    portal.stats.reset()

    # HubSpot tells us of the value we just wrote.
    echo = stored_event(
        "echo", order.hubspot_id, propertyName="hs_order_name", propertyValue="Renamed by staff"
    )
    assert services.webhook_events_process() == 1
    assert requests_to(portal) == 0
    echo.refresh_from_db()
    assert echo.outcome == WebhookOutcome.ECHO and echo.processed_at is not None

    # A change made in HubSpot afterwards is no echo: it is read.
    remote.update_record(portal.state, "orders", order.hubspot_id, {"hs_order_name": "Renamed in HubSpot"})
    other = stored_event(
        "other", order.hubspot_id, propertyName="hs_order_name", propertyValue="Renamed in HubSpot"
    )
    assert services.webhook_events_process() == 1
    assert requests_to(portal) > 0
    other.refresh_from_db()
    assert other.outcome == WebhookOutcome.REFRESHED
    assert Order.objects.get(pk=order.pk).name == "Renamed in HubSpot"


@pytest.mark.django_db(transaction=True)
def test_an_old_push_of_the_same_value_is_no_echo(portal: Sandbox) -> None:
    order = an_order()
    outbox.record_change(obj=order, properties={"hs_order_name": "Renamed by staff"}, by=None)
    push.push_outbox(budget_s=10)
    change = order_change(order)
    change.pushed_at = timezone.now() - services.WEBHOOK_ECHO_WINDOW - timedelta(minutes=1)
    change.save(update_fields=["pushed_at"])
    portal.stats.reset()

    late = stored_event(
        "late", order.hubspot_id, propertyName="hs_order_name", propertyValue="Renamed by staff"
    )
    services.webhook_events_process()
    late.refresh_from_db()
    assert late.outcome == WebhookOutcome.REFRESHED
    assert requests_to(portal) > 0


def order_change(order: Order) -> Any:
    from hubspot_sync.models import Change

    deadline = time.monotonic() + 10
    change = Change.objects.filter(object_type="orders", object_id=order.hubspot_id).latest("pk")
    while change.status != ChangeStatus.APPLIED and time.monotonic() < deadline:
        push.push_outbox(budget_s=2)
        change.refresh_from_db()
    return change


@pytest.mark.django_db
def test_pruning_deletes_only_processed_events_older_than_the_retention(settings: Any) -> None:
    settings.HUBSPOT_WEBHOOK_RETENTION_DAYS = 30
    now = timezone.now()
    ages = {
        "old-done": (31, True),
        "old-pending": (31, False),
        "new-done": (29, True),
        "new-pending": (1, False),
    }
    for name, (days, processed) in ages.items():
        e = stored_event(name, "301")
        WebhookEvent.objects.filter(pk=e.pk).update(
            received_at=now - timedelta(days=days), processed_at=now if processed else None
        )

    assert tasks.prune_webhook_events_task() == 1
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == [
        "new-done",
        "new-pending",
        "old-pending",
    ]
    settings.HUBSPOT_WEBHOOK_RETENTION_DAYS = 7
    assert services.webhook_events_prune() == 1
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["new-pending", "old-pending"]


def test_beat_prunes_webhook_events_daily(settings: Any) -> None:
    entry = next(
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "hubspot_sync.tasks.prune_webhook_events_task"
    )
    assert entry["schedule"].remaining_estimate(timezone.now()) <= timedelta(days=1)
