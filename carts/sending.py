"""The worker's side of a recovery email: refresh from HubSpot, the guards, then SMTP, never twice.

A send goes queued → sending → sent. "sending" is committed before the SMTP conversation starts and "sent"
after it ends, so a worker killed in between leaves "sending" behind; whoever finds it later (the task run
again, or the resume sweep) marks it uncertain, which is shown to staff and never sent again automatically.
Every skip, failure and send lands in the cart's log.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F, Max
from django.template import TemplateSyntaxError
from django.utils import timezone

from carts import links, summary
from carts.models import (
    COMPLETED,
    UNSUBSCRIBED,
    Cart,
    CartEvent,
    EmailState,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    Suppression,
    SuppressionSource,
    completed_statuses,
    is_web_link,
    normalize_email,
)
from carts.recovery_state import recovery_state_refresh
from carts.rendering import render_recovery_email

logger = logging.getLogger(__name__)

DELETED = "The cart was deleted in HubSpot"
ORDERED_SINCE = "Ordered in HubSpot since the send was requested"
CONTACT_CHANGED = "The cart's contact changed since the send was requested"
LINK_LOST = "The cart lost its recovery link"
UNCERTAIN = (
    "The worker stopped while talking to the mail server: the email may or may not have arrived. "
    "It is not sent again automatically."
)


class RetryLater(Exception):
    """Something that may work later: HubSpot could not be read, or the mail server deferred (4xx) or could
    not be reached. The send is queued again."""


class MailServerDown(RetryLater):
    """The mail server could not be reached at all: the other sends of a batch wait too."""


def _log(send: RecoverySend, kind: str, message: str) -> None:
    CartEvent.objects.create(cart_id=send.cart_id, kind=kind, message=message[:2000], send=send)


def _set_status(send: RecoverySend, status: str, reason: str = "", *, only_from: tuple[str, ...]) -> bool:
    """Move the send to ``status`` if it is still in one of ``only_from``; whether it moved."""
    now = timezone.now()
    moved = RecoverySend.objects.filter(pk=send.pk, status__in=only_from).update(
        status=status, reason=reason[:2000], updated_at=now
    )
    if moved:
        send.status, send.reason = status, reason
    return bool(moved)


def _skip(send: RecoverySend, reason: str) -> str:
    with transaction.atomic():
        if _set_status(send, SendStatus.SKIPPED, reason, only_from=(SendStatus.QUEUED,)):
            _log(send, EventKind.SKIPPED, reason)
    _finish_bulk(send)
    return SendStatus.SKIPPED


def _fail(send: RecoverySend, reason: str, *, only_from: tuple[str, ...]) -> str:
    with transaction.atomic():
        if _set_status(send, SendStatus.FAILED, reason, only_from=only_from):
            _log(send, EventKind.FAILED, reason)
    _finish_bulk(send)
    return SendStatus.FAILED


def _uncertain(send: RecoverySend, reason: str = UNCERTAIN) -> str:
    with transaction.atomic():
        if _set_status(send, SendStatus.UNCERTAIN, reason, only_from=(SendStatus.SENDING,)):
            _log(send, EventKind.UNCERTAIN, reason)
    _finish_bulk(send)
    return SendStatus.UNCERTAIN


def _finish_bulk(send: RecoverySend) -> None:
    if send.bulk_id is not None:
        from carts.services import bulk_send_finish

        bulk_send_finish(bulk_id=send.bulk_id)


# --- refresh and guards -------------------------------------------------------------------------------------


def refresh_from_hubspot(cart: Cart) -> Cart:
    """refresh_carts_from_hubspot() for one cart."""
    return refresh_carts_from_hubspot([cart])[cart.pk]


def refresh_carts_from_hubspot(carts: Sequence[Cart]) -> dict[int, Cart]:
    """Read the carts, their associations, their contacts and their line items again from HubSpot (batch
    reads through the integration's refresh, a few calls for a whole batch of sends); the refreshed carts
    by primary key."""
    from hubspot_sync import client
    from hubspot_sync.models import Association
    from hubspot_sync.sync import refresh_records

    ids = sorted({cart.hubspot_id for cart in carts})
    try:
        refresh_records("carts", ids)
        fresh = Cart.objects.filter(hubspot_id__in=ids)
        contacts = sorted({c for c in fresh.values_list("contact_hubspot_id", flat=True) if c})
        if contacts:
            refresh_records("contacts", contacts)
        items = sorted(
            set(
                Association.objects.filter(
                    from_type="carts", from_id__in=ids, to_type="line_items"
                ).values_list("to_id", flat=True)
            )
        )
        if items:
            refresh_records("line_items", items)
    except client.HubSpotError as exc:
        raise RetryLater(f"HubSpot could not be read: {exc}") from exc
    return Cart.objects.in_bulk([cart.pk for cart in carts])


def guard_reason(send: RecoverySend, cart: Cart) -> str:
    """Why this send must not go now ("" when it may), from the freshly refreshed cart."""
    if cart.archived:
        return DELETED
    if cart.order_hubspot_id:
        return ORDERED_SINCE
    if cart.status and cart.status in completed_statuses():
        return COMPLETED
    if cart.contact_hubspot_id != send.contact_hubspot_id or normalize_email(cart.customer_email) != (
        send.to_email
    ):
        return CONTACT_CHANGED
    if not is_web_link(cart.cart_url):
        return LINK_LOST
    other = RecoverySend.objects.holding().filter(cart_id=cart.pk, step=send.step).exclude(pk=send.pk)
    if other.exists():
        return f"Step {send.step} was already sent or is on its way"
    # The remaining rules (address, suppression, consent) are the cart's own.
    return cart.emailable_reason()


def _lock_address(email: str) -> None:
    """Serialise claims for one address (the frequency cap) until the transaction ends. On SQLite every
    write transaction already runs alone (BEGIN IMMEDIATE)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 13))", [email])


def _claim(send: RecoverySend, message_id: str) -> str:
    """Within one transaction: check the per-contact cap and move queued → sending. Returns "" when this
    task may now talk to the mail server, else what happened instead."""
    now = timezone.now()
    with transaction.atomic():
        _lock_address(send.to_email)
        capping = RecoverySend.objects.capping(
            email=normalize_email(send.to_email), cart=send.cart_id, now=now
        )
        reason = ""
        if capping.exists():
            reason = f"This contact got a recovery email in the last {settings.CARTS_EMAIL_CAP_HOURS} h"
        elif Suppression.objects.is_suppressed(send.to_email):
            # Unsubscribed since the guards ran.
            reason = UNSUBSCRIBED
        if reason:
            if _set_status(send, SendStatus.SKIPPED, reason, only_from=(SendStatus.QUEUED,)):
                _log(send, EventKind.SKIPPED, reason)
            return SendStatus.SKIPPED
        # A send the mail server deferred went out once already (it counts on that day until now).
        earlier = (
            RecoverySend.objects.select_for_update(no_key=True)
            .filter(pk=send.pk, status=SendStatus.QUEUED)
            .values_list("sending_at", "clicked_at")
            .first()
        )
        if earlier is None:
            return "taken"
        claimed = RecoverySend.objects.filter(pk=send.pk, status=SendStatus.QUEUED).update(
            status=SendStatus.SENDING,
            sending_at=now,
            message_id=message_id,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        if not claimed:
            return "taken"
        # The dashboard's figures (last): it goes out today, and no longer on a day it went out before.
        went_before, clicked = earlier
        summary.count_send(send.pk, sent=1, clicked=int(clicked is not None), moved_from=went_before)
    send.status, send.sending_at, send.message_id = SendStatus.SENDING, now, message_id
    return ""


# --- the message --------------------------------------------------------------------------------------------


def _domain() -> str:
    sender = settings.RECOVERY_FROM_EMAIL
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rpartition("@")[2] or "orderdeck.local"


def build_message(
    *, subject: str, text: str, html: str, to_email: str, unsubscribe: str | None, message_id: str = ""
) -> EmailMultiAlternatives:
    """A two-part (text and HTML) message with our Message-ID and, for recovery sends, the RFC 8058
    one-click unsubscribe headers (https://www.rfc-editor.org/rfc/rfc8058)."""
    headers = {"Message-ID": message_id or make_msgid(domain=_domain())}
    if unsubscribe:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.RECOVERY_FROM_EMAIL,
        to=[to_email],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message


def sample_cart() -> Cart:
    """A cart for previews and test sends when there is none to show: the most recent cart with line items,
    else an unsaved stand-in."""
    from hubspot_sync.models import Association

    with_items = Association.objects.filter(from_type="carts", to_type="line_items").values("from_id")
    cart = Cart.objects.live().filter(hubspot_id__in=with_items).order_by("-remote_updated_at").first()
    return cart or Cart(
        name="Sample cart",
        store="Sample store",
        total=Decimal("49.90"),
        currency="EUR",
        customer_name="Sam Sample",
        cart_url="https://shop.example.com/cart/recover/sample",
    )


# --- the worker path ----------------------------------------------------------------------------------------


def _smtp_code(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        for code, answer in exc.recipients.values():
            return int(code), answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        return 0, ""
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        return int(exc.smtp_code), error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return 0, ""


def _sent(send: RecoverySend) -> str:
    now = timezone.now()
    with transaction.atomic():
        delivered = RecoverySend.objects.filter(
            pk=send.pk, status__in=[SendStatus.SENDING, SendStatus.UNCERTAIN]
        ).update(status=SendStatus.SENT, sent_at=now, reason="", updated_at=now)
        _log(send, EventKind.SENT, f"Step {send.step} to {send.to_email}")
        # writeback_due: the cart's recovery properties go to HubSpot (carts.writeback).
        Cart.objects.filter(pk=send.cart_id).update(last_email_at=now, writeback_due=True)
        if Cart.objects.filter(pk=send.cart_id, email_state=EmailState.NEW).update(
            email_state=EmailState.EMAILED
        ):
            recovery_state_refresh(Cart.objects.filter(pk=send.cart_id))
            _log(send, EventKind.STATE_CHANGED, "Emailed")
        if delivered:
            summary.count_send(send.pk, delivered=1)  # the dashboard's figures (last)
    _finish_bulk(send)
    return SendStatus.SENT


def _back_to_queue(send: RecoverySend, why: str) -> None:
    """The mail server took nothing (it deferred, or could not be reached): queued again for a retry."""
    RecoverySend.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
        status=SendStatus.QUEUED, reason=why[:2000], queued_at=timezone.now(), updated_at=timezone.now()
    )


def _deliver(send: RecoverySend, message: EmailMultiAlternatives) -> str:
    """The SMTP conversation, after "sending" was committed."""
    from carts.services import suppression_add

    smtp = get_connection(fail_silently=False)
    try:
        smtp.open()
    except (OSError, smtplib.SMTPException) as exc:
        _back_to_queue(send, f"The mail server could not be reached: {exc}")
        raise MailServerDown(str(exc)) from exc
    try:
        smtp.send_messages([message])
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
        code, answer = _smtp_code(exc)
        if 400 <= code < 500:
            _back_to_queue(send, f"The mail server deferred it ({code} {answer})")
            raise RetryLater(f"{code} {answer}") from exc
        reason = f"The mail server refused it ({code} {answer})".strip()
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return _fail(send, f"{reason}: check RECOVERY_FROM_EMAIL", only_from=(SendStatus.SENDING,))
        outcome = _fail(send, reason, only_from=(SendStatus.SENDING,))
        suppression_add(email=send.to_email, reason=reason, source=SuppressionSource.SMTP_BOUNCE, send=send)
        return outcome
    except (OSError, smtplib.SMTPException) as exc:
        # The connection broke mid-conversation: the server may have taken the message.
        logger.warning("recovery send %s: connection lost during SMTP: %s", send.pk, exc)
        return _uncertain(
            send,
            f"The connection to the mail server broke during delivery ({exc}); "
            "it may or may not have arrived, and is not sent again automatically.",
        )
    finally:
        try:
            smtp.close()
        except (OSError, smtplib.SMTPException):
            logger.debug("closing the SMTP connection failed", exc_info=True)
    return _sent(send)


def recovery_send_deliver(*, send_id: int) -> str:
    """The worker's path for one send; returns its status afterwards (RetryLater: try again later). Safe to
    run twice: only a queued send is worked on, and one found "sending" is marked uncertain, never sent
    again."""
    outcomes, deferred = recovery_sends_deliver(send_ids=[send_id])
    if deferred:
        raise deferred[0][1]
    return outcomes.get(send_id, "missing")


def recovery_sends_deliver(*, send_ids: Sequence[int]) -> tuple[dict[int, str], list[tuple[int, RetryLater]]]:
    """The worker's path for a batch of sends: one refresh from HubSpot for all their carts, then each send
    checked and sent in turn. Returns each send's status, and the sends to try again later with why (the
    mail server deferred them or could not be reached). RetryLater when HubSpot could not be read."""
    outcomes: dict[int, str] = {}
    deferred: list[tuple[int, RetryLater]] = []
    todo: list[RecoverySend] = []
    for send in (
        RecoverySend.objects.select_related("cart", "template").filter(pk__in=send_ids).order_by("pk")
    ):
        if send.status == SendStatus.SENDING:
            outcomes[send.pk] = _uncertain(send)
        elif send.status != SendStatus.QUEUED:
            outcomes[send.pk] = str(send.status)
        else:
            todo.append(send)
    if not todo:
        return outcomes, deferred
    carts = refresh_carts_from_hubspot([send.cart for send in todo])
    down: MailServerDown | None = None
    for send in todo:
        if down is not None:
            deferred.append((send.pk, down))
            continue
        try:
            outcomes[send.pk] = _deliver_checked(send, carts[send.cart_id])
        except MailServerDown as exc:
            down = exc
            deferred.append((send.pk, exc))
        except RetryLater as exc:
            deferred.append((send.pk, exc))
    return outcomes, deferred


def _deliver_checked(send: RecoverySend, cart: Cart) -> str:
    """Guards, render, claim, SMTP for one queued send whose cart was just refreshed."""
    reason = guard_reason(send, cart)
    if reason:
        return _skip(send, reason)
    template = send.template or RecoveryTemplate.for_step(send.step)
    if template is None:
        return _skip(send, f"No template for step {send.step}")
    try:
        subject, text, html = render_recovery_email(cart=cart, template=template, send=send)
    except TemplateSyntaxError as exc:
        return _fail(send, f"The template could not be rendered: {exc}", only_from=(SendStatus.QUEUED,))
    message_id = make_msgid(domain=_domain())
    message = build_message(
        subject=subject,
        text=text,
        html=html,
        to_email=send.to_email,
        unsubscribe=links.unsubscribe_url(send),
        message_id=message_id,
    )
    claimed = _claim(send, message_id)
    if claimed:
        if claimed == SendStatus.SKIPPED:
            _finish_bulk(send)
        return claimed
    return _deliver(send, message)


def recovery_send_gave_up(*, send_id: int, why: str) -> str:
    """After the last retry: the send fails with the last reason (it never reached the mail server)."""
    send = RecoverySend.objects.filter(pk=send_id).first()
    if send is None:
        return "missing"
    return _fail(send, f"Gave up after {send.attempts or 1} tries: {why}", only_from=(SendStatus.QUEUED,))


def recovery_sends_resume(*, now: Any = None) -> tuple[list[int], int]:
    """The sweep after a worker or broker restart: sends left "sending" past any SMTP timeout become
    uncertain, and queued sends whose task was lost (none due later, and no send has made progress for
    CARTS_SEND_REQUEUE_S) are returned to be queued again. Returns (ids to queue, how many became
    uncertain)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.EMAIL_TIMEOUT + settings.CARTS_SENDING_STALE_S)
    uncertain = 0
    for send in RecoverySend.objects.filter(status=SendStatus.SENDING, sending_at__lt=stale):
        if _uncertain(send) == SendStatus.UNCERTAIN:
            uncertain += 1
    quiet = now - timedelta(seconds=settings.CARTS_SEND_REQUEUE_S)
    progress = RecoverySend.objects.exclude(status=SendStatus.QUEUED).aggregate(last=Max("updated_at"))[
        "last"
    ]
    if progress is not None and progress >= quiet:
        return [], uncertain
    lost = RecoverySend.objects.filter(status=SendStatus.QUEUED).exclude(queued_at__gte=quiet)
    ids = list(lost.order_by("pk").values_list("pk", flat=True)[:5000])
    RecoverySend.objects.filter(pk__in=ids).update(queued_at=now)
    return ids, uncertain
