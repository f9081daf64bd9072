from django.apps import AppConfig


class CartsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "carts"

    def ready(self) -> None:
        from carts import checks  # noqa: F401 (registers the system checks)
        from carts.customer_change import carts_customer_changed, carts_customer_digest
        from carts.search import index_by_page
        from carts.services import carts_refresh_links
        from carts.summary import carts_store_changed
        from hubspot_sync import registry
        from hubspot_sync.registry import Column, MirrorType

        registry.register(
            MirrorType(
                name="carts",
                type_id="0-142",
                model_label="carts.Cart",
                columns=(
                    Column("name", "hs_cart_name", max_length=500),
                    Column("external_id", "hs_external_cart_id", max_length=255),
                    Column("status", "hs_external_status", max_length=100),
                    Column("cart_url", "hs_cart_url", max_length=2000),
                    Column("total", "hs_total_price", "decimal"),
                    Column("currency", "hs_currency_code", max_length=8),
                    Column("store", "hs_source_store", max_length=255),
                ),
                associations=("contacts", "line_items", "orders"),
                # The moment of the customer's last change (not our own write-back's): carts.customer_change.
                derive=(carts_customer_digest,),
                # The dashboard's daily figures of a cart whose store changed: carts.summary.
                after_upsert=(carts_refresh_links, carts_customer_changed, carts_store_changed),
                copies_contact=True,
                # The list's substring index is filled once per page a sync writes: carts.search.
                around_write=(index_by_page,),
            ),
            "cart",
        )
        # Orders arriving by any path (sync, webhook, refresh) are credited to their recovery email.
        from carts import privacy  # noqa: F401 (registers the retention task)
        from carts.attribution import register_hooks

        register_hooks()
        # Contacts written (a changed address or consent): their carts' stored recovery state.
        from carts import recovery_state

        recovery_state.register_hooks()
