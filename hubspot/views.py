"""Views of the hubspot app: the start page, the health check, webhook intake and the Sync page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hubspot import health, services, webhooks
from hubspot.models import ConnectionProblem, SyncKind, SyncRun, WebhookEvent, WorkerHeartbeat
from hubspot.permissions import SUPPORT, group_required

logger = logging.getLogger(__name__)


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


@csrf_exempt  # HubSpot signs the request instead (X-HubSpot-Signature-v3), checked below
@login_not_required
@require_POST
def webhook(request: HttpRequest) -> JsonResponse:
    """Verify, store each event once, answer at once; the refresh runs in a worker."""
    try:
        webhooks.verify(
            secret=settings.HUBSPOT_CLIENT_SECRET,
            method=request.method or "POST",
            uri=request.build_absolute_uri(),
            body=request.body,
            signature=request.headers.get("X-HubSpot-Signature-v3"),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
        )
    except webhooks.InvalidWebhook as exc:
        logger.warning("webhook refused: %s", exc)
        return JsonResponse({"status": "error", "message": str(exc)}, status=401)
    try:
        events = webhooks.parse(request.body)
    except webhooks.InvalidWebhook as exc:
        logger.warning("webhook malformed: %s", exc)
        return JsonResponse({"status": "error", "message": str(exc)}, status=400)
    new = services.webhook_events_store(events=events)
    return JsonResponse({"status": "ok", "received": len(events), "new": new})


@group_required(SUPPORT)
@require_GET
def sync_status(request: HttpRequest) -> HttpResponse:
    context = {
        "heartbeat": WorkerHeartbeat.objects.latest_beat(),
        "worker_alive": WorkerHeartbeat.objects.is_alive(),
        "broker": health.check_broker(),
        "problems": list(ConnectionProblem.objects.all()),
        "runs": list(SyncRun.objects.recent(25)),
        "events": list(WebhookEvent.objects.all()[:50]),
    }
    return render(request, "hubspot/sync.html", context)


@group_required(SUPPORT)
@require_GET
def sync_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run's row; the page polls it while the run is in progress."""
    run = get_object_or_404(SyncRun, pk=pk)
    return render(request, "hubspot/sync.html#run-row", {"run": run})


@group_required(SUPPORT)
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    from hubspot.tasks import sync_full_task, sync_incremental_task

    kind = request.POST.get("kind", SyncKind.INCREMENTAL)
    if kind == SyncKind.FULL:
        sync_full_task.delay(manual=True)
        messages.success(
            request, "A full sync has been queued. It reads every record again; progress shows below."
        )
    elif kind == SyncKind.INCREMENTAL:
        sync_incremental_task.delay(manual=True)
        messages.success(request, "A sync has been queued. HubSpot's latest changes will show in a moment.")
    else:
        messages.error(request, "Unknown kind of sync; nothing was started.")
    return redirect("hubspot:sync")
