"""The carts list's substring index after a real sync: the cart type fills it a page at a time (the sync's
around-write hook), and every synced cart is found by a piece of its name, id or customer's address."""

from __future__ import annotations

from typing import Any

from django.db import connection

from carts import search
from carts.models import Cart
from hubspot_sync import registry


def found(q: str, *, narrow: bool) -> set[str]:
    """Live carts matching ``q``: narrowed by the index first (as the list does), or by the plain search."""
    carts = Cart.objects.filter(archived=False)
    if narrow:
        carts = search.candidates(carts, q)
    return set(carts.search(q).values_list("hubspot_id", flat=True))


def test_a_full_sync_indexes_every_cart_a_page_at_a_time(portal: Any) -> None:
    assert search.index_by_page in registry.get("carts").around_write
    carts = list(Cart.objects.filter(archived=False))
    assert len(carts) >= search.SMALL_PAGE  # the seeded page is large enough to go through the paused path
    for cart in carts:
        for q in (cart.hubspot_id, cart.name[1:6], cart.customer_email[2:9], cart.customer_name[1:5]):
            if len(search.normalized(q)) >= search.MIN_CHARS:
                assert cart.hubspot_id in found(q, narrow=True), q
                assert found(q, narrow=True) == found(q, narrow=False), q
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO carts_cart_search (carts_cart_search) VALUES ('integrity-check')")
            cursor.execute("SELECT COUNT(*) FROM carts_cart_search_paused")
            assert cursor.fetchone()[0] == 0
    # A second full sync (every cart written again) leaves it the same.
    portal.sync()
    for cart in carts:
        assert cart.hubspot_id in found(cart.hubspot_id, narrow=True)
        assert found(cart.name[1:6], narrow=True) == found(cart.name[1:6], narrow=False)
