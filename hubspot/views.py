"""Views of the hubspot app: the start page, the health check and the Sync page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hubspot import health
from hubspot.models import WorkerHeartbeat
from hubspot.permissions import SUPPORT, group_required


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("orders:boards")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker must answer for 200; the worker's state is reported but does not fail the check."""
    checks = {"database": health.check_database(), "broker": health.check_broker()}
    checks["worker"] = health.check_worker() if checks["database"]["ok"] else {"ok": False}
    healthy = checks["database"]["ok"] and checks["broker"]["ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


@group_required(SUPPORT)
@require_GET
def sync_status(request: HttpRequest) -> HttpResponse:
    context = {
        "heartbeat": WorkerHeartbeat.objects.latest_beat(),
        "worker_alive": WorkerHeartbeat.objects.is_alive(),
        "broker": health.check_broker(),
    }
    return render(request, "hubspot/sync.html", context)
