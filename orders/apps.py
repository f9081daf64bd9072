from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from hubspot_sync import registry
        from hubspot_sync.registry import Column, MirrorType
        from orders.search import index_by_page
        from orders.sync_hooks import (
            orders_derive_stage,
            orders_name_unknown_stage,
            orders_refresh_customer,
            orders_resolve_stages,
        )

        registry.register(
            MirrorType(
                name="orders",
                type_id="0-123",
                model_label="orders.Order",
                columns=(
                    Column("name", "hs_order_name", max_length=500),
                    Column("total", "hs_total_price", "decimal"),
                    Column("currency", "hs_currency_code", max_length=8),
                    Column("store", "hs_source_store", max_length=255),
                    Column("fulfillment_status", "hs_fulfillment_status", max_length=100),
                    Column("external_id", "hs_external_order_id", max_length=255),
                    Column("tracking_number", "hs_shipping_tracking_number", max_length=255),
                ),
                associations=("contacts", "line_items", "carts"),
                derive=(orders_derive_stage,),
                after_upsert=(orders_refresh_customer,),
                around_write=(index_by_page,),
                # Always read, to derive the stage; the pipelines are read with the orders, and again when
                # an order names a stage the cache does not know; orders attach to new stages then.
                required_properties=("hs_pipeline", "hs_pipeline_stage"),
                definitions=("pipelines",),
                after_definitions=(orders_resolve_stages,),
                names_unknown=orders_name_unknown_stage,
                # Incremental runs read the orders ↔ carts edge from the cart (which a conversion modifies).
                incremental_skips=("carts",),
                copies_contact=True,
            ),
            "order",
        )
        from hubspot_sync.forms import register_correction
        from orders.forms import stage_correction

        # A failed move is corrected by choosing a stage of the order's pipeline, never by typing ids.
        register_correction("orders", stage_correction)
        from orders.models import BoardTotal
        from orders.services import orders_move_out
        from pipelines import hooks

        # A stage deleted (or a pipeline archived) in the editor moves its orders out through their outbox.
        hooks.register_orders_mover(orders_move_out)
        # The editor's order counts come from the totals the database keeps per stage (a few rows a stage).
        hooks.register_orders_counter(BoardTotal.objects.orders_per_stage)
