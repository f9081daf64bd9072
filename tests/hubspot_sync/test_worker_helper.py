"""The one helper that starts Celery processes (tests, benchmarks, demo): its command lines, a real worker
that is ready once its heartbeat is written and leaves nothing behind when stopped, and a worker that can't
start is reported with its output instead of waited on."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from hubspot_sync import worker
from hubspot_sync.models import WorkerHeartbeat


def test_the_command_lines() -> None:
    command = worker.worker_command(hostname="bench@host", queues=["q1"], concurrency=3)
    assert command[:5] == [sys.executable, "-m", "celery", "-A", "config"]
    assert command[5:] == [
        "worker",
        "--loglevel",
        "INFO",
        "--pool",
        "prefork",
        "--concurrency",
        "3",
        "--queues",
        "q1",
        "--hostname",
        "bench@host",
        "--without-mingle",
        "--without-gossip",
    ]
    assert "--queues" not in worker.worker_command(hostname="demo@host")  # the settings' default queue
    assert worker.beat_command(schedule=Path("/x/beat"), loglevel="WARNING")[5:] == [
        "beat",
        "--loglevel",
        "WARNING",
        "--schedule",
        "/x/beat",
    ]
    env = worker.process_env(base={"A": "1"}, database_url="sqlite:///db", queue="q1")
    assert env == {"A": "1", "PYTHONUNBUFFERED": "1", "DATABASE_URL": "sqlite:///db", "ORDERDECK_QUEUE": "q1"}


@pytest.mark.django_db(transaction=True)
def test_a_worker_is_ready_at_its_heartbeat_and_stopping_leaves_nothing(tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex[:10]}"
    hostname = f"helper-{queue}@{socket.gethostname()}"
    env = worker.process_env(
        database_url=worker.database_url(), queue=queue, broker_url=settings.CELERY_BROKER_URL
    )
    process = worker.CeleryProcess.worker(
        hostname=hostname, queue=queue, env=env, log_path=tmp_path / "worker.log"
    )
    process.start()
    try:
        process.wait_ready(timeout_s=90)
        assert WorkerHeartbeat.objects.filter(hostname=hostname).exists()
        assert process.running()
    finally:
        process.stop()
    assert process.process is not None and process.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.process.pid, 0)  # the session (pool processes too) is gone
    assert "ready" in process.output()


@pytest.mark.django_db
def test_a_worker_that_cannot_start_is_reported_with_its_output(tmp_path: Path) -> None:
    broken = worker.CeleryProcess(
        [sys.executable, "-c", "print('no broker here'); raise SystemExit(3)"],
        log_path=tmp_path / "broken.log",
        hostname="never@host",
    )
    broken.start()
    with pytest.raises(worker.WorkerNotReady, match="no broker here"):
        broken.wait_ready(timeout_s=30)
    broken.stop()
