"""Writes of the pipelines app: order pipelines and stages, edited here at once and sent to HubSpot through
the outbox (DESIGN.md §5), like the records' edits in ``hubspot_sync.outbox``.

    pipeline_create(*, label, stages, by, display_order=None) -> Pipeline
    pipeline_update(*, pipeline, by, label=None, display_order=None) -> Change
    pipeline_delete(*, pipeline, by) -> Change
    stage_create(*, pipeline, label, by, state="OPEN", display_order=None) -> Stage
    stage_update(*, stage, by, label=None, display_order=None, state=None) -> Change
    stages_reorder(*, pipeline, stages, by) -> list[Change]
    stage_delete(*, stage, by) -> Change
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction

from hubspot_sync.models import Change, ChangeKind
from hubspot_sync.outbox import queue_push_on_commit, staff_name
from hubspot_sync.pending import new_temp_id, temp_ids_in
from pipelines.models import Pipeline, Stage

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The outbox's object types of pipeline and stage changes, and the kinds that are theirs.
PIPELINE_KINDS = (
    ChangeKind.PIPELINE_CREATE,
    ChangeKind.PIPELINE_UPDATE,
    ChangeKind.PIPELINE_DELETE,
    ChangeKind.STAGE_CREATE,
    ChangeKind.STAGE_UPDATE,
    ChangeKind.STAGE_DELETE,
)


def _stage_values(stage: Stage) -> dict[str, Any]:
    return {"label": stage.label, "display_order": stage.display_order, "state": stage.state}


@transaction.atomic
def pipeline_create(
    *, label: str, stages: Sequence[tuple[str, str]], by: User | None, display_order: int | None = None
) -> Pipeline:
    """Create an order pipeline with its stages [(label, "OPEN" | "CLOSED")], here at once and in HubSpot."""
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
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
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
    return change


def pipeline_change_locally(change: Change, undo: bool) -> None:
    """Apply (or undo) a pipeline or stage change on the cached pipelines (the outbox calls this when a
    change is retried, discarded or cascades)."""
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
