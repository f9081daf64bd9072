from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from pipelines.models import Pipeline, Stage


class StageInline(admin.TabularInline[Stage, Pipeline]):
    model = Stage
    fields = ("label", "display_order", "state", "required_properties", "archived", "hubspot_id")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin[Pipeline]):
    """Read only: pipelines, their stages, stage rules and board settings are edited in the pipeline editor
    (/pipelines/), which checks HubSpot's rules and sends the changes through the outbox."""

    list_display = (
        "label",
        "object_type",
        "stale_after_days",
        "allow_skipping",
        "allow_moving_back",
        "archived",
    )
    fields = (
        "label",
        "hubspot_id",
        "display_order",
        "archived",
        "stale_after_days",
        "card_properties",
        "allow_skipping",
        "allow_moving_back",
    )
    readonly_fields = fields
    inlines = [StageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Pipeline | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Pipeline | None = None) -> bool:
        return False
