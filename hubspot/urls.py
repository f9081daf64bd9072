from django.urls import path

from hubspot import views

app_name = "hubspot"
urlpatterns = [
    path("", views.sync_status, name="sync"),
]
