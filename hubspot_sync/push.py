"""Push: send the outbox to HubSpot (DESIGN.md §5).

A push task drains the outbox in claims. A claim takes, in one short transaction, the due changes of up to
100 records of one kind and type, marks them ``pushing`` under a token and a lease, and excludes records
another worker is sending, so one record is never written by two workers at once. Then, outside any
transaction:

- pipelines and stages go first (a new stage exists in HubSpot before an order moves into it), then record
  creates, edits, links, and last deletes; a change that names a temporary id waits until HubSpot has
  created that thing and the id is replaced with HubSpot's;
- edits of one record are coalesced (the latest value of each property) and up to 100 records make one
  batch read and one batch update; the read compares each property's base with HubSpot's current value,
  and a property HubSpot changed since the edit makes its changes a conflict instead of being written;
- creates carry the change's objectWriteTraceId on every attempt (or upsert by a unique property), so an
  attempt whose answer was lost cannot create a second record;
- 429s, 423s, 5xx, timeouts and network errors are retried by the client within the shared rate limiter;
  what outlasts that goes back to pending with a backoff. A DAILY 429 pauses pushing until the reset
  (a ConnectionProblem: the banner on every page). Validation and not-found answers fail the change with
  HubSpot's message.

Durability: a worker renews its lease while it sends; if it dies, the lease runs out and the changes are
claimed again (by any push task, or by the periodic sweep that also queues a task). A write whose answer was
lost may still land in HubSpot later, so the record's next write waits ``HUBSPOT_PUSH_GHOST_WINDOW_S``; the
next attempt reads HubSpot first and skips values that are already there. Running a task twice does
nothing more than running it once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from hubspot_sync import client, jobs, outbox, pauses, pending, registry
from hubspot_sync.models import (
    Change,
    ChangeKind,
    ChangeStatus,
    ConnectionProblem,
    OutboxState,
)
from hubspot_sync.outbox import queue_push, refresh_on_commit

logger = logging.getLogger(__name__)

AUTH_MESSAGE = (
    "HubSpot rejected the access token, so edits can't be sent. Set HUBSPOT_ACCESS_TOKEN to a valid "
    "private-app token, then press “Sync now”."
)
# Rows a claim looks at per kind of change: plenty for 100 records, bounded whatever the backlog.
_SCAN = 5000
_DELETE_KINDS = (ChangeKind.PIPELINE_DELETE, ChangeKind.STAGE_DELETE)


@dataclass(frozen=True)
class Phase:
    name: str
    kinds: tuple[str, ...]
    single: bool  # one record per claim (no batch API)


PHASES: tuple[Phase, ...] = (
    Phase(
        "pipelines",
        (
            ChangeKind.PIPELINE_CREATE,
            ChangeKind.PIPELINE_UPDATE,
            ChangeKind.STAGE_CREATE,
            ChangeKind.STAGE_UPDATE,
        ),
        single=True,
    ),
    Phase("creates", (ChangeKind.CREATE,), single=False),
    Phase("updates", (ChangeKind.UPDATE,), single=False),
    Phase("links", (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE), single=False),
    Phase("deletes", _DELETE_KINDS, single=True),
)


@dataclass
class Claim:
    token: str
    phase: str
    object_type: str
    changes: list[Change]


# --- draining ---------------------------------------------------------------------------------------------


def push_outbox(*, budget_s: float | None = None) -> int:
    """Send what is due in the outbox until nothing is; returns how many changes were settled.

    Waits briefly (up to a second or two) for edits that are still settling, so quick successive edits of a
    record and bulk edits share calls; what is due later is left to a delayed task. While it runs it says so
    (edits then queue no task of their own), and before it stops it clears that and looks once more. While
    full batches are due, up to HUBSPOT_PUSH_SENDERS - 1 threads send claims beside it (``_Senders``)."""
    budget = settings.HUBSPOT_PUSH_DRAIN_BUDGET_S if budget_s is None else budget_s
    _mark_started()
    deadline = time.monotonic() + budget
    senders = _Senders(extra=settings.HUBSPOT_PUSH_SENDERS - 1, deadline=deadline)
    settled = 0
    stopping = False
    try:
        while True:
            if time.monotonic() >= deadline:
                queue_push(force=True)  # hand over to a fresh task rather than hold a worker slot for ever
                break
            if not stopping:
                _draining(until=timezone.now() + timedelta(seconds=settings.HUBSPOT_PUSH_QUEUE_STALE_S))
            problem = paused()
            if problem is not None:
                if problem.kind == ConnectionProblem.Kind.DAILY_LIMIT and problem.until:
                    _wake_later((problem.until - timezone.now()).total_seconds())
                break
            claim, wake = claim_next()
            if claim is None:
                if senders.sending():
                    # What they send may make more due (a delete waits for its moves): look again after.
                    senders.wait_for_one(timeout=1.0)
                    stopping = False
                    continue
                if wake is not None and wake.settling:
                    # Edits still arriving: worth a short wait in this task.
                    stopping = False
                    time.sleep(max(0.01, wake.seconds))
                    continue
                if wake is not None:
                    _wake_later(wake.seconds)  # a retry's backoff: another task, later
                if not stopping:
                    # An edit that found this task draining queued none: look once more after saying we stop.
                    _draining(until=None)
                    stopping = True
                    continue
                break
            stopping = False
            senders.add_if_backlog(claim)
            settled += push_claim(claim)
    finally:
        settled += senders.join()
        _draining(until=None)
    return settled


class _Senders:
    """Threads that send claims beside the push task's own loop while a backlog lasts. One sender waits for
    each call's answer and does its local work in between, so alone it stays under HubSpot's rate (with the
    sandbox's answers at once it reached about 94 % of the limiter's pace on a 10,000-order stage delete; at
    a real round trip of 150 ms, an assumed figure, about a third); with more, the shared limiter sets the
    pace. A claim of a full batch starts one (up to ``extra``); each takes and sends claims until none is
    due, HubSpot pauses pushing, or the task's time is up. Claims never overlap (``claim_next`` leaves out
    records being sent), so they are as safe as two workers' push tasks."""

    def __init__(self, *, extra: int, deadline: float) -> None:
        self.extra = max(0, extra)
        self.deadline = deadline
        self.threads: list[threading.Thread] = []
        self.settled = 0
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def sending(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def add_if_backlog(self, claim: Claim) -> None:
        records = {change.object_id for change in claim.changes}
        if len(records) < settings.HUBSPOT_PUSH_BATCH:
            return
        self.threads = [thread for thread in self.threads if thread.is_alive()]
        if len(self.threads) >= self.extra:
            return
        thread = threading.Thread(target=self._send, name=f"push-sender-{len(self.threads) + 1}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _send(self) -> None:
        try:
            while time.monotonic() < self.deadline and paused() is None:
                claim, _ = claim_next()
                if claim is None:
                    break
                settled = push_claim(claim)
                with self._lock:
                    self.settled += settled
        except Exception:
            # The claim's changes went back to pending (push_claim) or come back when their lease runs out.
            logger.exception("push: a sender thread stopped")
        finally:
            connection.close()
            self._finished.set()

    def wait_for_one(self, *, timeout: float) -> None:
        self._finished.wait(timeout)
        self._finished.clear()

    def join(self) -> int:
        for thread in self.threads:
            thread.join()
        with self._lock:
            return self.settled


_renewed_at = 0.0  # when this process last said it drains (monotonic); said again well before it expires


def _draining(*, until: datetime | None) -> None:
    global _renewed_at
    if until is not None and time.monotonic() - _renewed_at < settings.HUBSPOT_PUSH_QUEUE_STALE_S / 3:
        return
    OutboxState.objects.filter(pk=1).update(draining_until=until)
    _renewed_at = time.monotonic() if until is not None else 0.0


def outbox_sweep() -> int:
    """The periodic sweep: changes whose worker died go back to pending, and a push task is queued while
    anything is pending (its own task may have been lost with a worker or a broker restart)."""
    now = timezone.now()
    with transaction.atomic():
        reclaimed = _reclaim_expired(now)
    pauses.end_expired(now)
    if Change.objects.filter(status=ChangeStatus.PENDING).exists():
        queue_push(force=True)
    return reclaimed


def paused() -> ConnectionProblem | None:
    """The connection problem that stops pushing now, if any (an ended daily-limit pause is dropped)."""
    return pauses.active()


def _mark_started() -> None:
    now = timezone.now()
    if not OutboxState.objects.filter(pk=1).update(started_at=now):
        OutboxState.objects.get_or_create(pk=1, defaults={"started_at": now})


def _wake_later(seconds: float) -> None:
    """Queue a delayed push task, unless one is already due no later."""
    seconds = min(max(seconds, 0.0), settings.HUBSPOT_PUSH_RETRY_CAP_S)
    now = timezone.now()
    due = now + timedelta(seconds=seconds)
    taken = (
        OutboxState.objects.filter(pk=1)
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now) | Q(wake_at__gt=due))
        .update(wake_at=due)
    )
    if taken:
        jobs.task("push_changes").apply_async(countdown=seconds)


def _reclaim_expired(now: datetime) -> int:
    """Changes claimed by a worker that stopped renewing its lease (it died) are sent again, once any write
    of theirs that was under way can no longer land."""
    return Change.objects.filter(status=ChangeStatus.PUSHING, lease_until__lt=now).update(
        status=ChangeStatus.PENDING,
        claim="",
        lease_until=None,
        next_attempt_at=now + timedelta(seconds=settings.HUBSPOT_PUSH_GHOST_WINDOW_S),
        error="The worker sending this change stopped; it is sent again.",
    )


# --- claims -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wake:
    """When something pending becomes due: ``settling`` edits (debounce, a batch filling) are due within a
    second or two; otherwise it is a retry's backoff or a record waiting out a late write."""

    seconds: float
    settling: bool


class _Soonest:
    """The earliest moment something pending becomes due, as the claim's scan finds them."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.wake: Wake | None = None

    def note(self, moment: datetime, *, settling: bool = False) -> None:
        seconds = max(0.0, (moment - self.now).total_seconds())
        if self.wake is None or seconds < self.wake.seconds:
            self.wake = Wake(seconds, settling)


@dataclass
class _Choice:
    """What one phase's scan chose: the ready changes of some records of one type."""

    chosen: list[list[dict[str, Any]]]
    object_type: str | None = None
    oldest: datetime | None = None


def claim_next() -> tuple[Claim | None, Wake | None]:
    """Claim the next batch of due changes, or say when something becomes due (None: nothing is pending
    that a push task could send now or later).

    The choice is made from reads; only the claim itself is a (short) locked transaction, since on SQLite
    every write transaction holds up every edit."""
    now = timezone.now()
    soonest = _Soonest(now)
    if Change.objects.filter(status=ChangeStatus.PUSHING, lease_until__lt=now).exists():
        with transaction.atomic():
            _reclaim_expired(now)
    busy = set(Change.objects.filter(status=ChangeStatus.PUSHING).values_list("object_type", "object_id"))
    quiet = _quiet_records(now)
    for phase in PHASES:
        operation = registry.push_operation(phase.name)
        if operation is None and phase.name not in _HANDLERS:
            continue  # no app sends this phase's kinds
        rows = _pending_rows(phase)
        choice = _choose(phase, rows, busy, quiet, soonest, operation)
        if not choice.chosen:
            continue
        if _worth_filling(phase, choice, rows, now):
            # Room left in the batch and a bulk edit under way: wait a moment so its edits share calls.
            assert choice.oldest is not None
            soonest.note(choice.oldest + timedelta(seconds=settings.HUBSPOT_PUSH_FILL_S), settling=True)
            continue
        assert choice.object_type is not None
        claim = _claim(phase, choice.object_type, choice.chosen, now)
        if claim is not None:
            return claim, None
        soonest.note(now, settling=True)  # another worker took them first: look again
    return None, soonest.wake


def _quiet_records(now: datetime) -> dict[tuple[str, str], datetime]:
    """Records whose last write may still land late (see HUBSPOT_PUSH_GHOST_WINDOW_S), and until when."""
    quiet: dict[tuple[str, str], datetime] = {}
    for object_type, object_id, until in Change.objects.filter(quiet_until__gt=now).values_list(
        "object_type", "object_id", "quiet_until"
    ):
        if until is not None:
            quiet[(object_type, object_id)] = max(until, quiet.get((object_type, object_id), until))
    return quiet


_ROW_FIELDS = (
    "pk",
    "object_type",
    "object_id",
    "waits_for",
    "created_at",
    "kind",
    "parent_id",
    "next_attempt_at",
)


def _pending_rows(phase: Phase) -> list[dict[str, Any]]:
    """The phase's pending changes, oldest first (a bounded scan, whatever the backlog). Read without Django's
    converters, which on SQLite parse every timestamp of the scan while a claim looks at a few of them (a
    backlog of 10,000 moves cost each claim a tenth of a second): ``_at`` converts those it needs."""
    query = (
        Change.objects.filter(status=ChangeStatus.PENDING, kind__in=phase.kinds)
        .order_by("pk")
        .values_list(*_ROW_FIELDS)[:_SCAN]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(_ROW_FIELDS, values, strict=True)) for values in cursor.fetchall()]


def _at(row: dict[str, Any], name: str) -> datetime | None:
    """A pending row's timestamp, converted once: SQLite gives it naive, in UTC (as Django writes it)."""
    value = row[name]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    row[name] = value
    return value


def _ready(record_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A record's changes up to the first that still waits for a created id (none goes after that one)."""
    ready: list[dict[str, Any]] = []
    for row in record_rows:
        if row["waits_for"]:
            break
        ready.append(row)
    return ready


def _choose(
    phase: Phase,
    rows: list[dict[str, Any]],
    busy: set[tuple[str, str]],
    quiet: dict[tuple[str, str], datetime],
    soonest: _Soonest,
    operation: registry.PushOperation | None,
) -> _Choice:
    """The records whose changes go in the next claim of the phase: of one type, each record's ready changes
    together and in order, up to a batch (one record for a phase without a batch API)."""
    now = soonest.now
    debounce = timedelta(seconds=settings.HUBSPOT_PUSH_DEBOUNCE_S)
    debounce_max = timedelta(seconds=settings.HUBSPOT_PUSH_DEBOUNCE_MAX_S)
    must_wait = operation.must_wait if operation is not None else None
    by_record: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_record.setdefault((row["object_type"], row["object_id"]), []).append(row)
    choice = _Choice([])
    for key, record_rows in by_record.items():
        if key in busy:
            continue  # its worker goes on to the record's next changes when it is done
        if key in quiet:
            soonest.note(quiet[key])
            continue
        # A record's changes go together and in order: all wait while one waits out a backoff...
        not_before = max(
            (at for r in record_rows if (at := _at(r, "next_attempt_at")) is not None), default=None
        )
        if not_before is not None and not_before > now:
            soonest.note(not_before)
            continue
        # ...and none goes after one that still waits for a created id.
        ready = _ready(record_rows)
        if not ready or (choice.object_type is not None and key[0] != choice.object_type):
            continue
        if must_wait is not None and must_wait(ready[0]):
            continue
        created = [_at(r, "created_at") or now for r in record_rows]
        newest, oldest = max(created), min(created)
        eligible_at = min(newest + debounce, oldest + debounce_max)
        if eligible_at > now:
            soonest.note(eligible_at, settling=True)
            continue
        if phase.single:
            # A pipeline or stage: a create goes alone, updates of one thing together.
            ready = ready[:1] if ready[0]["kind"] in _CREATES else ready
        choice.object_type = key[0]
        choice.chosen.append(ready)
        choice.oldest = oldest if choice.oldest is None else min(choice.oldest, oldest)
        if phase.single or len(choice.chosen) >= settings.HUBSPOT_PUSH_BATCH:
            break
    return choice


def _worth_filling(phase: Phase, choice: _Choice, rows: list[dict[str, Any]], now: datetime) -> bool:
    """Whether to wait a moment before claiming: room is left in the batch while a bulk edit is still
    arriving, and the oldest chosen change has not waited HUBSPOT_PUSH_FILL_S yet."""
    if (
        phase.single
        or len(choice.chosen) >= settings.HUBSPOT_PUSH_BATCH
        or choice.oldest is None
        or choice.oldest + timedelta(seconds=settings.HUBSPOT_PUSH_FILL_S) <= now
    ):
        return False
    recently = now - timedelta(seconds=1)
    arriving = sum(1 for row in rows if (_at(row, "created_at") or now) > recently)
    return arriving >= settings.HUBSPOT_PUSH_FILL_MIN


def _claim(phase: Phase, object_type: str, chosen: list[list[dict[str, Any]]], now: datetime) -> Claim | None:
    """Mark the chosen changes pushing under a token, leaving out records another worker took meanwhile."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        # One claim at a time: on PostgreSQL this row lock; SQLite's IMMEDIATE transactions already queue.
        list(OutboxState.objects.select_for_update().filter(pk=1))
        taken = set(
            Change.objects.filter(
                status=ChangeStatus.PUSHING,
                object_type=object_type,
                object_id__in=[ready[0]["object_id"] for ready in chosen],
            ).values_list("object_id", flat=True)
        )
        pks = [row["pk"] for ready in chosen if ready[0]["object_id"] not in taken for row in ready]
        if not pks:
            return None
        Change.objects.filter(pk__in=pks, status=ChangeStatus.PENDING).update(
            status=ChangeStatus.PUSHING,
            claim=token,
            lease_until=now + timedelta(seconds=settings.HUBSPOT_PUSH_LEASE_S),
            pushed_at=now,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
        )
        changes = list(Change.objects.filter(claim=token, status=ChangeStatus.PUSHING).order_by("pk"))
    return Claim(token, phase.name, object_type, changes) if changes else None


_CREATES = (ChangeKind.PIPELINE_CREATE, ChangeKind.STAGE_CREATE, ChangeKind.CREATE)


# --- sending one claim --------------------------------------------------------------------------------------


class _LeaseKeeper:
    """Renews a claim's lease from a thread of its own while the worker sends (a call may take longer than
    the lease when HubSpot is slow); a worker that dies stops renewing, and its changes are claimed again."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"push-lease-{token[:8]}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        lease = settings.HUBSPOT_PUSH_LEASE_S
        try:
            while not self._stop.wait(lease / 3):
                Change.objects.filter(claim=self.token, status=ChangeStatus.PUSHING).update(
                    lease_until=timezone.now() + timedelta(seconds=lease)
                )
        except DatabaseError as exc:
            logger.warning("push: could not renew a lease (%s)", exc)
        finally:
            connection.close()


def push_claim(claim: Claim) -> int:
    """Send one claim; whatever HubSpot could not take yet goes back to pending with a backoff."""
    handler = _sender(claim.phase)
    try:
        with _LeaseKeeper(claim.token):
            return handler(claim)
    except client.DailyLimitReached as exc:
        # Ends at the account's next midnight (or HubSpot's Retry-After), a successful probe, or "Resume now".
        until = pauses.record_daily_limit(exc).until or pauses.next_daily_reset()
        _release(
            claim,
            at=until,
            error=f"HubSpot's daily API limit is spent until {pauses.reset_label(until)}; sent then.",
        )
    except client.AuthFailed as exc:
        pauses.record_auth_failed(exc, AUTH_MESSAGE)
        _release(claim, at=_backoff(claim, None), error="HubSpot refused the access token.")
    except (client.RateLimited, client.Retryable) as exc:
        logger.info("push: %d changes wait after %s", len(claim.changes), exc.message[:200])
        error = (
            "HubSpot is busy (rate limit); sending again shortly."
            if isinstance(exc, client.RateLimited)
            else f"HubSpot did not answer in time ({exc.message[:200]}); sending again shortly."
        )
        at = _backoff(claim, exc)
        if isinstance(exc, client.Retryable):
            # The write may still land: nothing more for these records until it no longer can.
            at = max(at, timezone.now() + timedelta(seconds=settings.HUBSPOT_PUSH_GHOST_WINDOW_S))
        _release(claim, at=at, error=error)
    except Exception:
        _release(
            claim, at=_backoff(claim, None), error="Sending stopped on an unexpected error; tried again."
        )
        raise
    return 0


def _backoff(claim: Claim, exc: client.HubSpotError | None) -> datetime:
    attempts = max((c.attempts for c in claim.changes), default=1)
    ceiling = min(settings.HUBSPOT_PUSH_RETRY_CAP_S, settings.HUBSPOT_PUSH_RETRY_BASE_S * 2 ** (attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # "equal jitter": never hammer, never synchronise
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after:
        delay = max(delay, float(retry_after))
    return timezone.now() + timedelta(seconds=delay)


def _release(claim: Claim, *, at: datetime, error: str) -> None:
    Change.objects.filter(claim=claim.token, status=ChangeStatus.PUSHING).update(
        status=ChangeStatus.PENDING, claim="", lease_until=None, next_attempt_at=at, error=error
    )


# --- outcomes -----------------------------------------------------------------------------------------------


def _mine(claim: Claim, changes: Iterable[Change]) -> list[Change]:
    """Those of the changes this claim still holds (a claim whose lease ran out was given to another)."""
    pks = [c.pk for c in changes]
    held = set(
        Change.objects.select_for_update()
        .filter(pk__in=pks, claim=claim.token, status=ChangeStatus.PUSHING)
        .values_list("pk", flat=True)
    )
    return [c for c in changes if c.pk in held]


def settle_applied(
    claim: Claim,
    changes: Sequence[Change],
    *,
    response: Callable[[Change], dict[str, Any]] | None = None,
    quiet: bool = False,
) -> int:
    now = timezone.now()
    with transaction.atomic():
        held = _mine(claim, changes)
        for change in held:
            change.status = ChangeStatus.APPLIED
            change.applied_at = change.settled_at = now
            change.error = ""
            change.claim = ""
            change.lease_until = None
            change.response = response(change) if response else {}
            change.quiet_until = (
                now + timedelta(seconds=settings.HUBSPOT_PUSH_GHOST_WINDOW_S) if quiet else None
            )
        # Row by row, sent together: bulk_update's CASE expressions cost half a second for a batch of 100.
        pending.update_rows(
            Change,
            held,
            [
                "status",
                "applied_at",
                "settled_at",
                "error",
                "claim",
                "lease_until",
                "response",
                "quiet_until",
            ],
        )
    return len(held)


def settle_failed(claim: Claim, changes: Sequence[Change], *, error: str, response: dict[str, Any]) -> int:
    """HubSpot refused: the change fails with its message, and later edits built on it are rebased (their
    base was this change's value, which HubSpot never took)."""
    with transaction.atomic():
        held = _mine(claim, changes)
        for change in held:
            change.status = ChangeStatus.FAILED
            change.error = error
            change.claim = ""
            change.lease_until = None
            change.response = response
        Change.objects.bulk_update(held, ["status", "error", "claim", "lease_until", "response"])
        for change in held:
            if change.kind != ChangeKind.UPDATE:
                continue
            # The record shows what HubSpot has again (a refused move returns the card); the change waits
            # beside it with its message, Retry and Discard.
            outbox.show_hubspot_values(change)
            later = Change.objects.for_record(change.object_type, change.object_id).filter(
                pk__gt=change.pk,
                status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING),
                kind=ChangeKind.UPDATE,
            )
            for other in later:
                rebased = {
                    name: change.base.get(name) if name in change.new and value == change.new[name] else value
                    for name, value in other.base.items()
                }
                if rebased != other.base:
                    Change.objects.filter(pk=other.pk).update(base=rebased)
    return len(held)


def error_response(error: client.HubSpotError | client.BatchError) -> dict[str, Any]:
    if isinstance(error, client.BatchError):
        return {
            "category": error.category,
            "sub_category": error.sub_category,
            "message": error.message,
            "context": error.context,
        }
    return {
        "status": error.status,
        "category": getattr(error, "category", None),
        "sub_category": getattr(error, "sub_category", None),
        "message": error.message,
        "correlation_id": error.correlation_id,
        # HubSpot's answer as it came, shown on demand beside the message.
        "body": error.body,
    }


def refused(message: str) -> str:
    return f"HubSpot refused this change: {message}"


def _same(a: Any, b: Any) -> bool:
    """Whether two property values are equal as HubSpot means them (null is empty; 12.50 is 12.5)."""
    x, y = ("" if a is None else str(a)).strip(), ("" if b is None else str(b)).strip()
    if x == y:
        return True
    try:
        return Decimal(x) == Decimal(y)
    except (InvalidOperation, ValueError):
        return False


def _risky_since(before: client.ClientStats) -> bool:
    """Whether a call just made was retried after something other than a 429: a timeout or 5xx whose
    first attempt HubSpot may still apply later."""
    after = client.stats()
    return (after.retries - before.retries) - (after.http_429 - before.http_429) > 0


def _note_remote(object_type: str, objects: Iterable[client.ApiObject]) -> None:
    """HubSpot's modification time of what we just wrote: a sync page read before our write is older, so the
    cache's never-older-over-newer rule keeps it from putting the old values back."""
    spec = registry.find(object_type)
    if spec is None:
        return
    meta = spec.model._meta
    quote = connection.ops.quote_name
    field, key = meta.get_field("remote_updated_at"), meta.get_field("hubspot_id")
    table, column, id_column = quote(meta.db_table), quote(field.column), quote(key.column)
    rows = [(field.get_db_prep_save(obj.updated_at, connection), obj.id) for obj in objects]
    if not rows:
        return
    # The table and column names come from the model's meta; the values are parameters.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the batch: each statement runs the orders' statement-level totals trigger.
            arrays = pending.pg_unnest([field, key])
            cursor.execute(
                f"UPDATE {table} SET {column} = v.stamp FROM {arrays} AS v (stamp, id) "  # noqa: S608
                f"WHERE {table}.{id_column} = v.id AND ({column} IS NULL OR {column} < v.stamp)",
                [[stamp for stamp, _ in rows], [hubspot_id for _, hubspot_id in rows]],
            )
        else:
            # One statement per record, sent together (a batch of 100 through the ORM took a tenth of a
            # second).
            cursor.executemany(
                f"UPDATE {table} SET {column} = %s WHERE {id_column} = %s "  # noqa: S608
                f"AND ({column} IS NULL OR {column} < %s)",
                [[stamp, hubspot_id, stamp] for stamp, hubspot_id in rows],
            )


# --- records: edits ----------------------------------------------------------------------------------------


def _push_updates(claim: Claim) -> int:
    object_type = claim.object_type
    by_record: dict[str, list[Change]] = {}
    for change in claim.changes:
        by_record.setdefault(change.object_id, []).append(change)
    names = sorted({name for change in claim.changes for name in change.new})
    read = client.batch_read(object_type, list(by_record), properties=names)
    remote = {obj.id: obj.properties for obj in read.results}
    settled = 0
    gone = [c for record_id, cs in by_record.items() if record_id not in remote for c in cs]
    if gone:
        settled += settle_failed(
            claim,
            gone,
            error="HubSpot has no such record any more (deleted or merged); discard this change.",
            response={"category": "OBJECT_NOT_FOUND", "ids": sorted({c.object_id for c in gone})},
        )
        # Reading them again archives them in the cache.
        refresh_on_commit(object_type, sorted({c.object_id for c in gone}))
    conflicted: list[Change] = []
    unchanged: list[Change] = []
    inputs: list[client.UpdateInput] = []
    writing: dict[str, list[Change]] = {}
    for record_id, changes in by_record.items():
        if record_id not in remote:
            continue
        theirs = remote[record_id]
        in_conflict, remote_values = _conflicts(changes, theirs)
        if in_conflict:
            conflicted.extend(in_conflict)
        rest = [c for c in changes if c not in in_conflict]
        values: dict[str, str] = {}
        for change in rest:
            values.update(change.new)
        # Values HubSpot already has are not sent: after a lost answer, the retry finds them there.
        to_send = {name: value for name, value in values.items() if not _same(theirs.get(name), value)}
        if to_send:
            inputs.append(client.UpdateInput(id=record_id, properties=to_send))
            writing[record_id] = rest
        else:
            unchanged.extend(rest)
        for change in in_conflict:
            change.remote = {name: remote_values.get(name) for name in change.new}
    if conflicted:
        settled += _conflict(claim, conflicted)
    if unchanged:
        settled += settle_applied(claim, unchanged, response=lambda c: {"id": c.object_id, "unchanged": True})
    if inputs:
        before = client.stats()
        results, errors = _write_updates(object_type, inputs)
        quiet = _risky_since(before)
        _note_remote(object_type, results.values())
        done = [c for record_id in results for c in writing[record_id]]
        settled += settle_applied(
            claim,
            done,
            response=lambda c: {"id": c.object_id, "updated_at": results[c.object_id].updated_at.isoformat()},
            quiet=quiet,
        )
        for record_id, error in errors.items():
            settled += settle_failed(
                claim, writing[record_id], error=refused(error.message), response=error_response(error)
            )
    return settled


def _conflicts(
    changes: Sequence[Change], theirs: dict[str, str | None]
) -> tuple[list[Change], dict[str, Any]]:
    """The changes of one record that HubSpot's current values conflict with.

    For each property the expected value is the base of the earliest change setting it (what HubSpot had
    when the first of the coalesced edits was made). HubSpot having that is no conflict, nor is it having one
    of the values these changes set (an earlier attempt landed, its answer lost). A change touching a
    conflicting property is in conflict whole, and so is any change sharing a property with one in conflict
    (what is sent never depends on a change held back)."""
    expected: dict[str, Any] = {}
    ours: dict[str, list[Any]] = {}
    forced: set[str] = set()
    for change in changes:
        for name, value in change.new.items():
            if name not in expected and name in change.base:
                expected[name] = change.base[name]
            ours.setdefault(name, []).append(value)
            if change.force:
                forced.add(name)
    bad = {
        name
        for name, values in ours.items()
        if name not in forced
        and name in expected
        and not _same(theirs.get(name), expected[name])
        and not any(_same(theirs.get(name), value) for value in values)
    }
    if not bad:
        return [], {}
    in_conflict: list[Change] = []
    grew = True
    while grew:
        grew = False
        for change in changes:
            if change not in in_conflict and bad & set(change.new):
                in_conflict.append(change)
                if set(change.new) - bad:
                    bad |= set(change.new)
                    grew = True
    return in_conflict, {name: theirs.get(name) for name in ours}


def _conflict(claim: Claim, changes: Sequence[Change]) -> int:
    with transaction.atomic():
        held = _mine(claim, changes)
        for change in held:
            differing = [
                name
                for name in change.new
                if not _same(change.remote.get(name), change.base.get(name))
                and not _same(change.remote.get(name), change.new[name])
            ]
            shown = ", ".join(f"{name} is now “{change.remote.get(name) or ''}”" for name in differing)
            change.status = ChangeStatus.CONFLICT
            change.error = f"Someone changed this in HubSpot since your edit ({shown or 'a related value'})."
            change.claim = ""
            change.lease_until = None
            change.response = {"remote": change.remote}
        Change.objects.bulk_update(held, ["status", "error", "claim", "lease_until", "response", "remote"])
    return len(held)


def _write_updates(
    object_type: str, inputs: Sequence[client.UpdateInput]
) -> tuple[dict[str, client.ApiObject], dict[str, client.HubSpotError | client.BatchError]]:
    """Batch update, 100 a call; a batch HubSpot refuses whole is split until the bad input is alone."""
    results: dict[str, client.ApiObject] = {}
    errors: dict[str, client.HubSpotError | client.BatchError] = {}
    try:
        result = client.batch_update(object_type, inputs)
    except client.Rejected as exc:
        if len(inputs) == 1:
            return {}, {inputs[0].id: exc}
        half = len(inputs) // 2
        for part in (inputs[:half], inputs[half:]):
            part_results, part_errors = _write_updates(object_type, part)
            results.update(part_results)
            errors.update(part_errors)
        return results, errors
    results = {obj.id: obj for obj in result.results}
    unexplained: list[client.BatchError] = []
    for error in result.errors:
        if error.input_id:
            errors[error.input_id] = error
        else:
            unexplained.append(error)
    for record_id in result.missing:
        errors[record_id] = client.NotFound(
            f"HubSpot has no record {record_id} (deleted or merged).", status=404, category="OBJECT_NOT_FOUND"
        )
    for item in inputs:
        if item.id not in results and item.id not in errors:
            errors[item.id] = (
                unexplained[0]
                if unexplained
                else client.Rejected("HubSpot did not confirm this update.", status=207, category="UNKNOWN")
            )
    return results, errors


# --- records: creates --------------------------------------------------------------------------------------


def _push_creates(claim: Claim) -> int:
    object_type = claim.object_type
    settled = 0
    by_property: dict[str, list[Change]] = {}
    for change in claim.changes:
        by_property.setdefault(change.id_property, []).append(change)
    for id_property, changes in by_property.items():
        if id_property:
            result = client.batch_upsert(
                object_type,
                [client.UpsertInput(id=c.new[id_property], properties=c.new) for c in changes],
                id_property=id_property,
            )
            by_value = {str(obj.properties.get(id_property) or "").lower(): obj for obj in result.results}
            created = {c.pk: by_value.get(c.new[id_property].lower()) for c in changes}
        else:
            inputs = [
                client.CreateInput(
                    properties=c.new,
                    associations=[
                        client.AssociationSpec(to_id=link["to_id"], type_id=int(link["type_id"]))
                        for link in c.payload.get("links", [])
                    ],
                )
                for c in changes
            ]
            # The change's own trace id on every attempt: a create whose answer was lost is not made twice.
            result = client.batch_create(
                object_type, inputs, object_write_trace_ids=[c.trace_id for c in changes]
            )
            by_trace = {obj.object_write_trace_id: obj for obj in result.results}
            created = {c.pk: by_trace.get(c.trace_id) for c in changes}
        errors_by_trace = {e.trace_id: e for e in result.errors if e.trace_id}
        for change in changes:
            obj = created.get(change.pk)
            if obj is not None:
                settled += _created(claim, change, obj)
                continue
            error = errors_by_trace.get(change.trace_id) or (result.errors[0] if result.errors else None)
            message = error.message if error else "HubSpot did not confirm the create."
            settled += settle_failed(
                claim,
                [change],
                error=refused(message),
                response=error_response(error) if error else {"message": message},
            )
    return settled


def _created(claim: Claim, change: Change, obj: client.ApiObject) -> int:
    spec = registry.get(claim.object_type)
    temp_id = change.object_id
    with transaction.atomic():
        if pending.is_temp(temp_id):
            pending.adopt_record_id(claim.object_type, temp_id, obj.id)
        record = spec.model._default_manager.filter(hubspot_id=obj.id).first()
        if record is not None:
            pending.write_values(spec, record, {k: v for k, v in obj.properties.items() if v is not None})
            spec.model._default_manager.filter(pk=record.pk).update(
                remote_created_at=obj.created_at, remote_updated_at=obj.updated_at
            )
        return settle_applied(claim, [change], response=lambda c: {"id": obj.id, "new": obj.new})


# --- links --------------------------------------------------------------------------------------------------


def _push_links(claim: Claim) -> int:
    from_type = claim.object_type
    latest: dict[tuple[str, str, str, int | None], Change] = {}
    for change in claim.changes:
        latest[(change.object_id, change.to_type, change.to_id, change.association_type_id)] = change
    groups: dict[tuple[str, str, int | None], list[Change]] = {}
    for change in latest.values():
        groups.setdefault((change.to_type, change.kind, change.association_type_id), []).append(change)
    settled = 0
    failed: dict[int, tuple[str, dict[str, Any]]] = {}
    for (to_type, kind, type_id), changes in groups.items():
        pairs = [(c.object_id, c.to_id) for c in changes]
        if kind == ChangeKind.ASSOCIATE:
            result = client.associate_batch(from_type, to_type, pairs, type_id=type_id)
        else:
            result = client.dissociate_batch(from_type, to_type, pairs, type_id=type_id)
        missing = set(result.missing)
        for change in changes:
            if change.object_id in missing or change.to_id in missing:
                failed[change.pk] = (
                    "HubSpot has no such record any more (deleted or merged).",
                    {"category": "OBJECT_NOT_FOUND", "ids": sorted(missing)},
                )
        for error in result.errors:
            for change in changes:
                if error.input_id in (None, change.object_id, change.to_id):
                    failed[change.pk] = (refused(error.message), error_response(error))
    superseded = {c.pk for c in claim.changes} - {c.pk for c in latest.values()}
    for change in claim.changes:
        if change.pk in failed and change.pk not in superseded:
            message, response = failed[change.pk]
            settled += settle_failed(claim, [change], error=message, response=response)
    ok = [c for c in claim.changes if c.pk not in failed or c.pk in superseded]
    settled += settle_applied(claim, ok)
    return settled


# The phases of mirrored records; pipelines and deletes (of pipelines and stages) are sent by the operations
# their app registers (registry.register_push).
_HANDLERS: dict[str, Callable[[Claim], int]] = {
    "creates": _push_creates,
    "updates": _push_updates,
    "links": _push_links,
}


def _sender(phase: str) -> Callable[[Claim], int]:
    if phase in _HANDLERS:
        return _HANDLERS[phase]
    operation = registry.push_operation(phase)
    if operation is None:
        raise LookupError(f"no push operation is registered for {phase}")
    return operation.send
