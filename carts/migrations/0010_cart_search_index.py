# ruff: noqa: S608 - every statement here is built from the constants below, never from input
"""A substring index for the carts list's search (the contact's email and name, the cart's name and ids).

SQLite: an FTS5 table of trigrams over the cart's own columns (external content, so the text is stored once),
kept by triggers, which stand aside while ``carts_cart_search_paused`` has a row: a sync may take a page of
carts out of the index, write the page, and put it back with one statement, inside its own write transaction
(as orders do, orders.search). PostgreSQL: a pg_trgm GIN index over the same columns joined and upper-cased,
the expression carts.search builds for its queries.
"""

from typing import Any

from django.db import migrations

# A migration keeps its own copy of these: it must not change when the code's do (carts.search).
SEARCH_COLUMNS = ("customer_email", "customer_name", "name", "external_id", "hubspot_id")
PG_SEARCH_TEXT = "UPPER((" + " || ' ' || ".join(SEARCH_COLUMNS) + ")::text)"
ACTIVE = "NOT EXISTS (SELECT 1 FROM carts_cart_search_paused)"


def _search(row: str, *, delete: bool) -> str:
    columns = ", ".join(SEARCH_COLUMNS)
    values = ", ".join(f"{row}.{c}" for c in SEARCH_COLUMNS)
    if delete:
        return (
            f"INSERT INTO carts_cart_search (carts_cart_search, rowid, {columns}) "
            f"VALUES ('delete', {row}.id, {values});"
        )
    return f"INSERT INTO carts_cart_search (rowid, {columns}) VALUES ({row}.id, {values});"


def _changed() -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in SEARCH_COLUMNS)


SQLITE = [
    f"""CREATE VIRTUAL TABLE carts_cart_search USING fts5({", ".join(SEARCH_COLUMNS)},
    content='carts_cart', content_rowid='id', tokenize='trigram')""",
    "CREATE TABLE carts_cart_search_paused (id integer NOT NULL PRIMARY KEY)",
    f"""CREATE TRIGGER carts_cart_search_insert AFTER INSERT ON carts_cart WHEN {ACTIVE} BEGIN
    {_search("NEW", delete=False)} END""",
    # A deleted cart leaves the index whatever the pause (a paused page is written, never deleted).
    f"""CREATE TRIGGER carts_cart_search_delete AFTER DELETE ON carts_cart BEGIN
    {_search("OLD", delete=True)} END""",
    f"""CREATE TRIGGER carts_cart_search_update AFTER UPDATE OF {", ".join(SEARCH_COLUMNS)} ON carts_cart
    WHEN ({_changed()}) AND {ACTIVE}
    BEGIN {_search("OLD", delete=True)} {_search("NEW", delete=False)} END""",
    "INSERT INTO carts_cart_search (carts_cart_search) VALUES ('rebuild')",
]

SQLITE_REVERSE = [
    "DROP TRIGGER carts_cart_search_update",
    "DROP TRIGGER carts_cart_search_delete",
    "DROP TRIGGER carts_cart_search_insert",
    "DROP TABLE carts_cart_search_paused",
    "DROP TABLE carts_cart_search",
]

POSTGRESQL = [
    # pg_trgm is a trusted extension: a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX cart_search ON carts_cart USING gin (({PG_SEARCH_TEXT}) gin_trgm_ops)",
]

POSTGRESQL_REVERSE = ["DROP INDEX cart_search"]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("carts", "0009_list_covering_indexes")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}),
        )
    ]
