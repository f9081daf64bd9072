from django.contrib import admin
from django.http import HttpRequest

from hubspot_sync.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    list_display = ("hostname", "beat_at")
    readonly_fields = ("hostname", "beat_at")

    # Workers write their heartbeats; one added here would be a made-up sign of life.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
