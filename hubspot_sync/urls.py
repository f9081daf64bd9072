from django.urls import path

from hubspot_sync import views

app_name = "hubspot"
urlpatterns = [
    path("", views.sync_status, name="sync"),
    path("now/", views.sync_now, name="sync-now"),
    path("resume/", views.sync_resume, name="sync-resume"),
    path("runs/<id:pk>/", views.sync_run, name="sync-run"),
    path("outbox/", views.outbox_section, name="outbox"),
    path("outbox/bulk/", views.outbox_bulk, name="outbox-bulk"),
    path("changes/<id:pk>/<slug:action>/", views.change_action, name="change-action"),
    path("records/<slug:object_type>/<key:object_id>/state/", views.record_state, name="record-state"),
    path("records/<slug:object_type>/<key:object_id>/", views.record_changes, name="record-changes"),
]
