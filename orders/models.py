"""Orders: HubSpot's order objects (0-123) in the local cache."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, F, Func, Q, Sum, TextField
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from hubspot_sync.mirror import MirroredObject
from hubspot_sync.sync_state import hubspot_ids_with_sync_state

if TYPE_CHECKING:
    from pipelines.models import Pipeline


@functools.cache
def _orders_url_prefix() -> str:
    """Where order URLs start ("/boards/orders/"): reversed once, since a board links every card twice."""
    return reverse("orders:drawer", args=["0"]).removesuffix("0/")


# Filters the maintained board totals answer (BoardTotal keeps a row per value of each); any other filter is
# counted from the orders themselves.
TOTALS_FILTERS = {"store": "store", "status": "fulfillment_status", "currency": "currency"}

# Text search looks at these columns; each database keeps a trigram index over them (migration 0004), so a
# search reads only the orders that can match, then checks each column exactly.
SEARCH_COLUMNS = ("name", "external_id", "customer_name", "customer_email", "tracking_number", "hubspot_id")


class _SearchText(Func):
    """The searched columns joined (PostgreSQL indexes exactly this expression, upper-cased, with pg_trgm)."""

    arg_joiner = " || ' ' || "
    template = "(%(expressions)s)"
    output_field = TextField()


def _search_candidates(text: str) -> Q | None:
    """The orders the trigram index says may contain ``text`` (a superset of the exact matches), or None
    when the index can't narrow the search (a trigram index needs three characters)."""
    if len(text) < 3:
        return None
    if connection.vendor == "sqlite":
        phrase = '"' + text.replace('"', '""') + '"'
        matches = "SELECT rowid FROM orders_order_search WHERE orders_order_search MATCH %s"
        return Q(pk__in=RawSQL(matches, [phrase]))  # noqa: S611 - the text is a parameter
    if connection.vendor == "postgresql":
        return Q(search_text__icontains=text)
    return None


# What a card shows and where it sits (orders.cards): a column page reads only these.
CARD_COLUMNS = (
    "hubspot_id",
    "properties",
    "name",
    "pipeline_id",
    "stage_id",
    "total",
    "currency",
    "customer_name",
    "customer_email",
    "stage_entered_at",
    "remote_created_at",
)


def _money(units: int) -> Decimal:
    """Ten-thousandths (how BoardTotal keeps sums exactly) as an amount."""
    return Decimal(units).scaleb(-4)


class OrderQuerySet(models.QuerySet["Order"]):
    def live(self) -> OrderQuerySet:
        return self.filter(archived=False)

    def on_board(self, pipeline: Pipeline, filters: dict[str, Any]) -> OrderQuerySet:
        """The pipeline's live orders under the board's filters (see orders.forms.BoardFilterForm)."""
        qs = self.filter(pipeline=pipeline, archived=False)
        if filters.get("invalid"):
            # Filters that could not be read match nothing, not every order (BoardFilterForm.active). A
            # condition no row meets, since an empty queryset can't be compiled into the board's UNION.
            return qs.filter(pk__isnull=True)
        if text := filters.get("q"):
            if (candidates := _search_candidates(text)) is not None:
                qs = qs.alias(search_text=_SearchText(*(F(c) for c in SEARCH_COLUMNS))).filter(candidates)
            qs = qs.filter(
                Q(name__icontains=text)
                | Q(external_id__icontains=text)
                | Q(customer_name__icontains=text)
                | Q(customer_email__icontains=text)
                | Q(tracking_number__icontains=text)
                | Q(hubspot_id=text)
            )
        # Matched whatever the case ("usd" finds "USD"), as HubSpot's own filters do.
        for field, key in (("store", "store"), ("fulfillment_status", "status"), ("currency", "currency")):
            if value := filters.get(key):
                qs = qs.filter(**{f"{field}__iexact": value})
        if start := filters.get("created_from"):
            qs = qs.filter(remote_created_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
        if end := filters.get("created_to"):
            qs = qs.filter(
                remote_created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
            )
        if filters.get("stale"):
            qs = qs.filter(
                stage__state="OPEN",
                stage_entered_at__lt=timezone.now() - timedelta(days=pipeline.stale_after_days),
            )
        if sync := filters.get("sync"):
            qs = qs.filter(hubspot_id__in=hubspot_ids_with_sync_state("orders", sync))
        return qs

    def column(self, stage_id: int, *, after: tuple[datetime, int] | None = None) -> OrderQuerySet:
        """One column's cards, newest first, from an (created, id) keyset cursor."""
        qs = self.filter(stage_id=stage_id)
        if after is not None:
            created, pk = after
            qs = qs.filter(Q(remote_created_at__lt=created) | Q(remote_created_at=created, pk__lt=pk))
        return qs.only(*CARD_COLUMNS).order_by("-remote_created_at", "-pk")

    def stage_totals(self) -> dict[int | None, dict[str, Any]]:
        """Exact count and sums per currency for each stage, in one grouped query."""
        totals: dict[int | None, dict[str, Any]] = {}
        rows = self.order_by().values_list("stage_id", "currency").annotate(n=Count("pk"), total=Sum("total"))
        for stage_id, currency, count, total in rows:
            entry = totals.setdefault(stage_id, {"count": 0, "sums": {}})
            entry["count"] += count
            if total is not None:
                entry["sums"][currency or "—"] = total
        for entry in totals.values():
            entry["sums"] = dict(sorted(entry["sums"].items()))
        return totals


class Order(MirroredObject):
    name = models.CharField(max_length=500, blank=True)
    # No index of its own: "order_pipeline" and "order_pipeline_updated" begin with it, and every index
    # costs each order a sync writes.
    pipeline = models.ForeignKey(
        "pipelines.Pipeline",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
    )
    stage = models.ForeignKey(
        "pipelines.Stage", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    total = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)
    store = models.CharField(max_length=255, blank=True)
    fulfillment_status = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    tracking_number = models.CharField(max_length=255, blank=True)
    # The associated contact, copied here so cards and search need no join.
    contact_hubspot_id = models.CharField(max_length=32, blank=True)
    customer_name = models.CharField(max_length=255, blank=True)
    customer_email = models.CharField(max_length=255, blank=True)
    # When the order entered its current stage, as far as we have seen (local moves, sync, webhooks).
    stage_entered_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        indexes = [
            # A column page: newest first, the id breaking ties, read straight off the index.
            models.Index(
                fields=["stage", "-remote_created_at", "-id"],
                condition=Q(archived=False),
                name="order_column",
            ),
            models.Index(fields=["pipeline", "archived"], name="order_pipeline"),
            # Text search (customer email, external id, …) goes through the substring index of migration
            # 0004, so those columns have no plain index to keep up on every write.
            # The board's "anything new?" poll: the latest change in a pipeline is one index seek.
            models.Index(fields=["pipeline", "updated_at"], name="order_pipeline_updated"),
        ]

    def __str__(self) -> str:
        return self.name or f"Order {self.hubspot_id}"

    @property
    def days_in_stage(self) -> int | None:
        if not self.stage_entered_at:
            return None
        return max(0, (timezone.now() - self.stage_entered_at).days)

    def is_stale(self, pipeline: Pipeline) -> bool:
        """Too long in an open stage (a closed stage is where orders end, so never stale)."""
        days = self.days_in_stage
        open_stage = self.stage is None or self.stage.state == "OPEN"
        return open_stage and days is not None and days >= pipeline.stale_after_days

    @property
    def drawer_url(self) -> str:
        return f"{_orders_url_prefix()}{self.hubspot_id}/"

    @property
    def move_url(self) -> str:
        return f"{_orders_url_prefix()}{self.hubspot_id}/move/"

    def cursor(self) -> str:
        """This card's place in its column, for the next page."""
        created = self.remote_created_at.isoformat() if self.remote_created_at else ""
        return f"{created}|{self.pk}"


class BoardTotalQuerySet(models.QuerySet["BoardTotal"]):
    def answers(self, filters: dict[str, Any]) -> bool:
        """Whether the maintained totals can answer a board under these filters."""
        return set(filters) <= set(TOTALS_FILTERS)

    def values_present(self, pipeline_id: int) -> dict[str, list[str]]:
        """Each filter's values among the pipeline's live orders (for the filters' choices), one per value
        whatever its case (the spelling most orders have), sorted: read off the totals, a few hundred rows."""
        present: dict[str, list[str]] = {}
        for key, column in TOTALS_FILTERS.items():
            rows = (
                self.filter(pipeline_id=pipeline_id)
                .exclude(**{column: ""})
                .order_by()
                .values_list(column)
                .annotate(n=Sum("count"))
                .filter(n__gt=0)
                .values_list(column, "n")
            )
            best: dict[str, tuple[int, str]] = {}
            for value, count in rows:
                folded = value.casefold()
                if folded not in best or count > best[folded][0]:
                    best[folded] = (count, value)
            present[key] = sorted((value for _, value in best.values()), key=str.casefold)
        return present

    def orders_per_stage(self, stage_ids: Sequence[int]) -> dict[int, int]:
        """Live orders per stage, from the maintained totals (stages without orders left out)."""
        rows = (
            self.filter(stage_id__in=list(stage_ids))
            .order_by()
            .values_list("stage_id")
            .annotate(n=Sum("count"))
            .values_list("stage_id", "n")
        )
        return {int(stage_id): int(n) for stage_id, n in rows if n}

    def stage_totals(
        self, pipeline_id: int, filters: dict[str, Any], stage_ids: list[int] | None = None
    ) -> dict[int | None, dict[str, Any]]:
        """What OrderQuerySet.stage_totals gives for the board's orders, read from the maintained totals."""
        qs = self.filter(pipeline_id=pipeline_id)
        for key, column in TOTALS_FILTERS.items():
            if value := filters.get(key):
                qs = qs.filter(**{f"{column}__iexact": value})
        if stage_ids is not None:
            qs = qs.filter(stage_id__in=stage_ids)
        rows = (
            qs.order_by()
            .values_list("stage_id", "currency")
            .annotate(n=Sum("count"), p=Sum("priced"), units=Sum("amount"))
        )
        totals: dict[int | None, dict[str, Any]] = {}
        for stage_id, currency, count, priced, units in rows:
            if not count:
                continue
            entry = totals.setdefault(stage_id or None, {"count": 0, "sums": {}})
            entry["count"] += count
            if priced:
                entry["sums"][currency or "—"] = _money(units)
        for entry in totals.values():
            entry["sums"] = dict(sorted(entry["sums"].items()))
        return totals


class BoardTotal(models.Model):
    """Live orders and their sum per pipeline, stage, currency, store and fulfillment status.

    Kept exact by the database itself (triggers on orders_order, migration 0004), so every write counts:
    the sync's bulk upserts, moves, archiving, deletes. Its table is created by that migration and left
    alone by Django (unmanaged), so emptying orders in a test flush empties it too.
    """

    pipeline_id = models.BigIntegerField()
    stage_id = models.BigIntegerField()  # 0: no stage
    currency = models.CharField(max_length=8)
    store = models.CharField(max_length=255)
    fulfillment_status = models.CharField(max_length=100)
    count = models.BigIntegerField()
    priced = models.BigIntegerField()  # how many have a total
    amount = models.BigIntegerField()  # the sum of totals in ten-thousandths, so it stays exact

    objects = BoardTotalQuerySet.as_manager()

    class Meta:
        managed = False
        db_table = "orders_boardtotal"

    def __str__(self) -> str:
        return f"{self.pipeline_id}/{self.stage_id}/{self.currency}: {self.count}"


class SavedView(models.Model):
    """A person's named board filter (the query string), shown as a tab on the board."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "pipeline", "name"], name="saved_view_unique_name"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
