from django.apps import AppConfig


class HubSpotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hubspot"
    verbose_name = "HubSpot"
