"""What the sync does for orders beyond the generic upsert: a page's rows get their pipeline and stage
(``derive``), orders get their contact's name and email copied (``after_upsert``), and orders whose stage
arrived before its pipeline are attached once pipelines are synced. ``OrdersConfig.ready`` registers them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Q

from hubspot_sync import registry
from hubspot_sync.cache import chunks, id_list
from hubspot_sync.registry import MirrorType
from hubspot_sync.services import contact_columns, denormalize_contact
from orders.models import Order
from pipelines.models import Stage


def orders_derive_stage(rows: list[dict[str, Any]]) -> None:
    """Fill pipeline and stage from hs_pipeline / hs_pipeline_stage; note when an order entered its stage."""
    stages: dict[tuple[str, str], tuple[int, int]] = {}
    by_stage_id: dict[str, tuple[int, int]] = {}
    for stage_pk, pipeline_pk, stage_id, pipeline_id in Stage.objects.values_list(
        "pk", "pipeline_id", "hubspot_id", "pipeline__hubspot_id"
    ):
        stages[(pipeline_id, stage_id)] = (pipeline_pk, stage_pk)
        by_stage_id.setdefault(stage_id, (pipeline_pk, stage_pk))
    # hubspot id -> (stage, stage entered at) of the orders the cache has already
    existing: dict[str, tuple[int | None, Any]] = {
        hubspot_id: (stage_pk, entered_at)
        for hubspot_id, stage_pk, entered_at in Order.objects.filter(
            hubspot_id__in=id_list([row["hubspot_id"] for row in rows])
        ).values_list("hubspot_id", "stage_id", "stage_entered_at")
    }
    for row in rows:
        properties = row["properties"]
        stage_hubspot_id = properties.get("hs_pipeline_stage") or ""
        found = stages.get((properties.get("hs_pipeline") or "", stage_hubspot_id)) or by_stage_id.get(
            stage_hubspot_id
        )
        row["pipeline_id"], row["stage_id"] = found if found else (None, None)
        hubspot_id = row["hubspot_id"]
        before = existing.get(hubspot_id)
        if before is not None and before[0] == row["stage_id"] and before[1]:
            row["stage_entered_at"] = before[1]
        else:
            # A new order entered its stage when it was created; a moved one, at its last modification.
            row["stage_entered_at"] = (
                row["remote_created_at"] if before is None else row["remote_updated_at"]
            ) or row["synced_at"]


def orders_resolve_stages() -> int:
    """After pipelines are synced: attach orders whose stage was unknown when they arrived."""
    updated = 0
    for stage in Stage.objects.select_related("pipeline"):
        updated += (
            Order.objects.filter(stage__isnull=True, properties__hs_pipeline_stage=stage.hubspot_id)
            .filter(
                Q(properties__hs_pipeline=stage.pipeline.hubspot_id) | Q(properties__hs_pipeline__isnull=True)
            )
            .update(stage=stage, pipeline=stage.pipeline)
        )
    return updated


def orders_refresh_customer_all(spec: MirrorType) -> None:
    """Every order's copy of its contact, set-based (the end of a full run)."""
    denormalize_contact(Order, "orders", None)


def orders_customer_columns(
    spec: MirrorType, rows: list[dict[str, Any]], associations: Mapping[str, Mapping[str, Sequence[str]]]
) -> None:
    """A full run's rows get their contact's copy from the edges the page brought (see contact_columns)."""
    contact_columns(spec, rows, associations)


@registry.whole_table(orders_refresh_customer_all, rows=orders_customer_columns)
def orders_refresh_customer(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """Copy each order's associated contact (name, email) onto the order, for cards and search."""
    for chunk in chunks(list(hubspot_ids), 500):
        denormalize_contact(Order, "orders", chunk)


def orders_name_unknown_stage(spec: MirrorType, ids: Sequence[str]) -> bool:
    """Whether any of these orders names a stage the cache does not know (made in HubSpot since the last
    pipeline refresh): the sync then reads the pipelines again at once."""
    unknown = Order.objects.filter(stage__isnull=True, properties__hs_pipeline_stage__isnull=False).exclude(
        properties__hs_pipeline_stage=""
    )
    return any(unknown.filter(hubspot_id__in=chunk).exists() for chunk in chunks(list(ids), 500))
