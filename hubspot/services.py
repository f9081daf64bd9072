"""Writes of the hubspot app."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from hubspot.models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Note that the named worker is alive now."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"beat_at": timezone.now()}
    )
    return heartbeat


def worker_heartbeats_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop heartbeats of workers that have been gone a long time."""
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - older_than).delete()
    return deleted
