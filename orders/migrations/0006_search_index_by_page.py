# ruff: noqa: S608 - every statement here is built from the constants below, never from input
"""Let a sync index a page of orders for text search at once (SQLite).

FTS5 flushes what it has gathered at the end of every statement a trigger runs, so an index kept by row
triggers writes a tiny segment per order and merges them again later: most of the cost of writing an order
during a full sync. The triggers of 0004 now stand aside while ``orders_order_search_paused`` has a row; the
sync inserts that row inside its own write transaction, writes a page, indexes the page with one statement
and deletes the row again before it commits (orders.search), so no other connection ever sees it.
"""

from typing import Any

from django.db import migrations

SEARCH_COLUMNS = ("name", "external_id", "customer_name", "customer_email", "tracking_number", "hubspot_id")
ACTIVE = "NOT EXISTS (SELECT 1 FROM orders_order_search_paused)"


# As in 0004 (a migration keeps its own copy: it must not change when another one does).
def _search(row: str, *, delete: bool) -> str:
    columns = ", ".join(SEARCH_COLUMNS)
    values = ", ".join(f"{row}.{c}" for c in SEARCH_COLUMNS)
    if delete:
        return (
            f"INSERT INTO orders_order_search (orders_order_search, rowid, {columns}) "
            f"VALUES ('delete', {row}.id, {values});"
        )
    return f"INSERT INTO orders_order_search (rowid, {columns}) VALUES ({row}.id, {values});"


def _changed() -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in SEARCH_COLUMNS)


def _triggers(when_active: bool) -> list[str]:
    insert_when = f"WHEN {ACTIVE} " if when_active else ""
    update_when = f"({_changed()}) AND {ACTIVE}" if when_active else _changed()
    return [
        "DROP TRIGGER orders_order_search_insert",
        "DROP TRIGGER orders_order_search_update",
        f"""CREATE TRIGGER orders_order_search_insert AFTER INSERT ON orders_order {insert_when}BEGIN
        {_search("NEW", delete=False)} END""",
        f"""CREATE TRIGGER orders_order_search_update AFTER UPDATE OF {", ".join(SEARCH_COLUMNS)} ON orders_order
        WHEN {update_when}
        BEGIN {_search("OLD", delete=True)} {_search("NEW", delete=False)} END""",
    ]


SQLITE = [
    "CREATE TABLE orders_order_search_paused (id integer NOT NULL PRIMARY KEY)",
    *_triggers(when_active=True),
]
SQLITE_REVERSE = [*_triggers(when_active=False), "DROP TABLE orders_order_search_paused"]


def _run(statements: list[str]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_fewer_order_indexes")]

    operations = [migrations.RunPython(_run(SQLITE), _run(SQLITE_REVERSE))]
