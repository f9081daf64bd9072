# ruff: noqa: S608 - every statement here is built from the constants below, never from input
"""Board totals kept by the database, and a substring index for the board's text search.

Both are triggers and indexes of the database itself, so they see every write to orders_order: the sync's
raw upserts and whole-table updates as well as the ORM's saves, moves, archiving and deletes.
"""

from typing import Any

from django.db import migrations, models

# The order's contribution to its BoardTotal row: counted while it is live and in a pipeline; its total is
# summed in ten-thousandths (the column has four decimal places) so repeated additions stay exact.
KEY = ("pipeline_id", "stage_id", "currency", "store", "fulfillment_status")
SEARCH_COLUMNS = ("name", "external_id", "customer_name", "customer_email", "tracking_number", "hubspot_id")
# The expression PostgreSQL's trigram index covers; orders.models builds the same one for its queries.
PG_SEARCH_TEXT = "UPPER((" + " || ' ' || ".join(SEARCH_COLUMNS) + ")::text)"

SQLITE_TABLE = """
CREATE TABLE "orders_boardtotal" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "pipeline_id" bigint NOT NULL, "stage_id" bigint NOT NULL, "currency" varchar(8) NOT NULL,
    "store" varchar(255) NOT NULL, "fulfillment_status" varchar(100) NOT NULL,
    "count" bigint NOT NULL, "priced" bigint NOT NULL, "amount" bigint NOT NULL,
    UNIQUE ("pipeline_id", "stage_id", "currency", "store", "fulfillment_status")
)"""


def _sqlite_add(row: str, sign: str) -> str:
    """Add (sign "") or take away (sign "-") one order's contribution (row: NEW or OLD)."""
    return f"""
    INSERT INTO "orders_boardtotal" ("pipeline_id", "stage_id", "currency", "store", "fulfillment_status",
                                     "count", "priced", "amount")
    SELECT {row}.pipeline_id, COALESCE({row}.stage_id, 0), COALESCE({row}.currency, ''),
           COALESCE({row}.store, ''), COALESCE({row}.fulfillment_status, ''),
           {sign}1, {sign}({row}.total IS NOT NULL), {sign}COALESCE(CAST(ROUND({row}.total * 10000) AS INTEGER), 0)
    WHERE {row}.pipeline_id IS NOT NULL AND NOT {row}.archived
    ON CONFLICT ("pipeline_id", "stage_id", "currency", "store", "fulfillment_status") DO UPDATE SET
        "count" = "count" + excluded."count", "priced" = "priced" + excluded."priced",
        "amount" = "amount" + excluded."amount";"""


def _sqlite_search(row: str, *, delete: bool) -> str:
    columns = ", ".join(SEARCH_COLUMNS)
    values = ", ".join(f"{row}.{c}" for c in SEARCH_COLUMNS)
    if delete:
        return (
            f"INSERT INTO orders_order_search (orders_order_search, rowid, {columns}) "
            f"VALUES ('delete', {row}.id, {values});"
        )
    return f"INSERT INTO orders_order_search (rowid, {columns}) VALUES ({row}.id, {values});"


def _sqlite_changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


TOTALS_COLUMNS = ("pipeline_id", "stage_id", "currency", "store", "fulfillment_status", "total", "archived")

SQLITE = [
    SQLITE_TABLE,
    f"""CREATE TRIGGER orders_boardtotal_insert AFTER INSERT ON orders_order BEGIN {_sqlite_add("NEW", "")} END""",
    f"""CREATE TRIGGER orders_boardtotal_delete AFTER DELETE ON orders_order BEGIN {_sqlite_add("OLD", "-")} END""",
    f"""CREATE TRIGGER orders_boardtotal_update AFTER UPDATE OF {", ".join(TOTALS_COLUMNS)} ON orders_order
    WHEN {_sqlite_changed(TOTALS_COLUMNS)}
    BEGIN {_sqlite_add("OLD", "-")} {_sqlite_add("NEW", "")} END""",
    f"""INSERT INTO "orders_boardtotal" ({", ".join(KEY)}, "count", "priced", "amount")
    SELECT pipeline_id, COALESCE(stage_id, 0), COALESCE(currency, ''), COALESCE(store, ''),
           COALESCE(fulfillment_status, ''), COUNT(*), COUNT(total),
           COALESCE(SUM(CAST(ROUND(total * 10000) AS INTEGER)), 0)
    FROM orders_order WHERE pipeline_id IS NOT NULL AND NOT archived GROUP BY 1, 2, 3, 4, 5""",
    # Substring search: an FTS5 index of trigrams over the order's own columns (external content, so the
    # text is stored once), kept by triggers.
    f"""CREATE VIRTUAL TABLE orders_order_search USING fts5({", ".join(SEARCH_COLUMNS)},
    content='orders_order', content_rowid='id', tokenize='trigram')""",
    f"""CREATE TRIGGER orders_order_search_insert AFTER INSERT ON orders_order BEGIN
    {_sqlite_search("NEW", delete=False)} END""",
    f"""CREATE TRIGGER orders_order_search_delete AFTER DELETE ON orders_order BEGIN
    {_sqlite_search("OLD", delete=True)} END""",
    f"""CREATE TRIGGER orders_order_search_update AFTER UPDATE OF {", ".join(SEARCH_COLUMNS)} ON orders_order
    WHEN {_sqlite_changed(SEARCH_COLUMNS)}
    BEGIN {_sqlite_search("OLD", delete=True)} {_sqlite_search("NEW", delete=False)} END""",
    "INSERT INTO orders_order_search (orders_order_search) VALUES ('rebuild')",
]

SQLITE_REVERSE = [
    "DROP TRIGGER orders_order_search_update",
    "DROP TRIGGER orders_order_search_delete",
    "DROP TRIGGER orders_order_search_insert",
    "DROP TABLE orders_order_search",
    "DROP TRIGGER orders_boardtotal_update",
    "DROP TRIGGER orders_boardtotal_delete",
    "DROP TRIGGER orders_boardtotal_insert",
    'DROP TABLE "orders_boardtotal"',
]


def _pg_rows(table: str, sign: str) -> str:
    return f"""SELECT pipeline_id, COALESCE(stage_id, 0), COALESCE(currency, ''), COALESCE(store, ''),
               COALESCE(fulfillment_status, ''), {sign}1, {sign}(total IS NOT NULL)::int,
               {sign}COALESCE(ROUND(total * 10000), 0)::bigint
        FROM {table} WHERE pipeline_id IS NOT NULL AND NOT archived"""


def _pg_apply(rows: str) -> str:
    """One statement's changes, summed per key and applied in key order (so concurrent writers lock the
    rows they share in the same order)."""
    return f"""
    INSERT INTO orders_boardtotal AS t ({", ".join(KEY)}, count, priced, amount)
    SELECT {", ".join(KEY)}, SUM(count), SUM(priced), SUM(amount)
    FROM ({rows}) AS d ({", ".join(KEY)}, count, priced, amount)
    GROUP BY 1, 2, 3, 4, 5
    HAVING SUM(count) <> 0 OR SUM(priced) <> 0 OR SUM(amount) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE SET
        count = t.count + EXCLUDED.count, priced = t.priced + EXCLUDED.priced, amount = t.amount + EXCLUDED.amount;"""


POSTGRESQL = [
    """CREATE TABLE orders_boardtotal (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        pipeline_id bigint NOT NULL, stage_id bigint NOT NULL, currency varchar(8) NOT NULL,
        store varchar(255) NOT NULL, fulfillment_status varchar(100) NOT NULL,
        count bigint NOT NULL, priced bigint NOT NULL, amount bigint NOT NULL,
        UNIQUE (pipeline_id, stage_id, currency, store, fulfillment_status)
    )""",
    # Statement-level triggers with transition tables: a bulk upsert of a page of orders costs one grouped
    # write here, not one per order.
    f"""CREATE FUNCTION orders_boardtotal_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN {_pg_apply(_pg_rows("new_rows", ""))}
        ELSIF TG_OP = 'DELETE' THEN {_pg_apply(_pg_rows("old_rows", "-"))}
        ELSE {_pg_apply(_pg_rows("new_rows", "") + " UNION ALL " + _pg_rows("old_rows", "-"))}
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION orders_boardtotal_clear() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM orders_boardtotal;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER orders_boardtotal_insert AFTER INSERT ON orders_order
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_boardtotal_apply()""",
    """CREATE TRIGGER orders_boardtotal_update AFTER UPDATE ON orders_order
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_boardtotal_apply()""",
    """CREATE TRIGGER orders_boardtotal_delete AFTER DELETE ON orders_order
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_boardtotal_apply()""",
    # TRUNCATE (a test flush) fires no delete triggers: empty the totals with it.
    """CREATE TRIGGER orders_boardtotal_truncate AFTER TRUNCATE ON orders_order
    FOR EACH STATEMENT EXECUTE FUNCTION orders_boardtotal_clear()""",
    f"""INSERT INTO orders_boardtotal ({", ".join(KEY)}, count, priced, amount)
    SELECT pipeline_id, COALESCE(stage_id, 0), COALESCE(currency, ''), COALESCE(store, ''),
           COALESCE(fulfillment_status, ''), COUNT(*), COUNT(total), COALESCE(SUM(ROUND(total * 10000)), 0)
    FROM orders_order WHERE pipeline_id IS NOT NULL AND NOT archived GROUP BY 1, 2, 3, 4, 5""",
    # pg_trgm is a trusted extension: a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX order_search ON orders_order USING gin (({PG_SEARCH_TEXT}) gin_trgm_ops)",
]

POSTGRESQL_REVERSE = [
    "DROP INDEX order_search",
    "DROP TRIGGER orders_boardtotal_truncate ON orders_order",
    "DROP TRIGGER orders_boardtotal_delete ON orders_order",
    "DROP TRIGGER orders_boardtotal_update ON orders_order",
    "DROP TRIGGER orders_boardtotal_insert ON orders_order",
    "DROP FUNCTION orders_boardtotal_clear()",
    "DROP FUNCTION orders_boardtotal_apply()",
    "DROP TABLE orders_boardtotal",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_column_index_with_id"),
        ("pipelines", "0002_pipeline_allow_moving_back_pipeline_allow_skipping_and_more"),
    ]

    operations = [
        migrations.CreateModel(
            name="BoardTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("pipeline_id", models.BigIntegerField()),
                ("stage_id", models.BigIntegerField()),
                ("currency", models.CharField(max_length=8)),
                ("store", models.CharField(max_length=255)),
                ("fulfillment_status", models.CharField(max_length=100)),
                ("count", models.BigIntegerField()),
                ("priced", models.BigIntegerField()),
                ("amount", models.BigIntegerField()),
            ],
            options={
                "db_table": "orders_boardtotal",
                "managed": False,
            },
        ),
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}),
        ),
        migrations.RemoveIndex(
            model_name="order",
            name="order_board_sums",
        ),
        migrations.RemoveIndex(
            model_name="order",
            name="order_column",
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("archived", False)),
                fields=["stage", "-remote_created_at", "-id"],
                name="order_column",
            ),
        ),
    ]
