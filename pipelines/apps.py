from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: these modules use models.
        from hubspot_sync import registry
        from pipelines import push, services, sync

        # The order pipelines are definitions the orders depend on: read with them, and when an order names a
        # stage the cache does not know.
        registry.register_definitions(
            registry.DefinitionSyncer(
                name=sync.DEFINITIONS, fetch=sync.fetch, store=sync.store, synced_at=sync.synced_at
            )
        )
        registry.register_id_labels(sync.id_labels)
        # Pipelines and stages go first (a new stage exists before an order moves into it), deletes last.
        registry.register_push(registry.PushOperation(phase="pipelines", send=push.push_pipelines))
        registry.register_push(
            registry.PushOperation(phase="deletes", send=push.push_deletes, must_wait=push.must_wait)
        )
        registry.register_change_owner(
            registry.ChangeOwner(
                object_types=("pipelines", "stages"),
                kinds=services.PIPELINE_KINDS,
                apply_locally=services.pipeline_change_locally,
                models={"pipelines.Pipeline": "pipelines", "pipelines.Stage": "stages"},
            )
        )
