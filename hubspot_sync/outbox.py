"""The outbox: every staff edit that must reach HubSpot goes through one of these services (DESIGN.md §5).

Each one writes the local record, so the page shows the edit at once, and a ``Change`` row in the same
transaction, and queues the push when the transaction commits. Workers then send the outbox to HubSpot in
batches (``hubspot_sync.push``); a record's unsettled changes stay on top of what a sync brings until they are
applied, fail or are discarded. Pass the record as it is cached; ``by`` is the member of staff (None for
the system).

Records (orders, carts, contacts, line items)
    record_change(*, obj, properties, by) -> Change
    record_changes(*, items, by, locked=False) -> int           (many at once: [(record, properties)])
    record_create(*, object_type, properties, by, links=(), id_property=None) -> (record, Change)
    association_add(*, obj, to, by, type_id=None) -> Change
    association_remove(*, obj, to, by, type_id=None) -> Change
Outcomes (failed and conflicting changes)
    change_retry(*, change, by, properties=None) -> Change      (properties: the corrected values)
    change_discard(*, change, by) -> Change                      (the record goes back to HubSpot's value)
    change_keep_mine(*, change, by) -> Change                    (send it anyway)
    change_take_hubspot(*, change, by) -> Change                 (drop it and take HubSpot's value)
    changes_retry(*, changes, by) -> int, changes_discard(*, changes, by) -> int
The reads (a record's sync state, the Sync page's summary) are in ``hubspot_sync.sync_state``; pipeline and
stage services are the pipelines app's (``pipelines.services``), on the helpers here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import KombuError

from hubspot_sync import jobs, registry
from hubspot_sync.cache import run_after_upsert
from hubspot_sync.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot_sync.models import (
    OVERLAID,
    UNSETTLED,
    Association,
    Change,
    ChangeKind,
    ChangeStatus,
    OutboxState,
    Resolution,
)
from hubspot_sync.pending import (
    VALUE_KINDS,
    insert_rows,
    is_temp,
    link_edge,
    link_locally,
    new_temp_id,
    spec_for,
    temp_ids_in,
    waiting_on,
    wire,
    write_values,
    write_values_many,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from hubspot_sync.mirror import MirroredObject

logger = logging.getLogger(__name__)

PropertyValue = str | int | float | bool | None


class ChangeNotAllowed(Exception):
    """The change is not in a state that allows this (e.g. Retry on one that is already in HubSpot)."""


# --- queueing the push --------------------------------------------------------------------------------------


def queue_push(*, force: bool = False) -> bool:
    """Queue a push task, unless one is draining the outbox or is queued and has not started yet: that one
    will see this edit too, so a burst of edits queues one task, not one each (and the embedded broker, which
    can trip over files written while it reads, sees few messages). ``force`` queues regardless (the sweep,
    which covers a queued task whose message was lost)."""
    now = timezone.now()
    state = OutboxState.objects.filter(pk=1)
    if force:
        taken = state.update(queued_at=now)
    else:
        stale = now - timedelta(seconds=settings.HUBSPOT_PUSH_QUEUE_STALE_S)
        taken = (
            state.filter(
                Q(queued_at__isnull=True) | Q(started_at__gte=F("queued_at")) | Q(queued_at__lt=stale)
            )
            .exclude(draining_until__gt=now)
            .update(queued_at=now)
        )
    if not taken:
        if state.exists():
            return False
        OutboxState.objects.get_or_create(pk=1, defaults={"queued_at": now})
    try:
        jobs.task("push_changes").delay()
    except (KombuError, OSError) as exc:
        # The edit is saved; the periodic sweep queues the push once the broker answers again.
        logger.warning("outbox: could not queue a push (%s); the sweep will", exc)
        return False
    return True


def queue_push_on_commit() -> None:
    """Queue the push once this transaction commits (once, however many edits it holds)."""
    pending = getattr(connection, "run_on_commit", [])
    if not any(entry[1] is queue_push for entry in pending):
        transaction.on_commit(queue_push)


def refresh_on_commit(object_type: str, hubspot_ids: Sequence[str]) -> None:
    """Read the records from HubSpot again after commit (what HubSpot has replaces a dropped edit)."""
    ids = [i for i in hubspot_ids if not is_temp(i)]
    if not ids or registry.find(object_type) is None:
        return

    def refresh() -> None:
        try:
            jobs.task("refresh_records").delay(object_type, ids)
        except (KombuError, OSError) as exc:
            logger.warning("outbox: could not queue a refresh of %s %s (%s)", object_type, ids, exc)

    transaction.on_commit(refresh)


# --- records ------------------------------------------------------------------------------------------------


def staff_name(by: User | None) -> str:
    """Who made a change, as the outbox notes it (kept when the account goes)."""
    if by is None:
        return ""
    return (by.get_full_name() or by.get_username())[:150]


def _lock(obj: MirroredObject) -> MirroredObject:
    """The record as stored now, locked until commit (concurrent edits of one record queue up)."""
    return type(obj)._default_manager.select_for_update().get(pk=obj.pk)


def _copy_onto(obj: MirroredObject, record: MirroredObject) -> None:
    for f in record._meta.concrete_fields:
        setattr(obj, f.attname, getattr(record, f.attname))


def _bases(
    object_type: str, record: MirroredObject, names: Iterable[str], earlier: list[Change] | None = None
) -> dict[str, Any]:
    """The value HubSpot has (or will have once earlier edits land) for each property, as far as we know:
    the base a push compares with HubSpot's current value to find conflicts. ``earlier``: the record's
    unsettled edits, oldest first, when the caller has read them."""
    if earlier is None:
        earlier = list(
            Change.objects.for_record(object_type, record.hubspot_id)
            .filter(status__in=UNSETTLED, kind__in=VALUE_KINDS)
            .order_by("pk")
        )
    base: dict[str, Any] = {}
    for name in names:
        latest = next((c for c in reversed(earlier) if name in c.new), None)
        local = record.properties.get(name)
        if latest is not None and latest.status == ChangeStatus.CONFLICT and name in latest.remote:
            base[name] = latest.remote[name]  # the person saw HubSpot's value and chose again
        elif latest is not None and latest.status == ChangeStatus.FAILED and local == latest.new.get(name):
            base[name] = latest.base.get(name)  # HubSpot refused it: it still has the value before
        else:
            base[name] = local
    return base


def _supersede(change: Change, by: User | None) -> None:
    """Failed or conflicting edits of the same properties are replaced by a newer edit of them all."""
    for older in Change.objects.for_record(change.object_type, change.object_id).filter(
        status__in=(ChangeStatus.FAILED, ChangeStatus.CONFLICT), kind=ChangeKind.UPDATE, pk__lt=change.pk
    ):
        if set(older.new) <= set(change.new):
            _settle(older, ChangeStatus.DISCARDED, Resolution.SUPERSEDED, by)


def _settle(change: Change, status: str, resolution: str, by: User | None) -> None:
    change.status = status
    change.resolution = resolution
    change.resolved_by = by
    change.settled_at = timezone.now()
    change.next_attempt_at = None
    change.save(
        update_fields=["status", "resolution", "resolved_by", "settled_at", "next_attempt_at", "updated_at"]
    )


@transaction.atomic
def record_change(*, obj: MirroredObject, properties: Mapping[str, PropertyValue], by: User | None) -> Change:
    """Set property values on a cached record now, and send them to HubSpot."""
    values = {name: wire(value) for name, value in properties.items()}
    if not values:
        raise ValueError("record_change needs at least one property")
    spec = spec_for(obj)
    record = _lock(obj)
    change = Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type=spec.name,
        object_id=record.hubspot_id,
        base=_bases(spec.name, record, values),
        new=values,
        waits_for=" ".join(temp_ids_in(record.hubspot_id, values)),
        created_by=by,
        created_by_name=staff_name(by),
    )
    _supersede(change, by)
    write_values(spec, record, values)
    _copy_onto(obj, record)
    queue_push_on_commit()
    return change


@transaction.atomic
def record_changes(
    *,
    items: Sequence[tuple[MirroredObject, Mapping[str, PropertyValue]]],
    by: User | None,
    locked: bool = False,
) -> int:
    """``record_change`` for many records of one type at once (a stage's orders moved out before it is
    deleted): the same changes, bases and local writes, in a few statements for the lot. ``locked``: the
    caller read the records with select_for_update in this transaction, so they are not read again. Returns
    how many changes were recorded (their rows are written without reading their keys back)."""
    if not items:
        return 0
    spec = spec_for(items[0][0])
    model = spec.model
    if locked:
        current = {o.pk: o for o, _ in items}
    else:
        current = {
            r.pk: r
            for r in model._default_manager.select_for_update().filter(pk__in=[o.pk for o, _ in items])
        }
    ids = [current[o.pk].hubspot_id for o, _ in items if o.pk in current]
    earlier: dict[str, list[Change]] = {}
    for change in (
        Change.objects.filter(
            object_type=spec.name, object_id__in=ids, status__in=UNSETTLED, kind__in=VALUE_KINDS
        )
        .order_by("pk")
        .iterator()
    ):
        earlier.setdefault(change.object_id, []).append(change)
    changes: list[Change] = []
    writes: list[tuple[MirroredObject, dict[str, str]]] = []
    by_name = staff_name(by)
    for obj, properties in items:
        record = current.get(obj.pk)
        if record is None:
            continue  # deleted meanwhile
        values = {name: wire(value) for name, value in properties.items()}
        if not values:
            raise ValueError("record_changes needs at least one property per record")
        changes.append(
            Change(
                kind=ChangeKind.UPDATE,
                object_type=spec.name,
                object_id=record.hubspot_id,
                base=_bases(spec.name, record, values, earlier.get(record.hubspot_id, [])),
                new=values,
                waits_for=" ".join(temp_ids_in(record.hubspot_id, values)),
                created_by=by,
                created_by_name=by_name,
            )
        )
        writes.append((record, values))
    # Failed or conflicting edits these replace (all of them older than the changes written below).
    by_record = {c.object_id: c for c in changes}
    for older in Change.objects.filter(
        object_type=spec.name,
        object_id__in=list(by_record),
        status__in=(ChangeStatus.FAILED, ChangeStatus.CONFLICT),
        kind=ChangeKind.UPDATE,
    ):
        if set(older.new) <= set(by_record[older.object_id].new):
            _settle(older, ChangeStatus.DISCARDED, Resolution.SUPERSEDED, by)
    insert_rows(Change, changes)
    write_values_many(spec, writes, fresh=True)
    if not locked:
        for obj, _ in items:
            if obj.pk in current:
                _copy_onto(obj, current[obj.pk])
    queue_push_on_commit()
    return len(changes)


@transaction.atomic
def record_create(
    *,
    object_type: str,
    properties: Mapping[str, PropertyValue],
    by: User | None,
    links: Sequence[tuple[MirroredObject, int | None]] = (),
    id_property: str | None = None,
) -> tuple[MirroredObject, Change]:
    """Create a record locally (under a temporary id) and in HubSpot, linked to ``links`` [(record, type id
    or None for HubSpot's default)]. With ``id_property`` (a unique property whose value is among the
    properties) HubSpot upserts by it; otherwise the create carries a trace id. Either way a repeated
    attempt cannot make a second record."""
    spec = registry.get(object_type)
    values = {name: wire(value) for name, value in properties.items()}
    if id_property and not values.get(id_property):
        raise ValueError(f"{id_property} needs a value to create by it")
    temp = new_temp_id()
    record = spec.model(hubspot_id=temp, properties={})
    record.save()
    link_specs: list[dict[str, Any]] = []
    for target, type_id in links:
        target_spec = spec_for(target)
        forward = type_id or DEFAULT_ASSOCIATION_TYPES.get((spec.name, target_spec.name))
        if forward is None:
            raise ValueError(f"{spec.name} and {target_spec.name} have no default association type")
        link_specs.append({"to_type": target_spec.name, "to_id": target.hubspot_id, "type_id": forward})
    change = Change.objects.create(
        kind=ChangeKind.CREATE,
        object_type=spec.name,
        object_id=temp,
        new=values,
        payload={"links": link_specs, "temp_id": temp},
        id_property=id_property or "",
        waits_for=" ".join(t for t in temp_ids_in(values, link_specs) if t != temp),
        created_by=by,
        created_by_name=staff_name(by),
    )
    write_values(spec, record, values)
    for link in link_specs:
        link_edge(spec.name, temp, link["to_type"], link["to_id"], link["type_id"], add=True)
    run_after_upsert(spec, [temp])
    record.refresh_from_db()
    queue_push_on_commit()
    return record, change


def _link(kind: str, obj: MirroredObject, to: MirroredObject, by: User | None, type_id: int | None) -> Change:
    spec, target = spec_for(obj), spec_for(to)
    if type_id is None and (spec.name, target.name) not in DEFAULT_ASSOCIATION_TYPES:
        raise ValueError(f"{spec.name} and {target.name} have no default association type")
    change = Change.objects.create(
        kind=kind,
        object_type=spec.name,
        object_id=obj.hubspot_id,
        to_type=target.name,
        to_id=to.hubspot_id,
        association_type_id=type_id,
        waits_for=" ".join(temp_ids_in(obj.hubspot_id, to.hubspot_id)),
        created_by=by,
        created_by_name=staff_name(by),
    )
    link_locally(change, add=kind == ChangeKind.ASSOCIATE)
    # Copies of the link on the records (an order's customer) follow at once.
    run_after_upsert(spec, [obj.hubspot_id])
    run_after_upsert(target, [to.hubspot_id])
    queue_push_on_commit()
    return change


@transaction.atomic
def association_add(
    *, obj: MirroredObject, to: MirroredObject, by: User | None, type_id: int | None = None
) -> Change:
    """Link two records (HubSpot's default association type unless ``type_id`` names a label)."""
    return _link(ChangeKind.ASSOCIATE, obj, to, by, type_id)


@transaction.atomic
def association_remove(
    *, obj: MirroredObject, to: MirroredObject, by: User | None, type_id: int | None = None
) -> Change:
    """Unlink two records (every association type between them unless ``type_id`` names one)."""
    return _link(ChangeKind.DISSOCIATE, obj, to, by, type_id)


# --- outcomes: retry, discard, keep mine, take HubSpot's ----------------------------------------------------


def _claim_for_resolution(change: Change, allowed: Sequence[str]) -> Change:
    """The change, locked, if its status allows the action (a worker may have moved it on meanwhile)."""
    current = Change.objects.select_for_update().get(pk=change.pk)
    if current.status not in allowed:
        raise ChangeNotAllowed(f"This change is {current.get_status_display().lower()} now.")
    return current


def _touched_by_others(change: Change) -> set[str]:
    """Properties that another unsettled change of the same record sets (those keep that change's value)."""
    names: set[str] = set()
    for other in (
        Change.objects.for_record(change.object_type, change.object_id)
        .filter(status__in=OVERLAID, kind__in=VALUE_KINDS)
        .exclude(pk=change.pk)
    ):
        names.update(other.new)
    return names


def _reapply_locally(change: Change) -> None:
    """Show the change's values on the record again (a sync may have replaced them while it was failed)."""
    if change.kind == ChangeKind.UPDATE:
        spec = registry.get(change.object_type)
        record = spec.model._default_manager.filter(hubspot_id=change.object_id).first()
        if record is not None:
            write_values(spec, record, change.new)
    elif change.kind in (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE):
        link_locally(change, add=change.kind == ChangeKind.ASSOCIATE)
    else:
        _owned_locally(change, undo=False)


def _owned_locally(change: Change, *, undo: bool) -> None:
    """Apply (or undo) a change of something the integration does not mirror itself (a pipeline or stage),
    through the app that registered its kind."""
    owner = registry.change_owner(change.kind)
    if owner is not None:
        owner.apply_locally(change, undo)


def show_hubspot_values(change: Change) -> None:
    """Show the values HubSpot has for what a change set (as far as we know), where no later edit set them:
    a refused move puts the card back where HubSpot has it; Retry puts the change's values back."""
    spec = registry.get(change.object_type)
    record = spec.model._default_manager.filter(hubspot_id=change.object_id).first()
    if record is None:
        return
    keep = _touched_by_others(change)
    restore = {
        name: change.remote[name] if name in change.remote else change.base.get(name)
        for name in change.new
        if name not in keep
    }
    if restore:
        write_values(spec, record, restore)


def _undo_locally(change: Change, by: User | None) -> None:
    """Put the record back as HubSpot has it, as far as we know, and ask HubSpot for the rest."""
    if change.kind == ChangeKind.UPDATE:
        show_hubspot_values(change)
        refresh_on_commit(change.object_type, [change.object_id])
    elif change.kind == ChangeKind.CREATE:
        spec = registry.get(change.object_type)
        spec.model._default_manager.filter(hubspot_id=change.object_id).delete()
        Association.objects.filter(
            Q(from_type=change.object_type, from_id=change.object_id)
            | Q(to_type=change.object_type, to_id=change.object_id)
        ).delete()
    elif change.kind in (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE):
        link_locally(change, add=change.kind == ChangeKind.DISSOCIATE)
        refresh_on_commit(change.object_type, [change.object_id])
    else:
        _owned_locally(change, undo=True)
    if is_temp(change.object_id) and change.kind in (
        ChangeKind.CREATE,
        ChangeKind.PIPELINE_CREATE,
        ChangeKind.STAGE_CREATE,
    ):
        # What waited for the thing that will now never be created goes with it.
        for dependent in waiting_on(change.object_id):
            if dependent.status in (ChangeStatus.PUSHING,):
                continue
            _settle(dependent, ChangeStatus.DISCARDED, Resolution.CASCADED, by)
            _undo_locally(dependent, by)


@transaction.atomic
def change_retry(
    *, change: Change, by: User | None, properties: Mapping[str, PropertyValue] | None = None
) -> Change:
    """Send a failed or conflicting change again; ``properties`` corrects the values it sets first."""
    current = _claim_for_resolution(change, (ChangeStatus.FAILED, ChangeStatus.CONFLICT))
    if properties:
        if current.kind not in VALUE_KINDS:
            raise ChangeNotAllowed("Only an edit of values can be corrected.")
        current.new = {**current.new, **{name: wire(value) for name, value in properties.items()}}
    current.status = ChangeStatus.PENDING
    current.next_attempt_at = None
    current.error = ""
    current.resolved_by = by
    current.save(update_fields=["status", "new", "next_attempt_at", "error", "resolved_by", "updated_at"])
    _reapply_locally(current)
    queue_push_on_commit()
    return current


@transaction.atomic
def change_discard(*, change: Change, by: User | None) -> Change:
    """Give up on a failed or conflicting change (or one waiting for a create that failed); the record goes
    back to the value HubSpot has."""
    current = Change.objects.select_for_update().get(pk=change.pk)
    waiting = current.status == ChangeStatus.PENDING and bool(current.waits_for)
    if current.status not in (ChangeStatus.FAILED, ChangeStatus.CONFLICT) and not waiting:
        raise ChangeNotAllowed(f"This change is {current.get_status_display().lower()} now.")
    _settle(current, ChangeStatus.DISCARDED, Resolution.DISCARDED, by)
    _undo_locally(current, by)
    return current


@transaction.atomic
def change_keep_mine(*, change: Change, by: User | None) -> Change:
    """Resolve a conflict by sending this change anyway, over HubSpot's newer value."""
    current = _claim_for_resolution(change, (ChangeStatus.CONFLICT,))
    current.status = ChangeStatus.PENDING
    current.force = True
    current.resolution = Resolution.KEPT_MINE
    current.resolved_by = by
    current.next_attempt_at = None
    current.error = ""
    current.save(
        update_fields=[
            "status",
            "force",
            "resolution",
            "resolved_by",
            "next_attempt_at",
            "error",
            "updated_at",
        ]
    )
    _reapply_locally(current)
    queue_push_on_commit()
    return current


@transaction.atomic
def change_take_hubspot(*, change: Change, by: User | None) -> Change:
    """Resolve a conflict by dropping this change: the record takes HubSpot's value."""
    current = _claim_for_resolution(change, (ChangeStatus.CONFLICT,))
    _settle(current, ChangeStatus.DISCARDED, Resolution.TOOK_HUBSPOT, by)
    _undo_locally(current, by)
    return current


def changes_retry(*, changes: Iterable[Change], by: User | None) -> int:
    """Retry each failed or conflicting change among ``changes``; returns how many were retried."""
    done = 0
    for change in changes:
        try:
            change_retry(change=change, by=by)
        except ChangeNotAllowed:
            continue
        done += 1
    return done


def changes_discard(*, changes: Iterable[Change], by: User | None) -> int:
    """Discard each failed or conflicting change among ``changes``; returns how many were discarded."""
    done = 0
    for change in changes:
        try:
            change_discard(change=change, by=by)
        except ChangeNotAllowed:
            continue
        done += 1
    return done
