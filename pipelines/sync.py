"""Sync of the pipelines app: the order pipelines and their stages, read from HubSpot and cached, as a
definition syncer the integration calls (``registry.register_definitions``) whenever orders are synced, on
its schedule, and when an order names a stage the cache does not know; and their labels, for the ids that
``hs_pipeline`` and ``hs_pipeline_stage`` hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from hubspot_sync import client, sync
from hubspot_sync.models import TEMP_ID_PREFIX, UNSETTLED, Change, ChangeKind
from pipelines.models import Pipeline, Stage, StageState

# The definition syncer's name, as types that depend on it name it (``MirrorType.definitions``).
DEFINITIONS = "pipelines"
RECORDS_TYPE = "orders"


def fetch() -> list[client.ApiPipeline]:
    return client.list_pipelines(RECORDS_TYPE)


def synced_at() -> datetime | None:
    last: datetime | None = Pipeline.objects.filter(object_type=RECORDS_TYPE).aggregate(
        last=Max("synced_at")
    )["last"]
    return last


def _unsettled() -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """The values of pipeline and stage edits not yet settled in HubSpot, by pipeline id and by (pipeline id,
    stage id), the latest edit of a value winning: they stay on top of what a sync brings, as records' do."""
    pipelines: dict[str, dict[str, Any]] = {}
    stages: dict[tuple[str, str], dict[str, Any]] = {}
    for object_type, object_id, parent_id, new in (
        Change.objects.filter(object_type__in=("pipelines", "stages"), status__in=UNSETTLED)
        .exclude(kind__in=(ChangeKind.PIPELINE_CREATE, ChangeKind.STAGE_CREATE))
        .order_by("pk")
        .values_list("object_type", "object_id", "parent_id", "new")
    ):
        if object_type == "pipelines":
            pipelines.setdefault(object_id, {}).update(new)
        else:
            stages.setdefault((parent_id, object_id), {}).update(new)
    return pipelines, stages


def store(remote: Sequence[client.ApiPipeline]) -> int:
    """Cache the order pipelines and stages; anything HubSpot no longer has is marked archived, except what
    HubSpot has not created yet (a temporary id) or has edits of ours still on their way (those values stay
    until the edits settle, as a record's do)."""
    now = timezone.now()
    pending_pipelines, pending_stages = _unsettled()
    seen_pipelines = []
    for p in remote:
        mine = pending_pipelines.get(p.id, {})
        pipeline, _ = Pipeline.objects.update_or_create(
            object_type=RECORDS_TYPE,
            hubspot_id=p.id,
            defaults={
                "label": mine.get("label", p.label),
                "display_order": mine.get("display_order", p.display_order),
                "archived": mine.get("archived", p.archived),
                "remote_created_at": p.created_at,
                "remote_updated_at": p.updated_at,
                "synced_at": now,
            },
        )
        seen_pipelines.append(pipeline.pk)
        seen_stages = []
        for s in p.stages:
            state = str(s.metadata.get("state", "OPEN")).upper()
            ours = pending_stages.get((p.id, s.id), {})
            state = str(ours.get("state", state))
            stage, _ = Stage.objects.update_or_create(
                pipeline=pipeline,
                hubspot_id=s.id,
                defaults={
                    "label": ours.get("label", s.label),
                    "display_order": ours.get("display_order", s.display_order),
                    "archived": ours.get("archived", s.archived),
                    "metadata": {**s.metadata, "state": state},
                    "state": state if state in StageState.values else StageState.OPEN,
                },
            )
            seen_stages.append(stage.pk)
        _archive_gone(
            Stage.objects.filter(pipeline=pipeline).exclude(pk__in=seen_stages),
            {stage_id for (pipeline_id, stage_id) in pending_stages if pipeline_id == p.id},
        )
    _archive_gone(
        Pipeline.objects.filter(object_type=RECORDS_TYPE).exclude(pk__in=seen_pipelines),
        set(pending_pipelines),
    )
    return len(remote)


def _archive_gone(gone: QuerySet[Any], edited: set[str]) -> None:
    """Mark archived what HubSpot no longer lists, but for what it has not created yet and what has edits
    still on their way (their push finds it gone and says so: a conflict)."""
    gone.exclude(hubspot_id__startswith=TEMP_ID_PREFIX).exclude(hubspot_id__in=edited).update(archived=True)


def sync_pipelines(fetched: Sequence[client.ApiPipeline] | None = None) -> int:
    """Read and cache the order pipelines now (the orders then attach to stages they named before these
    were known). ``fetched`` has them read already."""
    return sync.sync_definitions(DEFINITIONS, fetched)


def id_labels(object_type: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The type's pipelines' labels by id, and its stages' (pipeline id, stage id, label), live ones first."""
    pipelines = dict(Pipeline.objects.filter(object_type=object_type).values_list("hubspot_id", "label"))
    stages = list(
        Stage.objects.filter(pipeline__object_type=object_type)
        .order_by("archived", "pk")
        .values_list("pipeline__hubspot_id", "hubspot_id", "label")
    )
    return pipelines, stages
