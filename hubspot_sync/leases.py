"""Named leases in the database (``SyncLease``): one holder at a time across processes, and a holder that
dies frees its lease when it expires. Sync runs hold one per kind of run; the daily-limit probe takes one no
one releases, so that only one process probes per interval."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from hubspot_sync.models import SyncLease


def lease_acquire(name: str, owner: str, ttl_s: int) -> bool:
    """Take the named lease if it is free or expired; a crashed holder's lease frees itself on expiry."""
    now = timezone.now()
    SyncLease.objects.get_or_create(name=name)
    taken = (
        SyncLease.objects.filter(name=name)
        .filter(_free(now, owner))
        .update(owner=owner, expires_at=now + timedelta(seconds=ttl_s))
    )
    return taken == 1


def _free(now: datetime, owner: str) -> Q:
    return Q(owner="") | Q(expires_at__lt=now) | Q(owner=owner) | Q(expires_at__isnull=True)


def lease_renew(name: str, owner: str, ttl_s: int) -> None:
    SyncLease.objects.filter(name=name, owner=owner).update(
        expires_at=timezone.now() + timedelta(seconds=ttl_s)
    )


def lease_release(name: str, owner: str) -> None:
    SyncLease.objects.filter(name=name, owner=owner).update(owner="", expires_at=None)
