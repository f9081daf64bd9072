"""Data care: retention of send logs, clicks and suppression reasons, and a contact's privacy request (an
export of their recovery data, and its erasure that keeps the address suppressed)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carts.models import (
    Cart,
    CartEvent,
    EmailState,
    EventKind,
    RecoveredBy,
    Recovery,
    RecoverySend,
    SendStatus,
    Suppression,
    SuppressionSource,
    email_hash,
)
from carts.privacy import contact_erase, contact_export, retention_apply, retention_task
from carts.services import cart_send_request
from tests import factories

pytestmark = pytest.mark.django_db
EMAIL = "Private.Person@Customer.example"
ADDRESS = EMAIL.lower()


def make_cart(hubspot_id: str, email: str) -> Cart:
    return Cart.objects.create(
        hubspot_id=hubspot_id,
        name=f"Cart {hubspot_id}",
        status="abandoned",
        cart_url=f"https://shop.example.com/c/{hubspot_id}",
        total=Decimal("25"),
        currency="EUR",
        customer_email=email,
        customer_name="Private Person",
        email_state=EmailState.CLICKED,
        remote_updated_at=timezone.now() - timedelta(days=3),
    )


def make_send(cart: Cart, *, age_days: int, step: int = 1) -> RecoverySend:
    when = timezone.now() - timedelta(days=age_days)
    send = RecoverySend.objects.create(
        cart=cart,
        step=step,
        to_email=cart.customer_email.lower(),
        contact_hubspot_id="55",
        status=SendStatus.SENT,
        token=f"p{cart.hubspot_id}-{step}",
        sending_at=when,
        sent_at=when,
        clicked_at=when + timedelta(hours=1),
        reason="",
        message_id=f"<m{cart.hubspot_id}{step}@deck>",
    )
    RecoverySend.objects.filter(pk=send.pk).update(created_at=when)
    CartEvent.objects.create(
        cart=cart, kind=EventKind.SENT, message=f"Sent to {send.to_email}", send=send, at=when
    )
    return send


@pytest.fixture
def person() -> dict[str, Any]:
    mine = make_cart("61001", EMAIL)
    other = make_cart("61002", "someone.else@customer.example")
    send = make_send(mine, age_days=2)
    make_send(other, age_days=2)
    Recovery.objects.create(
        cart=mine,
        send=send,
        order_hubspot_id="9100",
        amount=Decimal("25"),
        currency="EUR",
        recovered_at=timezone.now(),
        by=RecoveredBy.CLICK,
    )
    Suppression.objects.create(
        email=ADDRESS, email_hash=email_hash(ADDRESS), reason="Asked by phone", source=SuppressionSource.STAFF
    )
    return {"cart": mine, "other": other, "send": send}


def test_retention_deletes_old_sends_and_logs_and_blanks_old_suppression_reasons(settings: Any) -> None:
    settings.CARTS_RETENTION_DAYS = 30
    cart = make_cart("62001", "old@customer.example")
    old, recent = make_send(cart, age_days=40), make_send(cart, age_days=10, step=2)
    Recovery.objects.create(
        cart=cart, send=old, amount=Decimal(1), currency="EUR", recovered_at=timezone.now(), by="send"
    )
    aged = Suppression.objects.create(
        email="old@customer.example", email_hash=email_hash("old@customer.example"), reason="Bounced: 550"
    )
    Suppression.objects.filter(pk=aged.pk).update(created_at=timezone.now() - timedelta(days=31))
    fresh = Suppression.objects.create(
        email="new@customer.example", email_hash=email_hash("new@customer.example"), reason="Unsubscribed"
    )

    done = retention_task.apply().get()

    assert done == {"events": 1, "sends": 1, "recoveries": 1, "reasons": 1}
    assert list(RecoverySend.objects.values_list("pk", flat=True)) == [recent.pk]
    assert list(CartEvent.objects.values_list("send_id", flat=True)) == [recent.pk]
    aged.refresh_from_db()
    fresh.refresh_from_db()
    assert (aged.reason, aged.email) == ("", "old@customer.example")  # the entry stays, still suppressing
    assert Suppression.objects.is_suppressed("old@customer.example")
    assert fresh.reason == "Unsubscribed"
    # Run again: nothing more to do.
    assert retention_apply() == {"events": 0, "sends": 0, "recoveries": 0, "reasons": 0}


def test_the_export_holds_one_contacts_data_only(person: dict[str, Any]) -> None:
    data = contact_export(EMAIL)

    assert data["email"] == ADDRESS
    assert [c["hubspot_id"] for c in data["carts"]] == ["61001"]
    assert [(e["cart"], e["to_email"], e["status"]) for e in data["emails"]] == [("61001", ADDRESS, "sent")]
    assert data["emails"][0]["clicked_at"] is not None
    assert data["recoveries"][0]["amount"] == "25.0000"
    assert [line["message"] for line in data["log"]] == [f"Sent to {ADDRESS}"]
    assert data["suppression"]["reason"] == "Asked by phone"
    assert "someone.else" not in json.dumps(data)


def test_erasure_removes_the_address_and_keeps_it_suppressed(
    person: dict[str, Any], default_template: Any, support_user: Any
) -> None:
    contact_erase(EMAIL)

    send = RecoverySend.objects.get(pk=person["send"].pk)
    assert (send.to_email, send.contact_hubspot_id, send.message_id) == ("", "", "")
    assert send.status == SendStatus.SENT  # the dashboard's counts stand
    assert not CartEvent.objects.filter(cart=person["cart"]).exists()
    assert CartEvent.objects.filter(cart=person["other"]).count() == 1
    cart = Cart.objects.get(pk=person["cart"].pk)
    assert (cart.customer_email, cart.customer_name) == ("", "")
    entry = Suppression.objects.get(email_hash=email_hash(ADDRESS))
    assert (entry.email, entry.reason) == (None, "")
    assert Suppression.objects.is_suppressed(EMAIL)
    left = contact_export(EMAIL)
    assert (left["carts"], left["emails"], left["recoveries"], left["log"]) == ([], [], [], [])

    # The address comes back with the next sync: it still gets no recovery email.
    Cart.objects.filter(pk=cart.pk).update(customer_email=ADDRESS)
    cart.refresh_from_db()
    again = cart_send_request(cart=cart, step=2, by=support_user)
    assert again.status == SendStatus.SKIPPED and "nsubscribed" in again.reason


def test_erasure_of_an_address_never_suppressed_adds_its_hash(person: dict[str, Any]) -> None:
    contact_erase("someone.else@customer.example")

    assert Suppression.objects.filter(
        email_hash=email_hash("someone.else@customer.example"), email=None
    ).exists()
    assert Suppression.objects.is_suppressed("someone.else@customer.example")


def test_the_privacy_page_exports_and_erases_with_confirmation(
    person: dict[str, Any], client: Client
) -> None:
    client.force_login(factories.pipeline_admin())
    assert client.get("/carts/privacy/").status_code == 200

    response = client.post("/carts/privacy/", {"action": "export", "email": EMAIL})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "no-store" in response["Cache-Control"]
    assert json.loads(response.content)["carts"][0]["hubspot_id"] == "61001"

    refused = client.post("/carts/privacy/", {"action": "erase", "email": EMAIL})
    assert refused.status_code == 400 and "confirm" in refused.content.decode().lower()
    assert RecoverySend.objects.filter(to_email=ADDRESS).exists()

    done = client.post("/carts/privacy/", {"action": "erase", "email": EMAIL, "confirm": "1"})
    assert done.status_code == 302
    assert not RecoverySend.objects.filter(to_email=ADDRESS).exists()
    assert Suppression.objects.is_suppressed(ADDRESS)

    for bad in ({"action": "erase", "email": "not-an-address"}, {"action": "drop", "email": EMAIL}, {}):
        assert client.post("/carts/privacy/", bad).status_code == 400


def test_the_privacy_page_is_for_pipeline_admins_and_needs_csrf(person: dict[str, Any]) -> None:
    support = Client()
    support.force_login(factories.support_user())
    assert support.get("/carts/privacy/").status_code == 403
    assert support.post("/carts/privacy/", {"action": "export", "email": EMAIL}).status_code == 403

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(factories.pipeline_admin())
    response = strict.post("/carts/privacy/", {"action": "erase", "email": EMAIL, "confirm": "1"})
    assert response.status_code == 403
    assert RecoverySend.objects.filter(to_email=ADDRESS).exists()
