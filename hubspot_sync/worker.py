"""Celery worker and beat processes of this project, started from Python: the test suite's real worker, the
benchmarks' and the demo's. One place builds their command lines and environment, starts them in a session
of their own, waits for a worker's first heartbeat, and stops them with whatever they started.

    worker = CeleryProcess.worker(hostname="bench@host", queue="bench-1", log_path=folder / "worker.log")
    worker.start().wait_ready()
    ...
    worker.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

from django.conf import settings
from django.db import connection

from hubspot_sync.models import WorkerHeartbeat


def celery_command(*args: str) -> list[str]:
    """``celery`` on this project's app, with this Python (the virtualenv's)."""
    return [sys.executable, "-m", "celery", "-A", "config", *args]


def worker_command(
    *,
    hostname: str,
    queues: Sequence[str] = (),
    concurrency: int = 1,
    loglevel: str = "INFO",
) -> list[str]:
    """A prefork worker under its own name; without mingle and gossip, which only slow the start of a
    worker that has no peers to learn from (each process here stands alone or is one of a few)."""
    return celery_command(
        "worker",
        "--loglevel",
        loglevel,
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        *(("--queues", ",".join(queues)) if queues else ()),
        "--hostname",
        hostname,
        "--without-mingle",
        "--without-gossip",
    )


def beat_command(*, schedule: str | Path, loglevel: str = "INFO") -> list[str]:
    """``celery beat`` keeping its schedule state in the named file."""
    return celery_command("beat", "--loglevel", loglevel, "--schedule", str(schedule))


def database_url() -> str:
    """The URL of the database this process uses (a test database too), for a child process to share."""
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


def process_env(
    *,
    base: Mapping[str, str] | None = None,
    database_url: str | None = None,
    queue: str | None = None,
    broker_url: str | None = None,
) -> dict[str, str]:
    """The environment of a child process: ``base`` (this one's by default) with these settings over it.
    The queue becomes the child's default queue (ORDERDECK_QUEUE), so what it sends stays on it."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in (
        ("DATABASE_URL", database_url),
        ("ORDERDECK_QUEUE", queue),
        ("CELERY_BROKER_URL", broker_url),
    ):
        if value is not None:
            env[name] = value
    return env


class WorkerNotReady(RuntimeError):
    """The worker wrote no heartbeat in time, or exited."""


class CeleryProcess:
    """One ``celery`` process in a session of its own (so stopping it stops the pool processes it started),
    its output in ``log_path`` (appended to) or this process's own."""

    def __init__(
        self,
        command: list[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        hostname: str = "",
    ) -> None:
        self.command = command
        self.env = dict(env) if env is not None else process_env()
        self.log_path = log_path
        self.hostname = hostname
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def worker(
        cls,
        *,
        hostname: str,
        queue: str | None = None,
        concurrency: int = 1,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        loglevel: str = "INFO",
    ) -> Self:
        """A worker named ``hostname`` (give it without ``%h``, so its heartbeat can be found), consuming
        ``queue`` only when one is named (the settings' default queue otherwise)."""
        command = worker_command(
            hostname=hostname, queues=[queue] if queue else [], concurrency=concurrency, loglevel=loglevel
        )
        return cls(command, env=env, log_path=log_path, hostname=hostname)

    @classmethod
    def beat(
        cls,
        *,
        schedule: str | Path,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        loglevel: str = "INFO",
    ) -> Self:
        return cls(beat_command(schedule=schedule, loglevel=loglevel), env=env, log_path=log_path)

    def start(self) -> Self:
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until the worker has run its first task: the heartbeat it sends itself when it starts (a cold
        start takes seconds, which callers timing their own work leave out)."""
        deadline = time.monotonic() + timeout_s
        while not WorkerHeartbeat.objects.filter(hostname=self.hostname).exists():
            if not self.running():
                raise WorkerNotReady(f"the worker {self.hostname} exited:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise WorkerNotReady(f"no heartbeat from {self.hostname} in {timeout_s:g} s")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 20.0) -> None:
        """A warm shutdown, then whatever is left of its session goes."""
        if self.process is not None:
            if self.process.poll() is None:
                # SIGTERM to the main process only: it stops its pool itself (a signal to every pool process
                # at once can leave the main one waiting on children that are already gone).
                self.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=timeout_s)
            self._kill_group()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL to the whole session at once, as a crash would stop it."""
        if self.process is not None:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""
