"""Facts about HubSpot shared by the app and the sandbox; no Django imports here."""

from __future__ import annotations

# Object type ids (reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis).
OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "line_items": "0-8",
    "orders": "0-123",
    "carts": "0-142",
}

# Default HUBSPOT_DEFINED association type ids, both directions.
# Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
DEFAULT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("orders", "contacts"): 507,
    ("contacts", "orders"): 508,
    ("orders", "line_items"): 513,
    ("line_items", "orders"): 514,
    ("orders", "carts"): 593,
    ("carts", "orders"): 592,
    ("carts", "contacts"): 586,
    ("contacts", "carts"): 587,
    ("carts", "line_items"): 590,
    ("line_items", "carts"): 591,
}
