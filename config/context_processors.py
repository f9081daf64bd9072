"""Banners every page shows: conditions staff must know about before they trust what they see."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from hubspot_sync import portal_check
from hubspot_sync.models import ConnectionProblem, WorkerHeartbeat


def banners(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"banners": []}
    # Read only when a page shows them: partials (a card, a column page) have no banners.
    return {
        "banners": SimpleLazyObject(lambda: _banners(request)),
        # The Sync page shows it with its "Full resync" button (see hubspot_sync.portal_check).
        "portal_mismatch": SimpleLazyObject(portal_check.mismatch),
    }


def _banners(request: HttpRequest) -> list[dict[str, str]]:
    # Components rendered with the request (a board has a sync state per card) run context processors
    # again: read the conditions once per request.
    cached: list[dict[str, str]] | None = getattr(request, "_orderdeck_banners", None)
    if cached is not None:
        return cached
    found: list[dict[str, str]] = []
    if not WorkerHeartbeat.objects.is_alive():
        found.append(
            {
                "level": "warning",
                "text": "No background worker has reported in the last few minutes. Your edits are saved "
                "here and will reach HubSpot when a worker runs again.",
            }
        )
    for problem in ConnectionProblem.objects.all():
        found.append({"level": "error", "text": problem.message})
    mismatch = portal_check.mismatch()
    if mismatch is not None:
        found.append({"level": "error", "text": f"{mismatch.message} (Sync page: “Full resync”.)"})
    request._orderdeck_banners = found  # type: ignore[attr-defined]
    return found
