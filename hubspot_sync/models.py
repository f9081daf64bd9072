"""HubSpot integration models."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from hubspot_sync import registry
from hubspot_sync.mirror import MirroredObject


class WorkerHeartbeatQuerySet(models.QuerySet["WorkerHeartbeat"]):
    def is_alive(self) -> bool:
        """Whether any worker has written a heartbeat recently (beat schedules one every 30 s)."""
        cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_S)
        return self.filter(beat_at__gte=cutoff).exists()

    def latest_beat(self) -> WorkerHeartbeat | None:
        return self.order_by("-beat_at").first()


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran a task, by worker host name."""

    hostname = models.CharField(max_length=200, unique=True)
    beat_at = models.DateTimeField(db_index=True)

    objects = WorkerHeartbeatQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


# --- the cache: contacts, line items, associations, property definitions ----------------------------------


class Contact(MirroredObject):
    email = models.CharField(max_length=255, blank=True, db_index=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def __str__(self) -> str:
        return self.full_name or self.email or f"Contact {self.hubspot_id}"


class LineItem(MirroredObject):
    name = models.CharField(max_length=500, blank=True)
    sku = models.CharField(max_length=255, blank=True)
    quantity = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)

    def __str__(self) -> str:
        return self.name or f"Line item {self.hubspot_id}"


class AssociationQuerySet(models.QuerySet["Association"]):
    def from_record(self, object_type: str, hubspot_id: str, to_type: str) -> AssociationQuerySet:
        return self.filter(from_type=object_type, from_id=hubspot_id, to_type=to_type)


class Association(models.Model):
    """A directed, typed edge between two HubSpot records; both directions are stored."""

    from_type = models.CharField(max_length=32)
    from_id = models.CharField(max_length=32)
    to_type = models.CharField(max_length=32)
    to_id = models.CharField(max_length=32)
    type_id = models.IntegerField()
    category = models.CharField(max_length=32, default="HUBSPOT_DEFINED")
    label = models.CharField(max_length=255, blank=True)

    objects = AssociationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_type", "from_id", "to_type", "to_id", "type_id"], name="association_unique_edge"
            )
        ]
        indexes = [models.Index(fields=["to_type", "to_id", "from_type"], name="association_reverse")]

    def __str__(self) -> str:
        return f"{self.from_type}:{self.from_id} → {self.to_type}:{self.to_id} ({self.type_id})"


class PropertyDefinition(models.Model):
    """HubSpot's definition of a property: its label, type, options and whether it may be written."""

    object_type = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    label = models.CharField(max_length=255)
    type = models.CharField(max_length=32)
    field_type = models.CharField(max_length=32)
    group_name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    options = models.JSONField(default=list, blank=True)
    display_order = models.IntegerField(default=0)
    read_only_value = models.BooleanField(default=False)
    calculated = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["object_type", "name"], name="property_definition_unique"),
        ]
        ordering = ["object_type", "group_name", "display_order", "label"]

    def __str__(self) -> str:
        return f"{self.object_type}.{self.name}"

    @property
    def editable(self) -> bool:
        return not (self.read_only_value or self.calculated)


# --- sync: runs, leases, cursors, webhooks, connection problems ---------------------------------------------


class SyncKind(models.TextChoices):
    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"
    REFRESH = "refresh", "Refresh"
    RECONCILE = "reconcile", "Reconcile"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"


class SyncRunQuerySet(models.QuerySet["SyncRun"]):
    def recent(self, limit: int = 25) -> SyncRunQuerySet:
        return self.order_by("-started_at")[:limit]  # type: ignore[return-value]

    def running(self) -> SyncRunQuerySet:
        return self.filter(status=SyncStatus.RUNNING)


class SyncRun(models.Model):
    """One pull from HubSpot, with its progress, figures and cursor (to resume after a crash)."""

    kind = models.CharField(max_length=16, choices=SyncKind.choices)
    object_types = models.CharField(max_length=200)  # comma-separated, e.g. "orders,carts"
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cursor = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    objects_written = models.PositiveIntegerField(default=0)
    objects_skipped = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    http_429 = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True)  # in plain words, for the page
    error_detail = models.TextField(blank=True)  # HubSpot's raw message, shown on demand
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)

    objects = SyncRunQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["kind", "status", "-started_at"], name="syncrun_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync {self.object_types} ({self.status})"

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, int(100 * self.progress_done / self.progress_total))

    @property
    def duration_s(self) -> float | None:
        if not self.finished_at:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class SyncLease(models.Model):
    """A lease that keeps two runs of one kind from overlapping; it expires, so a crash frees it."""

    name = models.CharField(max_length=100, unique=True)
    owner = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner or 'nobody'}"


class SyncCursor(models.Model):
    """How far incremental sync has read one object type: everything modified before ``modified_before``."""

    object_type = models.CharField(max_length=32, unique=True)
    modified_before = models.DateTimeField(null=True, blank=True)
    full_synced_at = models.DateTimeField(null=True, blank=True)
    # Search can't see deletions: every few runs the live counts are compared (see sync._check_deletions).
    runs_since_deletion_check = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.object_type} up to {self.modified_before}"


class WebhookOutcome(models.TextChoices):
    REFRESHED = "refreshed", "Read again from HubSpot"
    ECHO = "echo", "Our own push coming back: nothing to read"
    IGNORED = "ignored", "Names no record we keep"


class WebhookEvent(models.Model):
    """One event HubSpot posted to us, stored once by eventId.

    A processing task claims the events it works on (``claimed_by`` + ``claimed_at``), so two tasks never
    read the same records twice; a claim older than the claim timeout belonged to a task that died, and is
    taken again. Processed events are pruned after ``HUBSPOT_WEBHOOK_RETENTION_DAYS``.
    """

    event_id = models.CharField(max_length=64, unique=True)
    subscription_type = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32, blank=True)  # our name: "orders", "carts", ...
    object_id = models.CharField(max_length=32, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    attempt_number = models.PositiveIntegerField(default=0)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # What processing asks for: the unprocessed events, oldest first. Only those rows are in it, so it
            # stays small however long the table grows.
            models.Index(
                fields=["id"], condition=models.Q(processed_at__isnull=True), name="webhook_unprocessed"
            ),
            # The drawer's timeline: one record's events, newest first.
            models.Index(fields=["object_type", "object_id", "received_at"], name="webhook_record"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_type} {self.object_type}:{self.object_id}"


class ConnectionProblem(models.Model):
    """A condition that stops syncing until someone acts (a rejected token) or a time passes (daily limit)."""

    class Kind(models.TextChoices):
        AUTH = "auth", "HubSpot rejected the access token"
        DAILY_LIMIT = "daily_limit", "HubSpot's daily API limit is reached"

    kind = models.CharField(max_length=16, choices=Kind.choices, unique=True)
    message = models.TextField()
    detail = models.TextField(blank=True)
    since = models.DateTimeField(auto_now_add=True)
    until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.get_kind_display()


# --- push: the outbox (DESIGN.md §5) ------------------------------------------------------------------------

# Local ids of records, pipelines and stages HubSpot has not created yet; replaced by HubSpot's on create.
TEMP_ID_PREFIX = "tmp-"


def uuid_hex() -> str:
    return uuid.uuid4().hex


class ChangeStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    PUSHING = "pushing", "Being sent"
    APPLIED = "applied", "In HubSpot"
    FAILED = "failed", "Failed"
    CONFLICT = "conflict", "Conflict"
    DISCARDED = "discarded", "Discarded"


# Not yet in HubSpot, and not given up on.
UNSETTLED = (ChangeStatus.PENDING, ChangeStatus.PUSHING, ChangeStatus.FAILED, ChangeStatus.CONFLICT)
# Shown on top of HubSpot's values when a sync brings them. A failed change is not: HubSpot refused it, so the
# record shows what HubSpot has, and the change waits beside it with Retry and Discard.
OVERLAID = (ChangeStatus.PENDING, ChangeStatus.PUSHING, ChangeStatus.CONFLICT)


class ChangeKind(models.TextChoices):
    UPDATE = "update", "Edit"
    CREATE = "create", "Create"
    ASSOCIATE = "associate", "Link"
    DISSOCIATE = "dissociate", "Unlink"
    PIPELINE_CREATE = "pipeline_create", "New pipeline"
    PIPELINE_UPDATE = "pipeline_update", "Pipeline change"
    PIPELINE_DELETE = "pipeline_delete", "Pipeline deleted"
    STAGE_CREATE = "stage_create", "New stage"
    STAGE_UPDATE = "stage_update", "Stage change"
    STAGE_DELETE = "stage_delete", "Stage deleted"


class Resolution(models.TextChoices):
    KEPT_MINE = "kept_mine", "Kept mine"
    TOOK_HUBSPOT = "took_hubspot", "Took HubSpot's"
    DISCARDED = "discarded", "Discarded"
    SUPERSEDED = "superseded", "Replaced by a later edit"
    RETRIED = "retried", "Retried"
    CASCADED = "cascaded", "Discarded with the change it waited for"


class ChangeQuerySet(models.QuerySet["Change"]):
    def for_record(self, object_type: str, object_id: str) -> ChangeQuerySet:
        return self.filter(object_type=object_type, object_id=object_id)

    def unsettled(self) -> ChangeQuerySet:
        return self.filter(status__in=UNSETTLED)

    def outbox(self) -> ChangeQuerySet:
        """What the Sync page lists: every change not yet in HubSpot, problems first, oldest first."""
        problems_first = models.Case(
            models.When(status=ChangeStatus.CONFLICT, then=0),
            models.When(status=ChangeStatus.FAILED, then=1),
            default=2,
        )
        return self.unsettled().select_related("created_by").order_by(problems_first, "created_at", "pk")

    def timeline(self, object_type: str, object_id: str) -> ChangeQuerySet:
        return (
            self.for_record(object_type, object_id)
            .select_related("created_by")
            .order_by("-created_at", "-pk")
        )


class Change(models.Model):
    """One staff edit on its way to HubSpot, and afterwards its record in the audit log.

    Which record: ``object_type`` + ``object_id`` (HubSpot's id, or a ``tmp-`` id until HubSpot creates it);
    pipeline and stage operations use the types "pipelines" and "stages" (a stage's pipeline in
    ``parent_id``); links name the other end in ``to_type`` + ``to_id``. ``base`` holds the values before the
    edit, ``new`` the values after (or the operation's payload), ``remote`` what HubSpot had when a conflict
    was found. Claims (``claim``, ``lease_until``) let one worker push a record at a time; a claim whose
    lease ran out belonged to a worker that died, and is sent again.
    """

    kind = models.CharField(max_length=16, choices=ChangeKind.choices, default=ChangeKind.UPDATE)
    status = models.CharField(max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.PENDING)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    parent_id = models.CharField(max_length=64, blank=True)
    to_type = models.CharField(max_length=32, blank=True)
    to_id = models.CharField(max_length=64, blank=True)
    association_type_id = models.IntegerField(null=True, blank=True)
    base = models.JSONField(default=dict, blank=True)
    new = models.JSONField(default=dict, blank=True)
    remote = models.JSONField(default=dict, blank=True)
    # What an operation needs beyond values: a create's links, a new pipeline's stages.
    payload = models.JSONField(default=dict, blank=True)
    # "Keep mine": send without comparing the base with HubSpot's value again.
    force = models.BooleanField(default=False)
    # Creates: a unique property to upsert by, when the caller has one; else the trace id below.
    id_property = models.CharField(max_length=100, blank=True)
    # objectWriteTraceId of a create: the same on every attempt, so a repeated create is recognised.
    trace_id = models.CharField(max_length=32, unique=True, default=uuid_hex)
    # Temporary ids this change needs HubSpot's ids for (space-separated); it waits until they are created.
    waits_for = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # After a write whose answer may have been lost (a timeout, a 5xx) HubSpot may still apply it late: the
    # record's next write waits until then, so that late write can't land over a newer one.
    quiet_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)  # in plain words, for the card
    response = models.JSONField(default=dict, blank=True)  # HubSpot's answer: id, status, category, message
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True)  # kept when the user is deleted
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    objects = ChangeQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="change_due"),
            models.Index(fields=["object_type", "object_id", "status"], name="change_record"),
            models.Index(fields=["status", "lease_until"], name="change_lease"),
            models.Index(fields=["quiet_until"], name="change_quiet"),
            models.Index(fields=["-created_at"], name="change_created"),
            # The board's "anything new?" poll: the latest change to any order is one index seek.
            models.Index(fields=["object_type", "updated_at"], name="change_type_updated"),
            # Sync states of a page of records: a type's unsettled changes (a seek per status) and its changes
            # applied a moment ago (a range on applied_at), without walking the type's audit log.
            models.Index(fields=["object_type", "status", "applied_at"], name="change_type_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_type}:{self.object_id} ({self.status})"

    @property
    def is_record_change(self) -> bool:
        return self.kind in (ChangeKind.UPDATE, ChangeKind.CREATE)

    @property
    def is_pipeline_change(self) -> bool:
        """A change of a pipeline or stage (object types their app registers), not of a mirrored record."""
        return self.object_type in registry.owned_object_types()

    @property
    def waiting_for(self) -> list[str]:
        return self.waits_for.split()

    @property
    def response_json(self) -> str:
        """HubSpot's answer as JSON, shown on demand: its error body as it came when there is one."""
        answer = (self.response.get("body") if isinstance(self.response, dict) else None) or self.response
        return json.dumps(answer, indent=2, sort_keys=True, default=str)

    def diff(self) -> list[tuple[str, Any, Any]]:
        """(name, before, after) of each value this change sets, for the timeline."""
        if self.kind in (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE):
            return []
        return [(name, self.base.get(name), value) for name, value in self.new.items() if name != "stages"]


class OutboxState(models.Model):
    """One row: when a push task was last queued, started and is next due (edits don't queue one each)."""

    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When a delayed push task is due (a retry's backoff, a debounce): later ones are not queued twice.
    wake_at = models.DateTimeField(null=True, blank=True)
    # A push task is draining until then (it renews this as it goes, and clears it as it stops): an edit made
    # meanwhile needs no task of its own, since the running one looks once more before it stops.
    draining_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"push queued {self.queued_at}, started {self.started_at}"


class WebhookQueueState(models.Model):
    """One row: whether a webhook-processing task waits in the queue, so a burst of webhooks queues one task
    (it processes every event stored before it starts), not one per POST."""

    queued = models.BooleanField(default=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"webhook processing queued={self.queued} at {self.queued_at}, started {self.started_at}"
