"""Writes of the hubspot app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Trim
from django.utils import timezone

from hubspot import registry, webhooks
from hubspot.cache import chunks, id_list
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
    if hubspot_ids is None:
        copy_first_edge(model, object_type, "contacts", "contact_hubspot_id")
        copy_contact_names(model)
        return
    contact_id, email, name = _contact_values(object_type)
    rows = model._default_manager.filter(hubspot_id__in=hubspot_ids)
    rows.exclude(contact_hubspot_id=contact_id).update(contact_hubspot_id=contact_id)
    rows.exclude(customer_email=email, customer_name=name).update(customer_email=email, customer_name=name)


# The whole-table copies are joins, written as SQL: Django's update() takes no join, and a subquery per row
# (what the per-record copies use) costs seconds over a hundred thousand orders. Both databases take
# UPDATE … FROM (SQLite since 3.33). Names come from the models' meta; values are parameters.


def copy_first_edge(model: type[Order] | type[Cart], object_type: str, to_type: str, column: str) -> int:
    """Set ``column`` of every row to the id of its first edge to ``to_type`` (lowest id, as the per-record
    copies order them), or "" without one; only rows whose copy differs are written."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    edges, target = quote(Association._meta.db_table), quote(column)
    sql = (
        f"UPDATE {table} SET {target} = COALESCE(e.first_id, '') "  # noqa: S608
        f"FROM {table} AS m LEFT JOIN ("
        f"SELECT from_id, MIN(to_id) AS first_id FROM {edges} WHERE from_type = %s AND to_type = %s "
        f"GROUP BY from_id) AS e ON e.from_id = m.hubspot_id "
        f"WHERE m.{pk} = {table}.{pk} AND {table}.{target} <> COALESCE(e.first_id, '')"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [object_type, to_type])
        return int(cursor.rowcount)


def copy_contact_names(model: type[Order] | type[Cart]) -> int:
    """Set every row's customer email and name from the contact it names (contact_hubspot_id), "" when the
    cache has no such contact; only rows whose copy differs are written."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    contacts = quote(Contact._meta.db_table)
    email = "COALESCE(c.email, '')"
    name = "COALESCE(TRIM(c.first_name || ' ' || c.last_name), '')"
    sql = (
        f"UPDATE {table} SET customer_email = {email}, customer_name = {name} "  # noqa: S608
        f"FROM {table} AS m LEFT JOIN {contacts} AS c ON c.hubspot_id = m.contact_hubspot_id "
        f"WHERE m.{pk} = {table}.{pk} "
        f"AND ({table}.customer_email <> {email} OR {table}.customer_name <> {name})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.rowcount)


def contact_columns(
    spec: MirrorType, rows: list[dict[str, Any]], associations: Mapping[str, Mapping[str, Sequence[str]]]
) -> None:
    """A full run's rows get their contact's id, email and name from the edges the page brought and the
    contacts cached so far, as the per-record copy would set them; a contact read later is copied by the
    whole-table pass at the run's end."""
    first = {
        row["hubspot_id"]: min(ids)
        if (ids := associations.get(row["hubspot_id"], {}).get("contacts"))
        else ""
        for row in rows
    }
    known = {
        contact_id: (email, f"{first_name} {last_name}".strip(" "))
        for contact_id, email, first_name, last_name in Contact.objects.filter(
            hubspot_id__in=id_list(sorted({i for i in first.values() if i}))
        ).values_list("hubspot_id", "email", "first_name", "last_name")
    }
    for row in rows:
        contact_id = first[row["hubspot_id"]]
        row["contact_hubspot_id"] = contact_id
        row["customer_email"], row["customer_name"] = known.get(contact_id, ("", ""))


def contacts_refresh_references_all(spec: MirrorType) -> None:
    """Every order's and cart's copy of its contact's name and email, set-based (the end of a full run)."""
    from carts.models import Cart
    from orders.models import Order

    copy_contact_names(Order)
    copy_contact_names(Cart)


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
