"""Views of the carts app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from carts.models import Cart
from hubspot.permissions import SUPPORT, group_required

PAGE = 50


@group_required(SUPPORT)
@require_GET
def abandoned_carts(request: HttpRequest) -> HttpResponse:
    """Carts that never became an order, most recently changed first."""
    carts = Cart.objects.live().filter(order_hubspot_id="").order_by("-remote_updated_at", "-pk")
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    rows = list(carts[(page - 1) * PAGE : page * PAGE + 1])
    context = {"rows": rows[:PAGE], "page": page, "has_next": len(rows) > PAGE, "total": carts.count()}
    return render(request, "carts/abandoned.html", context)
