"""Views of the carts app."""

from __future__ import annotations

from django.core.paginator import Paginator
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
    # get_page: a page that is no number is the first, one past the end (however large) the last.
    page = Paginator(carts, PAGE).get_page(request.GET.get("page"))
    context = {
        "rows": list(page.object_list),
        "page": page.number,
        "has_next": page.has_next(),
        "total": page.paginator.count,
    }
    return render(request, "carts/abandoned.html", context)
