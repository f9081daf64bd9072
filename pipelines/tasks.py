"""Celery tasks of the pipelines app."""

from __future__ import annotations

from celery import shared_task

from pipelines import services


@shared_task(acks_late=True)
def deletion_moves_task(change_pk: int) -> int:
    """Move the orders a stage delete (or a pipeline archive) still holds, a chunk at a time; safe twice."""
    return services.deletion_moves_continue(change_pk=change_pk)
