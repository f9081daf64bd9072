"""The board's read model: columns, cards, totals and the "anything new?" version, built from the cache.

Every number on the board comes from the same filtered QuerySet, so counts, sums, pages, the table and
the CSV export always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F, OuterRef, Subquery, Window
from django.db.models.functions import RowNumber
from django.db.models.query import RawQuerySet
from django.http import QueryDict

from hubspot.models import PropertyDefinition
from orders.models import CARD_COLUMNS, BoardTotal, Order, OrderQuerySet
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


def _page(cards: list[Order], stage: Stage) -> tuple[list[Order], str | None]:
    """Up to a page of a column's cards (each given the column's stage, so none joins it), and the cursor
    of the next page if there is one."""
    more = len(cards) > PAGE_SIZE
    cards = cards[:PAGE_SIZE]
    cache = Order._meta.get_field("stage")
    for order in cards:
        cache.set_cached_value(order, stage)  # type: ignore[union-attr]
    return cards, (cards[-1].cursor() if more and cards else None)


def column_page(orders: OrderQuerySet, stage: Stage, cursor: str | None) -> tuple[list[Order], str | None]:
    return _page(list(orders.column(stage.pk, after=parse_cursor(cursor))[: PAGE_SIZE + 1]), stage)


def first_pages(
    orders: OrderQuerySet, stages: list[Stage], *, searched: bool
) -> dict[int, tuple[list[Order], str | None]]:
    """Every column's first page, in one query.

    Without a text search, each column's page reads straight off the column index (so its cost doesn't
    grow with the board), and the pages come back together as one UNION ALL. With one, the trigram index
    finds the matching orders once and each is numbered within its stage, where a query per column would
    look them up again for each.
    """
    if not stages:
        return {}
    if searched:
        pages: Any = (
            orders.filter(stage_id__in=[stage.pk for stage in stages])
            .alias(
                place=Window(
                    RowNumber(),
                    partition_by=[F("stage_id")],
                    order_by=[F("remote_created_at").desc(), F("pk").desc()],
                )
            )
            .filter(place__lte=PAGE_SIZE + 1)
            .only(*CARD_COLUMNS)
            .order_by("stage_id", "-remote_created_at", "-pk")
        )
    else:
        pages = _column_pages(orders, stages)
    found: dict[int, list[Order]] = {stage.pk: [] for stage in stages}
    for order in pages:
        found[order.stage_id].append(order)
    return {stage.pk: _page(found[stage.pk], stage) for stage in stages}


def _column_pages(orders: OrderQuerySet, stages: list[Stage]) -> RawQuerySet[Order]:
    """Each column's query (as ``column_page`` runs it) as a part of one UNION ALL, in column order.

    The parts differ only in their stage, the last parameter, so the query is compiled for two stages (to
    be sure of that) and its SQL reused for the rest: compiling is the dearest part of these reads.
    """

    def compiled(stage: Stage) -> tuple[str, list[Any]]:
        query = orders.column(stage.pk)[: PAGE_SIZE + 1].query
        sql, params = query.get_compiler(using=orders.db).as_sql()
        return sql, list(params)

    first_sql, first_params = compiled(stages[0])
    reusable = False
    if len(stages) > 1:
        second_sql, second_params = compiled(stages[1])
        reusable = (
            second_sql == first_sql
            and second_params[:-1] == first_params[:-1]
            and (first_params[-1:], second_params[-1:]) == ([stages[0].pk], [stages[1].pk])
        )
    quote = connection.ops.quote_name
    parts, params = [], []
    for n, stage in enumerate(stages):
        if n == 0:
            sql, part_params = first_sql, first_params
        elif reusable:
            sql, part_params = first_sql, [*first_params[:-1], stage.pk]
        else:
            sql, part_params = compiled(stage)
        # Django compiled the part; its values stay parameters.
        parts.append(f"SELECT * FROM ({sql}) AS {quote(f'column_{n}')}")  # noqa: S608
        params.extend(part_params)
    order_by = f"{quote('stage_id')}, {quote('remote_created_at')} DESC, {quote('id')} DESC"
    union = " UNION ALL ".join(parts)
    sql = f"SELECT * FROM ({union}) AS {quote('pages')} ORDER BY {order_by}"  # noqa: S608
    return Order.objects.raw(sql, params)


def card_fields(pipeline: Pipeline) -> list[tuple[str, str]]:
    """The configurable card lines: (property name, label); "customer" is the associated contact."""
    names = [n for n in (pipeline.card_properties or []) if isinstance(n, str)]
    labels = dict(
        PropertyDefinition.objects.filter(object_type="orders", name__in=names).values_list("name", "label")
    )
    return [(name, "Customer" if name == "customer" else labels.get(name, name)) for name in names]


def stage_totals(
    pipeline: Pipeline, filters: dict[str, Any], stage_ids: list[int] | None = None
) -> dict[int | None, dict[str, Any]]:
    """Exact count and sums per currency per stage under the filters: from the totals the database keeps
    when the filters are among theirs (a few hundred rows at most), else counted from the filtered orders."""
    if BoardTotal.objects.answers(filters):
        return BoardTotal.objects.stage_totals(pipeline.pk, filters, stage_ids)
    orders = filtered(pipeline, filters)
    if stage_ids is not None:
        orders = orders.filter(stage_id__in=stage_ids)
    return orders.stage_totals()


def build_board(pipeline: Pipeline, filters: dict[str, Any], query: QueryDict) -> Board:
    stages = stages_of(pipeline)
    orders = filtered(pipeline, filters)
    totals = stage_totals(pipeline, filters)
    pages = first_pages(orders, stages, searched=bool(filters.get("q")))
    columns = []
    for stage in stages:
        cards, next_cursor = pages[stage.pk]
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
    totals = stage_totals(pipeline, filters, stage_ids)
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
