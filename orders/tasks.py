"""Celery tasks of the orders app."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth.models import User

from orders import edits
from orders.models import Order
from pipelines.models import Stage


@shared_task
def orders_bulk_move_task(stage_pk: int, hubspot_ids: list[str], user_pk: int) -> int:
    """A large bulk move, in chunks; safe to run twice (orders already moved are counted as unchanged)."""
    stage = Stage.objects.select_related("pipeline").get(pk=stage_pk)
    user = User.objects.get(pk=user_pk)
    moved = 0
    for start in range(0, len(hubspot_ids), 200):
        chunk = Order.objects.filter(hubspot_id__in=hubspot_ids[start : start + 200], archived=False)
        moved += edits.orders_bulk_move(orders=chunk.select_related("stage"), stage=stage, by=user).moved
    return moved
