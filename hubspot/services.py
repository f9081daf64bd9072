"""Writes of the hubspot app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Trim
from django.utils import timezone

from hubspot import registry, webhooks
from hubspot.cache import chunks
from hubspot.models import Association, Contact, WebhookEvent, WorkerHeartbeat
from hubspot.registry import MirrorType

if TYPE_CHECKING:
    from carts.models import Cart
    from orders.models import Order


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Note that the named worker is alive now."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"beat_at": timezone.now()}
    )
    return heartbeat


def worker_heartbeats_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop heartbeats of workers that have been gone a long time."""
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - older_than).delete()
    return deleted


def _contact_values(object_type: str) -> tuple[Coalesce, Coalesce, Coalesce]:
    """The contact id, email and name a row should carry: its first contact edge (by id), and that contact's
    email and "first last"; empty when there is none."""
    edge = Association.objects.filter(
        from_type=object_type, from_id=OuterRef("hubspot_id"), to_type="contacts"
    )
    contact_id = Coalesce(Subquery(edge.order_by("to_id").values("to_id")[:1]), Value(""))
    contact = Contact.objects.filter(hubspot_id=OuterRef("contact_hubspot_id"))
    email = Coalesce(Subquery(contact.values("email")[:1]), Value(""))
    name = Coalesce(
        Subquery(contact.annotate(n=Trim(Concat("first_name", Value(" "), "last_name"))).values("n")[:1]),
        Value(""),
    )
    return contact_id, email, name


def denormalize_contact(
    model: type[Order] | type[Cart], object_type: str, hubspot_ids: Sequence[str] | None
) -> None:
    """Copy the first associated contact's id, name and email onto orders or carts: the named ones, or
    (``None``) every one. Only rows whose copy differs are written."""
    contact_id, email, name = _contact_values(object_type)
    rows = model._default_manager.all()
    if hubspot_ids is not None:
        rows = rows.filter(hubspot_id__in=hubspot_ids)
    rows.exclude(contact_hubspot_id=contact_id).update(contact_hubspot_id=contact_id)
    rows.exclude(customer_email=email, customer_name=name).update(customer_email=email, customer_name=name)


def contacts_refresh_references_all(spec: MirrorType) -> None:
    """Every order's and cart's copy of its contact, set-based (the end of a full run)."""
    from carts.models import Cart
    from orders.models import Order

    denormalize_contact(Order, "orders", None)
    denormalize_contact(Cart, "carts", None)


@registry.whole_table(contacts_refresh_references_all)
def contacts_refresh_references(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """When contacts change, refresh the names and emails copied onto their orders and carts."""
    from carts.models import Cart
    from orders.models import Order

    for model, object_type in ((Order, "orders"), (Cart, "carts")):
        for chunk in chunks(list(hubspot_ids), 500):
            ids = list(
                model._default_manager.filter(contact_hubspot_id__in=chunk).values_list(
                    "hubspot_id", flat=True
                )
            )
            if ids:
                denormalize_contact(model, object_type, ids)


@transaction.atomic
def webhook_events_store(*, events: Sequence[webhooks.Event]) -> int:
    """Store each event once by eventId (HubSpot retries, and may send one twice); returns the new count."""
    rows = [
        WebhookEvent(
            event_id=e.event_id,
            subscription_type=e.subscription_type,
            object_type=e.object_type,
            object_id=e.object_id,
            occurred_at=e.occurred_at,
            attempt_number=e.attempt_number,
            payload={**e.payload, "_touched": [list(t) for t in e.touched]},
        )
        for e in events
    ]
    before = WebhookEvent.objects.filter(event_id__in=[r.event_id for r in rows]).count()
    WebhookEvent.objects.bulk_create(rows, ignore_conflicts=True)
    new = len({r.event_id for r in rows}) - before
    if new:
        from hubspot.tasks import process_webhook_events_task

        transaction.on_commit(process_webhook_events_task.delay)
    return new


def webhook_events_process(*, limit: int = 5000) -> int:
    """Refresh the records named by unprocessed events, type by type, then mark the events processed.

    A refresh reads HubSpot's current state, so duplicate and out-of-order events leave the newest state.
    """
    from hubspot import registry, sync

    events = list(WebhookEvent.objects.filter(processed_at__isnull=True).order_by("received_at")[:limit])
    if not events:
        return 0
    touched: dict[str, set[str]] = {}
    for event in events:
        for object_type, object_id in event.payload.get("_touched", []):
            if registry.find(object_type):
                touched.setdefault(object_type, set()).add(object_id)
    for object_type, ids in touched.items():
        sync.refresh_records(object_type, sorted(ids))
    WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=timezone.now())
    return len(events)
