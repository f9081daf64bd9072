"""Views of the pipelines app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hubspot.permissions import PIPELINE_ADMIN, group_required


@group_required(PIPELINE_ADMIN)
@require_GET
def pipeline_list(request: HttpRequest) -> HttpResponse:
    return render(request, "pipelines/list.html")
