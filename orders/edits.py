"""Staff edits of orders: moves (one or many) and property edits. Each writes the cache at once and records
a Change that the outbox pushes to HubSpot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from hubspot.models import Change, ChangeKind, ChangeStatus
from hubspot.outbox import record_change
from orders.models import Order
from pipelines.models import Stage
from pipelines.rules import check_move, move_properties

# How long after its change a local move's order enters the stage, at most (the same transaction).
ENTERED_AFTER_CHANGE = timedelta(seconds=30)


class MovedMeanwhile(Exception):
    """The order is no longer in the stage the person saw it in: someone (or HubSpot) moved it."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"{order} was moved meanwhile")
        self.order = order


@transaction.atomic
def order_move_to_stage(
    *,
    order: Order,
    stage: Stage,
    by: User,
    values: Mapping[str, str] | None = None,
    seen_in: int | None = None,
) -> Order:
    """Move an order at once, with values for the target stage's required properties (and no others), and
    record the change for HubSpot. ``seen_in`` is the stage the person saw it in (0: none): if the order is
    elsewhere now, nothing moves (MovedMeanwhile). A move to the stage it is in changes nothing."""
    allowed = set(move_properties(stage))
    values = dict(values or {})
    if unexpected := sorted(set(values) - allowed):
        raise ValueError(f"a move into “{stage.label}” can't set {', '.join(unexpected)}")
    current = Order.objects.select_for_update().filter(pk=order.pk).values_list("stage_id", flat=True).first()
    if seen_in is not None and (current or 0) != seen_in:
        order.refresh_from_db()
        raise MovedMeanwhile(order)
    if current == stage.pk:
        return order
    # The pipeline and stage come from the target alone, over anything else.
    properties = {**values, "hs_pipeline": stage.pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id}
    record_change(obj=order, properties=properties, by=by)
    order.stage = stage
    order.pipeline = stage.pipeline
    order.stage_entered_at = timezone.now()
    order.save(update_fields=["stage", "pipeline", "stage_entered_at", "updated_at"])
    return order


def who_moved(order: Order) -> str:
    """Who put the order in the stage it is in: the person of the latest move into it, or "HubSpot" when
    the stage came by sync (or a HubSpot change came after that move)."""
    if order.stage is None:
        return "HubSpot"
    latest = (
        Change.objects.for_record("orders", order.hubspot_id)
        .filter(kind=ChangeKind.UPDATE, new__has_key="hs_pipeline_stage")
        .exclude(status=ChangeStatus.DISCARDED)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None or latest.new.get("hs_pipeline_stage") != order.stage.hubspot_id:
        return "HubSpot"
    # A local move enters its stage a moment after its change is written; a later entry came from HubSpot.
    if order.stage_entered_at and order.stage_entered_at - latest.created_at > ENTERED_AFTER_CHANGE:
        return "HubSpot"
    return latest.created_by_name or "Someone"


def order_update_properties(*, order: Order, values: dict[str, str], by: User) -> Order:
    """Edit an order's properties at once, and record the change for HubSpot."""
    record_change(obj=order, properties=values, by=by)
    return order


@dataclass
class BulkMoveResult:
    moved: int = 0
    unchanged: int = 0  # already in the stage
    refused: dict[str, int] = field(default_factory=dict)  # reason -> how many
    # Moved elsewhere after the confirmation was shown: left where they are.
    moved_meanwhile: int = 0

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())


def orders_bulk_move(
    *, orders: Iterable[Order], stage: Stage, by: User, seen: Mapping[str, int] | None = None
) -> BulkMoveResult:
    """Move many orders, each under the pipeline's rules; those a rule stops stay where they are. With
    ``seen`` ({order id: stage pk (0: none)} as the confirmation showed them) an order that is elsewhere now,
    or that the confirmation didn't show, stays where it is too."""
    result = BulkMoveResult()
    for order in orders:
        seen_in = None
        if seen is not None:
            seen_in = seen.get(order.hubspot_id, -1)
            if seen_in != (order.stage_id or 0):
                result.moved_meanwhile += 1
                continue
        if order.stage_id == stage.pk:
            result.unchanged += 1
            continue
        check = check_move(order, stage)
        if not check.allowed:
            result.refused[check.reason] = result.refused.get(check.reason, 0) + 1
            continue
        try:
            order_move_to_stage(order=order, stage=stage, by=by, seen_in=seen_in)
        except MovedMeanwhile:
            result.moved_meanwhile += 1
            continue
        result.moved += 1
    return result
