"""Celery tasks of the hubspot app: ids in, one service call, retry only what may succeed later."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.signals import worker_ready

from hubspot import push, services, sync
from hubspot.models import SyncKind

logger = logging.getLogger(__name__)


@shared_task(bind=True)
def worker_heartbeat_task(self: Task) -> None:
    services.worker_heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task
def prune_heartbeats_task() -> None:
    services.worker_heartbeats_prune()


def _run(kind: str, *, manual: bool = False, object_types: list[str] | None = None) -> int | None:
    try:
        return sync.run_sync(kind, object_types, manual=manual).pk
    except sync.SyncBusy:
        logger.info("sync: a %s run is already under way; this one is skipped", kind)
    except sync.SyncHalted as exc:
        logger.info("sync: halted (%s)", exc)
    return None


@shared_task
def sync_incremental_task(manual: bool = False) -> int | None:
    return _run(SyncKind.INCREMENTAL, manual=manual)


@shared_task
def sync_full_task(manual: bool = False, object_types: list[str] | None = None) -> int | None:
    return _run(SyncKind.FULL, manual=manual, object_types=object_types)


@shared_task
def sync_reconcile_task() -> int | None:
    return _run(SyncKind.RECONCILE)


@shared_task
def process_webhook_events_task() -> int:
    """Refresh what stored webhook events name. It first says it has started, so the next webhook queues a
    task of its own (this one may have claimed its events already); events are claimed, so tasks running
    side by side (or beat's sweep beside one) never process an event twice."""
    services.webhook_processing_started()
    return services.webhook_events_process()


@shared_task
def prune_webhook_events_task() -> int:
    """Beat, daily: drop processed webhook events older than HUBSPOT_WEBHOOK_RETENTION_DAYS."""
    return services.webhook_events_prune()


@shared_task
def refresh_records_task(object_type: str, hubspot_ids: list[str]) -> int:
    return sync.refresh_records(object_type, hubspot_ids).written


@shared_task
def push_changes_task(change_id: int | None = None) -> int:
    """Send the outbox to HubSpot. It drains every due change, not only ``change_id`` (edits travel in
    batches); running it twice, or after a worker died mid-push, sends nothing twice."""
    return push.push_outbox()


@shared_task
def push_sweep_task() -> int:
    """Beat: changes whose worker died go back to pending, and a push is queued while any are pending."""
    return push.outbox_sweep()


@worker_ready.connect
def _heartbeat_when_ready(sender: object = None, **kwargs: object) -> None:
    """A worker says it is alive as soon as it starts, not only at beat's next tick."""
    worker_heartbeat_task.delay()
