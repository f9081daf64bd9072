"""Bulk sends (preview, rows written when confirmed, dispatch), the retry policy of the send task, the
suppression list services and the template test send."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from carts import sending, tasks
from carts.models import (
    NO_EMAIL,
    NO_LINK,
    UNSUBSCRIBED,
    BulkSend,
    Cart,
    CartEvent,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    Suppression,
    email_hash,
)
from carts.services import (
    bulk_send_dispatch,
    bulk_send_preview,
    carts_bulk_send,
    suppression_add,
    suppression_remove,
    template_test_send,
)
from tests.carts.conftest import Portal, SmtpServer, emailable_cart


def _cart(n: int, **fields: Any) -> Cart:
    values: dict[str, Any] = {
        "hubspot_id": str(600 + n),
        "cart_url": f"https://shop.example.com/cart/recover/{n}",
        "customer_email": f"c{n}@customer.example",
        "contact_hubspot_id": str(300 + n),
    }
    values.update(fields)
    return Cart.objects.create(**values)


@pytest.mark.django_db
def test_the_preview_states_the_scope_and_the_skips_with_their_reasons(support_user: Any) -> None:
    for n in range(5):
        _cart(n)
    _cart(5, cart_url="")
    _cart(6, customer_email="")
    _cart(7, customer_email="Gone@Customer.example")
    suppression_add(email="gone@customer.example", reason="asked", source="staff", by=support_user)

    count, skipped, reasons = bulk_send_preview(Cart.objects.all())

    assert (count, skipped) == (8, 3)
    assert sorted(reasons) == sorted([(NO_LINK, 1), (NO_EMAIL, 1), (UNSUBSCRIBED, 1)])


@pytest.mark.django_db
def test_a_bulk_send_writes_every_send_at_once_and_one_dispatch_task(
    support_user: Any, queued_tasks: list[tuple[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    for n in range(4):
        _cart(n)
    _cart(4, cart_url="javascript:alert(1)")
    with django_capture_on_commit_callbacks(execute=True):
        bulk = carts_bulk_send(carts_qs=Cart.objects.all(), by=support_user, filters={"state": "new"})

    assert (bulk.total, bulk.queued, bulk.skipped) == (5, 4, 1)
    assert bulk.filters == {"state": "new"} and bulk.requested_by == support_user
    sends = RecoverySend.objects.filter(bulk=bulk)
    assert sends.filter(status=SendStatus.QUEUED, queued_at__isnull=True).count() == 4
    assert sends.get(status=SendStatus.SKIPPED).reason == NO_LINK
    assert CartEvent.objects.filter(kind=EventKind.SEND_REQUESTED).count() == 4
    assert CartEvent.objects.filter(kind=EventKind.SKIPPED).count() == 1
    assert queued_tasks == [(tasks.bulk_send_dispatch_task.name, (bulk.pk,))]

    # The dispatch queues one task per queued send, once.
    assert bulk_send_dispatch(bulk_id=bulk.pk) == 4
    assert bulk_send_dispatch(bulk_id=bulk.pk) == 0
    batches = [args[0] for name, args in queued_tasks if name == tasks.recovery_send_batch_task.name]
    assert batches == [sorted(sends.filter(status=SendStatus.QUEUED).values_list("pk", flat=True))]
    # A second bulk over the same carts skips every one: the step is taken.
    again = carts_bulk_send(carts_qs=Cart.objects.all(), by=support_user, filters={})
    assert (again.queued, again.skipped) == (0, 5)
    assert again.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_deferred_send_is_retried_and_fails_after_the_last_retry(
    portal: Portal,
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    support_user: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carts.services import cart_send_request

    settings.CARTS_SEND_MAX_RETRIES = 2
    cart = emailable_cart(portal, "reject-4xx@customer.example")
    send = cart_send_request(cart=cart, by=support_user)
    tries: list[int] = []
    real = sending.recovery_send_deliver

    def counted(*, send_id: int) -> str:
        tries.append(send_id)
        return real(send_id=send_id)

    monkeypatch.setattr(sending, "recovery_send_deliver", counted)
    # apply() runs the task here, retries included (their countdown is not waited for).
    result = tasks.recovery_send_task.apply(args=[send.pk])

    assert result.get() == SendStatus.FAILED
    assert len(tries) == 3, "the first try and two retries"
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED and send.reason.startswith("Gave up after")
    assert "451" in send.reason
    assert smtp_server.mailbox.count() == 0 and not Suppression.objects.exists()


def test_the_backoff_grows_and_is_capped(settings: Any) -> None:
    settings.CARTS_SEND_RETRY_CAP_S = 600
    waits = [tasks._backoff_s(n) for n in range(10)]
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20
    assert all(300 <= w <= 600 for w in waits[7:])


@pytest.mark.django_db
def test_suppression_add_and_remove_log_on_the_addresses_carts(support_user: Any) -> None:
    cart = _cart(1, customer_email="Mixed.Case@Customer.example")
    first = suppression_add(
        email=" Mixed.Case@customer.EXAMPLE ", reason="phoned", source="staff", by=support_user
    )
    again = suppression_add(
        email="mixed.case@customer.example", reason="again", source="staff", by=support_user
    )
    assert first.pk == again.pk and first.email == "mixed.case@customer.example"
    assert first.email_hash == email_hash("MIXED.case@customer.example") and first.added_by == support_user
    assert cart.emailable_reason() == UNSUBSCRIBED
    assert list(CartEvent.objects.filter(cart=cart).values_list("kind", "message")) == [
        (EventKind.UNSUBSCRIBED, "Added by staff: phoned")
    ]
    suppression_remove(suppression=first, by=support_user, reason="customer asked to come back")
    assert not Suppression.objects.exists() and cart.emailable_reason() == ""
    latest = CartEvent.objects.filter(cart=cart).first()
    assert latest is not None and latest.kind == EventKind.STATE_CHANGED
    assert "customer asked to come back" in latest.message and support_user.username in latest.message


@pytest.mark.django_db(transaction=True)
def test_a_template_test_send_goes_to_the_staff_member_with_stand_in_links(
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    support_user: Any,
    queued_tasks: list[tuple[str, Any]],
) -> None:
    from carts import tasks

    cart = _cart(1, store="Test Store")
    template_test_send(template=default_template, cart=cart, to_email="staff@shop.example", by=support_user)
    # Queued for a worker (the web request talks no SMTP); the worker's part sends it.
    assert smtp_server.mailbox.list() == []
    [(_name, args)] = [q for q in queued_tasks if q[0] == tasks.template_test_send_task.name]
    assert tasks.template_test_send_task(*args) == "sent"
    message = smtp_server.mailbox.list()[0]
    assert message.to == ["staff@shop.example"]
    assert message.subject.startswith("[Test] ") and "Test Store" in message.subject
    assert "https://deck.example.com/r/u/preview/" in message.text
    assert message.header("List-Unsubscribe") == ""
    assert not RecoverySend.objects.exists() and not CartEvent.objects.exists()


@pytest.mark.django_db
def test_bulk_send_is_finished_when_no_send_is_left(support_user: Any) -> None:
    _cart(1)
    bulk = carts_bulk_send(carts_qs=Cart.objects.all(), by=support_user, filters={})
    assert bulk.finished_at is None
    send = RecoverySend.objects.get(bulk=bulk)
    RecoverySend.objects.filter(pk=send.pk).update(status=SendStatus.SENT, sent_at=timezone.now())
    sending._finish_bulk(send)
    assert BulkSend.objects.get(pk=bulk.pk).finished_at is not None


@pytest.mark.django_db
def test_a_broker_that_cannot_take_the_task_loses_no_send(
    support_user: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from kombu.exceptions import OperationalError

    from carts.services import cart_send_request

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("broker down")

    monkeypatch.setattr(tasks.recovery_send_task, "delay", refuse)
    RecoveryTemplate.objects.get_or_create(
        is_default=True, defaults={"name": "d", "subject": "s", "html_body": "h", "text_body": "t"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        send = cart_send_request(cart=_cart(1), by=support_user)
    assert send.status == SendStatus.QUEUED
    # Nothing progresses, so the sweep queues it again once CARTS_SEND_REQUEUE_S has passed.
    settings.CARTS_SEND_REQUEUE_S = 0
    ids, _uncertain = sending.recovery_sends_resume(now=timezone.now() + timezone.timedelta(seconds=1))
    assert ids == [send.pk]


@pytest.mark.django_db
def test_an_unsubscribe_after_the_guards_ran_still_stops_the_send(
    support_user: Any, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carts.services import cart_send_request

    RecoveryTemplate.objects.get_or_create(
        is_default=True, defaults={"name": "d", "subject": "s", "html_body": "h", "text_body": "t"}
    )
    send = cart_send_request(cart=_cart(1), by=support_user)
    # The guards ran and passed; the customer unsubscribes before the send is claimed.
    monkeypatch.setattr(sending, "refresh_carts_from_hubspot", lambda carts: {c.pk: c for c in carts})

    def passed_then_unsubscribed(send: RecoverySend, cart: Cart) -> str:
        suppression_add(email=cart.customer_email, reason="", source="unsubscribe")
        return ""

    monkeypatch.setattr(sending, "guard_reason", passed_then_unsubscribed)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SKIPPED
    send.refresh_from_db()
    assert send.reason == UNSUBSCRIBED
    assert smtp_server.mailbox.count() == 0
