"""Celery tasks of the hubspot app: ids in, one service call, retry only what may succeed later."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.signals import worker_ready

from hubspot_sync import client, jobs, pauses, push, services, sync
from hubspot_sync.models import SyncKind

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
    except client.HubSpotError as exc:  # run_sync records its own; this is what happened before a run began
        _hubspot_error("sync", exc)
    return None


def _hubspot_error(what: str, exc: client.HubSpotError) -> None:
    """A HubSpot error a task cannot act on: a rejected token or the daily limit pauses sync and push (the
    banner says so); anything else waits for the next run. One log line, never a traceback."""
    pauses.record(exc)
    logger.warning("%s: %s", what, pauses.plain_words(exc))


@jobs.provides("sync_incremental")
@shared_task
def sync_incremental_task(manual: bool = False) -> int | None:
    return _run(SyncKind.INCREMENTAL, manual=manual)


@jobs.provides("sync_full")
@shared_task
def sync_full_task(manual: bool = False, object_types: list[str] | None = None) -> int | None:
    return _run(SyncKind.FULL, manual=manual, object_types=object_types)


@shared_task
def sync_reconcile_task() -> int | None:
    return _run(SyncKind.RECONCILE)


@jobs.provides("process_webhook_events")
@shared_task
def process_webhook_events_task() -> int:
    """Refresh what stored webhook events name. It first says it has started, so the next webhook queues a
    task of its own (this one may have claimed its events already); events are claimed, so tasks running
    side by side (or beat's sweep beside one) never process an event twice."""
    services.webhook_processing_started()
    if sync.halted() is not None:
        return 0  # the events wait, unprocessed, for a task after the pause
    try:
        return services.webhook_events_process()
    except client.HubSpotError as exc:
        _hubspot_error("webhook refresh", exc)
        return 0


@shared_task
def prune_webhook_events_task() -> int:
    """Beat, daily: drop processed webhook events older than HUBSPOT_WEBHOOK_RETENTION_DAYS."""
    return services.webhook_events_prune()


@jobs.provides("refresh_records")
@shared_task
def refresh_records_task(object_type: str, hubspot_ids: list[str]) -> int:
    if sync.halted() is not None:
        return 0
    try:
        return sync.refresh_records(object_type, hubspot_ids).written
    except client.HubSpotError as exc:
        _hubspot_error("refresh", exc)
        return 0


@jobs.provides("push_changes")
@shared_task
def push_changes_task(change_id: int | None = None) -> int:
    """Send the outbox to HubSpot. It drains every due change, not only ``change_id`` (edits travel in
    batches); running it twice, or after a worker died mid-push, sends nothing twice."""
    try:
        return push.push_outbox()
    except client.HubSpotError as exc:  # push_claim settles its own; this is any call outside a claim
        _hubspot_error("push", exc)
        return 0


@shared_task
def push_sweep_task() -> int:
    """Beat: changes whose worker died go back to pending, and a push is queued while any are pending; while
    the daily limit pauses everything, a cheap call now and then finds out whether it has lifted."""
    reclaimed = push.outbox_sweep()
    try:
        pauses.probe_daily_limit()
    except Exception:  # a probe that cannot even be tried must not stop the sweep
        logger.warning("daily-limit probe failed", exc_info=True)
    return reclaimed


@worker_ready.connect
def _heartbeat_when_ready(sender: object = None, **kwargs: object) -> None:
    """A worker says it is alive as soon as it starts, not only at beat's next tick."""
    worker_heartbeat_task.delay()
