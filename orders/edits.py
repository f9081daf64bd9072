"""Staff edits of orders: moves (one or many) and property edits. Each writes the cache at once and records
a Change that the outbox pushes to HubSpot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from hubspot.outbox import record_change
from orders.models import Order
from pipelines.models import Stage
from pipelines.rules import check_move


@transaction.atomic
def order_move_to_stage(
    *, order: Order, stage: Stage, by: User, values: dict[str, str] | None = None
) -> Order:
    """Move an order at once, with any values the target stage requires, and record the change for HubSpot."""
    properties = {
        "hs_pipeline": stage.pipeline.hubspot_id,
        "hs_pipeline_stage": stage.hubspot_id,
        **(values or {}),
    }
    record_change(obj=order, properties=properties, by=by)
    order.stage = stage
    order.pipeline = stage.pipeline
    order.stage_entered_at = timezone.now()
    order.save(update_fields=["stage", "pipeline", "stage_entered_at", "updated_at"])
    return order


def order_update_properties(*, order: Order, values: dict[str, str], by: User) -> Order:
    """Edit an order's properties at once, and record the change for HubSpot."""
    record_change(obj=order, properties=values, by=by)
    return order


@dataclass
class BulkMoveResult:
    moved: int = 0
    unchanged: int = 0  # already in the stage
    refused: dict[str, int] = field(default_factory=dict)  # reason -> how many

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())


def orders_bulk_move(*, orders: Iterable[Order], stage: Stage, by: User) -> BulkMoveResult:
    """Move many orders, each under the pipeline's rules; those a rule stops stay where they are."""
    result = BulkMoveResult()
    for order in orders:
        if order.stage_id == stage.pk:
            result.unchanged += 1
            continue
        check = check_move(order, stage)
        if not check.allowed:
            result.refused[check.reason] = result.refused.get(check.reason, 0) + 1
            continue
        order_move_to_stage(order=order, stage=stage, by=by)
        result.moved += 1
    return result
