"""Views of the integration: webhook intake, the Sync page, a record's sync state and its changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from config.htmx import HtmxHttpRequest
from config.permissions import PIPELINE_ADMIN, SUPPORT, group_required, in_group
from hubspot_sync import health, outbox, pauses, registry, services, sync_state, webhooks
from hubspot_sync.forms import ChangeActionForm, OutboxActionForm
from hubspot_sync.models import Change, ConnectionProblem, SyncKind, SyncRun, WebhookEvent, WorkerHeartbeat
from hubspot_sync.tasks import sync_full_task, sync_incremental_task

logger = logging.getLogger(__name__)


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
        # Why is logged here (never the secret or the signature); the caller learns nothing it could tune by.
        logger.warning("webhook refused: %s", exc)
        return JsonResponse({"status": "error"}, status=401)
    try:
        batch = webhooks.parse(request.body)
    except webhooks.InvalidWebhook as exc:
        logger.warning("webhook malformed: %s", exc)
        return JsonResponse({"status": "error", "message": "Malformed webhook batch."}, status=400)
    if batch.skipped:
        # HubSpot re-sends a refused batch, so the good events of a partly bad one are kept and answered 200.
        logger.warning("webhook: %d malformed event(s) left out: %s", len(batch.skipped), batch.skipped[0])
    new = services.webhook_events_store(events=batch.events)
    return JsonResponse(
        {"status": "ok", "received": len(batch.events), "new": new, "skipped": len(batch.skipped)}
    )


@group_required(SUPPORT)
@require_GET
def sync_status(request: HttpRequest) -> HttpResponse:
    pauses.end_expired()
    context = {
        "heartbeat": WorkerHeartbeat.objects.latest_beat(),
        "worker_alive": WorkerHeartbeat.objects.is_alive(),
        "broker": health.check_broker(),
        "problems": list(ConnectionProblem.objects.all()),
        "may_resume": in_group(request.user, PIPELINE_ADMIN),
        "runs": list(SyncRun.objects.recent(25)),
        "events": list(WebhookEvent.objects.all()[:50]),
        "outbox": sync_state.outbox_summary(),
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
    daily = ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).first()
    if daily is not None:
        messages.warning(
            request,
            "HubSpot's daily API limit pauses syncing, so the sync waits for the pause to end"
            f"{' at ' + pauses.reset_label(daily.until) if daily.until else ''}. A Pipeline admin can "
            "resume now.",
        )
    return redirect("hubspot:sync")


@group_required(PIPELINE_ADMIN)
@require_POST
def sync_resume(request: HttpRequest) -> HttpResponse:
    """The "Resume now" of a daily-limit pause: end it, and queue a sync and a push at once."""
    ended = pauses.resume_now()
    logger.info("daily-limit pause ended by %s", request.user.get_username())
    messages.success(
        request,
        "Resumed: a sync and a push are queued. If HubSpot still refuses, the pause comes back until the "
        "reset."
        if ended
        else "Nothing was paused; a sync and a push are queued anyway.",
    )
    return redirect("hubspot:sync")


# --- the outbox: a record's sync state and timeline, Retry / Discard / conflict choices, bulk actions -------


_CHANGE_ACTIONS: dict[str, tuple[Callable[..., Change], str]] = {
    "retry": (outbox.change_retry, "Sent to HubSpot again."),
    "discard": (outbox.change_discard, "Discarded: the record shows HubSpot's value again."),
    "keep-mine": (outbox.change_keep_mine, "Keeping yours: it is sent over HubSpot's value."),
    "take-hubspot": (outbox.change_take_hubspot, "Took HubSpot's value."),
}


def _known_type_or_404(object_type: str) -> None:
    if object_type not in registry.owned_object_types() and registry.find(object_type) is None:
        raise Http404("No such kind of record.")


def _may_resolve(request: HttpRequest, change: Change) -> bool:
    """Pipeline and stage changes belong to the pipeline editors."""
    return not change.is_pipeline_change or in_group(request.user, PIPELINE_ADMIN)


def _check_may_see(request: HttpRequest, object_type: str) -> None:
    """Support sees every record's sync state and changes; Pipeline admins (who may not be in Support)
    those of the pipelines and stages they edit."""
    if in_group(request.user, SUPPORT):
        return
    if object_type in registry.owned_object_types() and in_group(request.user, PIPELINE_ADMIN):
        return
    raise PermissionDenied(f"This page is for the “{SUPPORT}” group.")


def _staff(request: HttpRequest) -> User:
    # group_required has let only signed-in members of a group through.
    return cast(User, request.user)


@require_GET
def record_state(request: HtmxHttpRequest, object_type: str, object_id: str) -> HttpResponse:
    """One record's sync-state component; it asks for itself again until the record is settled."""
    _check_may_see(request, object_type)
    _known_type_or_404(object_type)
    raw = request.GET.get("n", "")
    asked = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else 0
    context = {"sync": sync_state.record_sync_state(object_type, object_id, poll_count=asked)}
    return render(request, "hubspot/record.html#record-state", context)


@require_GET
def record_changes(request: HtmxHttpRequest, object_type: str, object_id: str) -> HttpResponse:
    """A record's timeline of changes (the audit log): the page, or the list alone for htmx."""
    _check_may_see(request, object_type)
    _known_type_or_404(object_type)
    state = sync_state.record_sync_state(object_type, object_id)
    changes = list(Change.objects.timeline(object_type, state.object_id)[:200])
    context = {"sync": state, "object_type": object_type, "object_id": state.object_id, "changes": changes}
    template = "hubspot/record.html#record-changes" if request.htmx else "hubspot/record.html"
    return render(request, template, context)


@require_POST
def change_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """Retry (with corrected values), Discard, Keep mine or Take HubSpot's on one change."""
    if not (in_group(request.user, SUPPORT) or in_group(request.user, PIPELINE_ADMIN)):
        raise PermissionDenied(f"This page is for the “{SUPPORT}” group.")
    if action not in _CHANGE_ACTIONS:
        raise Http404("No such action.")
    change = get_object_or_404(Change, pk=pk)
    _check_may_see(request, change.object_type)
    if not _may_resolve(request, change):
        raise PermissionDenied(f"Pipeline changes are for the “{PIPELINE_ADMIN}” group.")
    form = ChangeActionForm(request.POST, change=change, action=action)
    if not form.is_valid():
        notice = f"Not sent: {form.error_text()}"
    else:
        service, notice = _CHANGE_ACTIONS[action]
        try:
            service(change=change, by=_staff(request), **form.arguments())
        except outbox.ChangeNotAllowed as exc:
            notice = str(exc)
    if not request.htmx:
        messages.info(request, notice)
        return redirect("hubspot:record-changes", change.object_type, _current_id(change))
    state = sync_state.record_sync_state(change.object_type, _current_id(change))
    response = render(request, "hubspot/record.html#record-state", {"sync": state, "notice": notice})
    # Cards and drawers showing the record listen for this and refresh their values.
    return trigger_client_event(
        response, "recordSynced", {"object_type": state.object_type, "object_id": state.object_id}
    )


def _current_id(change: Change) -> str:
    return Change.objects.filter(pk=change.pk).values_list("object_id", flat=True).first() or change.object_id


@group_required(SUPPORT)
@require_GET
def outbox_section(request: HtmxHttpRequest) -> HttpResponse:
    """The Sync page's outbox counts, which the page polls while changes are on their way."""
    return render(request, "hubspot/sync.html#outbox-counts", {"outbox": sync_state.outbox_summary(limit=0)})


@group_required(SUPPORT)
@require_POST
def outbox_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Retry or Discard the changes picked in the outbox."""
    form = OutboxActionForm(request.POST)
    if form.is_valid():
        picked = [c for c in form.cleaned_data["change"] if _may_resolve(request, c)]
        if form.cleaned_data["action"] == "retry":
            count = outbox.changes_retry(changes=picked, by=_staff(request))
            notice = f"{count} change{pluralize(count)} sent again."
        else:
            count = outbox.changes_discard(changes=picked, by=_staff(request))
            notice = f"{count} change{pluralize(count)} discarded."
    else:
        notice = " ".join(str(e) for errors in form.errors.values() for e in errors)
    if not request.htmx:
        messages.info(request, notice)
        return redirect("hubspot:sync")
    return render(
        request, "hubspot/sync.html#outbox", {"outbox": sync_state.outbox_summary(), "notice": notice}
    )
