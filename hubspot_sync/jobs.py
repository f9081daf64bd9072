"""The background jobs that the integration's own modules queue (the outbox, the push, pauses, webhooks),
looked up by name: ``hubspot_sync.tasks`` imports those modules, so they cannot import it. Each task names
itself here as ``tasks.py`` is imported (``HubSpotConfig.ready`` imports it, and so does every worker).

    jobs.task("push_changes").delay()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_TASKS: dict[str, Any] = {}

T = TypeVar("T")


def provides(name: str) -> Callable[[T], T]:
    """Name a task for the modules beneath ``hubspot_sync.tasks`` (put above ``@shared_task``)."""

    def register(task: T) -> T:
        _TASKS[name] = task
        return task

    return register


def task(name: str) -> Any:
    """The Celery task named ``name``, to ``.delay()`` or ``.apply_async()``."""
    try:
        return _TASKS[name]
    except KeyError:
        raise LookupError(f"no task is named {name!r}: is hubspot_sync.tasks imported?") from None
