"""Writes of the carts app."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from carts.models import Cart
from hubspot.cache import chunks
from hubspot.models import Association
from hubspot.registry import MirrorType


def carts_refresh_links(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """Copy each cart's contact (name, email) and the order it became onto the cart."""
    from hubspot.services import denormalize_contact

    for chunk in chunks(list(hubspot_ids), 500):
        denormalize_contact(Cart, "carts", chunk)
        order = Association.objects.filter(
            from_type="carts", from_id=OuterRef("hubspot_id"), to_type="orders"
        )
        Cart.objects.filter(hubspot_id__in=chunk).update(
            order_hubspot_id=Coalesce(Subquery(order.order_by("to_id").values("to_id")[:1]), Value(""))
        )
