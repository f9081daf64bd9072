"""The board's read model: columns, cards, totals and the "anything new?" version, built from the cache.

Every number on the board comes from the same filtered QuerySet, so counts, sums, pages, the table and
the CSV export always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.db.models.query import RawQuerySet
from django.http import QueryDict
from django.utils import timezone

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition
from orders.forms import BoardFilterForm
from orders.models import CARD_COLUMNS, BoardTotal, Order, OrderQuerySet
from pipelines.models import Pipeline, Stage, StageState

PAGE_SIZE = 25
# How often an open board asks "anything new?", in seconds (settings.ORDERDECK_BOARD_POLL_SECONDS).
POLL_SECONDS = 5
# The most changed orders one poll sends; a board further behind catches up over the next polls.
CHANGES_PER_POLL = 200
# Rows are stamped when written but seen when committed, so a poll looks this far behind the version it
# was given: a write that committed late is still found (a card sent twice is simply drawn again).
LOOK_BACK = timedelta(seconds=30)
# How long after its change a local move's order enters the stage, at most (the same transaction).
ENTERED_AFTER_CHANGE = timedelta(seconds=30)
# Up to this many orders move during the request; more move in a worker while the board shows progress.
BULK_IN_REQUEST = 500


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

    @property
    def filter_count(self) -> int:
        """How many filters are set (what the "Filters" disclosure shows while it is closed)."""
        return len([name for name in self.filters if name in BoardFilterForm.base_fields])


def poll_seconds() -> float:
    return float(getattr(settings, "ORDERDECK_BOARD_POLL_SECONDS", POLL_SECONDS))


def filter_query(query: QueryDict) -> str:
    """The filters of a query string as a short query string of their own: only the filter form's fields,
    only those set, in the form's order. Links, saved views, moves and the poll all carry this."""
    kept = QueryDict(mutable=True)
    for name in BoardFilterForm.base_fields:
        value = next((v for v in query.getlist(name) if v.strip()), None)
        if value is not None:
            kept[name] = value
    return kept.urlencode()


def filter_choices(pipeline: Pipeline) -> dict[str, list[str]]:
    """The values the store, fulfillment and currency filters offer: those the pipeline's orders have."""
    return BoardTotal.objects.values_present(pipeline.pk)


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
    total, sums = _whole(totals)
    return Board(
        pipeline=pipeline,
        stages=stages,
        columns=columns,
        filters=filters,
        query=filter_query(query),
        total=total,
        sums=sums,
        card_fields=card_fields(pipeline),
    )


def _whole(totals: dict[int | None, dict[str, Any]]) -> tuple[int, dict[str, Decimal]]:
    """The board's count and sums per currency, from its columns' totals."""
    sums: dict[str, Decimal] = {}
    for entry in totals.values():
        for currency, amount in entry["sums"].items():
            sums[currency] = sums.get(currency, Decimal(0)) + amount
    return sum(entry["count"] for entry in totals.values()), dict(sorted(sums.items()))


def column_totals(
    pipeline: Pipeline, filters: dict[str, Any], stage_ids: list[int]
) -> dict[int, dict[str, Any]]:
    totals = stage_totals(pipeline, filters, stage_ids)
    return {sid: totals.get(sid, {"count": 0, "sums": {}}) for sid in stage_ids}  # type: ignore[misc]


def version(pipeline: Pipeline) -> str:
    """Changes when an order of the pipeline changes here (a move, a sync, a webhook) or an order's push
    moves on (pending → in HubSpot, failed, conflict): one query of two index seeks."""
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


@dataclass
class BoardChanges:
    """What a poll sends an open board: the cards that changed since the version it has, each in its
    column, the ids of those that left the board, and every column's header with the board's totals."""

    version: str
    cards: list[Order]
    gone: list[str]
    columns: list[Column]
    total: int
    sums: dict[str, Decimal]
    reload: bool = False  # too much changed to send card by card: the board is drawn again


def _moments(raw: str) -> tuple[datetime, datetime] | None:
    """The two moments of a version ("<latest order write>|<latest push change>", "0" for none)."""
    parts = raw.split("|")
    if len(parts) != 2:
        return None
    moments = []
    for part in parts:
        if part == "0":
            moments.append(datetime.min.replace(tzinfo=UTC))
            continue
        try:
            moment = datetime.fromisoformat(part)
        except ValueError:
            return None
        moments.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return moments[0], moments[1]


def _changed_ids(rows: Any, column: str, since: datetime, upto: datetime) -> tuple[set[str], datetime | None]:
    """Ids of the rows written after ``since`` (less the look-back) up to ``upto``, about a poll's worth,
    and how far they reach when that is short of ``upto`` (None: all of it)."""
    start = since - LOOK_BACK if since > datetime.min.replace(tzinfo=UTC) + LOOK_BACK else since
    window = rows.filter(updated_at__gt=start, updated_at__lte=upto).order_by("updated_at")
    beyond = list(window.values_list("updated_at", flat=True)[CHANGES_PER_POLL : CHANGES_PER_POLL + 1])
    reach: datetime | None = None
    if beyond:
        # More than a poll's worth: no look-back, and stop at a moment (every row written at it included),
        # one that lies after ``since`` so each poll gets further.
        window = rows.filter(updated_at__gt=since, updated_at__lte=upto).order_by("updated_at")
        beyond = list(window.values_list("updated_at", flat=True)[CHANGES_PER_POLL : CHANGES_PER_POLL + 1])
        if beyond:
            reach = beyond[0]
            window = window.filter(updated_at__lte=reach)
    ids = set(window.values_list(column, flat=True).distinct()[: CHANGES_PER_POLL * 10 + 1])
    return ids, reach


def changes_since(pipeline: Pipeline, filters: dict[str, Any], seen: str) -> BoardChanges | None:
    """What changed on the board since the version ``seen`` (None: nothing did)."""
    current = version(pipeline)
    if seen == current:
        return None
    now = _moments(current) or (datetime.min.replace(tzinfo=UTC),) * 2
    since = _moments(seen) or now  # a version this app didn't make: from now on
    # An order that left for another pipeline is among the changes too (and leaves this board).
    pipelines = list(Pipeline.objects.for_orders().values_list("pk", flat=True))
    order_ids, order_reach = _changed_ids(
        Order.objects.filter(pipeline_id__in=pipelines), "hubspot_id", since[0], now[0]
    )
    change_ids, change_reach = _changed_ids(
        Change.objects.filter(object_type="orders"), "object_id", since[1], now[1]
    )
    parts = current.split("|")
    reached = "|".join(
        str(reach) if reach is not None else part
        for reach, part in zip((order_reach, change_reach), parts, strict=True)
    )
    ids = order_ids | change_ids
    stages = stages_of(pipeline)
    totals = stage_totals(pipeline, filters)
    columns = [
        Column(s, totals.get(s.pk, {}).get("count", 0), totals.get(s.pk, {}).get("sums", {}), [], None)
        for s in stages
    ]
    total, sums = _whole(totals)
    if len(ids) > CHANGES_PER_POLL * 10:
        return BoardChanges(current, [], [], columns, total, sums, reload=True)
    by_pk = {s.pk: s for s in stages}
    cache = Order._meta.get_field("stage")
    cards = []
    for order in (
        filtered(pipeline, filters)
        .filter(hubspot_id__in=ids, stage_id__in=list(by_pk))
        .only(*CARD_COLUMNS)
        .order_by("-remote_created_at", "-pk")
    ):
        cache.set_cached_value(order, by_pk[order.stage_id or 0])  # type: ignore[union-attr]
        cards.append(order)
    on_board = {order.hubspot_id for order in cards}
    return BoardChanges(reached, cards, sorted(ids - on_board), columns, total, sums)


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


def bulk_promise(orders: QuerySet[Order], count: int) -> dict[str, Any]:
    """What a bulk move's confirmation shows, carried with it: when, and (for a move made in the request)
    each order's stage then."""
    promise: dict[str, Any] = {"shown_at": timezone.now().isoformat()}
    if count <= BULK_IN_REQUEST:
        promise["seen"] = [
            f"{hubspot_id}:{stage_pk or 0}"
            for hubspot_id, stage_pk in orders.values_list("hubspot_id", "stage_id")
        ]
    return promise
