"""Migration helpers for the mirror tables, whose every index costs each synced record a write."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def drop_unused_indexes(app_label: str, model_name: str) -> migrations.SeparateDatabaseAndState:
    """Drop a mirror table's index on ``remote_updated_at`` (no query reads by it: syncs compare it per
    record, by primary key) and, on PostgreSQL, the ``varchar_pattern_ops`` copy of the ``hubspot_id``
    index Django adds to a unique text column for LIKE 'prefix%', which nothing here asks.

    The indexes go by name rather than by AlterField, which on SQLite would rebuild the table and lose any
    triggers on it (the orders' board totals and search index)."""

    def names(schema_editor: Any, model: type[models.Model]) -> list[str]:
        table = model._meta.db_table
        found: list[str] = []
        with schema_editor.connection.cursor() as cursor:
            constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
        for name, info in constraints.items():
            if not info["index"] or info["unique"] or info["primary_key"]:
                continue
            updated = info["columns"] == ["remote_updated_at"]
            like = info["columns"] == ["hubspot_id"] and name.endswith("_like")
            if updated or like:
                found.append(name)
        return found

    def forwards(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        for name in names(schema_editor, model):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")

    def backwards(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field("remote_updated_at")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))

    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(
                model_name=model_name.lower(),
                name="remote_updated_at",
                field=models.DateTimeField(blank=True, null=True),
            )
        ],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )
