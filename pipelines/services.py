"""Writes of the pipelines app: order pipelines and stages, edited here at once and sent to HubSpot through
the outbox (DESIGN.md §5), like the records' edits in ``hubspot_sync.outbox``.

Every edit is checked first against HubSpot's rules (labels, the stage cap, unique labels) and the stage
rules; a refusal raises ``PipelineRuleError`` (its text says why, for the person) before anything is written
or sent. Only Pipeline admins edit (``by`` None is the system).

    pipeline_create(*, label, stages, by, display_order=None) -> Pipeline
    pipeline_update(*, pipeline, by, label=None, display_order=None) -> Change
    pipeline_archive_preview(*, pipeline, move_to=None) -> PipelineArchivePreview
    allowed_archive_targets(pipeline) -> list[Stage]
    pipeline_delete(*, pipeline, by, move_to=None) -> Change           (archives it; its orders move first)
    stage_create(*, pipeline, label, by, state="OPEN", display_order=None) -> Stage
    stage_update(*, stage, by, label=None, display_order=None, state=None) -> Change
    stages_reorder(*, pipeline, stages, by) -> list[Change]
    stage_delete_preview(*, stage, move_to=None) -> StageDeletePreview
    allowed_delete_targets(stage) -> list[Stage]
    stage_delete(*, stage, by, move_to=None) -> Change                 (its orders move first)

An edit of a pipeline or stage HubSpot has not created yet changes the create that is still to be sent;
deletes wait in the outbox until HubSpot has every move out of what they delete (``pipelines.push``).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from config.permissions import PIPELINE_ADMIN, in_group
from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition, Resolution
from hubspot_sync.outbox import queue_push_on_commit, staff_name
from hubspot_sync.pending import is_temp, new_temp_id, temp_ids_in
from pipelines import hooks, rules
from pipelines.models import Pipeline, Stage, StageState

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
RECORDS_TYPE = "orders"
# displayOrder is an int32 in HubSpot's pipeline schemas.
DISPLAY_ORDER_MAX = 2**31 - 1
# Records per batch update call (HubSpot's batch limit), for the previews' call counts.
BATCH = 100


class PipelineRuleError(ValueError):
    """An edit HubSpot or the stage rules would refuse; ``str(exc)`` says why, in the staff's words."""


# --- checks ---------------------------------------------------------------------------------------------


def _check_may_edit(by: User | None) -> None:
    if by is not None and not in_group(by, PIPELINE_ADMIN):
        raise PermissionDenied("Only Pipeline admins edit pipelines.")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean_label(value: object, *, noun: str, limit: int) -> str:
    """A label as HubSpot will keep it (trimmed), or the reason it can't be one."""
    label = value.strip() if isinstance(value, str) else ""
    if not label:
        raise PipelineRuleError(f"A {noun} needs a label.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch != "\u200d" for ch in label):
        raise PipelineRuleError(f"A {noun} label can't hold line breaks, tabs or other control characters.")
    if len(label) > limit:
        raise PipelineRuleError(
            f"“{_short(label)}” is {len(label)} characters long; HubSpot takes {noun} labels of at most "
            f"{limit}."
        )
    return label


def _label_key(label: str) -> str:
    label = label.strip()
    return label.casefold() if settings.HUBSPOT_PIPELINE_LABELS_IGNORE_CASE else label


def _check_pipeline_label_free(label: str, *, except_pk: int | None = None) -> None:
    for other in Pipeline.objects.for_orders():
        if other.pk != except_pk and _label_key(other.label) == _label_key(label):
            raise PipelineRuleError(f"There is already an order pipeline called “{other.label}”.")


def _check_stage_label_free(pipeline: Pipeline, label: str, *, except_pk: int | None = None) -> None:
    for other in pipeline.stages.filter(archived=False):
        if other.pk != except_pk and _label_key(other.label) == _label_key(label):
            raise PipelineRuleError(
                f"{pipeline.label} already has a stage called “{other.label}”: stage labels are unique "
                "within a pipeline."
            )


def _check_state(state: object) -> str:
    if state not in StageState.values:
        raise PipelineRuleError(f"A stage is either OPEN or CLOSED, not “{_short(str(state))}”.")
    return str(state)


def _check_display_order(value: object, *, noun: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= DISPLAY_ORDER_MAX:
        raise PipelineRuleError(f"A {noun}'s place is a whole number from 0 to {DISPLAY_ORDER_MAX:,}.")
    return value


def _check_stage_cap(pipeline: Pipeline | None, count: int) -> None:
    cap = settings.HUBSPOT_PIPELINE_STAGE_CAP
    if count > cap:
        where = pipeline.label if pipeline is not None else "An order pipeline"
        raise PipelineRuleError(f"{where} can have at most {cap} stages in HubSpot; this would make {count}.")


def _check_live(pipeline: Pipeline, stage: Stage | None = None) -> None:
    if pipeline.archived or pipeline.object_type != RECORDS_TYPE:
        raise PipelineRuleError(f"{pipeline.label} is archived.")
    if stage is not None and stage.archived:
        raise PipelineRuleError(f"“{stage.label}” is deleted.")


def _locked_pipeline(pipeline: Pipeline) -> Pipeline:
    """The pipeline as stored now, locked until commit: edits of one pipeline's stages queue up, so two
    people can't each add the 30th stage or the same label."""
    return Pipeline.objects.select_for_update().get(pk=pipeline.pk)


def _live_stages(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(archived=False).order_by("display_order", "label"))


# --- the outbox: bases, superseded edits, creates not yet sent ------------------------------------------


def _base(object_type: str, object_id: str, current: dict[str, Any]) -> dict[str, Any]:
    """What HubSpot has (or will have once earlier edits land) for each value, as far as we know: a failed
    edit's value is shown here but never reached HubSpot, so the base is the value before it."""
    base = dict(current)
    earlier = Change.objects.filter(
        object_type=object_type,
        object_id=object_id,
        status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING, ChangeStatus.FAILED, ChangeStatus.CONFLICT),
        kind__in=(ChangeKind.PIPELINE_UPDATE, ChangeKind.STAGE_UPDATE),
    ).order_by("pk")
    newest_first = list(reversed(earlier))
    for name in current:
        latest = next((c for c in newest_first if name in c.new), None)
        if latest is None:
            continue
        if latest.status == ChangeStatus.CONFLICT and name in latest.remote:
            base[name] = latest.remote[name]  # the person saw HubSpot's value and chose again
        elif latest.status == ChangeStatus.FAILED and current[name] == latest.new.get(name):
            base[name] = latest.base.get(name, current[name])
    return base


def _supersede(change: Change, by: User | None) -> None:
    """Failed or conflicting edits of the same values are replaced by this newer edit of them all."""
    for older in Change.objects.filter(
        object_type=change.object_type,
        object_id=change.object_id,
        kind=change.kind,
        status__in=(ChangeStatus.FAILED, ChangeStatus.CONFLICT),
        pk__lt=change.pk,
    ):
        if set(older.new) <= set(change.new):
            older.status = ChangeStatus.DISCARDED
            older.resolution = Resolution.SUPERSEDED
            older.resolved_by = by
            older.settled_at = timezone.now()
            older.save(update_fields=["status", "resolution", "resolved_by", "settled_at", "updated_at"])


def _unsent_create(kind: str, object_id: str) -> Change | None:
    """The create of a pipeline or stage HubSpot has not been sent yet (pending, or failed and waiting for
    Retry), locked: an edit of the thing then changes what its create sends."""
    if not is_temp(object_id):
        return None
    return (
        Change.objects.select_for_update()
        .filter(kind=kind, object_id=object_id, status__in=(ChangeStatus.PENDING, ChangeStatus.FAILED))
        .first()
    )


def _stage_values(stage: Stage) -> dict[str, Any]:
    return {"label": stage.label, "display_order": stage.display_order, "state": stage.state}


def _fold_into_create(stage: Stage) -> Change | None:
    """Write a stage's current values into its create if that has not been sent (its own, or the new
    pipeline's that carries it); the create that now carries them, or None."""
    own = _unsent_create(ChangeKind.STAGE_CREATE, stage.hubspot_id)
    if own is not None:
        own.new = {**own.new, **_stage_values(stage)}
        own.save(update_fields=["new", "updated_at"])
        return own
    parent = _unsent_create(ChangeKind.PIPELINE_CREATE, stage.pipeline.hubspot_id)
    if parent is not None:
        specs = list(parent.payload.get("stages", []))
        for spec in specs:
            if spec.get("id") == stage.hubspot_id:
                spec.update(_stage_values(stage))
                parent.payload = {**parent.payload, "stages": specs}
                parent.save(update_fields=["payload", "updated_at"])
                return parent
    return None


def _record(
    *,
    kind: str,
    object_type: str,
    object_id: str,
    by: User | None,
    new: dict[str, Any],
    base: dict[str, Any] | None = None,
    parent_id: str = "",
    payload: dict[str, Any] | None = None,
    waits_for: Iterable[str] = (),
) -> Change:
    change = Change.objects.create(
        kind=kind,
        object_type=object_type,
        object_id=object_id,
        parent_id=parent_id,
        base=base or {},
        new=new,
        payload=payload or {},
        waits_for=" ".join(waits_for),
        created_by=by,
        created_by_name=staff_name(by),
    )
    queue_push_on_commit()
    return change


# --- pipelines --------------------------------------------------------------------------------------------


@transaction.atomic
def pipeline_create(
    *, label: str, stages: Sequence[tuple[str, str]], by: User | None, display_order: int | None = None
) -> Pipeline:
    """Create an order pipeline with its stages [(label, "OPEN" | "CLOSED")], here at once and in HubSpot."""
    _check_may_edit(by)
    label = _clean_label(label, noun="pipeline", limit=settings.HUBSPOT_PIPELINE_LABEL_MAX)
    if not stages:
        raise PipelineRuleError("A pipeline needs at least one stage.")
    _check_stage_cap(None, len(stages))
    cleaned: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for stage_label, state in stages:
        stage_label = _clean_label(stage_label, noun="stage", limit=settings.HUBSPOT_STAGE_LABEL_MAX)
        if _label_key(stage_label) in seen:
            raise PipelineRuleError(
                f"Two stages are called “{seen[_label_key(stage_label)]}”: stage labels are unique within a "
                "pipeline."
            )
        seen[_label_key(stage_label)] = stage_label
        cleaned.append((stage_label, _check_state(state)))
    # One pipeline created at a time: two people can't both take the last label or place.
    list(Pipeline.objects.select_for_update().filter(object_type=RECORDS_TYPE).values_list("pk"))
    _check_pipeline_label_free(label)
    cap = settings.HUBSPOT_PIPELINE_CAP
    if cap and Pipeline.objects.for_orders().count() >= cap:
        raise PipelineRuleError(f"HubSpot takes at most {cap} order pipelines; archive one first.")
    if display_order is None:
        last = Pipeline.objects.for_orders().order_by("-display_order").first()
        display_order = min(last.display_order + 1, DISPLAY_ORDER_MAX) if last else 0
    display_order = _check_display_order(display_order, noun="pipeline")
    pipeline = Pipeline.objects.create(
        hubspot_id=new_temp_id(), object_type=RECORDS_TYPE, label=label, display_order=display_order
    )
    stage_specs = []
    for order, (stage_label, state) in enumerate(cleaned):
        stage = Stage.objects.create(
            pipeline=pipeline,
            hubspot_id=new_temp_id(),
            label=stage_label,
            display_order=order,
            state=state,
            metadata={"state": state},
        )
        stage_specs.append({"id": stage.hubspot_id, **_stage_values(stage)})
    _record(
        kind=ChangeKind.PIPELINE_CREATE,
        object_type="pipelines",
        object_id=pipeline.hubspot_id,
        by=by,
        new={"label": label, "display_order": display_order},
        payload={"stages": stage_specs, "temp_id": pipeline.hubspot_id},
    )
    return pipeline


@transaction.atomic
def pipeline_update(
    *, pipeline: Pipeline, by: User | None, label: str | None = None, display_order: int | None = None
) -> Change:
    """Rename a pipeline, or give it another place among the pipelines."""
    _check_may_edit(by)
    pipeline = _locked_pipeline(pipeline)
    _check_live(pipeline)
    new: dict[str, Any] = {}
    if label is not None:
        label = _clean_label(label, noun="pipeline", limit=settings.HUBSPOT_PIPELINE_LABEL_MAX)
        if label != pipeline.label:
            _check_pipeline_label_free(label, except_pk=pipeline.pk)
            new["label"] = label
    if display_order is not None:
        display_order = _check_display_order(display_order, noun="pipeline")
        if display_order != pipeline.display_order:
            new["display_order"] = display_order
    if not new:
        raise PipelineRuleError("Nothing to change: that is how the pipeline is already.")
    current = {"label": pipeline.label, "display_order": pipeline.display_order}
    base = _base("pipelines", pipeline.hubspot_id, {k: current[k] for k in new})
    for name, value in new.items():
        setattr(pipeline, name, value)
    pipeline.save(update_fields=list(new))
    create = _unsent_create(ChangeKind.PIPELINE_CREATE, pipeline.hubspot_id)
    if create is not None:
        create.new = {**create.new, **new}
        create.save(update_fields=["new", "updated_at"])
        return create
    change = _record(
        kind=ChangeKind.PIPELINE_UPDATE,
        object_type="pipelines",
        object_id=pipeline.hubspot_id,
        by=by,
        base=base,
        new=new,
        waits_for=temp_ids_in(pipeline.hubspot_id),
    )
    _supersede(change, by)
    return change


@dataclass(frozen=True)
class DeletePreview:
    """What deleting a stage (or archiving a pipeline) will do: how many orders move and where, whether it
    may go ahead (``blocked`` says why not), and what changes here and in HubSpot."""

    orders_to_move: int
    target: Stage | None
    blocked: str = ""
    local_changes: list[str] = field(default_factory=list)
    hubspot_calls: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.blocked


class StageDeletePreview(DeletePreview):
    pass


class PipelineArchivePreview(DeletePreview):
    pass


def orders_model() -> type[models.Model]:
    """The model of the records in pipelines (orders), through the reverse relation: never imported."""
    related: type[models.Model] = Stage._meta.get_field("orders").related_model  # type: ignore[assignment]
    return related


def orders_in(source: Stage | Pipeline) -> models.QuerySet[Any]:
    """The live orders in a stage, or anywhere in a pipeline (its stages, or the pipeline without a stage)."""
    manager = orders_model()._default_manager
    if isinstance(source, Stage):
        return manager.filter(stage=source, archived=False)
    return manager.filter(Q(pipeline=source) | Q(stage__pipeline=source), archived=False)


def _property_labels(names: Sequence[str]) -> str:
    labels = dict(
        PropertyDefinition.objects.filter(object_type=RECORDS_TYPE, name__in=names).values_list(
            "name", "label"
        )
    )
    return ", ".join(f"“{labels.get(n) or n}”" for n in names)


def _missing_required(source: Stage | Pipeline, target: Stage) -> int:
    """How many of the source's orders lack a value the target stage requires on entering it."""
    if not rules.move_properties(target):
        return 0
    return sum(
        1
        for properties in orders_in(source).values_list("properties", flat=True).iterator(chunk_size=2000)
        if rules.missing_properties(properties if isinstance(properties, dict) else {}, target)
    )


def _target_refusal(
    source: Stage | Pipeline, count: int, target: Stage, stages: Sequence[Stage] | None = None
) -> str:
    """Why the source's orders may not all move into the target ("" when they may)."""
    if target.archived or target.pipeline.archived:
        return f"“{target.label}” is deleted; choose another stage."
    if isinstance(source, Stage):
        if target.pk == source.pk:
            return "Choose another stage for its orders than the stage being deleted."
        if target.pipeline_id != source.pipeline_id:
            return f"Choose a stage of {source.pipeline.label} for its orders."
        check = rules.check_stage_rules(source, target, stages)
        if not check.allowed:
            return check.reason
    elif target.pipeline_id == source.pk:
        return f"Choose a stage in another pipeline than {source.label} for its orders."
    missing = _missing_required(source, target)
    if missing:
        names = rules.move_properties(target)
        return (
            f"{missing:,} of the {count:,} orders have no value for {_property_labels(names)}, which "
            f"“{target.label}” requires: fill it in on them first, or choose another stage."
        )
    return ""


def _moves_text(count: int, source_label: str, target: Stage) -> list[str]:
    batches = math.ceil(count / BATCH)
    where = f"“{target.label}”" + (
        f" in {target.pipeline.label}" if target.pipeline.label != source_label else ""
    )
    calls = [
        f"{count:,} order moves to {where} in {batches:,} batch update{'s' if batches != 1 else ''} of up to "
        f"{BATCH}, each after a batch read that checks HubSpot still has those orders where we saw them",
    ]
    if is_temp(target.hubspot_id):
        calls.insert(0, f"first the create of “{target.label}”, which the moves wait for")
    return calls


def _fresh(stage: Stage | None) -> Stage | None:
    """The stage as stored now (a page's copy may be older than a delete)."""
    return Stage.objects.select_related("pipeline").filter(pk=stage.pk).first() if stage is not None else None


def stage_delete_preview(*, stage: Stage, move_to: Stage | None = None) -> StageDeletePreview:
    """What deleting the stage (moving its orders to ``move_to``) will do, or why it can't be done yet."""
    pipeline = stage.pipeline
    count = orders_in(stage).count()
    move_to = _fresh(move_to)
    target = move_to if count else None
    local = []
    calls = []
    if count and target is not None:
        local.append(f"{count:,} orders move from “{stage.label}” to “{target.label}” at once.")
        calls.extend(_moves_text(count, pipeline.label, target))
    local.append(f"“{stage.label}” leaves {pipeline.label} at once.")
    calls.append(
        f"DELETE stage “{stage.label}” with validateReferencesBeforeDelete=true"
        + (", once HubSpot has every move" if count else "")
        + (" (after its create, which is still to be sent)" if is_temp(stage.hubspot_id) else "")
    )
    blocked = ""
    live = _live_stages(pipeline)
    if stage.archived or pipeline.archived:
        blocked = f"“{stage.label}” is deleted already."
    elif len(live) <= 1:
        blocked = f"“{stage.label}” is the only stage of {pipeline.label}: a pipeline keeps at least one."
    elif count and move_to is None:
        blocked = f"Choose a stage for the {count:,} order{'s' if count != 1 else ''} in it."
    elif count and move_to is not None:
        blocked = _target_refusal(stage, count, move_to, live)
    return StageDeletePreview(count, target, blocked, local, calls)


def allowed_delete_targets(stage: Stage) -> list[Stage]:
    """The stages of the pipeline the deleted stage's orders may move to, under the stage rules."""
    live = _live_stages(stage.pipeline)
    count = orders_in(stage).count()
    return [
        other
        for other in live
        if other.pk != stage.pk and not (count and _target_refusal(stage, count, other, live))
    ]


def pipeline_archive_preview(*, pipeline: Pipeline, move_to: Stage | None = None) -> PipelineArchivePreview:
    """What archiving the pipeline (moving its orders to ``move_to``, a stage of another pipeline) will
    do, or why it can't be done yet."""
    count = orders_in(pipeline).count()
    move_to = _fresh(move_to)
    target = move_to if count else None
    local = []
    calls = []
    if count and target is not None:
        local.append(
            f"{count:,} orders move from {pipeline.label} to “{target.label}” in {target.pipeline.label} "
            "at once."
        )
        calls.extend(_moves_text(count, pipeline.label, target))
    local.append(f"{pipeline.label} and its board leave the app at once.")
    calls.append(
        f"DELETE pipeline {pipeline.label} with validateReferencesBeforeDelete=true"
        + (", once HubSpot has every move" if count else "")
    )
    blocked = ""
    if pipeline.archived:
        blocked = f"{pipeline.label} is archived already."
    elif not Pipeline.objects.for_orders().exclude(pk=pipeline.pk).exists():
        blocked = f"{pipeline.label} is the only order pipeline: HubSpot keeps at least one."
    elif count and move_to is None:
        blocked = (
            f"Choose a stage in another pipeline for the {count:,} order{'s' if count != 1 else ''} in it."
        )
    elif count and move_to is not None:
        blocked = _target_refusal(pipeline, count, move_to)
    return PipelineArchivePreview(count, target, blocked, local, calls)


def allowed_archive_targets(pipeline: Pipeline) -> list[Stage]:
    """The stages of the other order pipelines that the archived pipeline's orders may move to."""
    count = orders_in(pipeline).count()
    candidates = (
        Stage.objects.filter(
            pipeline__in=Pipeline.objects.for_orders().exclude(pk=pipeline.pk), archived=False
        )
        .select_related("pipeline")
        .order_by("pipeline__display_order", "pipeline__label", "display_order", "label")
    )
    return [s for s in candidates if not (count and _target_refusal(pipeline, count, s))]


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, by: User | None, move_to: Stage | None = None) -> Change:
    """Archive a pipeline, here at once and in HubSpot; its orders move to ``move_to`` (a stage of another
    pipeline) first, and HubSpot is asked to delete it only once it has those moves."""
    _check_may_edit(by)
    # Both pipelines locked, in one order (two archives moving orders each into the other's never deadlock):
    # nobody deletes the target stage while its new orders arrive.
    ids = sorted({pipeline.pk, *([move_to.pipeline_id] if move_to is not None else [])})
    list(Pipeline.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
    pipeline = Pipeline.objects.get(pk=pipeline.pk)
    preview = pipeline_archive_preview(pipeline=pipeline, move_to=move_to)
    move_to = preview.target
    if preview.blocked:
        raise PipelineRuleError(preview.blocked)
    pipeline.archived = True
    pipeline.save(update_fields=["archived"])
    return _record_delete(
        source=pipeline,
        kind=ChangeKind.PIPELINE_DELETE,
        object_type="pipelines",
        parent_id="",
        count=preview.orders_to_move,
        target=move_to,
        by=by,
        waits_for=temp_ids_in(pipeline.hubspot_id),
    )


# --- stages ---------------------------------------------------------------------------------------------


@transaction.atomic
def stage_create(
    *,
    pipeline: Pipeline,
    label: str,
    by: User | None,
    state: str = "OPEN",
    display_order: int | None = None,
) -> Stage:
    """Add a stage to a pipeline (last, unless ``display_order`` names a free place); orders may move into it
    at once (their moves wait for HubSpot's id)."""
    _check_may_edit(by)
    pipeline = _locked_pipeline(pipeline)
    _check_live(pipeline)
    label = _clean_label(label, noun="stage", limit=settings.HUBSPOT_STAGE_LABEL_MAX)
    state = _check_state(state)
    live = _live_stages(pipeline)
    _check_stage_cap(pipeline, len(live) + 1)
    _check_stage_label_free(pipeline, label)
    if display_order is None:
        display_order = min(max((s.display_order for s in live), default=-1) + 1, DISPLAY_ORDER_MAX)
    display_order = _check_display_order(display_order, noun="stage")
    if any(s.display_order == display_order for s in live):
        raise PipelineRuleError(
            f"Another stage of {pipeline.label} has that place; reorder the stages instead."
        )
    stage = Stage.objects.create(
        pipeline=pipeline,
        hubspot_id=new_temp_id(),
        label=label,
        display_order=display_order,
        state=state,
        metadata={"state": state},
    )
    parent = _unsent_create(ChangeKind.PIPELINE_CREATE, pipeline.hubspot_id)
    if parent is not None:
        # The new pipeline's create carries it.
        specs = [*parent.payload.get("stages", []), {"id": stage.hubspot_id, **_stage_values(stage)}]
        parent.payload = {**parent.payload, "stages": specs}
        parent.save(update_fields=["payload", "updated_at"])
        return stage
    _record(
        kind=ChangeKind.STAGE_CREATE,
        object_type="stages",
        object_id=stage.hubspot_id,
        parent_id=pipeline.hubspot_id,
        by=by,
        new=_stage_values(stage),
        payload={"temp_id": stage.hubspot_id},
        waits_for=temp_ids_in(pipeline.hubspot_id),
    )
    return stage


def _stage_write(stage: Stage, new: dict[str, Any], by: User | None) -> Change:
    """Write checked values onto a stage, and record them for HubSpot (in its create, if still unsent)."""
    base = _base("stages", stage.hubspot_id, {k: _stage_values(stage)[k] for k in new})
    for name, value in new.items():
        setattr(stage, name, value)
    stage.metadata = {**stage.metadata, "state": stage.state}
    stage.save(update_fields=[*new, "metadata"])
    create = _fold_into_create(stage)
    if create is not None:
        return create
    change = _record(
        kind=ChangeKind.STAGE_UPDATE,
        object_type="stages",
        object_id=stage.hubspot_id,
        parent_id=stage.pipeline.hubspot_id,
        by=by,
        base=base,
        new=new,
        waits_for=temp_ids_in(stage.hubspot_id, stage.pipeline.hubspot_id),
    )
    _supersede(change, by)
    return change


@transaction.atomic
def stage_update(
    *,
    stage: Stage,
    by: User | None,
    label: str | None = None,
    display_order: int | None = None,
    state: str | None = None,
) -> Change:
    """Rename a stage, give it a free place, or mark it OPEN or CLOSED."""
    _check_may_edit(by)
    pipeline = _locked_pipeline(stage.pipeline)
    stage = Stage.objects.select_related("pipeline").get(pk=stage.pk)
    _check_live(pipeline, stage)
    new: dict[str, Any] = {}
    if label is not None:
        label = _clean_label(label, noun="stage", limit=settings.HUBSPOT_STAGE_LABEL_MAX)
        if label != stage.label:
            _check_stage_label_free(pipeline, label, except_pk=stage.pk)
            new["label"] = label
    if state is not None and _check_state(state) != stage.state:
        new["state"] = state
    if display_order is not None:
        display_order = _check_display_order(display_order, noun="stage")
        if display_order != stage.display_order:
            if (
                pipeline.stages.filter(archived=False, display_order=display_order)
                .exclude(pk=stage.pk)
                .exists()
            ):
                raise PipelineRuleError(
                    f"Another stage of {pipeline.label} has that place; reorder the stages instead."
                )
            new["display_order"] = display_order
    if not new:
        raise PipelineRuleError("Nothing to change: that is how the stage is already.")
    return _stage_write(stage, new, by)


@transaction.atomic
def stages_reorder(*, pipeline: Pipeline, stages: Sequence[Stage], by: User | None) -> list[Change]:
    """Put a pipeline's stages in the given order, which names each of its stages once (one change per
    stage whose place changed)."""
    _check_may_edit(by)
    pipeline = _locked_pipeline(pipeline)
    _check_live(pipeline)
    live = {s.pk: s for s in _live_stages(pipeline)}
    wanted = [s.pk for s in stages]
    if len(wanted) != len(set(wanted)) or set(wanted) != set(live):
        raise PipelineRuleError(
            f"The stages have changed since the page was loaded: the new order must name each of "
            f"{pipeline.label}'s stages once. Reload and try again."
        )
    changes: list[Change] = []
    for order, pk in enumerate(wanted):
        stage = live[pk]
        if stage.display_order != order:
            changes.append(_stage_write(stage, {"display_order": order}, by))
    return list(dict.fromkeys(changes))


@transaction.atomic
def stage_delete(*, stage: Stage, by: User | None, move_to: Stage | None = None) -> Change:
    """Delete a stage, here at once and in HubSpot. Its orders move to ``move_to`` first (each move a change
    of its own, pushed in batches), and HubSpot is asked to delete the stage, with
    validateReferencesBeforeDelete=true, only once it has every move."""
    _check_may_edit(by)
    pipeline = _locked_pipeline(stage.pipeline)
    stage = Stage.objects.select_related("pipeline").get(pk=stage.pk)
    preview = stage_delete_preview(stage=stage, move_to=move_to)
    move_to = preview.target
    if preview.blocked:
        raise PipelineRuleError(preview.blocked)
    stage.archived = True
    stage.save(update_fields=["archived"])
    return _record_delete(
        source=stage,
        kind=ChangeKind.STAGE_DELETE,
        object_type="stages",
        parent_id=pipeline.hubspot_id,
        count=preview.orders_to_move,
        target=move_to,
        by=by,
        waits_for=temp_ids_in(stage.hubspot_id, pipeline.hubspot_id),
    )


# --- deletes: the orders' moves, now and in a worker ----------------------------------------------------


def _moving_until() -> str:
    return (timezone.now() + timedelta(seconds=settings.PIPELINE_DELETE_MOVING_LEASE_S)).isoformat()


def _record_delete(
    *,
    source: Stage | Pipeline,
    kind: str,
    object_type: str,
    parent_id: str,
    count: int,
    target: Stage | None,
    by: User | None,
    waits_for: Sequence[str],
) -> Change:
    """Record the delete, and move its orders: the first ones now, the rest in a worker a chunk at a time
    (the page answers at once however many there are, and the push sends the first moves while the rest are
    written). While moves are still being written (``moving_until``, renewed each chunk) the delete waits."""
    moved = 0
    if count and target is not None:
        moved = hooks.move_orders(
            source=source, target=target, by=by, limit=settings.PIPELINE_DELETE_MOVES_NOW
        )
    more = count > moved
    payload: dict[str, Any] = {
        "moved_from": source.hubspot_id,
        "source_pk": source.pk,
        "target": target.hubspot_id if count and target is not None else "",
        "target_pk": target.pk if count and target is not None else None,
        "to_move": count,
        "moved": moved,
        "by": by.pk if by is not None else None,
    }
    if more:
        payload["moving_until"] = _moving_until()
    change = _record(
        kind=kind,
        object_type=object_type,
        object_id=source.hubspot_id,
        parent_id=parent_id,
        by=by,
        base={"archived": False},
        new={"archived": True},
        payload=payload,
        waits_for=waits_for,
    )
    if more:
        queue_deletion_moves_on_commit(change.pk)
    return change


def queue_deletion_moves_on_commit(change_pk: int) -> None:
    # The task module imports this one; importing it here keeps the two from importing each other.
    from pipelines.tasks import deletion_moves_task

    transaction.on_commit(lambda: deletion_moves_task.delay(change_pk))


def deletion_source(change: Change) -> Stage | Pipeline | None:
    """What a stage or pipeline delete empties of orders."""
    pk = change.payload.get("source_pk")
    if change.kind == ChangeKind.STAGE_DELETE:
        return Stage.objects.select_related("pipeline").filter(pk=pk).first()
    return Pipeline.objects.filter(pk=pk).first()


def deletion_moves_continue(*, change_pk: int) -> int:
    """Move a delete's remaining orders, a chunk per transaction, until none is left; then the delete may go
    (its push is queued). Safe to run twice at once, or again after a crash: each chunk moves what is still
    there. An order that may no longer enter the target fails the delete, saying why. Returns how many
    moved."""
    from django.contrib.auth.models import User

    moved = 0
    while True:
        with transaction.atomic():
            change = Change.objects.select_for_update().filter(pk=change_pk).first()
            if (
                change is None
                or change.status != ChangeStatus.PENDING
                or "moving_until" not in change.payload
            ):
                return moved
            source = deletion_source(change)
            target = (
                Stage.objects.select_related("pipeline").filter(pk=change.payload.get("target_pk")).first()
            )
            by = User.objects.filter(pk=change.payload.get("by")).first()
            payload = dict(change.payload)
            try:
                if source is None or target is None or target.archived or target.pipeline.archived:
                    raise PipelineRuleError("The stage its orders were moving to is deleted.")
                done = hooks.move_orders(
                    source=source, target=target, by=by, limit=settings.PIPELINE_DELETE_MOVE_CHUNK
                )
            except PipelineRuleError as exc:
                payload.pop("moving_until")
                change.payload = payload
                change.status = ChangeStatus.FAILED
                change.error = f"Not every order could be moved out first, so nothing was sent: {exc}"
                change.save(update_fields=["payload", "status", "error", "updated_at"])
                return moved
            moved += done
            payload["moved"] = int(payload.get("moved") or 0) + done
            if done < settings.PIPELINE_DELETE_MOVE_CHUNK:
                payload.pop("moving_until")  # all moved: the delete may go once HubSpot has them
                queue_push_on_commit()
            else:
                payload["moving_until"] = _moving_until()
            change.payload = payload
            change.save(update_fields=["payload", "updated_at"])
            if "moving_until" not in payload:
                return moved
        if connection.vendor == "sqlite":
            # SQLite has one writer at a time, and this loop would take the lock again at once: a pause
            # between chunks lets the push claim and settle the moves already written (see the setting).
            time.sleep(settings.PIPELINE_DELETE_SQLITE_PAUSE_S)


# --- the outbox's hook: applying and undoing changes on the cache --------------------------------------


def pipeline_change_locally(change: Change, undo: bool) -> None:
    """Apply (or undo) a pipeline or stage change on the cached pipelines (the outbox calls this when a
    change is retried, discarded, resolved or cascades). Undoing shows what HubSpot has, as far as we know:
    its value from a conflict, else the value before the change."""
    if undo:
        values = {name: change.base.get(name) for name in change.new}
        values.update(change.remote)  # HubSpot's values (or that it deleted the thing) after a conflict
        values = {name: value for name, value in values.items() if value is not None}
    else:
        values = dict(change.new)
    if change.kind in (ChangeKind.PIPELINE_UPDATE, ChangeKind.PIPELINE_DELETE):
        fields = {k: v for k, v in values.items() if k in ("label", "display_order", "archived")}
        if fields:
            Pipeline.objects.filter(object_type=RECORDS_TYPE, hubspot_id=change.object_id).update(**fields)
    elif change.kind in (ChangeKind.STAGE_UPDATE, ChangeKind.STAGE_DELETE):
        for stage in Stage.objects.filter(pipeline__hubspot_id=change.parent_id, hubspot_id=change.object_id):
            for name, value in values.items():
                if name in ("label", "display_order", "state", "archived"):
                    setattr(stage, name, value)
            stage.metadata = {**stage.metadata, "state": stage.state}
            stage.save()
    elif undo and change.kind == ChangeKind.PIPELINE_CREATE:
        Pipeline.objects.filter(object_type=RECORDS_TYPE, hubspot_id=change.object_id).delete()
    elif undo and change.kind == ChangeKind.STAGE_CREATE:
        Stage.objects.filter(hubspot_id=change.object_id).delete()
