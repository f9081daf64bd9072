"""Contacts and line items: drop the indexes no query reads (see hubspot_sync.schema.drop_unused_indexes)."""

from django.db import migrations

from hubspot_sync.schema import drop_unused_indexes


class Migration(migrations.Migration):
    dependencies = [("hubspot", "0006_change_type_updated")]

    operations = [drop_unused_indexes("hubspot", "Contact"), drop_unused_indexes("hubspot", "LineItem")]
