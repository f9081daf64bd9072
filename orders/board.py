"""The board's read model: columns, cards, totals and the "anything new?" version, built from the cache.

Every number on the board comes from the same filtered QuerySet, so counts, sums, pages, the table and
the CSV export always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, Subquery
from django.http import QueryDict

from hubspot.models import PropertyDefinition
from orders.models import Order, OrderQuerySet
from pipelines.models import Pipeline, Stage, StageState

PAGE_SIZE = 25


@dataclass
class Column:
    stage: Stage
    count: int
    sums: dict[str, Decimal]
    cards: list[Order]
    next_cursor: str | None

    @property
    def is_closed(self) -> bool:
        return self.stage.state == StageState.CLOSED


@dataclass
class Board:
    pipeline: Pipeline
    stages: list[Stage]
    columns: list[Column]
    filters: dict[str, Any]
    query: str  # the filters as a query string, for links, paging and moves
    total: int
    sums: dict[str, Decimal]
    card_fields: list[tuple[str, str]] = field(default_factory=list)  # (property name, label)


def stages_of(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(archived=False).order_by("display_order", "label"))


def filtered(pipeline: Pipeline, filters: dict[str, Any]) -> OrderQuerySet:
    return Order.objects.on_board(pipeline, filters)


def parse_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """A column cursor is "<created ISO>|<id>"; anything else starts from the top."""
    if not raw or "|" not in raw:
        return None
    created, _, pk = raw.rpartition("|")
    try:
        return datetime.fromisoformat(created), int(pk)
    except ValueError:
        return None


def column_page(orders: OrderQuerySet, stage_id: int, cursor: str | None) -> tuple[list[Order], str | None]:
    cards = list(orders.column(stage_id, after=parse_cursor(cursor))[: PAGE_SIZE + 1])
    more = len(cards) > PAGE_SIZE
    cards = cards[:PAGE_SIZE]
    return cards, (cards[-1].cursor() if more and cards else None)


def card_fields(pipeline: Pipeline) -> list[tuple[str, str]]:
    """The configurable card lines: (property name, label); "customer" is the associated contact."""
    names = [n for n in (pipeline.card_properties or []) if isinstance(n, str)]
    labels = dict(
        PropertyDefinition.objects.filter(object_type="orders", name__in=names).values_list("name", "label")
    )
    return [(name, "Customer" if name == "customer" else labels.get(name, name)) for name in names]


def build_board(pipeline: Pipeline, filters: dict[str, Any], query: QueryDict) -> Board:
    stages = stages_of(pipeline)
    orders = filtered(pipeline, filters)
    totals = orders.stage_totals()
    columns = []
    for stage in stages:
        cards, next_cursor = column_page(orders, stage.pk, None)
        entry = totals.get(stage.pk, {"count": 0, "sums": {}})
        columns.append(Column(stage, entry["count"], entry["sums"], cards, next_cursor))
    sums: dict[str, Decimal] = {}
    for entry in totals.values():
        for currency, amount in entry["sums"].items():
            sums[currency] = sums.get(currency, Decimal(0)) + amount
    return Board(
        pipeline=pipeline,
        stages=stages,
        columns=columns,
        filters=filters,
        query=query.urlencode(),
        total=sum(entry["count"] for entry in totals.values()),
        sums=dict(sorted(sums.items())),
        card_fields=card_fields(pipeline),
    )


def column_totals(
    pipeline: Pipeline, filters: dict[str, Any], stage_ids: list[int]
) -> dict[int, dict[str, Any]]:
    totals = filtered(pipeline, filters).filter(stage_id__in=stage_ids).stage_totals()
    return {sid: totals.get(sid, {"count": 0, "sums": {}}) for sid in stage_ids}  # type: ignore[misc]


def version(pipeline: Pipeline) -> str:
    """Changes when an order of the pipeline changes here (a move, a sync, a webhook) or an order's push
    moves on (pending → in HubSpot, failed, conflict): one query of two index seeks."""
    from hubspot.models import Change

    # Each "latest" is ORDER BY … DESC LIMIT 1 on its own index, so the cost doesn't grow with the cache.
    latest_order = (
        Order.objects.filter(pipeline=OuterRef("pk")).order_by("-updated_at").values("updated_at")[:1]
    )
    latest_change = (
        Change.objects.filter(object_type="orders").order_by("-updated_at").values("updated_at")[:1]
    )
    row = (
        Pipeline.objects.filter(pk=pipeline.pk)
        .annotate(latest=Subquery(latest_order), pushed=Subquery(latest_change))
        .values("latest", "pushed")
        .first()
    ) or {}
    return "|".join(str(row.get(key) or 0) for key in ("latest", "pushed"))
