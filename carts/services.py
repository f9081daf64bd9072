"""Writes of the carts app."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from carts.models import Cart
from hubspot import registry
from hubspot.cache import chunks
from hubspot.models import Association
from hubspot.registry import MirrorType


def _link_orders(hubspot_ids: Sequence[str] | None) -> None:
    """Copy the order each cart became (its first order edge, by id) onto the named carts, or (``None``)
    every cart; only carts whose copy differs are written."""
    order = Association.objects.filter(from_type="carts", from_id=OuterRef("hubspot_id"), to_type="orders")
    link = Coalesce(Subquery(order.order_by("to_id").values("to_id")[:1]), Value(""))
    carts = Cart.objects.all() if hubspot_ids is None else Cart.objects.filter(hubspot_id__in=hubspot_ids)
    carts.exclude(order_hubspot_id=link).update(order_hubspot_id=link)


def carts_refresh_links_all(spec: MirrorType) -> None:
    """Every cart's copies of its contact and order, set-based (the end of a full run)."""
    from hubspot.services import denormalize_contact

    denormalize_contact(Cart, "carts", None)
    _link_orders(None)


@registry.whole_table(carts_refresh_links_all)
def carts_refresh_links(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """Copy each cart's contact (name, email) and the order it became onto the cart."""
    from hubspot.services import denormalize_contact

    for chunk in chunks(list(hubspot_ids), 500):
        denormalize_contact(Cart, "carts", chunk)
        _link_orders(chunk)
