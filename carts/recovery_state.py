"""The carts' stored recovery state (``Cart.recovery_state``): kept equal to what
``carts.models.recovery_state_expression()`` works out, by set-based updates at every change that affects it.

Callers: a send and a click (carts.sending, carts.services), a suppression added or removed (every cart with
that address), the cache hooks after carts, contacts or orders are written (carts.services and the hook
registered in carts.apps), a change of the settings the state depends on (``recovery_state_ensure_current``,
called by ``Cart.objects.with_recovery_state()``), and ``python manage.py carts_recovery_state`` (every
cart)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, QuerySet
from django.db.models.signals import post_delete, post_save

from carts.models import Cart, Suppression, normalize_email, recovery_state_expression
from hubspot_sync.cache import chunks
from hubspot_sync.models import Contact
from hubspot_sync.registry import MirrorType


def recovery_state_refresh(carts: QuerySet[Cart] | None = None) -> int:
    """Set the stored state of the given carts (all carts when None) to their computed state; only carts whose
    state differs are written. Returns how many were."""
    carts = Cart.objects.all() if carts is None else carts
    stale = carts.alias(computed_state=recovery_state_expression()).exclude(
        recovery_state=F("computed_state")
    )
    return int(stale.update(recovery_state=recovery_state_expression()))


def recovery_state_refresh_ids(hubspot_ids: Sequence[str]) -> int:
    """The named carts (HubSpot ids), a chunk at a time."""
    return sum(
        recovery_state_refresh(Cart.objects.filter(hubspot_id__in=chunk))
        for chunk in chunks(list(hubspot_ids), 500)
    )


def recovery_state_refresh_email(email: str) -> int:
    """Every cart with this address (a suppression added or removed)."""
    address = normalize_email(email)
    if not address:
        return 0
    return recovery_state_refresh(Cart.objects.filter(customer_email__iexact=address))


SETTINGS_KEY = "carts:recovery-state-settings"


def _settings_digest() -> str:
    """What the settings the state depends on are now (another value, another digest)."""
    parts = [
        settings.CARTS_CONSENT_POLICY,
        settings.CARTS_CONSENT_PROPERTY,
        ",".join(sorted(settings.CARTS_COMPLETED_STATUSES)),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def recovery_state_ensure_current() -> None:
    """Recompute every cart once when the consent policy, its property or the completed statuses change (the
    stored states were worked out under other settings). The cache remembers the settings the states were
    last worked out under; a lost entry costs one recompute, which writes only the carts whose state
    differs."""
    digest = _settings_digest()
    if cache.get(SETTINGS_KEY) == digest:
        return
    recovery_state_refresh()
    cache.set(SETTINGS_KEY, digest, timeout=None)


def recovery_state_after_upsert(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """After contacts are written (a changed address or consent): the states of their carts. Carts and orders
    are handled by carts.services.carts_refresh_links, after it has copied the contact and the order."""
    if spec.name != "contacts" or not hubspot_ids:
        return
    for chunk in chunks(list(hubspot_ids), 500):
        recovery_state_refresh(Cart.objects.filter(contact_hubspot_id__in=chunk))


def recovery_state_whole_table(spec: MirrorType) -> None:
    """The end of a full run: every cart (only those whose state differs are written)."""
    recovery_state_refresh()


def _suppression_changed(sender: type[Suppression], instance: Suppression, **kwargs: Any) -> None:
    if instance.email:
        recovery_state_refresh_email(instance.email)


def _contact_saved(sender: type[Contact], instance: Contact, **kwargs: Any) -> None:
    if instance.hubspot_id:
        recovery_state_refresh(Cart.objects.filter(contact_hubspot_id=instance.hubspot_id))


def register_hooks() -> None:
    """From carts' AppConfig.ready: after sync writes (the cache's hooks), and after a suppression or a
    contact is saved or deleted one by one (the ORM's signals)."""
    from hubspot_sync import registry

    registry.whole_table(recovery_state_whole_table)(recovery_state_after_upsert)
    registry.add_hook_to_every_type(after_upsert=recovery_state_after_upsert)
    for signal in (post_save, post_delete):
        signal.connect(
            _suppression_changed, sender=Suppression, dispatch_uid=f"carts-state-{signal}-suppression"
        )
        signal.connect(_contact_saved, sender=Contact, dispatch_uid=f"carts-state-{signal}-contact")
