"""The mirror base model: what every locally cached HubSpot record has (DESIGN.md §3)."""

from __future__ import annotations

from django.db import models


class MirroredObject(models.Model):
    """A HubSpot record in the local cache.

    ``properties`` holds every value as HubSpot sends it (strings); typed, indexed columns beside it hold
    what pages filter and sort on. An upsert never replaces a newer ``remote_updated_at`` with an older one.
    """

    hubspot_id = models.CharField(max_length=32, unique=True)
    properties = models.JSONField(default=dict)
    remote_created_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} {self.hubspot_id}"

    def prop(self, name: str, default: str = "") -> str:
        value = self.properties.get(name)
        return default if value is None else str(value)
