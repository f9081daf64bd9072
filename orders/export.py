"""The CSV export of a board's orders: every filtered order, all pages, as lines of a streamed file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from orders.models import OrderQuerySet

# (field, header) of each column, in the file's order.
COLUMNS = [
    ("hubspot_id", "HubSpot ID"),
    ("name", "Order"),
    ("stage__label", "Stage"),
    ("customer_name", "Customer"),
    ("customer_email", "Email"),
    ("total", "Total"),
    ("currency", "Currency"),
    ("store", "Store"),
    ("fulfillment_status", "Fulfillment"),
    ("external_id", "External ID"),
    ("tracking_number", "Tracking number"),
    ("remote_created_at", "Created"),
    ("stage_entered_at", "In stage since"),
]


class _Echo:
    """A file that hands back what is written, so csv.writer makes lines to stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(orders: OrderQuerySet) -> Iterator[str]:
    """The header, then a line per order (newest first), read in chunks as the response streams."""
    writer = csv.writer(_Echo())
    rows = orders.order_by("-remote_created_at", "-pk").values_list(*(name for name, _ in COLUMNS))
    yield writer.writerow([header for _, header in COLUMNS])
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([csv_safe(v) for v in row])


def csv_safe(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas; HubSpot text is data, never a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
