from django.contrib import admin

from pipelines.models import Pipeline, Stage


class StageInline(admin.TabularInline[Stage, Pipeline]):
    model = Stage
    fields = ("label", "display_order", "state", "required_properties", "archived")
    readonly_fields = ("label", "display_order", "state", "archived")
    extra = 0
    can_delete = False


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
