"""The outbox: every staff edit that must reach HubSpot goes through one of these services (DESIGN.md §5).

Each one writes the local record, so the page shows the edit at once, and a ``Change`` row in the same
transaction, and queues the push when the transaction commits. Workers then send the outbox to HubSpot in
batches (``hubspot.push``); a record's unsettled changes stay on top of what a sync brings until they are
applied, fail or are discarded. Pass the record as it is cached; ``by`` is the member of staff (None for
the system).

Records (orders, carts, contacts, line items)
    record_change(*, obj, properties, by) -> Change
    record_create(*, object_type, properties, by, links=(), id_property=None) -> (record, Change)
    association_add(*, obj, to, by, type_id=None) -> Change
    association_remove(*, obj, to, by, type_id=None) -> Change
Order pipelines and stages
    pipeline_create(*, label, stages, by, display_order=None) -> Pipeline
    pipeline_update(*, pipeline, by, label=None, display_order=None) -> Change
    pipeline_delete(*, pipeline, by) -> Change
    stage_create(*, pipeline, label, by, state="OPEN", display_order=None) -> Stage
    stage_update(*, stage, by, label=None, display_order=None, state=None) -> Change
    stages_reorder(*, pipeline, stages, by) -> list[Change]
    stage_delete(*, stage, by) -> Change
Outcomes (failed and conflicting changes)
    change_retry(*, change, by, properties=None) -> Change      (properties: the corrected values)
    change_discard(*, change, by) -> Change                      (the record goes back to HubSpot's value)
    change_keep_mine(*, change, by) -> Change                    (send it anyway)
    change_take_hubspot(*, change, by) -> Change                 (drop it and take HubSpot's value)
    changes_retry(*, changes, by) -> int, changes_discard(*, changes, by) -> int
Reads for pages
    record_sync_state(object_type, object_id) -> SyncState
    render_sync_state(obj, *, request=None) -> str               (the self-updating component)
    hubspot_ids_with_sync_state(object_type, state) -> ids       (state: unsettled, pending, failed, conflict)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from kombu.exceptions import KombuError

from hubspot import registry
from hubspot.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot.models import (
    OVERLAID,
    UNSETTLED,
    Association,
    Change,
    ChangeKind,
    ChangeStatus,
    ConnectionProblem,
    OutboxState,
    Resolution,
)
from hubspot.pending import (
    VALUE_KINDS,
    is_temp,
    link_edge,
    link_locally,
    new_temp_id,
    spec_for,
    temp_ids_in,
    waiting_on,
    wire,
    write_values,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from hubspot.mirror import MirroredObject
    from pipelines.models import Pipeline, Stage

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
    from hubspot.tasks import push_changes_task

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
        push_changes_task.delay()
    except (KombuError, OSError) as exc:
        # The edit is saved; the periodic sweep queues the push once the broker answers again.
        logger.warning("outbox: could not queue a push (%s); the sweep will", exc)
        return False
    return True


def _queue_on_commit() -> None:
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
        from hubspot.tasks import refresh_records_task

        try:
            refresh_records_task.delay(object_type, ids)
        except (KombuError, OSError) as exc:
            logger.warning("outbox: could not queue a refresh of %s %s (%s)", object_type, ids, exc)

    transaction.on_commit(refresh)


# --- records ------------------------------------------------------------------------------------------------


def _name(by: User | None) -> str:
    if by is None:
        return ""
    return (by.get_full_name() or by.get_username())[:150]


def _lock(obj: MirroredObject) -> MirroredObject:
    """The record as stored now, locked until commit (concurrent edits of one record queue up)."""
    return type(obj)._default_manager.select_for_update().get(pk=obj.pk)


def _copy_onto(obj: MirroredObject, record: MirroredObject) -> None:
    for f in record._meta.concrete_fields:
        setattr(obj, f.attname, getattr(record, f.attname))


def _bases(object_type: str, record: MirroredObject, names: Iterable[str]) -> dict[str, Any]:
    """The value HubSpot has (or will have once earlier edits land) for each property, as far as we know:
    the base a push compares with HubSpot's current value to find conflicts."""
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
        created_by_name=_name(by),
    )
    _supersede(change, by)
    write_values(spec, record, values)
    _copy_onto(obj, record)
    _queue_on_commit()
    return change


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
        created_by_name=_name(by),
    )
    write_values(spec, record, values)
    for link in link_specs:
        link_edge(spec.name, temp, link["to_type"], link["to_id"], link["type_id"], add=True)
    from hubspot.cache import run_after_upsert

    run_after_upsert(spec, [temp])
    record.refresh_from_db()
    _queue_on_commit()
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
        created_by_name=_name(by),
    )
    link_locally(change, add=kind == ChangeKind.ASSOCIATE)
    from hubspot.cache import run_after_upsert

    # Copies of the link on the records (an order's customer) follow at once.
    run_after_upsert(spec, [obj.hubspot_id])
    run_after_upsert(target, [to.hubspot_id])
    _queue_on_commit()
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


# --- pipelines and stages ---------------------------------------------------------------------------------


def _stage_values(stage: Stage) -> dict[str, Any]:
    return {"label": stage.label, "display_order": stage.display_order, "state": stage.state}


@transaction.atomic
def pipeline_create(
    *, label: str, stages: Sequence[tuple[str, str]], by: User | None, display_order: int | None = None
) -> Pipeline:
    """Create an order pipeline with its stages [(label, "OPEN" | "CLOSED")], here at once and in HubSpot."""
    from pipelines.models import Pipeline, Stage

    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    if display_order is None:
        last = Pipeline.objects.for_orders().order_by("-display_order").first()
        display_order = last.display_order + 1 if last else 0
    pipeline = Pipeline.objects.create(
        hubspot_id=new_temp_id(), object_type="orders", label=label, display_order=display_order
    )
    stage_specs = []
    for order, (stage_label, state) in enumerate(stages):
        stage = Stage.objects.create(
            pipeline=pipeline,
            hubspot_id=new_temp_id(),
            label=stage_label,
            display_order=order,
            state=state,
            metadata={"state": state},
        )
        stage_specs.append({"id": stage.hubspot_id, **_stage_values(stage)})
    Change.objects.create(
        kind=ChangeKind.PIPELINE_CREATE,
        object_type="pipelines",
        object_id=pipeline.hubspot_id,
        new={"label": label, "display_order": display_order},
        payload={"stages": stage_specs, "temp_id": pipeline.hubspot_id},
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return pipeline


@transaction.atomic
def pipeline_update(
    *, pipeline: Pipeline, by: User | None, label: str | None = None, display_order: int | None = None
) -> Change:
    """Rename or reorder a pipeline."""
    new: dict[str, Any] = {}
    if label is not None:
        new["label"] = label
    if display_order is not None:
        new["display_order"] = display_order
    if not new:
        raise ValueError("nothing to change")
    base = {"label": pipeline.label, "display_order": pipeline.display_order}
    for name, value in new.items():
        setattr(pipeline, name, value)
    pipeline.save(update_fields=list(new))
    change = Change.objects.create(
        kind=ChangeKind.PIPELINE_UPDATE,
        object_type="pipelines",
        object_id=pipeline.hubspot_id,
        base={k: base[k] for k in new},
        new=new,
        waits_for=" ".join(temp_ids_in(pipeline.hubspot_id)),
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return change


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, by: User | None) -> Change:
    """Delete a pipeline (HubSpot refuses while orders are in its stages; the change then fails)."""
    pipeline.archived = True
    pipeline.save(update_fields=["archived"])
    change = Change.objects.create(
        kind=ChangeKind.PIPELINE_DELETE,
        object_type="pipelines",
        object_id=pipeline.hubspot_id,
        base={"archived": False},
        new={"archived": True},
        waits_for=" ".join(temp_ids_in(pipeline.hubspot_id)),
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return change


@transaction.atomic
def stage_create(
    *,
    pipeline: Pipeline,
    label: str,
    by: User | None,
    state: str = "OPEN",
    display_order: int | None = None,
) -> Stage:
    """Add a stage to a pipeline; orders may move into it at once (their moves wait for HubSpot's id)."""
    from pipelines.models import Stage

    if display_order is None:
        last = pipeline.stages.order_by("-display_order").first()
        display_order = last.display_order + 1 if last else 0
    stage = Stage.objects.create(
        pipeline=pipeline,
        hubspot_id=new_temp_id(),
        label=label,
        display_order=display_order,
        state=state,
        metadata={"state": state},
    )
    Change.objects.create(
        kind=ChangeKind.STAGE_CREATE,
        object_type="stages",
        object_id=stage.hubspot_id,
        parent_id=pipeline.hubspot_id,
        new=_stage_values(stage),
        payload={"temp_id": stage.hubspot_id},
        waits_for=" ".join(temp_ids_in(pipeline.hubspot_id)),
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return stage


@transaction.atomic
def stage_update(
    *,
    stage: Stage,
    by: User | None,
    label: str | None = None,
    display_order: int | None = None,
    state: str | None = None,
) -> Change:
    """Rename a stage, move it, or mark it OPEN or CLOSED."""
    new: dict[str, Any] = {}
    if label is not None:
        new["label"] = label
    if display_order is not None:
        new["display_order"] = display_order
    if state is not None:
        new["state"] = state
    if not new:
        raise ValueError("nothing to change")
    base = _stage_values(stage)
    for name, value in new.items():
        setattr(stage, name, value)
    stage.metadata = {**stage.metadata, "state": stage.state}
    stage.save(update_fields=[*new, "metadata"])
    change = Change.objects.create(
        kind=ChangeKind.STAGE_UPDATE,
        object_type="stages",
        object_id=stage.hubspot_id,
        parent_id=stage.pipeline.hubspot_id,
        base={k: base[k] for k in new},
        new=new,
        waits_for=" ".join(temp_ids_in(stage.hubspot_id, stage.pipeline.hubspot_id)),
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return change


@transaction.atomic
def stages_reorder(*, pipeline: Pipeline, stages: Sequence[Stage], by: User | None) -> list[Change]:
    """Put a pipeline's stages in the given order (one change per stage that moved)."""
    return [
        stage_update(stage=stage, by=by, display_order=order)
        for order, stage in enumerate(stages)
        if stage.display_order != order
    ]


@transaction.atomic
def stage_delete(*, stage: Stage, by: User | None) -> Change:
    """Delete a stage (HubSpot refuses while orders are in it; the change then fails with its message)."""
    stage.archived = True
    stage.save(update_fields=["archived"])
    change = Change.objects.create(
        kind=ChangeKind.STAGE_DELETE,
        object_type="stages",
        object_id=stage.hubspot_id,
        parent_id=stage.pipeline.hubspot_id,
        base={"archived": False},
        new={"archived": True},
        waits_for=" ".join(temp_ids_in(stage.hubspot_id, stage.pipeline.hubspot_id)),
        created_by=by,
        created_by_name=_name(by),
    )
    _queue_on_commit()
    return change


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
        _pipeline_locally(change, undo=False)


def _pipeline_locally(change: Change, *, undo: bool) -> None:
    """Apply (or undo) a pipeline or stage change on the cached pipelines."""
    from pipelines.models import Pipeline, Stage

    values = change.base if undo else change.new
    if change.kind in (ChangeKind.PIPELINE_UPDATE, ChangeKind.PIPELINE_DELETE):
        Pipeline.objects.filter(object_type="orders", hubspot_id=change.object_id).update(**values)
    elif change.kind in (ChangeKind.STAGE_UPDATE, ChangeKind.STAGE_DELETE):
        for stage in Stage.objects.filter(pipeline__hubspot_id=change.parent_id, hubspot_id=change.object_id):
            for name, value in values.items():
                setattr(stage, name, value)
            stage.metadata = {**stage.metadata, "state": stage.state}
            stage.save()
    elif undo and change.kind == ChangeKind.PIPELINE_CREATE:
        Pipeline.objects.filter(object_type="orders", hubspot_id=change.object_id).delete()
    elif undo and change.kind == ChangeKind.STAGE_CREATE:
        Stage.objects.filter(hubspot_id=change.object_id).delete()


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
        _pipeline_locally(change, undo=True)
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
    _queue_on_commit()
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
    _queue_on_commit()
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


# --- reads for pages ----------------------------------------------------------------------------------------

# How long a card says "in HubSpot" after its last change landed.
PUSHED_SHOWN_S = 30

_STATE_STATUSES: dict[str, tuple[str, ...]] = {
    "unsettled": tuple(UNSETTLED),
    "pending": (ChangeStatus.PENDING, ChangeStatus.PUSHING),
    "failed": (ChangeStatus.FAILED,),
    "conflict": (ChangeStatus.CONFLICT,),
}


@dataclass
class SyncState:
    """Where a record stands with HubSpot: what the sync-state component shows."""

    object_type: str
    object_id: str
    changes: list[Change] = field(default_factory=list)  # unsettled, oldest first
    recent: Change | None = None  # the last change, when it landed a moment ago
    paused: ConnectionProblem | None = None

    @property
    def state(self) -> str:
        statuses = {c.status for c in self.changes}
        if ChangeStatus.CONFLICT in statuses:
            return "conflict"
        if ChangeStatus.FAILED in statuses or any(blocked_by(c) for c in self.changes):
            return "failed"
        if statuses:
            if self.paused is not None:
                return "paused"
            if any(c.error for c in self.changes):
                return "retrying"
            return "pending"
        return "pushed" if self.recent is not None else "settled"

    @property
    def polling(self) -> bool:
        """Whether the component asks again: until every change is in HubSpot or needs a person."""
        return self.state in ("pending", "retrying", "paused")

    @property
    def problems(self) -> list[Change]:
        """Changes that need a person: failed, in conflict, or waiting for a create that failed."""
        return [
            c
            for c in self.changes
            if c.status in (ChangeStatus.FAILED, ChangeStatus.CONFLICT) or blocked_by(c)
        ]

    @property
    def waiting(self) -> list[Change]:
        return [c for c in self.changes if c.status in (ChangeStatus.PENDING, ChangeStatus.PUSHING)]

    @property
    def dom_id(self) -> str:
        return f"sync-{self.object_type}-{self.object_id}"


def blocked_by(change: Change) -> Change | None:
    """The failed create a pending change waits for (noted by ``_note_blocked``), if any."""
    return getattr(change, "blocked_by", None)


def _note_blocked(changes: Sequence[Change]) -> None:
    """Mark pending changes that wait for a record, pipeline or stage whose create HubSpot refused: they
    can't go until that create is retried, and may be discarded meanwhile."""
    waiting = [c for c in changes if c.status == ChangeStatus.PENDING and c.waits_for]
    temp_ids = {t for c in waiting for t in c.waiting_for}
    if not temp_ids:
        return
    failed = {
        c.object_id: c
        for c in Change.objects.filter(
            object_id__in=temp_ids,
            kind__in=(ChangeKind.CREATE, ChangeKind.PIPELINE_CREATE, ChangeKind.STAGE_CREATE),
            status__in=(ChangeStatus.FAILED, ChangeStatus.CONFLICT),
        )
    }
    for change in waiting:
        creator = next((failed[t] for t in change.waiting_for if t in failed), None)
        if creator is not None:
            change.blocked_by = creator  # type: ignore[attr-defined]


def _paused() -> ConnectionProblem | None:
    return ConnectionProblem.objects.filter(
        Q(kind=ConnectionProblem.Kind.AUTH)
        | Q(kind=ConnectionProblem.Kind.DAILY_LIMIT, until__gt=timezone.now())
    ).first()


def _current_id(object_type: str, object_id: str) -> str:
    """A temporary id a page still holds, followed to HubSpot's id once the record was created."""
    if not is_temp(object_id):
        return object_id
    if Change.objects.filter(object_type=object_type, object_id=object_id).exists():
        return object_id
    created = (
        Change.objects.filter(object_type=object_type, payload__temp_id=object_id)
        .values_list("object_id", flat=True)
        .first()
    )
    return created or object_id


def record_sync_state(object_type: str, object_id: str) -> SyncState:
    """The record's unsettled changes, or its last one if it landed a moment ago."""
    object_id = _current_id(object_type, object_id)
    changes = list(
        Change.objects.for_record(object_type, object_id)
        .unsettled()
        .select_related("created_by")
        .order_by("pk")
    )
    recent = None
    if not changes:
        recent = (
            Change.objects.for_record(object_type, object_id)
            .filter(
                status=ChangeStatus.APPLIED,
                applied_at__gte=timezone.now() - timedelta(seconds=PUSHED_SHOWN_S),
            )
            .order_by("-applied_at")
            .first()
        )
    _note_blocked(changes)
    return SyncState(object_type, object_id, changes, recent, _paused() if changes else None)


def _object_key(obj: Any) -> tuple[str, str]:
    from pipelines.models import Pipeline, Stage

    if isinstance(obj, Pipeline):
        return "pipelines", obj.hubspot_id
    if isinstance(obj, Stage):
        return "stages", obj.hubspot_id
    return spec_for(obj).name, obj.hubspot_id


def _unsettled_pks(object_type: str, statuses: Sequence[str] = UNSETTLED) -> QuerySet[Change, Any]:
    """The type's changes in these statuses, as a subquery of pks that only the (type, status) index answers.

    Asked for whole rows directly, SQLite's planner walks the table instead: its statistics know only that
    nearly every change of a type is applied (the audit log), so a status list looks unselective to it.
    """
    return Change.objects.filter(object_type=object_type, status__in=statuses).values("pk")


def _states_for_page(request: HttpRequest, object_type: str) -> dict[str, SyncState]:
    """Every record of the type with something to show, read once per request (a board has many cards)."""
    cache: dict[str, dict[str, SyncState]] = request.__dict__.setdefault("_outbox_states", {})
    if object_type not in cache:
        states: dict[str, SyncState] = {}
        paused = _paused()
        unsettled = list(Change.objects.filter(pk__in=_unsettled_pks(object_type)).order_by("pk"))
        _note_blocked(unsettled)
        for change in unsettled:
            states.setdefault(change.object_id, SyncState(object_type, change.object_id, paused=paused))
            states[change.object_id].changes.append(change)
        recently = timezone.now() - timedelta(seconds=PUSHED_SHOWN_S)
        for change in Change.objects.filter(
            object_type=object_type, status=ChangeStatus.APPLIED, applied_at__gte=recently
        ).order_by("applied_at"):
            if change.object_id not in states or not states[change.object_id].changes:
                states[change.object_id] = SyncState(object_type, change.object_id, recent=change)
        cache[object_type] = states
    return cache[object_type]


def sync_state_for(obj: Any, *, request: HttpRequest | None = None) -> SyncState:
    """The record's sync state; with the request, every record of its type is read once per request."""
    object_type, object_id = _object_key(obj)
    if request is not None:
        return _states_for_page(request, object_type).get(object_id) or SyncState(object_type, object_id)
    return record_sync_state(object_type, object_id)


def render_sync_state(obj: Any, *, request: HttpRequest | None = None) -> str:
    """The record's sync-state component (pending, in HubSpot, failed with HubSpot's message, conflict with
    the choices), which keeps itself up to date until settled. Any page can embed it."""
    state = sync_state_for(obj, request=request)
    return render_to_string("hubspot/record.html#record-state", {"sync": state}, request=request)


def hubspot_ids_with_sync_state(object_type: str, state: str) -> QuerySet[Change, str]:
    """Ids of the records of a type in a sync state (for ``hubspot_id__in=`` filters)."""
    statuses = _STATE_STATUSES.get(state)
    if statuses is None:
        raise ValueError(f"unknown sync state {state!r}; one of {', '.join(_STATE_STATUSES)}")
    return Change.objects.filter(pk__in=_unsettled_pks(object_type, statuses)).values_list(
        "object_id", flat=True
    )


def outbox_summary(*, limit: int = 200) -> dict[str, Any]:
    """The Sync page's outbox: counts by status, and the unsettled changes, problems first."""
    counts = dict(
        Change.objects.unsettled().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    return {
        "pending": counts.get(ChangeStatus.PENDING, 0) + counts.get(ChangeStatus.PUSHING, 0),
        "failed": counts.get(ChangeStatus.FAILED, 0),
        "conflict": counts.get(ChangeStatus.CONFLICT, 0),
        "changes": list(Change.objects.outbox()[:limit]),
        "paused": _paused(),
    }
