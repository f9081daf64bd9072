"""Reads of the outbox for pages: where a record stands with HubSpot (its sync state), which records are in
a sync state, and the Sync page's summary. Nothing here writes; the component that shows a sync state is the
``sync_state`` template tag (hubspot_sync/templatetags/hubspot_sync.py).

    record_sync_state(object_type, object_id) -> SyncState
    sync_state_for(obj, *, request=None) -> SyncState             (with the request: read once per page)
    hubspot_ids_with_sync_state(object_type, state) -> ids       (state: unsettled, pending, failed, conflict)
    outbox_summary(*, limit=200) -> dict
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from hubspot_sync import registry
from hubspot_sync.models import UNSETTLED, Change, ChangeKind, ChangeStatus, ConnectionProblem
from hubspot_sync.pending import is_temp, spec_for

# --- the sync state of records -------------------------------------------------------------------------

# How long a card says "in HubSpot" after its last change landed.
PUSHED_SHOWN_S = 30

_STATE_STATUSES: dict[str, tuple[str, ...]] = {
    "unsettled": tuple(UNSETTLED),
    "pending": (ChangeStatus.PENDING, ChangeStatus.PUSHING),
    "failed": (ChangeStatus.FAILED,),
    "conflict": (ChangeStatus.CONFLICT,),
}


# The component's pace (asked fewer than N times: every S seconds): ten asks a second apart, ten two seconds
# apart, ten five seconds apart, then every POLL_SLOWEST_S.
POLL_PACE = ((10, 1), (20, 2), (30, 5))
POLL_SLOWEST_S = 10
POLL_MAX_COUNT = 1000


@dataclass
class SyncState:
    """Where a record stands with HubSpot: what the sync-state component shows."""

    object_type: str
    object_id: str
    changes: list[Change] = field(default_factory=list)  # unsettled, oldest first
    recent: Change | None = None  # the last change, when it landed a moment ago
    paused: ConnectionProblem | None = None
    # How many times the component has asked already (its ``n`` parameter): the pace slows as it waits.
    poll_count: int = 0

    @property
    def state(self) -> str:
        statuses = {c.status for c in self.changes}
        if ChangeStatus.CONFLICT in statuses:
            return "conflict"
        if ChangeStatus.FAILED in statuses or any(blocked_by(c) for c in self.changes):
            return "failed"
        if statuses:
            if self.paused is not None:
                return "paused"
            if any(c.error for c in self.changes):
                return "retrying"
            return "pending"
        return "pushed" if self.recent is not None else "settled"

    @property
    def polling(self) -> bool:
        """Whether the component asks again: until every change is in HubSpot or needs a person."""
        return self.state in ("pending", "retrying", "paused")

    @property
    def poll_after_s(self) -> int:
        """Seconds before the component asks again: every second while a push usually lands, then slower,
        so a page with many waiting records (a reordered pipeline, a bulk move, no worker running) does not
        ask dozens of times a second for long."""
        if self.state == "paused":
            return 15
        for asked, every in POLL_PACE:
            if self.poll_count < asked:
                return every
        return POLL_SLOWEST_S

    @property
    def next_poll(self) -> int:
        return min(self.poll_count + 1, POLL_MAX_COUNT)

    @property
    def problems(self) -> list[Change]:
        """Changes that need a person: failed, in conflict, or waiting for a create that failed."""
        return [
            c
            for c in self.changes
            if c.status in (ChangeStatus.FAILED, ChangeStatus.CONFLICT) or blocked_by(c)
        ]

    @property
    def waiting(self) -> list[Change]:
        return [c for c in self.changes if c.status in (ChangeStatus.PENDING, ChangeStatus.PUSHING)]

    @property
    def dom_id(self) -> str:
        return f"sync-{self.object_type}-{self.object_id}"


def blocked_by(change: Change) -> Change | None:
    """The failed create a pending change waits for (noted by ``_note_blocked``), if any."""
    return getattr(change, "blocked_by", None)


def _note_blocked(changes: Sequence[Change]) -> None:
    """Mark pending changes that wait for a record, pipeline or stage whose create HubSpot refused: they
    can't go until that create is retried, and may be discarded meanwhile."""
    waiting = [c for c in changes if c.status == ChangeStatus.PENDING and c.waits_for]
    temp_ids = {t for c in waiting for t in c.waiting_for}
    if not temp_ids:
        return
    failed = {
        c.object_id: c
        for c in Change.objects.filter(
            object_id__in=temp_ids,
            kind__in=(ChangeKind.CREATE, ChangeKind.PIPELINE_CREATE, ChangeKind.STAGE_CREATE),
            status__in=(ChangeStatus.FAILED, ChangeStatus.CONFLICT),
        )
    }
    for change in waiting:
        creator = next((failed[t] for t in change.waiting_for if t in failed), None)
        if creator is not None:
            change.blocked_by = creator  # type: ignore[attr-defined]


def _paused() -> ConnectionProblem | None:
    return ConnectionProblem.objects.filter(
        Q(kind=ConnectionProblem.Kind.AUTH)
        | Q(kind=ConnectionProblem.Kind.DAILY_LIMIT, until__gt=timezone.now())
    ).first()


def _current_id(object_type: str, object_id: str) -> str:
    """A temporary id a page still holds, followed to HubSpot's id once the record was created."""
    if not is_temp(object_id):
        return object_id
    if Change.objects.filter(object_type=object_type, object_id=object_id).exists():
        return object_id
    created = (
        Change.objects.filter(object_type=object_type, payload__temp_id=object_id)
        .values_list("object_id", flat=True)
        .first()
    )
    return created or object_id


def record_sync_state(object_type: str, object_id: str, *, poll_count: int = 0) -> SyncState:
    """The record's unsettled changes, or its last one if it landed a moment ago."""
    object_id = _current_id(object_type, object_id)
    changes = list(
        Change.objects.for_record(object_type, object_id)
        .unsettled()
        .select_related("created_by")
        .order_by("pk")
    )
    recent = None
    if not changes:
        recent = (
            Change.objects.for_record(object_type, object_id)
            .filter(
                status=ChangeStatus.APPLIED,
                applied_at__gte=timezone.now() - timedelta(seconds=PUSHED_SHOWN_S),
            )
            .order_by("-applied_at")
            .first()
        )
    _note_blocked(changes)
    return SyncState(
        object_type, object_id, changes, recent, _paused() if changes else None, poll_count=poll_count
    )


def _object_key(obj: Any) -> tuple[str, str]:
    """(object type, id) of a record, or of a pipeline or stage (types their app registered)."""
    owned = registry.object_type_of_model(obj._meta.label_lower)
    return (owned or spec_for(obj).name), obj.hubspot_id


def _unsettled_pks(object_type: str, statuses: Sequence[str] = UNSETTLED) -> QuerySet[Change, Any]:
    """The type's changes in these statuses, as a subquery of pks that only the (type, status) index answers.

    Asked for whole rows directly, SQLite's planner walks the table instead: its statistics know only that
    nearly every change of a type is applied (the audit log), so a status list looks unselective to it.
    """
    return Change.objects.filter(object_type=object_type, status__in=statuses).values("pk")


def _states_for_page(request: HttpRequest, object_type: str) -> dict[str, SyncState]:
    """Every record of the type with something to show, read once per request (a board has many cards)."""
    cache: dict[str, dict[str, SyncState]] = request.__dict__.setdefault("_outbox_states", {})
    if object_type not in cache:
        states: dict[str, SyncState] = {}
        paused = _paused()
        unsettled = list(Change.objects.filter(pk__in=_unsettled_pks(object_type)).order_by("pk"))
        _note_blocked(unsettled)
        for change in unsettled:
            states.setdefault(change.object_id, SyncState(object_type, change.object_id, paused=paused))
            states[change.object_id].changes.append(change)
        recently = timezone.now() - timedelta(seconds=PUSHED_SHOWN_S)
        for change in Change.objects.filter(
            object_type=object_type, status=ChangeStatus.APPLIED, applied_at__gte=recently
        ).order_by("applied_at"):
            if change.object_id not in states or not states[change.object_id].changes:
                states[change.object_id] = SyncState(object_type, change.object_id, recent=change)
        cache[object_type] = states
    return cache[object_type]


def sync_state_for(obj: Any, *, request: HttpRequest | None = None) -> SyncState:
    """The record's sync state; with the request, every record of its type is read once per request."""
    object_type, object_id = _object_key(obj)
    if request is not None:
        return _states_for_page(request, object_type).get(object_id) or SyncState(object_type, object_id)
    return record_sync_state(object_type, object_id)


def hubspot_ids_with_sync_state(object_type: str, state: str) -> QuerySet[Change, str]:
    """Ids of the records of a type in a sync state (for ``hubspot_id__in=`` filters)."""
    statuses = _STATE_STATUSES.get(state)
    if statuses is None:
        raise ValueError(f"unknown sync state {state!r}; one of {', '.join(_STATE_STATUSES)}")
    return Change.objects.filter(pk__in=_unsettled_pks(object_type, statuses)).values_list(
        "object_id", flat=True
    )


def outbox_summary(*, limit: int = 200) -> dict[str, Any]:
    """The Sync page's outbox: counts by status, and the unsettled changes, problems first."""
    counts = dict(
        Change.objects.unsettled().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    return {
        "pending": counts.get(ChangeStatus.PENDING, 0) + counts.get(ChangeStatus.PUSHING, 0),
        "failed": counts.get(ChangeStatus.FAILED, 0),
        "conflict": counts.get(ChangeStatus.CONFLICT, 0),
        "changes": list(Change.objects.outbox()[:limit]),
        "paused": _paused(),
    }
