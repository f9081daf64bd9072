"""Fixtures shared by the whole suite: users, a real Celery worker process, and a real browser."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

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


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses (the test database), for a worker process to share."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor == "postgresql":
        auth = s["USER"] or ""
        if s["PASSWORD"]:
            auth += f":{s['PASSWORD']}"
        host = s["HOST"] or "localhost"
        port = f":{s['PORT']}" if s["PORT"] else ""
        return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{s['NAME']}"
    raise NotImplementedError(connection.vendor)


class WorkerProcess:
    """A real `celery worker` on the configured broker, consuming a queue of its own."""

    def __init__(self, queue: str, log_path: Path) -> None:
        self.queue = queue
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ.copy()
        env.update(
            {
                "DATABASE_URL": database_url_for_subprocess(),
                "ORDERDECK_QUEUE": self.queue,
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--queues",
                self.queue,
                "--hostname",
                f"test-{self.queue}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # A warm shutdown: SIGTERM to the main process, which stops its pool itself (a signal to every
            # pool process at once can leave the main one waiting on children that are already gone).
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        if self.process:
            # Whatever is left of the group goes now.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, 9)
            if self.process.poll() is None:
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


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
