"""Views of the orders app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hubspot.permissions import SUPPORT, group_required


@group_required(SUPPORT)
@require_GET
def boards(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/boards.html")
