"""Writes of the carts app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from carts.models import Cart
from hubspot import registry
from hubspot.cache import chunks
from hubspot.models import Association
from hubspot.registry import MirrorType


def _link_orders(hubspot_ids: Sequence[str]) -> None:
    """Copy the order each cart became (its first order edge, by id) onto the named carts."""
    order = Association.objects.filter(from_type="carts", from_id=OuterRef("hubspot_id"), to_type="orders")
    Cart.objects.filter(hubspot_id__in=hubspot_ids).update(
        order_hubspot_id=Coalesce(Subquery(order.order_by("to_id").values("to_id")[:1]), Value(""))
    )


def carts_refresh_links_all(spec: MirrorType) -> None:
    """Every cart's copies of its contact and order, set-based (the end of a full run)."""
    from hubspot.services import copy_first_edge, denormalize_contact

    denormalize_contact(Cart, "carts", None)
    copy_first_edge(Cart, "carts", "orders", "order_hubspot_id")


def carts_link_columns(
    spec: MirrorType, rows: list[dict[str, Any]], associations: Mapping[str, Mapping[str, Sequence[str]]]
) -> None:
    """A full run's rows get their contact's copy and the order they became (first order edge, by id) from
    the edges the page brought; the whole-table pass at the run's end corrects what changed since."""
    from hubspot.services import contact_columns

    contact_columns(spec, rows, associations)
    for row in rows:
        orders = associations.get(row["hubspot_id"], {}).get("orders")
        row["order_hubspot_id"] = min(orders) if orders else ""


@registry.whole_table(carts_refresh_links_all, rows=carts_link_columns)
def carts_refresh_links(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """Copy each cart's contact (name, email) and the order it became onto the cart."""
    from hubspot.services import denormalize_contact

    for chunk in chunks(list(hubspot_ids), 500):
        denormalize_contact(Cart, "carts", chunk)
        _link_orders(chunk)
