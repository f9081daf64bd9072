"""Carts: HubSpot's cart objects (0-142) in the local cache, and the recovery emails sent about them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.db.models.expressions import Combinable
from django.db.models.functions import Lower
from django.utils import timezone

from hubspot_sync.mirror import MirroredObject

if TYPE_CHECKING:
    from hubspot_sync.models import Contact


class RecoveryState(models.TextChoices):
    """What the carts list shows for a cart (``Cart.objects.with_recovery_state()``)."""

    NEW = "new", "New"
    EMAILED = "emailed", "Emailed"
    CLICKED = "clicked", "Clicked"
    RECOVERED = "recovered", "Recovered"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    NOT_EMAILABLE = "not_emailable", "Not emailable"


class EmailState(models.TextChoices):
    """How far the recovery emails about a cart got (kept on the cart by the services)."""

    NEW = "new", "New"
    EMAILED = "emailed", "Emailed"
    CLICKED = "clicked", "Clicked"


# The reasons a cart is not emailable, as the list and the log show them.
NO_LINK = "No recovery link"
NO_EMAIL = "No email address"
UNSUBSCRIBED = "Unsubscribed"
NO_CONSENT = "No marketing consent"
ALREADY_ORDERED = "Already ordered"
COMPLETED = "Completed"


def completed_statuses() -> list[str]:
    """The cart statuses (hs_external_status, free text in HubSpot) that mean the checkout finished."""
    return list(settings.CARTS_COMPLETED_STATUSES)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_hash(email: str) -> str:
    """The suppression list's key: kept when the address itself is erased."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def is_web_link(url: str) -> bool:
    """A recovery link the click redirect may send a customer to: an absolute http(s) URL with a host."""
    from urllib.parse import urlsplit

    if not url or any(ord(ch) < 33 for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def looks_like_email(email: str) -> bool:
    local, at, domain = email.strip().rpartition("@")
    return bool(at and local and "." in domain and not any(ord(ch) < 33 for ch in email.strip()))


def recovery_state_expression() -> Case:
    """A cart's recovery state worked out in SQL from what it depends on (what the stored column must equal).

    Order of precedence: recovered (ordered after an email), unsubscribed, clicked, emailed, not emailable,
    new."""
    suppressed = Exists(Suppression.objects.filter(email=Lower(OuterRef("customer_email"))))
    not_emailable = (
        Q(cart_url="")
        | Q(customer_email="")
        | Q(order_hubspot_id__gt="")
        | Q(status__in=completed_statuses())
    )
    if settings.CARTS_CONSENT_POLICY == "marketing":
        from hubspot_sync.models import Contact

        consent = Contact.objects.filter(
            hubspot_id=OuterRef("contact_hubspot_id"),
            **{f"properties__{settings.CARTS_CONSENT_PROPERTY}": "true"},
        )
        not_emailable = not_emailable | Q(~Exists(consent))
    return Case(
        When(
            Q(order_hubspot_id__gt="") & ~Q(email_state=EmailState.NEW),
            then=Value(RecoveryState.RECOVERED.value),
        ),
        When(suppressed, then=Value(RecoveryState.UNSUBSCRIBED.value)),
        When(email_state=EmailState.CLICKED, then=Value(RecoveryState.CLICKED.value)),
        When(email_state=EmailState.EMAILED, then=Value(RecoveryState.EMAILED.value)),
        When(not_emailable, then=Value(RecoveryState.NOT_EMAILABLE.value)),
        default=Value(RecoveryState.NEW.value),
        output_field=models.CharField(),
    )


# The columns of a cart its recovery state depends on (a save naming none of them leaves the state alone).
RECOVERY_STATE_INPUTS = frozenset(
    {"cart_url", "customer_email", "order_hubspot_id", "status", "email_state", "contact_hubspot_id"}
)


class CartQuerySet(models.QuerySet["Cart"]):
    def live(self) -> CartQuerySet:
        return self.filter(archived=False)

    def abandoned(self, now: datetime | None = None) -> CartQuerySet:
        """Live carts, not completed, with no order, unchanged by their customer for CARTS_ABANDONED_AFTER_MIN
        minutes (``customer_changed_at``: our own write-back to HubSpot is no change)."""
        cutoff = (now or timezone.now()) - timedelta(minutes=settings.CARTS_ABANDONED_AFTER_MIN)
        return (
            self.live()
            .filter(order_hubspot_id="", customer_changed_at__lte=cutoff)
            .exclude(status__in=completed_statuses())
        )

    def with_recovery_state(self) -> CartQuerySet:
        """The carts, whose ``recovery_state`` column (a RecoveryState value) is current: it is stored and
        kept by carts.recovery_state at every change that affects it; a change of the settings it depends on
        (the consent policy, the completed statuses) recomputes every cart once, here. ``last_email_at`` is
        a column of the cart too."""
        from carts.recovery_state import recovery_state_ensure_current

        recovery_state_ensure_current()
        return self

    def search(self, q: str) -> CartQuerySet:
        """Carts whose contact's email or name, cart name, or HubSpot / external cart id contains ``q``."""
        q = q.strip()[:200].replace("\x00", "")
        if not q:
            return self
        match = (
            Q(customer_email__icontains=q)
            | Q(customer_name__icontains=q)
            | Q(name__icontains=q)
            | Q(hubspot_id=q)
            | Q(external_id__iexact=q)
        )
        return self.filter(match)


class Cart(MirroredObject):
    name = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=100, blank=True)  # hs_external_status: free text in HubSpot
    cart_url = models.CharField(max_length=2000, blank=True)  # hs_cart_url, the recovery link
    total = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)
    store = models.CharField(max_length=255, blank=True)
    contact_hubspot_id = models.CharField(max_length=32, blank=True)
    customer_name = models.CharField(max_length=255, blank=True)
    customer_email = models.CharField(max_length=255, blank=True)
    # The order this cart became, when HubSpot associates one (cart → order, 592).
    order_hubspot_id = models.CharField(max_length=32, blank=True)
    # Kept by the recovery services (never by sync): how far its emails got, and when the last one went.
    email_state = models.CharField(
        max_length=16, choices=EmailState.choices, default=EmailState.NEW, db_index=True
    )
    last_email_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # When the cart was abandoned (its customer's last change before it counted as abandoned), set once by
    # the sequence tick: the steps' delays count from it.
    abandoned_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The cart's last change by its customer (or shop): HubSpot's last-modified date when a property other
    # than our own orderdeck_* ones changed, or the cart was new (carts.customer_change); our write-back moves
    # remote_updated_at, never this. What "abandoned" counts from.
    customer_changed_at = models.DateTimeField(null=True, blank=True)
    # Written by sync: a digest of those properties as last synced; and the digest customer_changed_at was
    # last set for. (Nullable, without defaults, so that SQLite adds them without rebuilding the table.)
    customer_digest = models.BigIntegerField(null=True, blank=True)
    customer_changed_digest = models.BigIntegerField(null=True, blank=True)
    # The store the recovery dashboard's daily figures (RecoveryDay) count this cart's emails under: when sync
    # brings another, their days are counted again (carts.summary). NULL: not counted yet (and so that SQLite
    # adds the column without rebuilding the table).
    summary_store = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # What the list shows (RecoveryState): stored, and kept exact by carts.recovery_state at every change that
    # affects it (a send, click, unsubscribe, suppression change, sync of the cart or its contact, settings).
    recovery_state = models.CharField(max_length=16, choices=RecoveryState.choices, default=RecoveryState.NEW)
    # The recovery properties (carts.writeback) changed here and are still to be written to HubSpot.
    writeback_due = models.BooleanField(default=False, db_index=True)

    objects = CartQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["archived", "status", "-remote_updated_at"], name="cart_list"),
            models.Index(fields=["customer_email"], name="cart_customer_email"),
            # The carts list's sorts (newest or oldest change, value): read a page in index order.
            models.Index(fields=["remote_updated_at", "id"], name="cart_recent"),
            models.Index(fields=["total"], name="cart_total"),
            # The list's tab counts and state filter over the abandoned range (the customer's last change),
            # read from the index alone, and its pages in index order (newest or oldest change; value).
            models.Index(
                fields=[
                    "archived",
                    "recovery_state",
                    "customer_changed_at",
                    "remote_updated_at",
                    "email_state",
                    "order_hubspot_id",
                    "status",
                ],
                name="cart_state_recent",
            ),
            models.Index(fields=["archived", "recovery_state", "total"], name="cart_state_total"),
            # Counts under a value range (and store, currency) read this index alone.
            models.Index(
                fields=[
                    "total",
                    "store",
                    "currency",
                    "archived",
                    "recovery_state",
                    "remote_updated_at",
                    "email_state",
                    "order_hubspot_id",
                    "status",
                    "customer_changed_at",
                ],
                name="cart_filter_cover",
            ),
            # The filters' lists of stores and currencies, distinct in index order.
            models.Index(fields=["archived", "store", "currency"], name="cart_store_currency"),
        ]

    def __str__(self) -> str:
        return self.name or f"Cart {self.hubspot_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and self.customer_changed_at is None:
            self.customer_changed_at = self.remote_updated_at  # a new cart: its last change is its customer's
        super().save(*args, **kwargs)
        fields = kwargs.get("update_fields")
        if fields is None or RECOVERY_STATE_INPUTS & set(fields):
            from carts.recovery_state import recovery_state_refresh

            recovery_state_refresh(Cart.objects.filter(pk=self.pk))
            self.recovery_state = Cart.objects.values_list("recovery_state", flat=True).get(pk=self.pk)

    def contact(self) -> Contact | None:
        from hubspot_sync.models import Contact

        if not self.contact_hubspot_id:
            return None
        return Contact.objects.filter(hubspot_id=self.contact_hubspot_id).first()

    def is_suppressed(self) -> bool:
        return bool(self.customer_email) and Suppression.objects.is_suppressed(self.customer_email)

    def emailable_reason(self, contact: Contact | None = None) -> str:
        """ "" when a recovery email may go to this cart's contact now, else why not (a short phrase)."""
        consent = ""
        if settings.CARTS_CONSENT_POLICY == "marketing":
            if contact is None or contact.hubspot_id != self.contact_hubspot_id:
                contact = self.contact()
            consent = contact.prop(settings.CARTS_CONSENT_PROPERTY) if contact is not None else ""
        return self.emailable_reason_given(suppressed=self.is_suppressed(), consent=consent)

    def emailable_reason_given(self, *, suppressed: bool, consent: str) -> str:
        """emailable_reason() with the suppression and the contact's consent value already looked up (bulk
        reads look them up for many carts at once)."""
        if self.order_hubspot_id:
            return ALREADY_ORDERED
        if self.status and self.status in completed_statuses():
            return COMPLETED
        if not is_web_link(self.cart_url):
            return NO_LINK
        if not looks_like_email(self.customer_email):
            return NO_EMAIL
        if suppressed:
            return UNSUBSCRIBED
        if settings.CARTS_CONSENT_POLICY == "marketing" and consent.strip().lower() != "true":
            return NO_CONSENT
        return ""

    @property
    def is_emailable(self) -> bool:
        return self.emailable_reason() == ""


# --- recovery emails ---------------------------------------------------------------------------------------


class RecoveryTemplate(models.Model):
    """A recovery email: subject, HTML and text bodies with merge fields (carts.rendering)."""

    name = models.CharField(max_length=200)
    # Which email of a sequence this is (1 = the first); null for a template no sequence uses.
    step = models.PositiveSmallIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)
    subject = models.CharField(max_length=500)
    html_body = models.TextField()
    text_body = models.TextField()
    # The template used when no active template names the step.
    is_default = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["step", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["step"],
                condition=Q(active=True, step__isnull=False),
                name="recovery_template_one_active_per_step",
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="recovery_template_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def for_step(cls, step: int) -> RecoveryTemplate | None:
        """The active template of the step, else the default one."""
        found = cls.objects.filter(step=step, active=True).first()
        return found or cls.objects.filter(is_default=True).first()


class BulkSend(models.Model):
    """One "send to these carts" by a person: its sends are RecoverySend rows (queued when confirmed)."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    filters = models.JSONField(default=dict, blank=True)  # the list query it was made from
    total = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Bulk send {self.pk} ({self.total} carts)"


class SequenceStep(models.Model):
    """One email of the automatic recovery sequence: sent ``delay_minutes`` after the cart was abandoned."""

    step = models.PositiveSmallIntegerField(unique=True)
    delay_minutes = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    # The template this step sends; null: the step's active template, else the default one.
    template = models.ForeignKey(
        RecoveryTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["step"]

    def __str__(self) -> str:
        return f"Step {self.step} after {self.delay_minutes} min"


class SequenceSettings(models.Model):
    """The sequence's switch (one row), and when the recovery properties were found or made in HubSpot."""

    enabled = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    properties_ready_at = models.DateTimeField(null=True, blank=True)
    # The time zone (TIME_ZONE) the dashboard's daily figures were counted in: another one counts them again.
    dashboard_time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return "Recovery sequence " + ("on" if self.enabled else "off")


class SendStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    UNCERTAIN = "uncertain", "Uncertain"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


# Statuses that hold a cart's step: a second send of the same step is refused while one of these exists.
HOLDING = (SendStatus.QUEUED, SendStatus.SENDING, SendStatus.SENT, SendStatus.UNCERTAIN)
# Statuses that count toward the per-contact frequency cap (an uncertain one may have arrived).
DELIVERED_OR_MAYBE = (SendStatus.SENDING, SendStatus.SENT, SendStatus.UNCERTAIN)


class RecoverySendQuerySet(models.QuerySet["RecoverySend"]):
    def holding(self) -> RecoverySendQuerySet:
        return self.filter(status__in=HOLDING)

    def capping(
        self, *, email: str | Combinable, cart: int | Combinable, now: datetime
    ) -> RecoverySendQuerySet:
        """The sends that hold the per-contact frequency cap (one recovery email per address per
        CARTS_EMAIL_CAP_HOURS, across carts) against an email about ``cart`` to ``email`` at ``now``: to that
        address, gone (or maybe gone) within the cap, about another cart. A cart's own earlier steps don't
        count, so each of its steps goes at its delay. Empty (no query) when the cap is off.

        The one rule for the sequence's tick (``email``, ``cart``: OuterRef expressions) and the worker's
        claim (values; ``email`` normalised)."""
        if settings.CARTS_EMAIL_CAP_HOURS <= 0:
            return self.none()
        since = now - timedelta(hours=settings.CARTS_EMAIL_CAP_HOURS)
        another_cart = ~Q(cart=cart)
        return self.filter(another_cart, to_email=email, status__in=DELIVERED_OR_MAYBE, sending_at__gte=since)


class RecoverySend(models.Model):
    """One recovery email about one cart: requested, then sent (or skipped, failed, uncertain) by a worker."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="recovery_sends")
    step = models.PositiveSmallIntegerField(default=1)
    template = models.ForeignKey(RecoveryTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    to_email = models.CharField(max_length=255, blank=True)  # normalised (lower case) at request time
    contact_hubspot_id = models.CharField(max_length=32, blank=True)  # the contact at request time
    status = models.CharField(max_length=16, choices=SendStatus.choices, default=SendStatus.QUEUED)
    reason = models.TextField(blank=True)  # why skipped or failed, or what made it uncertain
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bulk = models.ForeignKey(BulkSend, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends")
    message_id = models.CharField(max_length=255, blank=True)
    token = models.CharField(max_length=64, unique=True)  # random, named by the signed links
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a task was last queued for it (the resume sweep re-queues sends whose task was lost).
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # Set on every status change: the resume sweep's measure of whether workers are making progress.
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = RecoverySendQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "step"],
                condition=~Q(status__in=["skipped", "failed"]),
                name="recovery_send_one_per_cart_step",
            )
        ]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="recovery_send_status"),
            models.Index(fields=["to_email", "sending_at"], name="recovery_send_to_email"),
            # The recovery dashboard's grouped counts read this index alone (carts.dashboard).
            models.Index(
                fields=["sending_at", "step", "template", "status", "clicked_at", "cart"],
                name="recovery_send_dashboard",
            ),
        ]

    def __str__(self) -> str:
        return f"Recovery email {self.pk} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A send saved one by one (the services update sends in bulk and count as they go): the days it went
        out on, before and after, are counted again for the dashboard."""
        before = None
        if not self._state.adding:
            before = RecoverySend.objects.filter(pk=self.pk).values_list("sending_at", flat=True).first()
        super().save(*args, **kwargs)
        if before is not None or self.sending_at is not None:
            from carts.summary import summary_rebuild_at

            summary_rebuild_at([before, self.sending_at])

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        if self.sending_at is not None:
            from carts.summary import summary_rebuild_at

            summary_rebuild_at([self.sending_at])
        return deleted


class EventKind(models.TextChoices):
    SEND_REQUESTED = "send_requested", "Send requested"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    UNCERTAIN = "uncertain", "Uncertain"
    CLICKED = "clicked", "Clicked"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    STATE_CHANGED = "state_changed", "State changed"
    NOTE = "note", "Note"


class CartEvent(models.Model):
    """One line of a cart's log: every send, skip (with its reason), click, unsubscribe and state change."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    message = models.TextField(blank=True)
    send = models.ForeignKey(
        RecoverySend, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["cart", "-at"], name="cart_event_log")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


class SuppressionSource(models.TextChoices):
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    SMTP_BOUNCE = "smtp_bounce", "Refused by the mail server"
    STAFF = "staff", "Added by staff"


class SuppressionQuerySet(models.QuerySet["Suppression"]):
    def is_suppressed(self, email: str) -> bool:
        return bool(email.strip()) and self.filter(email_hash=email_hash(email)).exists()

    def search(self, q: str) -> SuppressionQuerySet:
        q = q.strip()[:200].replace("\x00", "")
        return self.filter(email__icontains=q) if q else self


class Suppression(models.Model):
    """An address no recovery email may go to. ``email_hash`` stays when the address is erased."""

    email = models.CharField(max_length=255, unique=True, null=True, blank=True)  # normalised
    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=SuppressionSource.choices)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.email or f"(erased {self.email_hash[:8]})"


# --- attribution (carts.attribution) ----------------------------------------------------------------------


class RecoveredBy(models.TextChoices):
    CLICK = "click", "Clicked email"
    SEND = "send", "Sent email"


class Recovery(models.Model):
    """A cart recovered by a recovery email: it gained an order (or a completed status) within
    CARTS_ATTRIBUTION_DAYS after the email; the order's total is the revenue it recovered. One per cart,
    recomputable from the sends and the orders (carts.attribution.recovery_recompute)."""

    cart = models.OneToOneField(Cart, on_delete=models.CASCADE, related_name="recovery")
    order_hubspot_id = models.CharField(max_length=32, blank=True)  # "" when a completed status recovered it
    send = models.ForeignKey(RecoverySend, on_delete=models.CASCADE, related_name="recoveries")
    amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)
    recovered_at = models.DateTimeField()
    by = models.CharField(max_length=8, choices=RecoveredBy.choices)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recovered_at", "-pk"]
        indexes = [models.Index(fields=["send", "currency", "amount"], name="recovery_by_send")]

    def __str__(self) -> str:
        return f"Recovery of cart {self.cart_id} ({self.by})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A recovery saved one by one (attribution writes them in bulk and counts the difference): the days
        of its email, before and after, are counted again for the dashboard."""
        before = None
        if not self._state.adding:
            before = Recovery.objects.filter(pk=self.pk).values_list("send_id", flat=True).first()
        super().save(*args, **kwargs)
        _count_days_of(before, self.send_id)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        _count_days_of(self.send_id)
        return deleted


def _count_days_of(*send_ids: int | None) -> None:
    """The dashboard's figures of the days these sends went out on, counted again (carts.summary)."""
    from carts.summary import summary_rebuild_at

    sends = RecoverySend.objects.filter(pk__in=[pk for pk in send_ids if pk is not None])
    summary_rebuild_at(sends.values_list("sending_at", flat=True))


class RecoveryDay(models.Model):
    """The recovery dashboard's figures for one day (in TIME_ZONE; the day the emails went out), store, step,
    template and currency, kept by carts.summary. The email counts are on the row whose currency is ""; the
    recovered carts and revenue on their currency's row."""

    day = models.DateField()
    store = models.CharField(max_length=255)
    step = models.PositiveSmallIntegerField()
    # The sends' template id, 0 for none; a deleted template's id stays (read as none).
    template = models.BigIntegerField()
    currency = models.CharField(max_length=8)
    sent = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    clicked = models.IntegerField(default=0)
    recovered = models.IntegerField(default=0)
    revenue = models.BigIntegerField(default=0)  # in ten-thousandths of the currency (carts.summary.SCALE)

    class Meta:
        constraints = [
            # Also the dashboard's read: a range of days (and a store).
            models.UniqueConstraint(
                fields=["day", "store", "step", "template", "currency"], name="recovery_day_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store} step {self.step}: {self.sent} sent"
