"""Fewer indexes on orders: each one costs every order a sync writes. Text search has its own substring index
(0004), and the pipeline's foreign key is covered by the indexes that begin with it.

The foreign key's index is dropped by name rather than by AlterField, which on SQLite would rebuild the table
and lose the triggers of 0004 with it.
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's name for the foreign key's index (the same on SQLite and PostgreSQL).
PIPELINE_INDEX = "orders_order_pipeline_id_83423b31"


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_board_totals_and_search"),
        ("pipelines", "0002_pipeline_allow_moving_back_pipeline_allow_skipping_and_more"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="order", name="order_customer_email"),
        migrations.RemoveIndex(model_name="order", name="order_external_id"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="pipeline",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="orders",
                        to="pipelines.pipeline",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{PIPELINE_INDEX}"',
                    f'CREATE INDEX "{PIPELINE_INDEX}" ON "orders_order" ("pipeline_id")',
                ),
            ],
        ),
    ]
