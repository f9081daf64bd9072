"""Sync of the pipelines app: the order pipelines and their stages, read from HubSpot and cached, as a
definition syncer the integration calls (``registry.register_definitions``) whenever orders are synced, on
its schedule, and when an order names a stage the cache does not know; and their labels, for the ids that
``hs_pipeline`` and ``hs_pipeline_stage`` hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Max
from django.utils import timezone

from hubspot_sync import client, sync
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


def store(remote: Sequence[client.ApiPipeline]) -> int:
    """Cache the order pipelines and stages; anything HubSpot no longer has is marked archived."""
    now = timezone.now()
    seen_pipelines = []
    for p in remote:
        pipeline, _ = Pipeline.objects.update_or_create(
            object_type=RECORDS_TYPE,
            hubspot_id=p.id,
            defaults={
                "label": p.label,
                "display_order": p.display_order,
                "archived": p.archived,
                "remote_created_at": p.created_at,
                "remote_updated_at": p.updated_at,
                "synced_at": now,
            },
        )
        seen_pipelines.append(pipeline.pk)
        seen_stages = []
        for s in p.stages:
            state = str(s.metadata.get("state", "OPEN")).upper()
            stage, _ = Stage.objects.update_or_create(
                pipeline=pipeline,
                hubspot_id=s.id,
                defaults={
                    "label": s.label,
                    "display_order": s.display_order,
                    "archived": s.archived,
                    "metadata": dict(s.metadata),
                    "state": state if state in StageState.values else StageState.OPEN,
                },
            )
            seen_stages.append(stage.pk)
        Stage.objects.filter(pipeline=pipeline).exclude(pk__in=seen_stages).update(archived=True)
    Pipeline.objects.filter(object_type=RECORDS_TYPE).exclude(pk__in=seen_pipelines).update(archived=True)
    return len(remote)


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
