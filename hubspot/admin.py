from django.contrib import admin

from hubspot.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    list_display = ("hostname", "beat_at")
    readonly_fields = ("hostname", "beat_at")
