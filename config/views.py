"""The project's own pages: the start page and the health check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.permissions import GROUPS, PIPELINE_ADMIN, SUPPORT, in_group
from hubspot_sync import health


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The first page a person may use: the boards for Support, the pipelines for a Pipeline admin."""
    if in_group(request.user, SUPPORT):
        return redirect("orders:boards")
    if in_group(request.user, PIPELINE_ADMIN):
        return redirect("pipelines:list")
    return render(request, "no_access.html")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker must answer for 200; the worker's state is reported but does not fail the check.

    Anyone (a load balancer) gets the status alone; the details (which part failed, the broker's transport,
    the worker's last heartbeat) are for signed-in staff.
    """
    checks = {"database": health.check_database(), "broker": health.check_broker()}
    checks["worker"] = health.check_worker() if checks["database"]["ok"] else {"ok": False}
    healthy = checks["database"]["ok"] and checks["broker"]["ok"]
    body: dict[str, Any] = {"status": "ok" if healthy else "error"}
    user = request.user
    if user.is_authenticated and (user.is_staff or any(in_group(user, group) for group in GROUPS)):
        body["checks"] = checks
    return JsonResponse(body, status=200 if healthy else 503)
