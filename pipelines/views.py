"""Views of the pipelines app."""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.permissions import PIPELINE_ADMIN, group_required
from pipelines.models import Pipeline, Stage


@group_required(PIPELINE_ADMIN)
@require_GET
def pipeline_list(request: HttpRequest) -> HttpResponse:
    """The order pipelines as HubSpot has them, with their stages, rules and how many orders each holds."""
    pipelines = list(Pipeline.objects.for_orders())
    stages = (
        Stage.objects.filter(pipeline__in=pipelines, archived=False)
        .annotate(order_count=Count("orders", filter=Q(orders__archived=False)))
        .order_by("pipeline", "display_order", "label")
    )
    by_pipeline: dict[int, list[Stage]] = {}
    for stage in stages:
        by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
    rows = [(pipeline, by_pipeline.get(pipeline.pk, [])) for pipeline in pipelines]
    return render(request, "pipelines/list.html", {"rows": rows})
