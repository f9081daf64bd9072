from django.apps import AppConfig


class HubSpotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hubspot_sync"
    # The app label stays "hubspot": the tables, migrations, admin URLs and URL namespace keep their names.
    label = "hubspot"
    verbose_name = "HubSpot"

    def ready(self) -> None:
        from hubspot_sync import registry, tasks  # noqa: F401 (tasks name themselves for hubspot_sync.jobs)
        from hubspot_sync.pending import overlay_factory, reapply_pending
        from hubspot_sync.registry import Column, MirrorType
        from hubspot_sync.services import contacts_refresh_references

        # Unsettled edits stay on top of what a sync brings, for every mirrored type (those the other apps
        # register after this one too).
        registry.add_hook_to_every_type(derive=overlay_factory, after_upsert=reapply_pending)

        registry.register(
            MirrorType(
                name="contacts",
                type_id="0-1",
                model_label="hubspot.Contact",
                columns=(
                    Column("email", "email", max_length=255),
                    Column("first_name", "firstname", max_length=255),
                    Column("last_name", "lastname", max_length=255),
                ),
                # Contacts name their dates differently from the commerce objects.
                created_property="createdate",
                modified_property="lastmodifieddate",
                after_upsert=(contacts_refresh_references,),
            ),
            "contact",
        )
        registry.register(
            MirrorType(
                name="line_items",
                type_id="0-8",
                model_label="hubspot.LineItem",
                columns=(
                    Column("name", "name", max_length=500),
                    Column("sku", "hs_sku", max_length=255),
                    Column("quantity", "quantity", "decimal"),
                    Column("price", "price", "decimal"),
                    Column("amount", "amount", "decimal"),
                    Column("currency", "currency", max_length=8),
                ),
                fetched_by_reference=True,
            ),
            "line_item",
        )
