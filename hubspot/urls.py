from django.urls import path

from hubspot import views

app_name = "hubspot"
urlpatterns = [
    path("", views.sync_status, name="sync"),
    path("now/", views.sync_now, name="sync-now"),
    path("runs/<int:pk>/", views.sync_run, name="sync-run"),
]
