"""A recovery email end to end: requested, checked against HubSpot (the sandbox over HTTP), sent through a
real SMTP server, and received with its headers, both parts, merge fields and signed links."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from carts import links, sending
from carts.models import Cart, CartEvent, EmailState, EventKind, RecoverySend, RecoveryTemplate, SendStatus
from carts.services import cart_send_request
from hubspot_sync.models import LineItem
from tests.carts.conftest import Portal, SmtpServer, emailable_cart

pytestmark = pytest.mark.django_db(transaction=True)


def _links(text: str) -> list[str]:
    return re.findall(r"https?://[^\s<>\"']+", text)


def test_a_recovery_email_arrives_with_its_headers_parts_fields_and_links(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    cart = emailable_cart(portal, "ada.lovelace@customer.example", first_name="Ada")
    items = list(LineItem.objects.filter(hubspot_id__in=_item_ids(cart)).order_by("hubspot_id"))
    assert items, "the seeded cart has line items"

    send = cart_send_request(cart=cart, by=support_user)
    assert send.status == SendStatus.QUEUED
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT

    messages = smtp_server.mailbox.list()
    assert len(messages) == 1
    message = messages[0]
    send.refresh_from_db()
    # Envelope and headers.
    assert message.to == ["ada.lovelace@customer.example"]
    assert message.header("To") == "ada.lovelace@customer.example"
    assert message.header("From") == "Shop Team <team@shop.example>"
    assert message.subject == f"Ada, your cart at {cart.store} is waiting"
    assert message.header("Message-ID") == send.message_id and send.message_id.endswith("@shop.example>")
    header = message.header("List-Unsubscribe")
    assert header.startswith("<https://deck.example.com/r/u/") and header.endswith("/>")
    unsubscribe = header[1:-1]
    assert links.unsign(urlsplit(unsubscribe).path.split("/")[3], links.UNSUBSCRIBE_SALT) == send.token
    assert message.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    # Both parts, with the merge fields.
    assert message.text and message.html
    for part in (message.text, message.html):
        assert "Ada" in part
        assert f"{cart.total.quantize(Decimal('0.01'))}" in part if cart.total is not None else True
        assert cart.currency in part
        for item in items:
            assert item.name.replace("&", "&amp;") in part or item.name in part
            assert f"{item.price.quantize(Decimal('0.01'))}" in part if item.price is not None else True
    # The tracked link goes through our signed redirect to the cart; the unsubscribe link is signed too.
    (click,) = [url for url in _links(message.text) if "/r/c/" in url]
    assert f'href="{click}"' in message.html
    assert unsubscribe in message.text and f'href="{unsubscribe}"' in message.html
    assert cart.cart_url not in message.text + message.html, "the raw recovery link is never in the email"
    for url in _links(message.text):
        assert urlsplit(url).netloc == "deck.example.com"
    assert links.unsign(urlsplit(click).path.split("/")[3], links.CLICK_SALT) == send.token
    # The send, the cart and its log.
    assert send.status == SendStatus.SENT and send.sent_at and send.sending_at
    cart.refresh_from_db()
    assert cart.email_state == EmailState.EMAILED and cart.last_email_at == send.sent_at
    kinds = list(CartEvent.objects.filter(cart=cart).order_by("pk").values_list("kind", flat=True))
    assert kinds == [EventKind.SEND_REQUESTED, EventKind.SENT, EventKind.STATE_CHANGED]
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "emailed"


def test_hubspot_text_is_escaped_in_the_html_part_and_plain_in_the_text_part(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    cart = emailable_cart(portal, "grace@customer.example", first_name='<b>Grace</b> & "Co"')
    send = cart_send_request(cart=cart, by=support_user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    message = smtp_server.mailbox.list()[0]
    assert "&lt;b&gt;Grace&lt;/b&gt; &amp; &quot;Co&quot;" in message.html
    assert "<b>Grace</b>" not in message.html
    assert '<b>Grace</b> & "Co"' in message.text


def test_running_the_task_twice_sends_once(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    cart = emailable_cart(portal, "twice@customer.example")
    send = cart_send_request(cart=cart, by=support_user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert smtp_server.mailbox.count() == 1


def _item_ids(cart: Cart) -> list[str]:
    from hubspot_sync.models import Association

    return list(
        Association.objects.from_record("carts", cart.hubspot_id, "line_items").values_list(
            "to_id", flat=True
        )
    )


def test_an_emailed_cart_that_becomes_an_order_is_recovered_and_logged_once(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    from hubspot_sync.sync import refresh_records

    cart = emailable_cart(portal, "recovered@customer.example")
    send = cart_send_request(cart=cart, by=support_user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    order_id = portal.any_order_id()
    portal.associate("carts", cart.hubspot_id, "orders", order_id)

    refresh_records("carts", [cart.hubspot_id])
    refresh_records("carts", [cart.hubspot_id])

    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "recovered"
    recovered = CartEvent.objects.filter(
        cart=cart, kind=EventKind.STATE_CHANGED, message__startswith="Recovered"
    )
    assert [e.message for e in recovered] == [
        f"Recovered: the cart became order {order_id} after a recovery email"
    ]


def test_a_batch_of_sends_reads_hubspot_once_for_all_its_carts(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    from carts import tasks
    from hubspot_sync import client

    carts = [emailable_cart(portal, f"batch{n}@customer.example") for n in range(4)]
    sends = [cart_send_request(cart=cart, by=support_user) for cart in carts]
    client.reset_stats()

    sent = tasks.recovery_send_batch_task.apply(args=[[s.pk for s in sends]]).get()

    assert sent == 4
    assert sorted(m.to[0] for m in smtp_server.mailbox.list()) == [
        f"batch{n}@customer.example" for n in range(4)
    ]
    # Carts, contacts and line items: one batch read each, plus the carts' association reads, whatever the
    # batch's size.
    calls = client.stats().calls_by_operation
    assert calls.get("batch_read") == 3, calls
    assert client.stats().calls <= 8, calls


def test_in_a_batch_a_deferred_send_continues_alone_and_a_dead_server_defers_the_rest(
    portal: Portal,
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    support_user: Any,
    queued_tasks: list[tuple[str, Any]],
) -> None:
    from carts import tasks

    deferred_cart = emailable_cart(portal, "reject-4xx@customer.example")
    fine_cart = emailable_cart(portal, "fine@customer.example")
    deferred, fine = (cart_send_request(cart=c, by=support_user) for c in (deferred_cart, fine_cart))
    queued_tasks.clear()

    assert tasks.recovery_send_batch_task.apply(args=[[deferred.pk, fine.pk]]).get() == 1

    assert [m.to for m in smtp_server.mailbox.list()] == [["fine@customer.example"]]
    assert queued_tasks == [(tasks.recovery_send_task.name, (deferred.pk,))]
    deferred.refresh_from_db()
    assert deferred.status == SendStatus.QUEUED and deferred.queued_at is not None

    # With the mail server gone, the first send finds it down and the others wait without trying.
    later = [
        cart_send_request(cart=emailable_cart(portal, f"later{n}@customer.example"), by=support_user)
        for n in range(3)
    ]
    smtp_server.server.stop()
    queued_tasks.clear()
    assert tasks.recovery_send_batch_task.apply(args=[[s.pk for s in later]]).get() == 0
    assert sorted(args[0] for _name, args in queued_tasks) == sorted(s.pk for s in later)
    assert set(
        RecoverySend.objects.filter(pk__in=[s.pk for s in later]).values_list("status", flat=True)
    ) == {SendStatus.QUEUED}
    assert RecoverySend.objects.filter(pk__in=[s.pk for s in later], attempts=1).count() == 1
    smtp_server.restart()
