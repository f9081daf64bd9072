"""Celery tasks of the hubspot app."""

from __future__ import annotations

from celery import Task, shared_task

from hubspot import services


@shared_task(bind=True)
def worker_heartbeat_task(self: Task) -> None:
    services.worker_heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task
def prune_heartbeats_task() -> None:
    services.worker_heartbeats_prune()
