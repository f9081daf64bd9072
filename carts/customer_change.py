"""When a cart last changed by its customer's (or its shop's) doing: ``Cart.customer_changed_at``, which says
how long a cart has been abandoned.

HubSpot's last-modified date moves at every write, ours included: writing the recovery properties back
(carts.writeback) would make an emailed cart look changed, and drop it from the abandoned carts for
CARTS_ABANDONED_AFTER_MIN. So sync keeps a digest of the cart's properties other than our own ``orderdeck_*``
ones and HubSpot's bookkeeping of the last write (``customer_digest``, a derive hook on every page it writes),
and the moment moves to HubSpot's last-modified date only when that digest changed since the moment was last
set (or the cart is new): the after-upsert hook, one set-based UPDATE per page, in the page's transaction.

A change of what the digest covers (a property added to the exclusions below) makes every cart's digest
differ once, so each cart's moment moves to its last modification at its next sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from django.db.models import F

from carts.models import Cart
from hubspot_sync import registry
from hubspot_sync.cache import chunks
from hubspot_sync.registry import MirrorType

# Our own properties (carts.writeback), written back by OrderDeck.
OWN_PREFIX = "orderdeck_"
# What HubSpot changes at any write, whoever makes it (reference: hubspot-api.md, the object's system
# properties). A value written by anyone else shows in the property itself.
BOOKKEEPING = frozenset({"hs_lastmodifieddate", "lastmodifieddate", "hs_updated_by_user_id"})


def customer_digest(properties: Mapping[str, Any]) -> int:
    """A digest of the properties that are the customer's (or the shop's) to change: not ours, not HubSpot's
    bookkeeping; an empty value counts as absent, so a property newly defined (empty on every cart) is no
    change."""
    kept = {
        name: value
        for name, value in properties.items()
        if value not in (None, "") and name not in BOOKKEEPING and not name.startswith(OWN_PREFIX)
    }
    digest = hashlib.blake2b(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # a 64-bit column's value


def carts_customer_digest(rows: list[dict[str, Any]]) -> None:
    """The derive hook: each row sync writes carries its properties' digest."""
    for row in rows:
        row["customer_digest"] = customer_digest(row.get("properties") or {})


def _moved(carts: Any) -> int:
    """Carts whose digest changed since their moment was set (or was never set: NULL is no match) get
    HubSpot's last-modified date as the moment."""
    return int(
        carts.exclude(customer_changed_digest=F("customer_digest")).update(
            customer_changed_at=F("remote_updated_at"), customer_changed_digest=F("customer_digest")
        )
    )


def carts_customer_changed_all(spec: MirrorType) -> None:
    """The end of a full run: every cart whose digest changed (one statement)."""
    _moved(Cart.objects.all())


@registry.whole_table(carts_customer_changed_all)
def carts_customer_changed(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """After carts are written (sync, webhook, refresh): the moment of those whose own properties changed."""
    for chunk in chunks(list(hubspot_ids), 500):
        _moved(Cart.objects.filter(hubspot_id__in=chunk))
