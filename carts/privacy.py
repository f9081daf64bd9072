"""Data care for recovery emails: retention of send logs, clicks and suppression reasons, and a contact's
privacy request (an export of their recovery data, and its erasure).

Erasure keeps the address suppressed: its suppression entry stays as the address's hash (the email set to
NULL), which is what ``Suppression.objects.is_suppressed`` looks up, so no recovery email goes to it again.
The contact's cart copies here lose their address and name; HubSpot's own records are erased in HubSpot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carts import summary
from carts.models import (
    Cart,
    CartEvent,
    Recovery,
    RecoverySend,
    Suppression,
    email_hash,
    normalize_email,
)

logger = logging.getLogger(__name__)


def retention_days() -> int:
    return max(int(getattr(settings, "CARTS_RETENTION_DAYS", 365)), 1)


def retention_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Delete recovery sends (with their clicks and credited recoveries) and cart log lines older than
    CARTS_RETENTION_DAYS; clear the reason of older suppression entries (the entries stay)."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days())
    with transaction.atomic():
        events, _ = CartEvent.objects.filter(at__lt=cutoff).delete()
        sends = RecoverySend.objects.filter(created_at__lt=cutoff)
        # The recoveries' carts held against attribution meanwhile; the days the sends went out on are
        # counted again for the dashboard once they are gone.
        summary.lock_carts(Recovery.objects.filter(send__in=sends).values_list("cart_id", flat=True))
        days = summary.days_of_sends(sends)
        recoveries, _ = Recovery.objects.filter(send__in=sends).delete()
        deleted_sends, _ = sends.delete()
        reasons = Suppression.objects.filter(created_at__lt=cutoff).exclude(reason="").update(reason="")
        summary.summary_rebuild(days)  # last: it holds the days until the transaction ends
    return {"events": events, "sends": deleted_sends, "recoveries": recoveries, "reasons": reasons}


@shared_task(name="carts.privacy.retention_task")
def retention_task() -> dict[str, int]:
    """Beat, daily (CELERY_BEAT_SCHEDULE "carts-retention")."""
    done = retention_apply()
    logger.info("Recovery data retention: %s", done)
    return done


# --- a contact's privacy request ----------------------------------------------------------------------------


def _sends_of(email: str) -> Any:
    return RecoverySend.objects.filter(to_email=normalize_email(email))


def _carts_of(email: str) -> Any:
    address = normalize_email(email)
    return Cart.objects.filter(
        Q(customer_email__iexact=address) | Q(pk__in=_sends_of(address).values("cart_id"))
    ).distinct()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def contact_export(email: str) -> dict[str, Any]:
    """Everything the recovery emails keep about one address: its carts (as cached), the emails sent about
    them with their clicks, recoveries and log, and its suppression entry."""
    address = normalize_email(email)
    carts = list(_carts_of(address).order_by("pk"))
    cart_ids = [c.pk for c in carts]
    sends = list(_sends_of(address).select_related("template").order_by("pk"))
    events = CartEvent.objects.filter(cart_id__in=cart_ids).order_by("at", "pk")
    recoveries = Recovery.objects.filter(cart_id__in=cart_ids).order_by("pk")
    suppression = Suppression.objects.filter(email_hash=email_hash(address)).first()
    hubspot_ids = {c.pk: c.hubspot_id for c in carts}
    return {
        "email": address,
        "exported_at": timezone.now().isoformat(),
        "carts": [
            {
                "hubspot_id": c.hubspot_id,
                "name": c.name,
                "customer_name": c.customer_name,
                "customer_email": c.customer_email,
                "store": c.store,
                "total": str(c.total) if c.total is not None else None,
                "currency": c.currency,
                "order_hubspot_id": c.order_hubspot_id,
                "email_state": c.email_state,
            }
            for c in carts
        ],
        "emails": [
            {
                "cart": hubspot_ids.get(s.cart_id, ""),
                "step": s.step,
                "template": s.template.name if s.template else None,
                "to_email": s.to_email,
                "status": s.status,
                "reason": s.reason,
                "created_at": _iso(s.created_at),
                "sent_at": _iso(s.sent_at),
                "clicked_at": _iso(s.clicked_at),
            }
            for s in sends
        ],
        "recoveries": [
            {
                "cart": hubspot_ids.get(r.cart_id, ""),
                "order_hubspot_id": r.order_hubspot_id,
                "amount": str(r.amount) if r.amount is not None else None,
                "currency": r.currency,
                "recovered_at": _iso(r.recovered_at),
                "by": r.by,
            }
            for r in recoveries
        ],
        "log": [
            {"cart": hubspot_ids.get(e.cart_id, ""), "kind": e.kind, "message": e.message, "at": _iso(e.at)}
            for e in events
        ],
        "suppression": None
        if suppression is None
        else {
            "email": suppression.email,
            "reason": suppression.reason,
            "source": suppression.source,
            "created_at": _iso(suppression.created_at),
        },
    }


def contact_erase(email: str) -> dict[str, int]:
    """Erase one address's recovery data: its sends are anonymised (kept without address, contact or reason,
    so the dashboard's counts stand), its carts' logs deleted, its cart copies lose address and name, and its
    suppression entry keeps only the hash: the address stays suppressed. A suppression entry is added when
    there was none, so the erased address gets no recovery email again."""
    address = normalize_email(email)
    with transaction.atomic():
        cart_ids = list(_carts_of(address).values_list("pk", flat=True))
        # The anonymised sends still count; their days are counted again (last), which changes nothing but
        # makes sure of it.
        days = summary.days_of_sends(_sends_of(address))
        sends = _sends_of(address).update(to_email="", contact_hubspot_id="", reason="", message_id="")
        events, _ = CartEvent.objects.filter(cart_id__in=cart_ids).delete()
        carts = Cart.objects.filter(pk__in=cart_ids).update(customer_email="", customer_name="")
        # No address: the carts' stored recovery state follows (carts.recovery_state).
        from carts.recovery_state import recovery_state_refresh

        recovery_state_refresh(Cart.objects.filter(pk__in=cart_ids))
        hashed = email_hash(address)
        updated = Suppression.objects.filter(email_hash=hashed).update(email=None, reason="")
        if not updated:
            from carts.models import SuppressionSource

            Suppression.objects.create(email=None, email_hash=hashed, source=SuppressionSource.STAFF)
        summary.summary_rebuild(days)
    return {"sends": sends, "events": events, "carts": carts}
