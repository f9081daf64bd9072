"""Writes of the carts app: the cache hooks sync calls, and recovery emails (requests, bulk sends, the
suppression list, the links in an email). The worker's path is in carts.sending."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.template import TemplateSyntaxError
from django.utils import timezone
from kombu.exceptions import OperationalError

from carts import links, summary
from carts.models import (
    BulkSend,
    Cart,
    CartEvent,
    EmailState,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    Suppression,
    SuppressionSource,
    email_hash,
    is_web_link,
    normalize_email,
)
from carts.recovery_state import recovery_state_refresh, recovery_state_refresh_email
from carts.rendering import check_recovery_template as check_recovery_template
from carts.rendering import render_recovery_email
from hubspot_sync import registry
from hubspot_sync.cache import chunks
from hubspot_sync.models import Association
from hubspot_sync.registry import MirrorType

logger = logging.getLogger(__name__)


def _link_orders(hubspot_ids: Sequence[str]) -> None:
    """Copy the order each cart became (its first order edge, by id) onto the named carts."""
    order = Association.objects.filter(from_type="carts", from_id=OuterRef("hubspot_id"), to_type="orders")
    Cart.objects.filter(hubspot_id__in=hubspot_ids).update(
        order_hubspot_id=Coalesce(Subquery(order.order_by("to_id").values("to_id")[:1]), Value(""))
    )


def carts_refresh_links_all(spec: MirrorType) -> None:
    """Every cart's copies of its contact and order, set-based (the end of a full run)."""
    from hubspot_sync.services import copy_first_edge, denormalize_contact

    denormalize_contact(Cart, "carts", None)
    copy_first_edge(Cart, "carts", "orders", "order_hubspot_id")
    carts_log_recoveries(None)
    recovery_state_refresh(None)


def carts_link_columns(
    spec: MirrorType, rows: list[dict[str, Any]], associations: Mapping[str, Mapping[str, Sequence[str]]]
) -> None:
    """A full run's rows get their contact's copy and the order they became (first order edge, by id) from
    the edges the page brought; the whole-table pass at the run's end corrects what changed since."""
    from hubspot_sync.services import contact_columns

    contact_columns(spec, rows, associations)
    for row in rows:
        orders = associations.get(row["hubspot_id"], {}).get("orders")
        row["order_hubspot_id"] = min(orders) if orders else ""


@registry.whole_table(carts_refresh_links_all, rows=carts_link_columns)
def carts_refresh_links(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """Copy each cart's contact (name, email) and the order it became onto the cart."""
    from hubspot_sync.services import denormalize_contact

    for chunk in chunks(list(hubspot_ids), 500):
        denormalize_contact(Cart, "carts", chunk)
        _link_orders(chunk)
        carts_log_recoveries(chunk)
        recovery_state_refresh(Cart.objects.filter(hubspot_id__in=chunk))


RECOVERED = "Recovered: the cart became order {order} after a recovery email"


def carts_log_recoveries(hubspot_ids: Sequence[str] | None) -> int:
    """Log, once, that an emailed cart became an order (the named carts, or every one)."""
    carts = Cart.objects.exclude(email_state=EmailState.NEW).exclude(order_hubspot_id="")
    if hubspot_ids is not None:
        carts = carts.filter(hubspot_id__in=hubspot_ids)
    logged = CartEvent.objects.filter(kind=EventKind.STATE_CHANGED, message__startswith="Recovered:")
    fresh = list(carts.exclude(pk__in=logged.values("cart_id")).values_list("pk", "order_hubspot_id"))
    CartEvent.objects.bulk_create(
        [
            CartEvent(cart_id=pk, kind=EventKind.STATE_CHANGED, message=RECOVERED.format(order=order))
            for pk, order in fresh
        ]
    )
    if fresh:  # their recovery state in HubSpot: recovered (carts.writeback)
        Cart.objects.filter(pk__in=[pk for pk, _ in fresh]).update(writeback_due=True)
    # The recovered revenue and the email credited with it (carts.attribution), for the same carts.
    from carts.attribution import attribute_carts

    attribute_carts(hubspot_ids)
    return len(fresh)


# --- recovery emails ---------------------------------------------------------------------------------------
# The worker's path (refresh, guards, SMTP) is in carts.sending; rendering in carts.rendering.

STEP_TAKEN = "Step {step} was already sent or is on its way"
NO_TEMPLATE = "No template for step {step}"
CAPPED = "This contact got a recovery email in the last {hours} h"


def cart_event_log(
    *,
    cart: Cart,
    kind: str,
    message: str = "",
    send: RecoverySend | None = None,
    by: AbstractBaseUser | None = None,
) -> CartEvent:
    """Add a line to the cart's log."""
    return CartEvent.objects.create(cart=cart, kind=kind, message=message[:2000], send=send, by=_user(by))


def _user(by: Any) -> Any:
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _queue(task: Any, object_id: int) -> None:
    """Queue a task after the commit. A broker that can't be reached loses nothing: the sends are written,
    and the resume sweep queues them once it can."""
    try:
        task.delay(object_id)
    except OperationalError:
        logger.warning("carts: the broker could not take %s(%s); the resume sweep will", task.name, object_id)


def _new_token() -> str:
    return secrets.token_urlsafe(24)


def _reason_text(reason: str, step: int) -> str:
    return reason.format(step=step, hours=settings.CARTS_EMAIL_CAP_HOURS)


def _request_reason(cart: Cart, step: int, template: RecoveryTemplate | None) -> str:
    reason = cart.emailable_reason()
    if reason:
        return reason
    if template is None:
        return _reason_text(NO_TEMPLATE, step)
    if RecoverySend.objects.holding().filter(cart=cart, step=step).exists():
        return _reason_text(STEP_TAKEN, step)
    return ""


@transaction.atomic
def cart_send_request(
    *, cart: Cart, step: int = 1, by: AbstractBaseUser | None, bulk: BulkSend | None = None
) -> RecoverySend:
    """Ask for a recovery email about ``cart``: a queued send (a worker checks and sends it), or a skipped
    one saying why not. Either way the cart's log says so."""
    from carts import tasks

    template = RecoveryTemplate.for_step(step)
    reason = _request_reason(cart, step, template)
    send = RecoverySend(
        cart=cart,
        step=step,
        template=template,
        to_email=normalize_email(cart.customer_email),
        contact_hubspot_id=cart.contact_hubspot_id,
        status=SendStatus.SKIPPED if reason else SendStatus.QUEUED,
        reason=reason,
        requested_by=_user(by),
        bulk=bulk,
        token=_new_token(),
        queued_at=None if reason else timezone.now(),
    )
    try:
        with transaction.atomic():
            send.save()
    except IntegrityError:
        # Another request for the same step got there first (the one-send-per-step constraint).
        send.pk = None
        send.status, send.reason, send.queued_at = SendStatus.SKIPPED, _reason_text(STEP_TAKEN, step), None
        send.token = _new_token()
        send.save()
    if send.status == SendStatus.QUEUED:
        cart_event_log(
            cart=cart,
            kind=EventKind.SEND_REQUESTED,
            message=f"Step {step} to {send.to_email}",
            send=send,
            by=by,
        )
        send_id = send.pk
        transaction.on_commit(lambda: _queue(tasks.recovery_send_task, send_id))
    else:
        cart_event_log(cart=cart, kind=EventKind.SKIPPED, message=send.reason, send=send, by=by)
    return send


def _consent_values(contact_ids: list[str]) -> dict[str, str]:
    from hubspot_sync.models import Contact

    if settings.CARTS_CONSENT_POLICY != "marketing" or not contact_ids:
        return {}
    key = f"properties__{settings.CARTS_CONSENT_PROPERTY}"
    return {
        str(hubspot_id): "" if value is None else str(value)
        for hubspot_id, value in Contact.objects.filter(hubspot_id__in=contact_ids).values_list(
            "hubspot_id", key
        )
    }


def _bulk_reasons(carts: list[Cart], step: int, template: RecoveryTemplate | None) -> dict[int, str]:
    """Why each cart would be skipped ("" when it would be queued), a few queries for the whole chunk."""
    hashes = {email_hash(c.customer_email): c.pk for c in carts if c.customer_email}
    suppressed = set(
        Suppression.objects.filter(email_hash__in=list(hashes)).values_list("email_hash", flat=True)
    )
    taken = set(
        RecoverySend.objects.holding()
        .filter(cart__in=[c.pk for c in carts], step=step)
        .values_list("cart_id", flat=True)
    )
    consent = _consent_values([c.contact_hubspot_id for c in carts if c.contact_hubspot_id])
    reasons: dict[int, str] = {}
    for cart in carts:
        reasons[cart.pk] = cart.emailable_reason_given(
            suppressed=bool(cart.customer_email) and email_hash(cart.customer_email) in suppressed,
            consent=consent.get(cart.contact_hubspot_id, ""),
        )
        if reasons[cart.pk]:
            continue
        if template is None:
            reasons[cart.pk] = _reason_text(NO_TEMPLATE, step)
        elif cart.pk in taken:
            reasons[cart.pk] = _reason_text(STEP_TAKEN, step)
    return reasons


def _chunks_of(carts_qs: QuerySet[Cart], size: int = 500) -> Iterator[list[Cart]]:
    chunk: list[Cart] = []
    for cart in carts_qs.order_by("pk").iterator(chunk_size=size):
        chunk.append(cart)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_send_preview(carts_qs: QuerySet[Cart], step: int = 1) -> tuple[int, int, list[tuple[str, int]]]:
    """What a bulk send to these carts would do: (carts, how many would be skipped, [(reason, count)]).

    The worker checks each cart again at send time, so more may be skipped then (an order since, the
    frequency cap)."""
    template = RecoveryTemplate.for_step(step)
    count = 0
    by_reason: dict[str, int] = {}
    for chunk in _chunks_of(carts_qs):
        count += len(chunk)
        for reason in _bulk_reasons(chunk, step, template).values():
            if reason:
                by_reason[reason] = by_reason.get(reason, 0) + 1
    reasons = sorted(by_reason.items(), key=lambda pair: (-pair[1], pair[0]))
    return count, sum(by_reason.values()), reasons


@transaction.atomic
def carts_bulk_send(
    *, carts_qs: QuerySet[Cart], by: AbstractBaseUser | None, filters: dict[str, Any], step: int = 1
) -> BulkSend:
    """Send to every cart of the query: one send row per cart (queued, or skipped with its reason), written
    now; a worker queues the sends' tasks, and the resume sweep queues again any whose task was lost."""
    from carts import tasks

    template = RecoveryTemplate.for_step(step)
    bulk = BulkSend.objects.create(requested_by=_user(by), filters=filters)
    user = _user(by)
    for chunk in _chunks_of(carts_qs):
        reasons = _bulk_reasons(chunk, step, template)
        sends = [
            RecoverySend(
                cart=cart,
                step=step,
                template=template,
                to_email=normalize_email(cart.customer_email),
                contact_hubspot_id=cart.contact_hubspot_id,
                status=SendStatus.SKIPPED if reasons[cart.pk] else SendStatus.QUEUED,
                reason=reasons[cart.pk],
                requested_by=user,
                bulk=bulk,
                token=_new_token(),
            )
            for cart in chunk
        ]
        created = RecoverySend.objects.bulk_create(sends, batch_size=500)
        # bulk_create gives primary keys on both databases (SQLite 3.35+ RETURNING); the events name them.
        if any(send.pk is None for send in created):
            created = list(RecoverySend.objects.filter(bulk=bulk, cart__in=[c.pk for c in chunk]))
        CartEvent.objects.bulk_create(
            [
                CartEvent(
                    cart_id=send.cart_id,
                    kind=EventKind.SKIPPED if send.reason else EventKind.SEND_REQUESTED,
                    message=send.reason or f"Step {step} to {send.to_email} (bulk send {bulk.pk})",
                    send=send,
                    by=user,
                )
                for send in created
            ],
            batch_size=500,
        )
        bulk.total += len(created)
        bulk.skipped += sum(1 for send in created if send.reason)
    bulk.queued = bulk.total - bulk.skipped
    if bulk.queued == 0:
        bulk.finished_at = timezone.now()
    bulk.save(update_fields=["total", "queued", "skipped", "finished_at"])
    bulk_id = bulk.pk
    transaction.on_commit(lambda: _queue(tasks.bulk_send_dispatch_task, bulk_id))
    return bulk


def bulk_send_dispatch(*, bulk_id: int) -> int:
    """Queue tasks (in batches) for the bulk send's queued sends that have none yet; returns how many."""
    from carts import tasks

    queued = 0
    while True:
        ids = list(
            RecoverySend.objects.filter(bulk_id=bulk_id, status=SendStatus.QUEUED, queued_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:500]
        )
        if not ids:
            return queued
        RecoverySend.objects.filter(pk__in=ids, queued_at__isnull=True).update(queued_at=timezone.now())
        tasks.queue_in_batches(ids)
        queued += len(ids)


def bulk_send_finish(*, bulk_id: int) -> None:
    """Mark a bulk send finished once none of its sends is queued or sending."""
    busy = RecoverySend.objects.filter(
        bulk_id=bulk_id, status__in=[SendStatus.QUEUED, SendStatus.SENDING]
    ).exists()
    if not busy:
        BulkSend.objects.filter(pk=bulk_id, finished_at__isnull=True).update(finished_at=timezone.now())


def _test_key(template_id: int, user_id: int | None) -> str:
    return f"carts:template-test:{template_id}:{user_id or 0}"


TEST_OUTCOME_TTL_S = 24 * 3600


def template_test_send(
    *, template: RecoveryTemplate, cart: Cart | None, to_email: str, by: AbstractBaseUser | None
) -> None:
    """Queue a test send of the template, rendered with a cart's data (or a sample cart), to a staff member:
    a worker sends it (web requests never talk SMTP). It is no recovery send: no guard, no log, and its links
    are stand-ins. What became of it is kept for the template's page (``template_test_outcome``)."""
    from carts.tasks import template_test_send_task

    user_id = getattr(by, "pk", None)
    key = _test_key(template.pk, user_id)
    cache.set(key, {"status": "queued", "to": to_email, "error": ""}, TEST_OUTCOME_TTL_S)
    args = (template.pk, cart.pk if cart is not None else None, to_email, user_id)

    def queue() -> None:
        try:
            template_test_send_task.delay(*args)
        except OperationalError as exc:
            cache.set(
                key,
                {"status": "failed", "to": to_email, "error": f"no worker queue ({exc})"},
                TEST_OUTCOME_TTL_S,
            )

    transaction.on_commit(queue)


def template_test_deliver(
    *, template_id: int, cart_id: int | None, to_email: str, user_id: int | None
) -> str:
    """The worker's part of a test send: render and send it at once; the outcome ("sent", or "failed" with
    the mail server's answer) is kept for the template's page. Returns the outcome."""
    import smtplib

    from carts.sending import build_message, sample_cart

    key = _test_key(template_id, user_id)
    template = RecoveryTemplate.objects.filter(pk=template_id).first()
    if template is None:
        cache.delete(key)
        return "gone"
    cart = Cart.objects.filter(pk=cart_id).first() if cart_id is not None else None
    try:
        subject, text, html = render_recovery_email(cart=cart or sample_cart(), template=template)
        message = build_message(
            subject=f"[Test] {subject}", text=text, html=html, to_email=to_email, unsubscribe=None
        )
        message.send(fail_silently=False)
    except (OSError, smtplib.SMTPException, TemplateSyntaxError) as error:
        cache.set(key, {"status": "failed", "to": to_email, "error": str(error)[:500]}, TEST_OUTCOME_TTL_S)
        return "failed"
    cache.set(key, {"status": "sent", "to": to_email, "error": ""}, TEST_OUTCOME_TTL_S)
    return "sent"


def template_test_outcome(
    *, template: RecoveryTemplate, by: AbstractBaseUser | None
) -> dict[str, str] | None:
    """What became of this person's last test send of the template: {"status": "queued" | "sent" | "failed",
    "to", "error"}, or None. A failure is said once: reading it forgets it."""
    key = _test_key(template.pk, getattr(by, "pk", None))
    outcome = cache.get(key)
    if not isinstance(outcome, dict):
        return None
    if outcome.get("status") == "failed":
        cache.delete(key)
    return {k: str(v) for k, v in outcome.items()}


# --- suppressions ------------------------------------------------------------------------------------------


def _carts_of(email: str) -> QuerySet[Cart]:
    return Cart.objects.filter(customer_email__iexact=normalize_email(email))


@transaction.atomic
def suppression_add(
    *,
    email: str,
    reason: str,
    source: str,
    by: AbstractBaseUser | None = None,
    send: RecoverySend | None = None,
) -> Suppression:
    """Put an address on the suppression list (once; a second add keeps the first entry)."""
    address = normalize_email(email)[:255]
    suppression, created = Suppression.objects.get_or_create(
        email_hash=email_hash(address),
        defaults={"email": address, "reason": reason[:2000], "source": source, "added_by": _user(by)},
    )
    if created:
        _carts_of(address).update(writeback_due=True)  # their recovery state in HubSpot: unsubscribed
        recovery_state_refresh_email(address)
        label = SuppressionSource(source).label if source in SuppressionSource.values else source
        for cart in _carts_of(address).only("pk")[:1000]:
            cart_event_log(
                cart=cart,
                kind=EventKind.UNSUBSCRIBED,
                message=f"{label}: {reason}" if reason else label,
                send=send if send is not None and send.cart_id == cart.pk else None,
                by=by,
            )
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, by: AbstractBaseUser | None, reason: str = "") -> None:
    """Take an address off the suppression list; its carts' logs say who did and why."""
    email = suppression.email or ""
    suppression.delete()
    if email:
        recovery_state_refresh_email(email)
        who = getattr(by, "get_username", lambda: "")()
        text = f"Removed from the suppression list by {who}" if who else "Removed from the suppression list"
        for cart in _carts_of(email).only("pk")[:1000]:
            cart_event_log(
                cart=cart,
                kind=EventKind.STATE_CHANGED,
                message=f"{text}: {reason}" if reason else text,
                by=by,
            )


# --- the links in a recovery email --------------------------------------------------------------------------


def _send_for(value: str, salt: str) -> RecoverySend:
    """The send a signed link names; LinkInvalid (or LinkExpired) when it is not a genuine, current link."""
    token = links.unsign(value, salt)
    send = RecoverySend.objects.select_related("cart").filter(token=token).first()
    if send is None:
        raise links.LinkInvalid("no such send")
    return send


@transaction.atomic
def click(token: str) -> str:
    """Record a click on a recovery email's link and return where it goes: the cart's stored recovery link,
    and nothing else (an empty string when the cart has no usable link)."""
    send = _send_for(token, links.CLICK_SALT)
    now = timezone.now()
    cart = send.cart
    first = RecoverySend.objects.filter(pk=send.pk, clicked_at__isnull=True).update(clicked_at=now)
    if first:
        cart_event_log(cart=cart, kind=EventKind.CLICKED, message=f"Step {send.step}", send=send)
        Cart.objects.filter(pk=cart.pk).update(writeback_due=True)
    if (
        Cart.objects.filter(pk=cart.pk)
        .exclude(email_state=EmailState.CLICKED)
        .update(email_state=EmailState.CLICKED)
    ):
        recovery_state_refresh(Cart.objects.filter(pk=cart.pk))
        cart_event_log(cart=cart, kind=EventKind.STATE_CHANGED, message="Clicked", send=send)
    if first:
        summary.count_send(send.pk, clicked=1)  # the dashboard's figures (last: carts.summary)
    return cart.cart_url if is_web_link(cart.cart_url) else ""


def unsubscribe_address(token: str) -> str:
    """The address an unsubscribe link is for (checks the link as unsubscribe() does)."""
    return _send_for(token, links.UNSUBSCRIBE_SALT).to_email


def unsubscribe(token: str) -> str:
    """Put the address of the send a signed unsubscribe link names on the suppression list; returns it."""
    send = _send_for(token, links.UNSUBSCRIBE_SALT)
    if send.to_email:
        suppression_add(
            email=send.to_email,
            reason="Unsubscribed through the link in a recovery email",
            source=SuppressionSource.UNSUBSCRIBE,
            send=send,
        )
    return send.to_email
