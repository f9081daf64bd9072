"""Staff writes of orders: moves (one or many), property edits and saved views. Each edit writes the cache at
once and records a Change that the outbox pushes to HubSpot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from hubspot_sync.outbox import record_change, record_changes
from orders.board import filter_query
from orders.models import Order, SavedView
from pipelines.models import Pipeline, Stage
from pipelines.rules import MoveCheck, check_move, missing_properties, move_properties
from pipelines.services import PipelineRuleError, orders_in

# Orders a bulk-move task reads at a time.
BULK_CHUNK = 200
# Orders moved out of a deleted stage (or archived pipeline) per bulk write.
MOVE_OUT_CHUNK = 500


class MovedMeanwhile(Exception):
    """The order is no longer in the stage the person saw it in: someone (or HubSpot) moved it."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"{order} was moved meanwhile")
        self.order = order


class MoveRefused(Exception):
    """A rule of the pipeline stops the move, or the target stage needs values the order doesn't have."""

    def __init__(self, check: MoveCheck) -> None:
        super().__init__(check.reason)
        self.reason = check.reason
        self.missing = check.missing


@transaction.atomic
def order_move_to_stage(
    *,
    order: Order,
    stage: Stage,
    by: User,
    values: Mapping[str, str] | None = None,
    seen_in: int | None = None,
) -> bool:
    """Move an order under its pipeline's rules, and record the change for HubSpot; False if it is there.

    ``values`` are the target stage's required properties (no others). ``seen_in`` is the stage the person
    saw it in (0: none): if the order is elsewhere now, nothing moves (MovedMeanwhile). A move the rules
    stop raises MoveRefused. A move to the stage the order is in changes nothing.
    """
    allowed = set(move_properties(stage))
    values = dict(values or {})
    if unexpected := sorted(set(values) - allowed):
        raise ValueError(f"a move into “{stage.label}” can't set {', '.join(unexpected)}")
    current = Order.objects.select_for_update().filter(pk=order.pk).values_list("stage_id", flat=True).first()
    if current != order.stage_id:
        order.refresh_from_db()
    if current == stage.pk:
        return False
    if seen_in is not None and (current or 0) != seen_in:
        raise MovedMeanwhile(order)
    check = check_move(order, stage, values)
    if not check.allowed:
        raise MoveRefused(check)
    # The pipeline and stage come from the target alone, over anything else.
    properties = {**values, "hs_pipeline": stage.pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id}
    record_change(obj=order, properties=properties, by=by)
    order.stage = stage
    order.pipeline = stage.pipeline
    order.stage_entered_at = timezone.now()
    order.save(update_fields=["stage", "pipeline", "stage_entered_at", "updated_at"])
    return True


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
    # A bulk move too large for the request: how many were queued to move in a worker.
    background: bool = False
    queued: int = 0

    @property
    def warns(self) -> bool:
        """Whether some orders the person asked to move stay where they are."""
        return bool(self.refused or self.moved_meanwhile)

    def summary(self, *, described: str, stage: Stage) -> str:
        """What the board says after the move."""
        if self.background:
            text = (
                f"Moving {self.queued:,} of {described} to {stage.label} in the background; "
                "the board updates as they move."
            )
            if self.moved_meanwhile:
                text += (
                    f" {self.moved_meanwhile:,} changed stage after the confirmation was shown and stay "
                    "where they are."
                )
            return text
        text = f"Moved {self.moved:,} of {described} to {stage.label}."
        if self.unchanged:
            text += f" {self.unchanged:,} were there already."
        for reason, count in self.refused.items():
            text += f" {count:,} not moved: {reason}"
        if self.moved_meanwhile:
            text += (
                f" {self.moved_meanwhile:,} not moved: they changed stage after the confirmation was shown"
                " (or weren't in it); they stay where they are."
            )
        return text


def orders_bulk_move(
    *, orders: Iterable[Order], stage: Stage, by: User, seen: Mapping[str, int] | None = None
) -> BulkMoveResult:
    """Move many orders, each under the pipeline's rules and in a transaction of its own (the board shows
    them move); those a rule stops stay where they are.

    With ``seen`` ({order id: stage pk (0: none)} as the confirmation showed them) an order that is
    elsewhere now, or that the confirmation didn't show, stays where it is too.
    """
    result = BulkMoveResult()
    for order in orders:
        seen_in = None
        if seen is not None:
            seen_in = seen.get(order.hubspot_id, -1)
            if seen_in != (order.stage_id or 0):
                result.moved_meanwhile += 1
                continue
        try:
            moved = order_move_to_stage(order=order, stage=stage, by=by, seen_in=seen_in)
        except MoveRefused as refused:
            result.refused[refused.reason] = result.refused.get(refused.reason, 0) + 1
            continue
        except MovedMeanwhile:
            result.moved_meanwhile += 1
            continue
        if moved:
            result.moved += 1
        else:
            result.unchanged += 1
    return result


def orders_bulk_move_confirmed(
    *,
    orders: QuerySet[Order],
    stage: Stage,
    by: User,
    seen: Mapping[str, int] | None,
    shown_at: datetime,
) -> BulkMoveResult:
    """Move the orders a confirmation named: at once when it showed each one's stage (``seen``), otherwise
    in a worker, leaving those whose stage changed after it was shown where they are."""
    if seen is not None:
        return orders_bulk_move(orders=orders.select_related("stage"), stage=stage, by=by, seen=seen)
    # The task module imports this one; importing it here keeps the two from importing each other.
    from orders.tasks import orders_bulk_move_task

    total = orders.count()
    ids = list(orders.exclude(stage_entered_at__gt=shown_at).values_list("hubspot_id", flat=True))
    orders_bulk_move_task.delay(stage.pk, ids, by.pk)
    return BulkMoveResult(background=True, queued=len(ids), moved_meanwhile=total - len(ids))


def orders_bulk_move_by_id(*, stage: Stage, hubspot_ids: list[str], by: User) -> int:
    """A large bulk move (the worker's), a chunk of orders read at a time; orders already moved count as
    unchanged, so running it twice moves nothing more. Returns how many moved."""
    moved = 0
    for start in range(0, len(hubspot_ids), BULK_CHUNK):
        chunk = Order.objects.filter(hubspot_id__in=hubspot_ids[start : start + BULK_CHUNK], archived=False)
        moved += orders_bulk_move(orders=chunk.select_related("stage"), stage=stage, by=by).moved
    return moved


def orders_move_out(
    *, source: Stage | Pipeline, target: Stage, by: User | None, limit: int | None = None
) -> int:
    """Move the live orders of a stage being deleted (or a pipeline being archived) to the target (at most
    ``limit``), each move a change for HubSpot, written in bulk in the caller's transaction; returns how many
    moved. An order without a value the target requires stops them all (PipelineRuleError): the deletion
    checked that first, and the check is repeated here under the rows' locks."""
    ids = list(orders_in(source).order_by("pk").values_list("pk", flat=True)[:limit])
    # The pipeline and stage come from the target alone.
    place = {"hs_pipeline": target.pipeline.hubspot_id, "hs_pipeline_stage": target.hubspot_id}
    for start in range(0, len(ids), MOVE_OUT_CHUNK):
        orders = list(Order.objects.select_for_update().filter(pk__in=ids[start : start + MOVE_OUT_CHUNK]))
        lacking = [o for o in orders if missing_properties(o.properties, target)]
        if lacking:
            raise PipelineRuleError(
                f"{lacking[0]} has no value for what “{target.label}” requires; fill it in first, or choose "
                "another stage."
            )
        record_changes(items=[(order, place) for order in orders], by=by, locked=True)
    return len(ids)


def saved_view_save(*, user: User, pipeline: Pipeline, name: str, query: str) -> SavedView:
    """Save a person's filters of a board (of ``query``, the filters alone) under a name, replacing theirs."""
    view, _ = SavedView.objects.update_or_create(
        user=user,
        pipeline=pipeline,
        name=name,  # type: ignore[misc]
        defaults={"query": filter_query(QueryDict(query))},
    )
    return view


def saved_view_delete(*, view: SavedView) -> None:
    """Delete one of a person's saved views."""
    view.delete()
