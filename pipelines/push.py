"""Push of the pipelines app: what the outbox's "pipelines" and "deletes" phases send to HubSpot (pipelines
and stages created, updated and deleted), registered with the push in ``PipelinesConfig.ready``; and the
swap of a pipeline's or stage's temporary id for HubSpot's once HubSpot has created it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q

from hubspot_sync import client, push, registry
from hubspot_sync.models import Change, ChangeKind, ChangeStatus
from hubspot_sync.pending import adopt_in_changes, replace_property_value
from hubspot_sync.push import Claim
from pipelines.models import Pipeline, Stage

# The mirrored type whose records sit in these pipelines (its hs_pipeline and hs_pipeline_stage name them).
RECORDS_TYPE = "orders"


def _records_model() -> Any:
    return registry.get(RECORDS_TYPE).model


def must_wait(row: dict[str, Any]) -> bool:
    """Whether a delete must wait: earlier order edits (moves out of the stage) or earlier changes of the
    same pipeline are not in HubSpot yet."""
    pipeline_id = row["parent_id"] if row["object_type"] == "stages" else row["object_id"]
    return (
        Change.objects.filter(
            pk__lt=row["pk"], status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING), waits_for=""
        )
        .filter(
            Q(object_type=RECORDS_TYPE, kind=ChangeKind.UPDATE)
            | Q(object_type="pipelines", object_id=pipeline_id)
            | Q(object_type="stages", parent_id=pipeline_id)
        )
        .exists()
    )


def _merged(changes: Sequence[Change]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for change in changes:
        values.update(change.new)
    return values


def _recent_enough(created_at: datetime | None, change: Change) -> bool:
    # Only something made after the change was recorded can be the result of an earlier attempt of it.
    return created_at is None or created_at >= change.created_at - timedelta(minutes=1)


def push_pipelines(claim: Claim) -> int:
    """Send a claim of the "pipelines" phase: one pipeline or stage created, or one's updates together."""
    first = claim.changes[0]
    try:
        if first.kind == ChangeKind.PIPELINE_CREATE:
            _create_pipeline(first)
        elif first.kind == ChangeKind.STAGE_CREATE:
            _create_stage(first)
        elif first.kind == ChangeKind.PIPELINE_UPDATE:
            values = _merged(claim.changes)
            client.update_pipeline(
                RECORDS_TYPE,
                first.object_id,
                label=values.get("label"),
                display_order=values.get("display_order"),
            )
        else:
            values = _merged(claim.changes)
            stage = Stage.objects.filter(
                pipeline__hubspot_id=first.parent_id, hubspot_id=first.object_id
            ).first()
            metadata = dict(stage.metadata) if stage else {}
            metadata["state"] = (
                values.get("state") or metadata.get("state") or (stage.state if stage else "OPEN")
            )
            client.update_stage(
                RECORDS_TYPE,
                first.parent_id,
                first.object_id,
                metadata=metadata,
                label=values.get("label"),
                display_order=values.get("display_order"),
            )
    except client.Rejected as exc:
        return push.settle_failed(
            claim, claim.changes, error=push.refused(exc.message), response=push.error_response(exc)
        )
    return push.settle_applied(claim, claim.changes)


def _create_pipeline(change: Change) -> None:
    label = str(change.new["label"])
    stages = list(change.payload.get("stages", []))
    found: client.ApiPipeline | None = None
    if change.attempts > 1:
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
    if change.attempts > 1:
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
    """Send a claim of the "deletes" phase: one pipeline or stage deleted (HubSpot checks its references)."""
    first = claim.changes[0]
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
