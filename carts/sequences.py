"""The automatic recovery sequence: steps sent a delay after a cart was abandoned, within each store's sending
window, every one through the worker's guards (carts.sending), like a manual send.

``sequence_tick(now)`` (beat, every minute) is set-based: a fixed number of queries per enabled step whatever
the number of carts (at most CARTS_SEQUENCE_BATCH requests per step per tick). A step is requested once per
cart (any send row of that step, manual or automatic, sent or skipped, counts as the step); step n is due
from ``abandoned_at + delay`` until the next enabled step is due (a missed step is not sent late on top of a
later one). A sequence stops at an order, a completed status, an unsubscribe or a changed contact.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from carts.models import (
    HOLDING,
    Cart,
    CartEvent,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    SequenceSettings,
    SequenceStep,
    Suppression,
    completed_statuses,
    normalize_email,
)

logger = logging.getLogger(__name__)

DEFAULT_STEPS = ((1, 60), (2, 24 * 60), (3, 72 * 60))
# How long the last step stays due after its time (a night outside the window, a busy tick).
LAST_STEP_GRACE = timedelta(hours=24)


# --- settings -----------------------------------------------------------------------------------------------


def sequence_settings() -> SequenceSettings:
    found, _ = SequenceSettings.objects.get_or_create(pk=1)
    return found


def sequence_steps() -> list[SequenceStep]:
    """The steps in order (the defaults, 1 h, 24 h and 72 h, are made the first time)."""
    steps = list(SequenceStep.objects.select_related("template").order_by("step"))
    if not steps:
        for step, delay in DEFAULT_STEPS:
            SequenceStep.objects.get_or_create(step=step, defaults={"delay_minutes": delay})
        steps = list(SequenceStep.objects.select_related("template").order_by("step"))
    return steps


def step_template(step: SequenceStep) -> RecoveryTemplate | None:
    return step.template if step.template is not None else RecoveryTemplate.for_step(step.step)


def parse_window(value: str) -> tuple[time, time]:
    """ "08:00-21:00" → (08:00, 21:00). ImproperlyConfigured for anything else."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-", 1))
    except ValueError as exc:
        raise ImproperlyConfigured(f"CARTS_SEND_WINDOW must look like 08:00-21:00, not {value!r}") from exc
    if start == end:
        raise ImproperlyConfigured("CARTS_SEND_WINDOW must not start and end at the same time")
    return start, end


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"Unknown time zone {name!r} in the carts' sending window settings"
        ) from exc


def store_zones() -> dict[str, ZoneInfo]:
    """CARTS_STORE_TIMEZONES: JSON {"store": "Zone"} or "store=Zone,store2=Zone"."""
    raw = (settings.CARTS_STORE_TIMEZONES or "").strip()
    if not raw:
        return {}
    pairs: dict[str, str]
    if raw.startswith("{"):
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured("CARTS_STORE_TIMEZONES is not valid JSON") from exc
        if not isinstance(loaded, dict):
            raise ImproperlyConfigured("CARTS_STORE_TIMEZONES must map store names to time zones")
        pairs = {str(k): str(v) for k, v in loaded.items()}
    else:
        pairs = {}
        for item in raw.split(","):
            store, sep, zone = item.partition("=")
            if not sep:
                raise ImproperlyConfigured("CARTS_STORE_TIMEZONES entries look like store=Europe/Paris")
            pairs[store.strip()] = zone
    return {store: _zone(zone) for store, zone in pairs.items()}


def default_zone() -> ZoneInfo:
    return _zone(settings.CARTS_DEFAULT_TIMEZONE or "UTC")


def zone_for(store: str) -> ZoneInfo:
    return store_zones().get(store, default_zone())


def in_window(moment: datetime, zone: ZoneInfo) -> bool:
    start, end = parse_window(settings.CARTS_SEND_WINDOW)
    local = moment.astimezone(zone).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_send_time(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` when it is within the store's sending window, else the window's next opening (UTC)."""
    if in_window(moment, zone):
        return moment
    start, _ = parse_window(settings.CARTS_SEND_WINDOW)
    local = moment.astimezone(zone)
    day: date = local.date()
    opening = datetime.combine(day, start, tzinfo=zone)
    if opening <= local:
        opening = datetime.combine(day + timedelta(days=1), start, tzinfo=zone)
    return opening.astimezone(ZoneInfo("UTC"))


# --- the tick ----------------------------------------------------------------------------------------------


def _stopped() -> Q:
    """Carts whose sequence has stopped (besides an order or a completed status): unsubscribed, or the contact
    changed since a step was requested."""
    suppressed = Exists(Suppression.objects.filter(email=Lower(OuterRef("customer_email"))))
    from carts.sending import CONTACT_CHANGED

    changed = Exists(
        RecoverySend.objects.filter(
            Q(status__in=HOLDING) | Q(reason=CONTACT_CHANGED), cart=OuterRef("pk")
        ).exclude(
            contact_hubspot_id=OuterRef("contact_hubspot_id"), to_email=Lower(OuterRef("customer_email"))
        )
    )
    return Q(suppressed) | Q(changed)


def _running() -> QuerySet[Cart]:
    """Carts a sequence may still email: abandoned and anchored, no order, not completed, an address and a
    link, not stopped."""
    carts = (
        Cart.objects.filter(archived=False, order_hubspot_id="", abandoned_at__isnull=False)
        .exclude(status__in=completed_statuses())
        .exclude(customer_email="")
        .exclude(cart_url="")
        .exclude(_stopped())
    )
    if settings.CARTS_CONSENT_POLICY == "marketing":
        from hubspot_sync.models import Contact

        consent = Contact.objects.filter(
            hubspot_id=OuterRef("contact_hubspot_id"),
            **{f"properties__{settings.CARTS_CONSENT_PROPERTY}": "true"},
        )
        carts = carts.filter(Exists(consent))
    return carts


def _open_stores(carts: QuerySet[Cart], now: datetime) -> QuerySet[Cart] | None:
    """Only the carts of stores whose sending window is open now (None: no store's is)."""
    zones = store_zones()
    open_ = [store for store, zone in zones.items() if in_window(now, zone)]
    closed = [store for store, zone in zones.items() if not in_window(now, zone)]
    if in_window(now, default_zone()):
        return carts.exclude(store__in=closed) if closed else carts
    return carts.filter(store__in=open_) if open_ else None


def anchor_abandoned(now: datetime) -> int:
    """Note when newly abandoned carts were abandoned: their customer's last change (one UPDATE)."""
    cutoff = now - timedelta(minutes=settings.CARTS_ABANDONED_AFTER_MIN)
    return (
        Cart.objects.filter(
            abandoned_at__isnull=True, archived=False, order_hubspot_id="", customer_changed_at__lte=cutoff
        )
        .exclude(status__in=completed_statuses())
        .update(abandoned_at=F("customer_changed_at"))
    )


def step_templates(steps: list[SequenceStep]) -> dict[int, RecoveryTemplate]:
    """``step_template`` for each step, in one query: its own template, else the step's active template, else
    the default one. A step with none is left out."""
    found = list(
        RecoveryTemplate.objects.filter(
            Q(active=True, step__in=[s.step for s in steps if s.template is None]) | Q(is_default=True)
        ).order_by("name", "pk")
    )
    default = next((t for t in found if t.is_default), None)
    by_step: dict[int, RecoveryTemplate] = {}
    for template in found:
        if template.active and template.step is not None:
            by_step.setdefault(template.step, template)
    chosen = {s.step: s.template or by_step.get(s.step) or default for s in steps}
    return {step: template for step, template in chosen.items() if template is not None}


def sequence_tick(now: datetime | None = None) -> int:
    """Request every due step of every running sequence (bounded per step); returns how many sends were
    requested. The worker checks each again with HubSpot before it sends.

    The statements are the same whatever is due: one read per step, then one write transaction with one
    insert for the sends and one for their log lines (each a single statement however many rows)."""
    from carts import tasks

    now = now or timezone.now()
    # Noted even while the sequence is off: switched on, it counts from when carts were really abandoned.
    anchor_abandoned(now)
    if not sequence_settings().enabled:
        return 0
    steps = [step for step in sequence_steps() if step.enabled]
    carts = _open_stores(_running(), now)
    if carts is None or not steps:
        return 0
    templates = step_templates(steps)
    # A step waits while another cart of the contact had an email within the frequency cap (rather than
    # being skipped by the worker); the cart's own earlier steps don't hold it (RecoverySend.capping).
    capping = RecoverySend.objects.capping(
        email=Lower(OuterRef("customer_email")), cart=OuterRef("pk"), now=now
    )
    carts = carts.exclude(Exists(capping))
    # A send on its way to the same address waits too (two carts of one contact).
    carts = carts.exclude(
        Exists(
            RecoverySend.objects.filter(to_email=Lower(OuterRef("customer_email")), status=SendStatus.QUEUED)
        )
    )
    due: list[tuple[int, str, str, int, int]] = []
    for index, step in enumerate(steps):
        template = templates.get(step.step)
        if template is None:
            continue
        later = steps[index + 1].delay_minutes if index + 1 < len(steps) else None
        until = (
            now - timedelta(minutes=later)
            if later is not None
            else now - timedelta(minutes=step.delay_minutes) - LAST_STEP_GRACE
        )
        rows = (
            carts.filter(
                abandoned_at__lte=now - timedelta(minutes=step.delay_minutes), abandoned_at__gt=until
            )
            .exclude(Exists(RecoverySend.objects.filter(cart=OuterRef("pk"), step=step.step)))
            .order_by("abandoned_at", "pk")
            .values_list("pk", "customer_email", "contact_hubspot_id")[
                : max(1, settings.CARTS_SEQUENCE_BATCH)
            ]
        )
        due += [(pk, email, contact, step.step, template.pk) for pk, email, contact in rows]
    requested = _request(due, now)
    if requested:
        transaction.on_commit(lambda: tasks.queue_in_batches(requested))
    return len(requested)


@transaction.atomic
def _request(rows: list[tuple[int, str, str, int, int]], now: datetime) -> list[int]:
    """Queued send rows for the due (cart, address, contact, step, template)s, and their log lines; the new
    sends' ids. One email per address per tick: another cart of it waits for the frequency cap. A row
    another request made since (one send per cart and step) is left alone. Two statements whatever the
    number of rows, none of them left out when there is none."""
    seen: set[str] = set()
    sends: list[tuple[Any, ...]] = []
    for cart_id, email, contact, step, template_id in rows:
        address = normalize_email(email)
        if address in seen:
            continue
        seen.add(address)
        sends.append((cart_id, step, template_id, address, contact, secrets.token_urlsafe(24)))
    written = timezone.now()
    made = insert_json(
        RecoverySend,
        ("cart", "step", "template", "to_email", "contact_hubspot_id", "token"),
        sends,
        constants={
            "status": SendStatus.QUEUED.value,
            "reason": "",
            "message_id": "",
            "attempts": 0,
            "created_at": written,
            "updated_at": written,
            "queued_at": now,
        },
        returning=("id", "cart_id", "step", "to_email"),
        ignore_conflicts=True,
    )
    insert_json(
        CartEvent,
        ("cart", "send", "message"),
        [(cart_id, pk, f"Step {step} to {address} (sequence)") for pk, cart_id, step, address in made],
        constants={"kind": EventKind.SEND_REQUESTED.value, "at": now},
    )
    return sorted(int(pk) for pk, _, _, _ in made)


def insert_json(
    model: type[models.Model],
    fields: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    constants: dict[str, Any],
    returning: tuple[str, ...] = (),
    ignore_conflicts: bool = False,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (values of ``fields``, in order) with ``constants`` in each, as one statement however
    many rows there are (they travel as one JSON array parameter), and return the ``returning`` columns of
    the rows inserted. ``ignore_conflicts``: a row that would break a unique constraint is left out."""
    meta = model._meta
    quote = connection.ops.quote_name
    by_name = {name: cast("models.Field[Any, Any]", meta.get_field(name)) for name in (*fields, *constants)}
    columns = ", ".join(quote(by_name[name].column) for name in (*fields, *constants))
    params = [by_name[name].get_db_prep_save(value, connection) for name, value in constants.items()]
    if connection.vendor == "postgresql":
        types = [by_name[name].db_type(connection) for name in (*fields, *constants)]
        selected = [f"(e->>{i})::{types[i]}" for i in range(len(fields))]
        selected += [f"%s::{types[len(fields) + i]}" for i in range(len(constants))]
        source = "jsonb_array_elements(%s::jsonb) AS e"
        verb, conflict = "INSERT INTO", " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    else:
        selected = [f"value->>{i}" for i in range(len(fields))] + ["%s"] * len(constants)
        source = "json_each(%s)"
        verb, conflict = ("INSERT OR IGNORE INTO" if ignore_conflicts else "INSERT INTO"), ""
    back = f" RETURNING {', '.join(quote(name) for name in returning)}" if returning else ""
    # Table and column names come from the model's meta; values are parameters.
    sql = (
        f"{verb} {quote(meta.db_table)} ({columns}) SELECT {', '.join(selected)} "  # noqa: S608
        f"FROM {source}{conflict}{back}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, json.dumps([list(row) for row in rows])])
        return [tuple(found) for found in cursor.fetchall()] if returning else []


# --- one cart's steps, for the drawer ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepLine:
    step: int
    state: str  # "sent", "skipped", "queued", "failed", "uncertain", "due", "waiting", "off", "stopped"
    when: datetime | None
    why: str
    manual: bool


def cart_steps(cart: Cart, now: datetime | None = None) -> list[StepLine]:
    """What the sequence did and will do for this cart: each step sent (when), skipped (why), due (when)."""
    now = now or timezone.now()
    settings_row = sequence_settings()
    steps = sequence_steps()
    sends: dict[int, RecoverySend] = {}
    for found in RecoverySend.objects.filter(cart=cart).order_by("created_at", "pk"):
        held = sends.get(found.step)
        if held is None or held.status in (SendStatus.SKIPPED, SendStatus.FAILED):
            sends[found.step] = found
    anchor = cart.abandoned_at
    if anchor is None and cart.customer_changed_at is not None:
        anchor = cart.customer_changed_at
    stop = _stop_reason(cart, sends.values())
    zone = zone_for(cart.store)
    lines: list[StepLine] = []
    for step in steps:
        send = sends.get(step.step)
        manual = send is not None and send.requested_by_id is not None
        if send is not None:
            when = send.sent_at or send.sending_at or send.created_at
            lines.append(StepLine(step.step, str(send.status), when, send.reason, manual))
            continue
        due = anchor + timedelta(minutes=step.delay_minutes) if anchor is not None else None
        if not settings_row.enabled or not step.enabled:
            lines.append(
                StepLine(step.step, "off", due, "The sequence is off" if step.enabled else "Step off", False)
            )
        elif stop:
            lines.append(StepLine(step.step, "stopped", None, stop, False))
        elif step_template(step) is None:
            lines.append(StepLine(step.step, "stopped", None, f"No template for step {step.step}", False))
        elif due is None:
            lines.append(StepLine(step.step, "waiting", None, "Not abandoned yet", False))
        else:
            at = next_send_time(max(due, now), zone)
            window = settings.CARTS_SEND_WINDOW
            why = "" if at == max(due, now) else f"Waits for the store's sending window ({window})"
            lines.append(StepLine(step.step, "due", at, why, False))
    return lines


def _stop_reason(cart: Cart, sends: Iterable[RecoverySend]) -> str:
    from carts.sending import CONTACT_CHANGED

    reason = cart.emailable_reason()
    if reason:
        return reason
    for send in sends:
        if (send.status in HOLDING or send.reason == CONTACT_CHANGED) and (
            send.contact_hubspot_id != cart.contact_hubspot_id
            or send.to_email != normalize_email(cart.customer_email)
        ):
            return CONTACT_CHANGED
    return ""
