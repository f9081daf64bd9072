"""Carts: drop the indexes no query reads (see hubspot_sync.schema.drop_unused_indexes)."""

from django.db import migrations

from hubspot_sync.schema import drop_unused_indexes


class Migration(migrations.Migration):
    dependencies = [("carts", "0001_initial")]

    operations = [drop_unused_indexes("carts", "Cart")]
