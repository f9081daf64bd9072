"""The carts' stored recovery state (``Cart.recovery_state``) equals the state worked out from what it
depends on after each kind of change: a send, a click, an unsubscribe, a suppression added or removed, a sync
of the cart or of its contact (the sandbox over HTTP), an order arriving, and a change of the
consent policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from carts import links, sending
from carts.models import Cart, RecoveryTemplate, SendStatus, Suppression, recovery_state_expression
from carts.services import cart_send_request, click, suppression_add, suppression_remove, unsubscribe
from hubspot_sync.models import Contact
from hubspot_sync.sync import refresh_records
from tests.carts.conftest import Portal, SmtpServer, emailable_cart


def _exact() -> None:
    """No cart's stored state differs from its computed one."""
    wrong = Cart.objects.alias(computed=recovery_state_expression()).exclude(recovery_state=F("computed"))
    assert list(wrong.values_list("hubspot_id", "recovery_state")) == []


def _state(cart: Cart) -> str:
    stored = Cart.objects.values_list("recovery_state", flat=True).get(pk=cart.pk)
    _exact()
    return str(stored)


def _cart(hubspot_id: str, **fields: Any) -> Cart:
    values: dict[str, Any] = {
        "hubspot_id": hubspot_id,
        "cart_url": f"https://shop.example.com/cart/{hubspot_id}",
        "customer_email": f"c{hubspot_id}@customer.example",
        "contact_hubspot_id": f"9{hubspot_id}",
        "remote_updated_at": timezone.now() - timedelta(hours=3),
        "status": "abandoned",
    }
    values.update(fields)
    return Cart.objects.create(**values)


@pytest.mark.django_db(transaction=True)
def test_send_click_unsubscribe_and_suppression_removal_keep_the_stored_state(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    cart = emailable_cart(portal, "state.steps@customer.example")
    assert _state(cart) == "new"

    send = cart_send_request(cart=cart, by=support_user)
    assert _state(cart) == "new"  # queued: nothing went yet
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert _state(cart) == "emailed"

    click(links.sign(send.token, links.CLICK_SALT))
    assert _state(cart) == "clicked"

    unsubscribe(links.sign(send.token, links.UNSUBSCRIBE_SALT))
    assert _state(cart) == "unsubscribed"

    suppression = Suppression.objects.get(email="state.steps@customer.example")
    suppression_remove(suppression=suppression, by=support_user, reason="asked to hear again")
    assert _state(cart) == "clicked"


@pytest.mark.django_db
def test_a_suppression_added_or_removed_changes_every_cart_with_that_address(support_user: Any) -> None:
    first = _cart("1", customer_email="Shared@Customer.example")
    second = _cart("2", customer_email="shared@customer.example", email_state="emailed")
    other = _cart("3")
    assert (_state(first), _state(second), _state(other)) == ("new", "emailed", "new")

    suppression = suppression_add(
        email="SHARED@customer.example", reason="asked", source="staff", by=support_user
    )
    assert (_state(first), _state(second), _state(other)) == ("unsubscribed", "unsubscribed", "new")

    suppression_remove(suppression=suppression, by=support_user)
    assert (_state(first), _state(second), _state(other)) == ("new", "emailed", "new")

    # Written directly (not through the services), the suppression list still moves the state.
    direct = Suppression.objects.create(email="c3@customer.example", email_hash="x" * 64, source="staff")
    assert _state(other) == "unsubscribed"
    direct.delete()
    assert _state(other) == "new"


@pytest.mark.django_db
def test_the_consent_policy_setting_and_a_contact_saved_recompute_the_state(settings: Any) -> None:
    cart = _cart("1")
    assert _state(cart) == "new"
    settings.CARTS_CONSENT_POLICY = "marketing"
    settings.CARTS_CONSENT_PROPERTY = "hs_marketable_status"
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "not_emailable"
    _exact()
    Contact.objects.create(hubspot_id="91", properties={"hs_marketable_status": "true"})
    assert _state(cart) == "new"
    settings.CARTS_CONSENT_POLICY = "anyone"
    Contact.objects.filter(hubspot_id="91").update(properties={})
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "new"
    settings.CARTS_COMPLETED_STATUSES = ["abandoned"]
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "not_emailable"
    _exact()


@pytest.mark.django_db
def test_the_command_recomputes_every_cart() -> None:
    cart = _cart("1", cart_url="")
    Cart.objects.filter(pk=cart.pk).update(recovery_state="clicked")  # a write that bypassed the services
    call_command("carts_recovery_state")
    assert _state(cart) == "not_emailable"


@pytest.mark.django_db(transaction=True)
def test_a_sync_of_the_cart_or_of_its_contact_keeps_the_stored_state(
    portal: Portal, support_user: Any
) -> None:
    cart = emailable_cart(portal, "state.sync@customer.example")
    assert _state(cart) == "new"

    portal.patch_cart(cart.hubspot_id, {"hs_cart_url": ""})
    refresh_records("carts", [cart.hubspot_id])
    assert _state(cart) == "not_emailable"
    portal.patch_cart(
        cart.hubspot_id, {"hs_cart_url": f"https://shop.example.com/cart/recover/{cart.hubspot_id}"}
    )
    refresh_records("carts", [cart.hubspot_id])
    assert _state(cart) == "new"

    # The contact's address changes in HubSpot to one on the suppression list: the cart is unsubscribed.
    suppression_add(email="blocked@customer.example", reason="bounced", source="staff", by=support_user)
    cart.refresh_from_db()
    portal.patch_contact(cart.contact_hubspot_id, {"email": "blocked@customer.example"})
    refresh_records("contacts", [cart.contact_hubspot_id])
    assert Cart.objects.get(pk=cart.pk).customer_email == "blocked@customer.example"
    assert _state(cart) == "unsubscribed"
    portal.patch_contact(cart.contact_hubspot_id, {"email": "state.sync@customer.example"})
    refresh_records("contacts", [cart.contact_hubspot_id])
    assert _state(cart) == "new"


@pytest.mark.django_db(transaction=True)
def test_an_order_arriving_makes_an_emailed_cart_recovered(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> None:
    cart = emailable_cart(portal, "state.order@customer.example")
    send = cart_send_request(cart=cart, by=support_user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert _state(cart) == "emailed"

    order_id = portal.any_order_id()
    portal.associate("carts", cart.hubspot_id, "orders", order_id)
    refresh_records("orders", [order_id])
    assert Cart.objects.get(pk=cart.pk).order_hubspot_id == order_id
    assert _state(cart) == "recovered"

    # A full sync afterwards leaves every stored state exact.
    portal.sync()
    assert _state(cart) == "recovered"
