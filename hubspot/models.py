"""HubSpot integration models."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeatQuerySet(models.QuerySet["WorkerHeartbeat"]):
    def is_alive(self) -> bool:
        """Whether any worker has written a heartbeat recently (beat schedules one every 30 s)."""
        cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_S)
        return self.filter(beat_at__gte=cutoff).exists()

    def latest_beat(self) -> WorkerHeartbeat | None:
        return self.order_by("-beat_at").first()


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran a task, by worker host name."""

    hostname = models.CharField(max_length=200, unique=True)
    beat_at = models.DateTimeField(db_index=True)

    objects = WorkerHeartbeatQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
