"""A real Celery worker process, on the configured broker, runs a task whose effect lands in the database."""

from __future__ import annotations

import pytest
from django.utils import timezone

from hubspot_sync.models import WorkerHeartbeat
from hubspot_sync.tasks import worker_heartbeat_task
from tests.conftest import WorkerProcess, wait_until

pytestmark = pytest.mark.worker


def test_worker_runs_a_task_and_writes_to_the_database(celery_worker_process: WorkerProcess) -> None:
    sent = timezone.now()
    worker_heartbeat_task.delay()

    try:
        heartbeat = wait_until(
            lambda: WorkerHeartbeat.objects.filter(beat_at__gte=sent).first(), timeout_s=60
        )
    except AssertionError:
        pytest.fail("the worker did not run the task; its log:\n" + celery_worker_process.output())
    assert heartbeat.hostname.startswith(f"test-{celery_worker_process.queue}@")
    assert WorkerHeartbeat.objects.is_alive()


def test_the_same_task_twice_keeps_one_row_per_worker(celery_worker_process: WorkerProcess) -> None:
    worker_heartbeat_task.delay()
    first = wait_until(lambda: WorkerHeartbeat.objects.first(), timeout_s=60)
    worker_heartbeat_task.delay()
    wait_until(lambda: WorkerHeartbeat.objects.get(pk=first.pk).beat_at > first.beat_at, timeout_s=60)
    assert WorkerHeartbeat.objects.count() == 1
