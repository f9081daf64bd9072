from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from pipelines.models import Pipeline, Stage


class StageInline(admin.TabularInline[Stage, Pipeline]):
    model = Stage
    fields = ("label", "display_order", "state", "required_properties", "archived")
    readonly_fields = ("label", "display_order", "state", "archived")
    extra = 0
    can_delete = False

    # Stages come from HubSpot: the admin edits their rules only.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin[Pipeline]):
    """Board settings and stage rules; labels and stages themselves come from HubSpot (and the editor)."""

    list_display = (
        "label",
        "object_type",
        "stale_after_days",
        "allow_skipping",
        "allow_moving_back",
        "archived",
    )
    fields = ("label", "stale_after_days", "card_properties", "allow_skipping", "allow_moving_back")
    readonly_fields = ("label",)
    inlines = [StageInline]

    # Pipelines come from HubSpot (a pipeline added here would exist nowhere else, nameless, and could become
    # the landing board): the admin edits their board settings only.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Pipeline | None = None) -> bool:
        return False
