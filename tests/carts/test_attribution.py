"""Attribution: a cart that gains an order (or a completed status) within CARTS_ATTRIBUTION_DAYS after a
recovery email was recovered by it; the revenue goes to the last email clicked, else the last sent."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from carts.attribution import attribute_carts, credited, recovery_recompute
from carts.models import Cart, EmailState, RecoveredBy, Recovery, RecoverySend, SendStatus
from carts.services import cart_send_request
from orders.models import Order
from tests.carts.conftest import Portal, SmtpServer, emailable_cart

T0 = datetime.fromisoformat("2026-11-02T10:00:00+00:00")
_ids = itertools.count(900_000)


def make_cart(
    *, order: str = "", status: str = "abandoned", total: str = "80.00", currency: str = "EUR"
) -> Cart:
    n = next(_ids)
    return Cart.objects.create(
        hubspot_id=str(n),
        name=f"Cart {n}",
        status=status,
        cart_url=f"https://shop.example.com/c/{n}",
        total=Decimal(total),
        currency=currency,
        store="Summit Supply",
        customer_email=f"buyer{n}@customer.example",
        order_hubspot_id=order,
        email_state=EmailState.EMAILED,
        remote_updated_at=T0 + timedelta(days=2),
    )


def make_send(cart: Cart, step: int, sent_at: datetime, clicked_at: datetime | None = None) -> RecoverySend:
    return RecoverySend.objects.create(
        cart=cart,
        step=step,
        to_email=cart.customer_email,
        status=SendStatus.SENT,
        token=f"t{next(_ids)}",
        sending_at=sent_at,
        sent_at=sent_at,
        clicked_at=clicked_at,
    )


def make_order(hubspot_id: str, created: datetime, total: str = "120.50", currency: str = "USD") -> Order:
    return Order.objects.create(
        hubspot_id=hubspot_id, remote_created_at=created, total=Decimal(total), currency=currency
    )


pytestmark = pytest.mark.django_db


def test_the_last_clicked_email_gets_the_order_even_when_a_later_one_was_sent() -> None:
    make_order("7001", T0 + timedelta(days=3))
    cart = make_cart(order="7001")
    first = make_send(cart, 1, T0, clicked_at=T0 + timedelta(hours=2))
    make_send(cart, 2, T0 + timedelta(days=1))

    assert attribute_carts([cart.hubspot_id]) == 1

    recovery = Recovery.objects.get(cart=cart)
    assert (recovery.send_id, recovery.by) == (first.pk, RecoveredBy.CLICK)
    assert (recovery.amount, recovery.currency) == (Decimal("120.50"), "USD")  # the order's, not the cart's
    assert recovery.recovered_at == T0 + timedelta(days=3)
    assert recovery.order_hubspot_id == "7001"


def test_without_a_click_the_last_email_sent_gets_it() -> None:
    make_order("7002", T0 + timedelta(days=3))
    cart = make_cart(order="7002")
    make_send(cart, 1, T0)
    second = make_send(cart, 2, T0 + timedelta(days=1))
    # Clicked only after the order: no credit for the click.
    make_send(cart, 3, T0 + timedelta(days=2), clicked_at=T0 + timedelta(days=4))

    attribute_carts([cart.hubspot_id])

    recovery = Recovery.objects.get(cart=cart)
    assert recovery.by == RecoveredBy.SEND
    assert recovery.send_id == RecoverySend.objects.get(cart=cart, step=3).pk
    assert second.pk != recovery.send_id


def test_window_edges_are_included_and_a_second_later_is_not(settings: Any) -> None:
    settings.CARTS_ATTRIBUTION_DAYS = 7
    make_order("7003", T0 + timedelta(days=7))
    make_order("7004", T0 + timedelta(days=7, seconds=1))
    make_order("7005", T0 - timedelta(seconds=1))  # ordered before the email
    at_edge, past_edge, before = make_cart(order="7003"), make_cart(order="7004"), make_cart(order="7005")
    for cart in (at_edge, past_edge, before):
        make_send(cart, 1, T0)

    attribute_carts([c.hubspot_id for c in (at_edge, past_edge, before)])

    assert list(Recovery.objects.values_list("cart_id", flat=True)) == [at_edge.pk]

    settings.CARTS_ATTRIBUTION_DAYS = 8
    assert recovery_recompute() == 2
    assert set(Recovery.objects.values_list("cart_id", flat=True)) == {at_edge.pk, past_edge.pk}


def test_a_completed_status_without_an_order_recovers_with_the_carts_total() -> None:
    cart = make_cart(status="completed", total="42.00", currency="GBP")
    make_send(cart, 1, T0 + timedelta(days=1))

    attribute_carts([cart.hubspot_id])

    recovery = Recovery.objects.get(cart=cart)
    assert (recovery.amount, recovery.currency, recovery.order_hubspot_id) == (Decimal("42.00"), "GBP", "")
    assert recovery.recovered_at == cart.remote_updated_at


def test_failed_or_skipped_sends_recover_nothing() -> None:
    make_order("7006", T0 + timedelta(days=1))
    cart = make_cart(order="7006")
    send = make_send(cart, 1, T0)
    RecoverySend.objects.filter(pk=send.pk).update(status=SendStatus.FAILED)

    assert attribute_carts([cart.hubspot_id]) == 0
    assert not Recovery.objects.exists()


def test_recompute_is_idempotent_and_follows_changes() -> None:
    make_order("7007", T0 + timedelta(days=2))
    cart = make_cart(order="7007")
    send = make_send(cart, 1, T0)

    assert recovery_recompute() == 1
    first = Recovery.objects.get()
    assert recovery_recompute() == 1
    again = Recovery.objects.get()
    assert (again.pk, again.send_id, again.amount) == (first.pk, send.pk, first.amount)

    # The order's total changes in HubSpot, then the order goes away: the recovery follows each time.
    Order.objects.filter(hubspot_id="7007").update(total=Decimal("99.00"))
    call_command("recovery_recompute")
    assert Recovery.objects.get().amount == Decimal("99.00")
    Cart.objects.filter(pk=cart.pk).update(order_hubspot_id="")
    assert attribute_carts([cart.hubspot_id]) == 0
    assert not Recovery.objects.exists()


def test_credited_picks_by_time_not_by_step() -> None:
    from carts.attribution import SentEmail

    sends = [SentEmail(1, T0, None), SentEmail(2, T0 + timedelta(hours=1), T0 + timedelta(hours=5))]
    sends.append(SentEmail(3, T0 + timedelta(hours=2), T0 + timedelta(hours=3)))
    assert credited(sends, T0 + timedelta(hours=6), timedelta(days=7)) == (2, "click")
    assert credited(sends, T0 + timedelta(hours=4), timedelta(days=7)) == (3, "click")
    assert credited(sends, T0 + timedelta(minutes=30), timedelta(days=7)) == (1, "send")
    assert credited(sends, T0 - timedelta(minutes=1), timedelta(days=7)) is None


# --- through the sandbox: an order arriving by sync is attributed when it arrives -------------------------


def _new_order(portal: Portal, total: str, currency: str) -> str:
    body = {
        "properties": {
            "hs_order_name": "Recovered order",
            "hs_total_price": total,
            "hs_currency_code": currency,
        }
    }
    response = portal.http.post(portal.url("/crm/v3/objects/orders"), json=body, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_an_order_arriving_through_sync_is_attributed_on_arrival(
    portal: Portal, smtp_server: SmtpServer, default_template: Any, support_user: Any
) -> None:
    from carts import sending
    from hubspot_sync.sync import refresh_records

    cart = emailable_cart(portal, "comes-back@customer.example")
    send = cart_send_request(cart=cart, by=support_user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert not Recovery.objects.exists()

    order_id = _new_order(portal, "321.40", "CAD")
    portal.associate("orders", order_id, "carts", cart.hubspot_id)
    # What a webhook about the new order does: read it (and its edges) from HubSpot.
    refresh_records("orders", [order_id])

    recovery = Recovery.objects.get(cart=cart)
    assert (recovery.order_hubspot_id, recovery.send_id, recovery.by) == (order_id, send.pk, "send")
    assert (recovery.amount, recovery.currency) == (Decimal("321.40"), "CAD")
    assert Cart.objects.get(pk=cart.pk).order_hubspot_id == order_id

    # A full sync later keeps the one recovery as it is.
    portal.sync()
    assert list(Recovery.objects.values_list("cart_id", "send_id", "amount")) == [
        (cart.pk, send.pk, Decimal("321.4000"))
    ]
