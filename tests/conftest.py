"""Fixtures shared by the whole suite: users, a real Celery worker process, and a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from hubspot_sync import worker
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    """Each test counts failed sign-ins in a memory cache of its own (never a shared Redis, which tests
    must not clear), so one test's failures never lock another's sign-in."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture
def support_user(db: None) -> Any:
    return factories.support_user()


@pytest.fixture
def admin_user_both_groups(db: None) -> Any:
    return factories.pipeline_admin()


@pytest.fixture
def support_client(client: Any, support_user: Any) -> Any:
    client.force_login(support_user)
    return client


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.1) -> Any:
    """Poll until the predicate returns something truthy; fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


# The database URL a worker process shares with this test run (the test database).
database_url_for_subprocess = worker.database_url


class WorkerProcess(worker.CeleryProcess):
    """A real `celery worker` on the configured broker and this run's database, consuming a queue of its
    own (the integration's worker helper, as the benchmarks and the demo start it)."""

    def __init__(self, queue: str, log_path: Path) -> None:
        self.queue = queue
        hostname = f"test-{queue}@{socket.gethostname()}"
        super().__init__(
            worker.worker_command(hostname=hostname, queues=[queue]),
            env=worker.process_env(
                database_url=database_url_for_subprocess(), queue=queue, broker_url=settings.CELERY_BROKER_URL
            ),
            log_path=log_path,
            hostname=hostname,
        )


@pytest.fixture
def celery_worker_process(transactional_db: None, tmp_path: Path, settings: Any) -> Iterator[WorkerProcess]:
    """Start a worker process on a queue unique to this test; tasks sent from the test go to it."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    from config.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker = WorkerProcess(queue, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_default_queue = previous


# --- browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    if not CHROMIUM:
        if os.environ.get("ORDERDECK_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (ORDERDECK_REQUIRE_BROWSER is set) but is not installed.")
        pytest.skip("Chromium is not installed; install Debian's 'chromium' package to run browser tests.")
    # Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run inside one
    # unless told that this is deliberate (the live server runs in its own thread anyway).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
