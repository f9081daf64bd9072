"""Writes of the hubspot app."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Trim
from django.utils import timezone
from kombu.exceptions import KombuError

from hubspot_sync import jobs, registry, sync, webhooks
from hubspot_sync.cache import chunks, id_list
from hubspot_sync.models import (
    Association,
    Change,
    ChangeKind,
    ChangeStatus,
    Contact,
    WebhookEvent,
    WebhookOutcome,
    WebhookQueueState,
    WorkerHeartbeat,
)
from hubspot_sync.registry import MirrorType

if TYPE_CHECKING:
    from hubspot_sync.mirror import MirroredObject

logger = logging.getLogger(__name__)


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
    model: type[MirroredObject], object_type: str, hubspot_ids: Sequence[str] | None
) -> None:
    """Copy the first associated contact's id, name and email onto orders or carts: the named ones, or
    (``None``) every one. Only rows whose copy differs are written."""
    if hubspot_ids is None:
        copy_first_edge(model, object_type, "contacts", "contact_hubspot_id")
        copy_contact_names(model)
        return
    contact_id, email, name = _contact_values(object_type)
    # The copies are columns of the type's own table (orders, carts), which a MirroredObject doesn't name.
    rows: Any = model._default_manager.filter(hubspot_id__in=hubspot_ids)
    rows.exclude(contact_hubspot_id=contact_id).update(contact_hubspot_id=contact_id)
    rows.exclude(customer_email=email, customer_name=name).update(customer_email=email, customer_name=name)


# The whole-table copies are joins, written as SQL: Django's update() takes no join, and a subquery per row
# (what the per-record copies use) costs seconds over a hundred thousand orders. Both databases take
# UPDATE … FROM (SQLite since 3.33). Names come from the models' meta; values are parameters.


def copy_first_edge(model: type[MirroredObject], object_type: str, to_type: str, column: str) -> int:
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


def copy_contact_names(model: type[MirroredObject]) -> int:
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


def _copying_contact() -> list[MirrorType]:
    """The types whose rows keep a copy of their first contact (``MirrorType.copies_contact``)."""
    return [spec for spec in registry.all_types() if spec.copies_contact]


def contacts_refresh_references_all(spec: MirrorType) -> None:
    """Every order's and cart's copy of its contact's name and email, set-based (the end of a full run)."""
    for copying in _copying_contact():
        copy_contact_names(copying.model)


@registry.whole_table(contacts_refresh_references_all)
def contacts_refresh_references(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """When contacts change, refresh the names and emails copied onto their orders and carts."""
    for copying in _copying_contact():
        model, object_type = copying.model, copying.name
        records: Any = model._default_manager
        for chunk in chunks(list(hubspot_ids), 500):
            ids = list(records.filter(contact_hubspot_id__in=chunk).values_list("hubspot_id", flat=True))
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
    if not rows:
        return 0
    before = WebhookEvent.objects.filter(event_id__in=[r.event_id for r in rows]).count()
    WebhookEvent.objects.bulk_create(rows, ignore_conflicts=True)
    new = len({r.event_id for r in rows}) - before
    if new:
        transaction.on_commit(webhook_processing_queue)
    return new


# A processing task's claim on its events lapses after this: the task died, and another takes them.
WEBHOOK_CLAIM_TIMEOUT = timedelta(minutes=10)
# A queued processing task that has not started after this is taken for lost (a broker restart), and
# another is queued.
WEBHOOK_QUEUE_STALE = timedelta(minutes=2)
# How far apart our push and HubSpot's event of the same value may be for the event to be its echo.
WEBHOOK_ECHO_WINDOW = timedelta(minutes=5)
WEBHOOK_CLAIM_BATCH = 500


def webhook_processing_queue() -> bool:
    """Queue a processing task unless one already waits in the queue (it will process every event stored
    before it starts), so a burst of webhooks queues one task, not one per POST."""
    now = timezone.now()
    state = WebhookQueueState.objects.filter(pk=1)
    taken = state.filter(Q(queued=False) | Q(queued_at__lt=now - WEBHOOK_QUEUE_STALE)).update(
        queued=True, queued_at=now
    )
    if not taken:
        if state.exists():
            return False
        _, created = WebhookQueueState.objects.get_or_create(
            pk=1, defaults={"queued": True, "queued_at": now}
        )
        if not created:
            return False  # another request created it, queued, a moment ago
    try:
        jobs.task("process_webhook_events").delay()
    except (KombuError, OSError) as exc:
        # The events are stored; the next webhook or beat's sweep queues the task once the broker answers.
        logger.warning("webhooks: could not queue processing (%s)", exc)
        state.update(queued=False)
        return False
    return True


def webhook_processing_started() -> None:
    """A processing task starts: none waits in the queue any more, so the next webhook queues one."""
    WebhookQueueState.objects.filter(pk=1).update(queued=False, started_at=timezone.now())


def _webhook_events_claim(token: str, size: int) -> list[WebhookEvent]:
    """Take up to ``size`` unprocessed events no live task holds. The conditional UPDATE is the claim: of two
    tasks after the same rows one wins (PostgreSQL re-checks the condition after the row lock, SQLite runs
    writes one at a time), and the loser looks again past what the winner took."""
    while True:
        now = timezone.now()
        free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - WEBHOOK_CLAIM_TIMEOUT)
        pks = list(
            WebhookEvent.objects.filter(free, processed_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not pks:
            return []
        taken = WebhookEvent.objects.filter(free, pk__in=pks, processed_at__isnull=True).update(
            claimed_by=token, claimed_at=now
        )
        if taken:
            return list(WebhookEvent.objects.filter(pk__in=pks, claimed_by=token).order_by("pk"))


def _same_value(pushed: str, told: str) -> bool:
    if pushed == told:
        return True
    try:  # HubSpot writes numbers its own way ("12.50" comes back as "12.5")
        return Decimal(pushed) == Decimal(told) and Decimal(told).is_finite()
    except (InvalidOperation, ValueError):
        return False


def _echoes(events: Sequence[WebhookEvent]) -> set[int]:
    """The events that only tell us a value we pushed a moment ago: propertyChange events whose value is what
    a change of ours sent to that record's property within WEBHOOK_ECHO_WINDOW of the event."""
    candidates = [
        e
        for e in events
        if e.subscription_type.endswith(".propertyChange")
        and e.object_type
        and e.object_id
        and isinstance(e.payload.get("propertyName"), str)
        and isinstance(e.payload.get("propertyValue"), str)
    ]
    if not candidates:
        return set()
    since = min(e.occurred_at or e.received_at for e in candidates) - WEBHOOK_ECHO_WINDOW
    pushed: dict[tuple[str, str, str], list[tuple[str, Any]]] = {}
    ids_by_type: dict[str, set[str]] = {}
    for e in candidates:
        ids_by_type.setdefault(e.object_type, set()).add(e.object_id)
    for object_type, ids in ids_by_type.items():
        for chunk in chunks(sorted(ids), 500):
            rows = Change.objects.filter(
                object_type=object_type,
                object_id__in=chunk,
                kind__in=(ChangeKind.UPDATE, ChangeKind.CREATE),
                status__in=(ChangeStatus.PUSHING, ChangeStatus.APPLIED),
                pushed_at__gte=since,
            ).values_list("object_id", "new", "pushed_at")
            for object_id, new, pushed_at in rows:
                for name, value in (new or {}).items():
                    key = (object_type, object_id, name)
                    pushed.setdefault(key, []).append(("" if value is None else str(value), pushed_at))
    echoes = set()
    for e in candidates:
        at = e.occurred_at or e.received_at
        told = e.payload["propertyValue"]
        for value, pushed_at in pushed.get((e.object_type, e.object_id, e.payload["propertyName"]), []):
            if abs(at - pushed_at) <= WEBHOOK_ECHO_WINDOW and _same_value(value, told):
                echoes.add(e.pk)
                break
    return echoes


def _webhook_events_handle(events: Sequence[WebhookEvent]) -> None:
    """Read again, type by type, the records the events name (except where an event is only the echo of our
    own push), then mark each event processed with what was done about it."""
    echoes = _echoes(events)
    touched: dict[str, set[str]] = {}
    outcomes: dict[str, list[int]] = {
        WebhookOutcome.ECHO: sorted(echoes),
        WebhookOutcome.REFRESHED: [],
        WebhookOutcome.IGNORED: [],
    }
    for event in events:
        if event.pk in echoes:
            continue
        named = [(t, i) for t, i in event.payload.get("_touched", []) if registry.find(t)]
        for object_type, object_id in named:
            touched.setdefault(object_type, set()).add(object_id)
        outcomes[WebhookOutcome.REFRESHED if named else WebhookOutcome.IGNORED].append(event.pk)
    for object_type, ids in touched.items():
        sync.refresh_records(object_type, sorted(ids))
    now = timezone.now()
    for outcome, pks in outcomes.items():
        if pks:
            WebhookEvent.objects.filter(pk__in=pks).update(processed_at=now, outcome=outcome)


def webhook_events_process(*, limit: int = 5000) -> int:
    """Process unprocessed events, a claimed batch at a time; returns how many this call processed.

    Each batch is claimed first, so tasks running side by side never process an event twice. A refresh reads
    HubSpot's current state, so duplicate and out-of-order events leave the newest state.
    """
    token = uuid.uuid4().hex
    done = 0
    while done < limit:
        events = _webhook_events_claim(token, min(WEBHOOK_CLAIM_BATCH, limit - done))
        if not events:
            break
        try:
            _webhook_events_handle(events)
        except BaseException:
            # Let the next task have them at once rather than after the claim lapses.
            WebhookEvent.objects.filter(claimed_by=token, processed_at__isnull=True).update(
                claimed_by="", claimed_at=None
            )
            raise
        done += len(events)
    return done


def webhook_events_prune(*, days: int | None = None, batch: int = 10_000) -> int:
    """Delete processed events received more than ``days`` (HUBSPOT_WEBHOOK_RETENTION_DAYS) ago, a batch at a
    time so no statement holds the table long; unprocessed ones are kept whatever their age."""
    keep_days = settings.HUBSPOT_WEBHOOK_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted = 0
    while True:
        pks = list(
            WebhookEvent.objects.filter(received_at__lt=cutoff, processed_at__isnull=False)
            .order_by()
            .values_list("pk", flat=True)[:batch]
        )
        if not pks:
            return deleted
        deleted += WebhookEvent.objects.filter(pk__in=pks).delete()[0]
