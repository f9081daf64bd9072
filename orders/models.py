"""Orders: HubSpot's order objects (0-123) in the local cache."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from hubspot.mirror import MirroredObject

if TYPE_CHECKING:
    from pipelines.models import Pipeline


@functools.cache
def _orders_url_prefix() -> str:
    """Where order URLs start ("/boards/orders/"): reversed once, since a board links every card twice."""
    return reverse("orders:drawer", args=["0"]).removesuffix("0/")


class OrderQuerySet(models.QuerySet["Order"]):
    def live(self) -> OrderQuerySet:
        return self.filter(archived=False)

    def on_board(self, pipeline: Pipeline, filters: dict[str, Any]) -> OrderQuerySet:
        """The pipeline's live orders under the board's filters (see orders.forms.BoardFilterForm)."""
        qs = self.filter(pipeline=pipeline, archived=False)
        if text := filters.get("q"):
            qs = qs.filter(
                Q(name__icontains=text)
                | Q(external_id__iexact=text)
                | Q(customer_name__icontains=text)
                | Q(customer_email__icontains=text)
                | Q(tracking_number__icontains=text)
                | Q(hubspot_id=text)
            )
        for field, key in (("store", "store"), ("fulfillment_status", "status"), ("currency", "currency")):
            if value := filters.get(key):
                qs = qs.filter(**{field: value})
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
            from hubspot.outbox import hubspot_ids_with_sync_state

            qs = qs.filter(hubspot_id__in=hubspot_ids_with_sync_state("orders", sync))
        return qs

    def column(self, stage_id: int, *, after: tuple[datetime, int] | None = None) -> OrderQuerySet:
        """One column's cards, newest first, from an (created, id) keyset cursor."""
        qs = self.filter(stage_id=stage_id)
        if after is not None:
            created, pk = after
            qs = qs.filter(Q(remote_created_at__lt=created) | Q(remote_created_at=created, pk__lt=pk))
        return qs.select_related("stage").order_by("-remote_created_at", "-pk")

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
    pipeline = models.ForeignKey(
        "pipelines.Pipeline", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
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
            models.Index(fields=["stage", "archived", "-remote_created_at", "-id"], name="order_column"),
            models.Index(fields=["pipeline", "archived"], name="order_pipeline"),
            models.Index(fields=["customer_email"], name="order_customer_email"),
            models.Index(fields=["external_id"], name="order_external_id"),
            # Per-stage counts and sums per currency read only this index.
            models.Index(
                fields=["pipeline", "archived", "stage", "currency", "total"], name="order_board_sums"
            ),
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
