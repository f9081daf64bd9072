"""The carts list's substring search, through the trigram index of migration 0010, and the sync's way of
keeping that index a page at a time (SQLite).

A search by part of an address, a name or an id narrows the carts to those the index says may contain the
text (a superset: the index folds case at least as widely as the exact match, and joins the columns), and the
exact match (``CartQuerySet.search``) then decides; so the index changes how fast a search is, never what it
finds. SQLite keeps an FTS5 table of trigrams by triggers; PostgreSQL a pg_trgm GIN index over the columns
joined and upper-cased, the expression built here.

``index_by_page`` is an around-write hook of the carts' type (hubspot_sync.registry), as orders.search is of
the orders': within the sync's write transaction it takes the page's carts out of the index, lets the triggers
stand aside while the page is written, and puts the page back with one statement (FTS5 flushes at the end of
every statement a trigger runs, which would cost a full sync most of its time on carts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.models import F, Func, Q, TextField
from django.db.models.expressions import RawSQL

from carts.models import CartQuerySet

# The columns the index covers, in its order (migration 0010 keeps its own copy).
SEARCH_COLUMNS = ("customer_email", "customer_name", "name", "external_id", "hubspot_id")
# A trigram index can't narrow a search for fewer characters than this.
MIN_CHARS = 3


class _SearchText(Func):
    """The searched columns joined: PostgreSQL's trigram index covers exactly this expression, upper-cased
    (Django's icontains upper-cases it in the query)."""

    arg_joiner = " || ' ' || "
    template = "(%(expressions)s)"
    output_field = TextField()


def normalized(q: str) -> str:
    """The text a search looks for (as ``CartQuerySet.search`` reads it)."""
    return q.strip()[:200].replace("\x00", "")


def candidates(carts: CartQuerySet, q: str) -> CartQuerySet:
    """The carts the index says may contain ``q``; all of them where the index can't tell (too short a text,
    or a database without the index)."""
    text = normalized(q)
    if len(text) < MIN_CHARS:
        return carts
    if connection.vendor == "sqlite":
        phrase = '"' + text.replace('"', '""') + '"'
        matches = "SELECT rowid FROM carts_cart_search WHERE carts_cart_search MATCH %s"
        return carts.filter(pk__in=RawSQL(matches, [phrase]))  # noqa: S611 - the text is a parameter
    if connection.vendor == "postgresql":
        joined = _SearchText(*(F(column) for column in SEARCH_COLUMNS))
        return carts.alias(search_text=joined).filter(Q(search_text__icontains=text))
    return carts


_COLUMNS = ", ".join(SEARCH_COLUMNS)
# The page's carts with their searched columns, the ids as one JSON parameter.
_PAGE = f"SELECT id, {_COLUMNS} FROM carts_cart WHERE hubspot_id IN (SELECT value FROM json_each(%s))"  # noqa: S608
# Below this many carts the triggers cost no more than the two extra statements.
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
            f"INSERT INTO carts_cart_search (carts_cart_search, rowid, {_COLUMNS}) "  # noqa: S608
            f"SELECT 'delete', * FROM ({_PAGE})",
            [ids],
        )
        cursor.execute("INSERT INTO carts_cart_search_paused (id) VALUES (1)")
        try:
            yield
        finally:
            cursor.execute("DELETE FROM carts_cart_search_paused")
        cursor.execute(
            f"INSERT INTO carts_cart_search (rowid, {_COLUMNS}) SELECT * FROM ({_PAGE})",  # noqa: S608
            [ids],
        )
