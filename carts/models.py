"""Carts: HubSpot's cart objects (0-142) in the local cache."""

from __future__ import annotations

from django.db import models

from hubspot.mirror import MirroredObject


class CartQuerySet(models.QuerySet["Cart"]):
    def live(self) -> CartQuerySet:
        return self.filter(archived=False)


class Cart(MirroredObject):
    name = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=100, blank=True)  # hs_external_status: free text in HubSpot
    cart_url = models.CharField(max_length=2000, blank=True)  # hs_cart_url, the recovery link
    total = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)
    store = models.CharField(max_length=255, blank=True)
    contact_hubspot_id = models.CharField(max_length=32, blank=True)
    customer_name = models.CharField(max_length=255, blank=True)
    customer_email = models.CharField(max_length=255, blank=True)
    # The order this cart became, when HubSpot associates one (cart → order, 592).
    order_hubspot_id = models.CharField(max_length=32, blank=True)

    objects = CartQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["archived", "status", "-remote_updated_at"], name="cart_list"),
            models.Index(fields=["customer_email"], name="cart_customer_email"),
        ]

    def __str__(self) -> str:
        return self.name or f"Cart {self.hubspot_id}"
