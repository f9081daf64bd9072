"""Orders: drop the indexes no query reads (see hubspot_sync.schema.drop_unused_indexes)."""

from django.db import migrations

from hubspot_sync.schema import drop_unused_indexes


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_search_index_by_page")]

    operations = [drop_unused_indexes("orders", "Order")]
