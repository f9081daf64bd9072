"""Celery tasks of the orders app."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth.models import User

from orders import services
from pipelines.models import Stage


@shared_task
def orders_bulk_move_task(stage_pk: int, hubspot_ids: list[str], user_pk: int) -> int:
    """A large bulk move, in chunks; safe to run twice (orders already moved are counted as unchanged)."""
    stage = Stage.objects.select_related("pipeline").get(pk=stage_pk)
    user = User.objects.get(pk=user_pk)
    return services.orders_bulk_move_by_id(stage=stage, hubspot_ids=hubspot_ids, by=user)
