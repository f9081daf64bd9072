"""Orders: HubSpot's order objects (0-123) in the local cache."""

from __future__ import annotations

from django.db import models

from hubspot.mirror import MirroredObject


class OrderQuerySet(models.QuerySet["Order"]):
    def live(self) -> OrderQuerySet:
        return self.filter(archived=False)


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
            models.Index(fields=["stage", "archived", "-remote_created_at"], name="order_column"),
            models.Index(fields=["pipeline", "archived"], name="order_pipeline"),
            models.Index(fields=["customer_email"], name="order_customer_email"),
            models.Index(fields=["external_id"], name="order_external_id"),
        ]

    def __str__(self) -> str:
        return self.name or f"Order {self.hubspot_id}"
