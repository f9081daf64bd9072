"""Order pipelines and their stages, mirrored from HubSpot and edited here."""

from __future__ import annotations

from django.db import models


def default_card_properties() -> list[str]:
    return ["customer", "hs_total_price", "hs_source_store", "hs_fulfillment_status"]


class PipelineQuerySet(models.QuerySet["Pipeline"]):
    def for_orders(self) -> PipelineQuerySet:
        return self.filter(object_type="orders", archived=False).order_by("display_order", "label")


class Pipeline(models.Model):
    """A HubSpot pipeline (orders only: carts have none)."""

    hubspot_id = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32, default="orders")
    label = models.CharField(max_length=255)
    display_order = models.IntegerField(default=0)
    archived = models.BooleanField(default=False)
    remote_created_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # Cards older than this many days in one stage are marked stale on the board.
    stale_after_days = models.PositiveIntegerField(default=7)
    # Properties shown on this pipeline's cards, besides the name (HubSpot property names, in order).
    card_properties = models.JSONField(default=default_card_properties, blank=True)
    # Stage rules, as HubSpot's pipeline rules: may an order skip open stages, or move back?
    allow_skipping = models.BooleanField(default=True, help_text="Orders may jump over stages when moved.")
    allow_moving_back = models.BooleanField(default=True, help_text="Orders may move to an earlier stage.")

    objects = PipelineQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["object_type", "hubspot_id"], name="pipeline_unique_per_type"),
        ]
        ordering = ["display_order", "label"]

    def __str__(self) -> str:
        return self.label


class StageState(models.TextChoices):
    OPEN = "OPEN", "Open"
    CLOSED = "CLOSED", "Closed"


class Stage(models.Model):
    """A stage of a pipeline; its ``state`` is HubSpot's metadata.state for orders."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    hubspot_id = models.CharField(max_length=64)
    label = models.CharField(max_length=255)
    display_order = models.IntegerField(default=0)
    state = models.CharField(max_length=8, choices=StageState.choices, default=StageState.OPEN)
    metadata = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)
    # Properties an order must have a value for to enter this stage; the move asks for them.
    required_properties = models.JSONField(default=list, blank=True)
    remote_created_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "hubspot_id"], name="stage_unique_per_pipeline"),
        ]
        ordering = ["pipeline", "display_order", "label"]

    def __str__(self) -> str:
        return f"{self.pipeline.label} › {self.label}"

    @property
    def is_closed(self) -> bool:
        return self.state == StageState.CLOSED
