"""Push of the pipelines app: what the outbox's "pipelines" and "deletes" phases send to HubSpot (pipelines
and stages created, updated and deleted), registered with the push in ``PipelinesConfig.ready``; and the
swap of a pipeline's or stage's temporary id for HubSpot's once HubSpot has created it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from hubspot_sync import client, push, registry
from hubspot_sync.models import Change, ChangeKind, ChangeStatus
from hubspot_sync.pending import adopt_in_changes, replace_property_value
from hubspot_sync.push import Claim
from hubspot_sync.registry import parse_datetime
from pipelines import services
from pipelines.models import Pipeline, Stage

# The mirrored type whose records sit in these pipelines (its hs_pipeline and hs_pipeline_stage name them).
RECORDS_TYPE = "orders"


def _records_model() -> Any:
    return registry.get(RECORDS_TYPE).model


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = (
        Change.objects.filter(pk=row["pk"]).values_list("payload", flat=True).first() or {}
    )
    return found


def _moves_out(row: dict[str, Any], statuses: Sequence[str], payload: dict[str, Any]) -> QuerySet[Change]:
    """Order moves (edits of hs_pipeline_stage, or hs_pipeline for a pipeline) out of what the row's delete
    deletes, made before it or after (a large delete's are written in a worker): by the id it had then (a
    temporary one, maybe, kept in the delete's payload) or has now."""
    ids = {row["object_id"], str(payload.get("moved_from") or row["object_id"])}
    name = "hs_pipeline_stage" if row["object_type"] == "stages" else "hs_pipeline"
    return Change.objects.filter(
        object_type=RECORDS_TYPE,
        kind=ChangeKind.UPDATE,
        status__in=statuses,
        **{f"base__{name}__in": sorted(ids)},
    )


def must_wait(row: dict[str, Any]) -> bool:
    """Whether a delete must wait: orders moved out of what it deletes, or earlier changes of the same
    pipeline, are not in HubSpot yet (HubSpot refuses to delete a stage its records are in)."""
    payload = _payload(row)
    until = parse_datetime(str(payload.get("moving_until") or ""))
    if until is not None and until > timezone.now():
        return True  # its orders are still being moved out (deletion_moves_continue renews this)
    pipeline_id = row["parent_id"] if row["object_type"] == "stages" else row["object_id"]
    if (
        Change.objects.filter(
            pk__lt=row["pk"], status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING), waits_for=""
        )
        .filter(
            Q(object_type="pipelines", object_id=pipeline_id) | Q(object_type="stages", parent_id=pipeline_id)
        )
        .exists()
    ):
        return True
    # Moves that wait for their target stage's create count too: the delete goes after them.
    return _moves_out(row, (ChangeStatus.PENDING, ChangeStatus.PUSHING), payload).exists()


def _merged(changes: Sequence[Change]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for change in changes:
        values.update(change.new)
    return values


def _recent_enough(created_at: datetime | None, change: Change) -> bool:
    # Only something made after the change was recorded can be the result of an earlier attempt of it.
    return created_at is None or created_at >= change.created_at - timedelta(minutes=1)


def push_pipelines(claim: Claim) -> int:
    """Send a claim of the "pipelines" phase: one pipeline or stage created, or one's updates together
    (after reading what HubSpot has now: a value changed there since the edit is a conflict, as for
    records)."""
    first = claim.changes[0]
    try:
        if first.kind == ChangeKind.PIPELINE_CREATE:
            _create_pipeline(first)
        elif first.kind == ChangeKind.STAGE_CREATE:
            _create_stage(first)
        else:
            return _push_updates(claim)
    except client.Rejected as exc:
        return push.settle_failed(
            claim, claim.changes, error=push.refused(exc.message), response=push.error_response(exc)
        )
    return push.settle_applied(claim, claim.changes)


# What the staff call the values a pipeline or stage change sets.
_NAMES = {"label": "label", "display_order": "place", "state": "state"}


def _remote_values(change: Change, pipeline: client.ApiPipeline | None) -> dict[str, Any] | None:
    """HubSpot's current values of what the change sets (None: HubSpot has deleted the thing)."""
    if pipeline is None:
        return None
    if change.kind == ChangeKind.PIPELINE_UPDATE:
        return {"label": pipeline.label, "display_order": pipeline.display_order}
    stage = next((s for s in pipeline.stages if s.id == change.object_id and not s.archived), None)
    if stage is None:
        return None
    return {
        "label": stage.label,
        "display_order": stage.display_order,
        "state": str(stage.metadata.get("state") or ""),
        "metadata": dict(stage.metadata),
    }


def _held_back(changes: Sequence[Change], theirs: dict[str, Any]) -> list[Change]:
    """The changes HubSpot's current values conflict with: a value changed there since the edit's base (not
    to one of the values these changes set, which an earlier attempt may have written). A change sharing a
    value with one held back is held back too, so what is sent never depends on a change held back."""
    expected: dict[str, Any] = {}
    ours: dict[str, list[Any]] = {}
    forced: set[str] = set()
    for change in changes:
        for name, value in change.new.items():
            expected.setdefault(name, change.base.get(name, value))
            ours.setdefault(name, []).append(value)
            if change.force:
                forced.add(name)
    bad = {
        name
        for name, values in ours.items()
        if name not in forced and theirs.get(name) != expected[name] and theirs.get(name) not in values
    }
    held: list[Change] = []
    grew = bool(bad)
    while grew:
        grew = False
        for change in changes:
            if change not in held and bad & set(change.new):
                held.append(change)
                if set(change.new) - bad:
                    bad |= set(change.new)
                    grew = True
    return held


def _settle_conflict(claim: Claim, changes: Sequence[Change], theirs: dict[str, Any] | None) -> int:
    """Mark the changes a conflict, with what HubSpot has (``remote``), for Keep mine or Take HubSpot's."""
    settled = 0
    for change in changes:
        noun = "the pipeline" if change.object_type == "pipelines" else "the stage"
        if theirs is None:
            remote: dict[str, Any] = {"archived": True}
            error = f"Someone deleted {noun} in HubSpot since your edit."
        else:
            remote = {name: theirs.get(name) for name in change.new}
            differing = [
                f"its {_NAMES.get(name, name)} is now “{theirs.get(name)}”"
                for name in change.new
                if theirs.get(name) != change.base.get(name) and theirs.get(name) != change.new[name]
            ]
            error = f"Someone changed {noun} in HubSpot since your edit: {', '.join(differing) or 'a value'}."
        settled += Change.objects.filter(pk=change.pk, claim=claim.token, status=ChangeStatus.PUSHING).update(
            status=ChangeStatus.CONFLICT,
            error=error,
            remote=remote,
            response={"remote": remote},
            claim="",
            lease_until=None,
        )
    return settled


def _push_updates(claim: Claim) -> int:
    """A pipeline's or a stage's updates together: read HubSpot's pipeline, hold back what conflicts, send
    the rest in one PATCH (none when HubSpot has those values already)."""
    first = claim.changes[0]
    pipeline_id = first.object_id if first.kind == ChangeKind.PIPELINE_UPDATE else first.parent_id
    try:
        current: client.ApiPipeline | None = client.get_pipeline(RECORDS_TYPE, pipeline_id)
    except client.NotFound:
        current = None
    theirs = _remote_values(first, current)
    forced = any(c.force for c in claim.changes)
    settled = 0
    if theirs is None and not forced:
        return _settle_conflict(claim, claim.changes, None)
    held = _held_back(claim.changes, theirs) if theirs is not None else []
    if held:
        settled += _settle_conflict(claim, held, theirs)
    rest = [c for c in claim.changes if c not in held]
    if not rest:
        return settled
    values = _merged(rest)
    restore = theirs is None
    to_send = values if restore else {k: v for k, v in values.items() if theirs.get(k) != v}  # type: ignore[union-attr]
    if to_send:
        if first.kind == ChangeKind.PIPELINE_UPDATE:
            client.update_pipeline(
                RECORDS_TYPE,
                first.object_id,
                label=to_send.get("label"),
                display_order=to_send.get("display_order"),
                restore=restore,
            )
        else:
            stage = Stage.objects.filter(
                pipeline__hubspot_id=first.parent_id, hubspot_id=first.object_id
            ).first()
            metadata = dict((theirs or {}).get("metadata") or (stage.metadata if stage else {}))
            metadata["state"] = str(
                values.get("state") or metadata.get("state") or (stage.state if stage else "OPEN")
            )
            client.update_stage(
                RECORDS_TYPE,
                first.parent_id,
                first.object_id,
                metadata=metadata,
                label=to_send.get("label"),
                display_order=to_send.get("display_order"),
                restore=restore,
            )
    return settled + push.settle_applied(claim, rest)


def _may_have_landed(change: Change) -> bool:
    """Whether an earlier attempt of a create may have reached HubSpot with its answer lost (then the thing
    is looked for before it is made again). One HubSpot refused made nothing: a stage of the same label
    found now is someone else's (the refusal may have been that label, made there meanwhile)."""
    return change.attempts > 1 and not (change.response or {}).get("category")


def _create_pipeline(change: Change) -> None:
    label = str(change.new["label"])
    stages = list(change.payload.get("stages", []))
    found: client.ApiPipeline | None = None
    if _may_have_landed(change):
        # An earlier attempt may have created it before its answer was lost (labels are unique per type).
        found = next(
            (
                p
                for p in client.list_pipelines(RECORDS_TYPE)
                if p.label.strip().lower() == label.strip().lower() and _recent_enough(p.created_at, change)
            ),
            None,
        )
    if found is None:
        found = client.create_pipeline(
            RECORDS_TYPE,
            label=label,
            display_order=int(change.new.get("display_order") or 0),
            stages=[
                client.StageInput(
                    label=str(s["label"]),
                    display_order=int(s["display_order"]),
                    metadata={"state": s["state"]},
                )
                for s in stages
            ],
        )
    remote_stages = {s.label.strip().lower(): s for s in found.stages}
    with transaction.atomic():
        adopt_pipeline_id(change.object_id, found.id)
        for stage in stages:
            remote = remote_stages.get(str(stage["label"]).strip().lower())
            if remote is not None:
                adopt_stage_id(stage["id"], remote.id)
    change.object_id = found.id


def _create_stage(change: Change) -> None:
    label = str(change.new["label"])
    found: client.ApiStage | None = None
    if _may_have_landed(change):
        pipeline = client.get_pipeline(RECORDS_TYPE, change.parent_id)
        found = next((s for s in pipeline.stages if s.label.strip().lower() == label.strip().lower()), None)
    if found is None:
        found = client.create_stage(
            RECORDS_TYPE,
            change.parent_id,
            label=label,
            display_order=int(change.new.get("display_order") or 0),
            metadata={"state": str(change.new.get("state") or "OPEN")},
        )
    adopt_stage_id(change.object_id, found.id)


def push_deletes(claim: Claim) -> int:
    """Send a claim of the "deletes" phase: one pipeline or stage deleted (HubSpot checks its references).
    It goes once every move out of it is in HubSpot (``must_wait``); a move HubSpot refused left its order
    there, so the delete is not sent but fails here, saying which moves to settle first."""
    first = claim.changes[0]
    if "moving_until" in first.payload:
        return _resume_moves(claim, first)
    refused = list(
        _moves_out(
            {"pk": first.pk, "object_type": first.object_type, "object_id": first.object_id},
            (ChangeStatus.FAILED,),
            first.payload,
        ).values_list("object_id", flat=True)[:1000]
    )
    if refused:
        count = len(set(refused))
        return push.settle_failed(
            claim,
            claim.changes,
            error=(
                f"{count:,} order{'s' if count != 1 else ''} could not be moved out first (HubSpot refused "
                "the move; see the failed changes): retry or discard those, then retry this delete."
            ),
            response={"category": "MOVES_FAILED", "ids": sorted(set(refused))[:100]},
        )
    try:
        if first.kind == ChangeKind.STAGE_DELETE:
            client.delete_stage(RECORDS_TYPE, first.parent_id, first.object_id, validate_references=True)
        else:
            client.delete_pipeline(RECORDS_TYPE, first.object_id, validate_references=True)
    except client.NotFound:
        pass  # already gone: what the change asked for
    except client.Rejected as exc:
        return push.settle_failed(
            claim, claim.changes, error=push.refused(exc.message), response=push.error_response(exc)
        )
    return push.settle_applied(claim, claim.changes)


def _resume_moves(claim: Claim, change: Change) -> int:
    """A delete whose orders stopped moving out (the worker moving them died): move the rest again, and send
    the delete after them."""
    source = services.deletion_source(change)
    with transaction.atomic():
        current = Change.objects.select_for_update().get(pk=change.pk)
        payload = dict(current.payload)
        if source is not None and services.orders_in(source).exists():
            payload["moving_until"] = (
                timezone.now() + timedelta(seconds=settings.PIPELINE_DELETE_MOVING_LEASE_S)
            ).isoformat()
            services.queue_deletion_moves_on_commit(current.pk)
        else:
            payload.pop("moving_until", None)  # every order moved; only the note was left behind
        Change.objects.filter(pk=current.pk, claim=claim.token, status=ChangeStatus.PUSHING).update(
            payload=payload,
            status=ChangeStatus.PENDING,
            claim="",
            lease_until=None,
            next_attempt_at=timezone.now(),
            error="Moving its orders out first.",
        )
    return 0


@transaction.atomic
def adopt_pipeline_id(temp_id: str, real_id: str) -> None:
    """HubSpot created the pipeline: give the cached one, its records' copies and changes HubSpot's id."""
    existing = Pipeline.objects.filter(object_type=RECORDS_TYPE, hubspot_id=real_id).first()
    ours = Pipeline.objects.filter(object_type=RECORDS_TYPE, hubspot_id=temp_id).first()
    if existing is not None and ours is not None:
        # A pipelines sync got there first: keep ours (it has the local stages) and drop the copy.
        existing.stages.all().delete()
        existing.orders.update(pipeline=ours)
        existing.delete()
    Pipeline.objects.filter(object_type=RECORDS_TYPE, hubspot_id=temp_id).update(
        hubspot_id=real_id, archived=False
    )
    replace_property_value(_records_model(), "hs_pipeline", temp_id, real_id)
    adopt_in_changes("pipelines", temp_id, real_id)


@transaction.atomic
def adopt_stage_id(temp_id: str, real_id: str) -> None:
    """HubSpot created the stage: give the cached one, its records' copies and changes HubSpot's id."""
    for ours in Stage.objects.filter(hubspot_id=temp_id):
        existing = Stage.objects.filter(pipeline=ours.pipeline_id, hubspot_id=real_id).first()
        if existing is not None:
            existing.orders.update(stage=ours)
            existing.delete()
        Stage.objects.filter(pk=ours.pk).update(hubspot_id=real_id, archived=False)
    replace_property_value(_records_model(), "hs_pipeline_stage", temp_id, real_id)
    adopt_in_changes("stages", temp_id, real_id)
