"""The orders' text-search index, written a page at a time while a sync writes orders (SQLite).

SQLite keeps the index (an FTS5 table of trigrams, migration 0004) with row triggers, which cost a full sync
most of its time on orders: FTS5 flushes at the end of each statement a trigger runs. ``index_by_page`` is an
around-write hook of the orders' type (hubspot_sync.registry): within the sync's write transaction it takes
the page's orders out of the index, lets the triggers stand aside while the page is written (migration 0006),
and puts the page back with one statement. PostgreSQL's trigram index is an ordinary index: nothing to do
there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection

from orders.models import SEARCH_COLUMNS

_COLUMNS = ", ".join(SEARCH_COLUMNS)
# The page's orders with their searched columns, the ids as one JSON parameter.
_PAGE = f"SELECT id, {_COLUMNS} FROM orders_order WHERE hubspot_id IN (SELECT value FROM json_each(%s))"  # noqa: S608
# Below this many orders the triggers cost no more than the two extra statements.
SMALL_PAGE = 8


@contextmanager
def index_by_page(spec: Any, hubspot_ids: Sequence[str]) -> Iterator[None]:
    if connection.vendor != "sqlite" or len(hubspot_ids) < SMALL_PAGE:
        yield
        return
    ids = json.dumps(list(hubspot_ids))
    with connection.cursor() as cursor:
        # External content: an entry is taken out with the values it was indexed with, the row's current ones.
        cursor.execute(
            f"INSERT INTO orders_order_search (orders_order_search, rowid, {_COLUMNS}) "  # noqa: S608
            f"SELECT 'delete', * FROM ({_PAGE})",
            [ids],
        )
        cursor.execute("INSERT INTO orders_order_search_paused (id) VALUES (1)")
        try:
            yield
        finally:
            cursor.execute("DELETE FROM orders_order_search_paused")
        cursor.execute(
            f"INSERT INTO orders_order_search (rowid, {_COLUMNS}) SELECT * FROM ({_PAGE})",  # noqa: S608
            [ids],
        )
