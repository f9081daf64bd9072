"""The carts' reads: which carts are abandoned, each cart's recovery state, search, and why a cart is not
emailable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from carts.models import (
    ALREADY_ORDERED,
    COMPLETED,
    NO_CONSENT,
    NO_EMAIL,
    NO_LINK,
    UNSUBSCRIBED,
    Cart,
    EmailState,
    Suppression,
    email_hash,
)
from hubspot_sync.models import Contact

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _cart(hubspot_id: str, **fields: Any) -> Cart:
    values: dict[str, Any] = {
        "hubspot_id": hubspot_id,
        "cart_url": f"https://shop.example.com/cart/{hubspot_id}",
        "customer_email": f"c{hubspot_id}@customer.example",
        "contact_hubspot_id": f"9{hubspot_id}",
        "remote_updated_at": NOW - timedelta(hours=3),
        "status": "abandoned",
    }
    values.update(fields)
    return Cart.objects.create(**values)


def test_abandoned_is_live_unordered_not_completed_and_quiet_long_enough(settings: Any) -> None:
    settings.CARTS_ABANDONED_AFTER_MIN = 60
    _cart("1")
    _cart("2", archived=True)
    _cart("3", order_hubspot_id="5001")
    _cart("4", status="checkout_completed")
    _cart("5", remote_updated_at=NOW - timedelta(minutes=30))
    _cart("6", status="")
    assert sorted(Cart.objects.abandoned(now=NOW).values_list("hubspot_id", flat=True)) == ["1", "6"]
    settings.CARTS_ABANDONED_AFTER_MIN = 20
    assert "5" in Cart.objects.abandoned(now=NOW).values_list("hubspot_id", flat=True)
    settings.CARTS_COMPLETED_STATUSES = ["abandoned"]
    assert list(Cart.objects.abandoned(now=NOW).values_list("hubspot_id", flat=True)) != []
    assert "1" not in Cart.objects.abandoned(now=NOW).values_list("hubspot_id", flat=True)


def test_each_recovery_state_and_its_precedence() -> None:
    _cart("1")  # new
    _cart("2", email_state=EmailState.EMAILED)
    _cart("3", email_state=EmailState.CLICKED)
    _cart("4", email_state=EmailState.CLICKED, order_hubspot_id="5001")  # recovered beats everything
    _cart("5", email_state=EmailState.EMAILED, customer_email="Gone@Customer.example")  # unsubscribed
    _cart("6", cart_url="")  # not emailable
    _cart("7", order_hubspot_id="5002")  # ordered without an email: not emailable
    Suppression.objects.create(
        email="gone@customer.example", email_hash=email_hash("gone@customer.example"), source="staff"
    )
    states = dict(Cart.objects.with_recovery_state().values_list("hubspot_id", "recovery_state"))
    assert states == {
        "1": "new",
        "2": "emailed",
        "3": "clicked",
        "4": "recovered",
        "5": "unsubscribed",
        "6": "not_emailable",
        "7": "not_emailable",
    }


def test_the_marketing_policy_reads_the_contacts_property(settings: Any) -> None:
    settings.CARTS_CONSENT_POLICY = "marketing"
    settings.CARTS_CONSENT_PROPERTY = "hs_marketable_status"
    yes = _cart("1")
    no = _cart("2")
    Contact.objects.create(hubspot_id="91", properties={"hs_marketable_status": "true"})
    Contact.objects.create(hubspot_id="92", properties={"hs_marketable_status": "false"})
    states = dict(Cart.objects.with_recovery_state().values_list("hubspot_id", "recovery_state"))
    assert states == {"1": "new", "2": "not_emailable"}
    assert yes.emailable_reason() == "" and no.emailable_reason() == NO_CONSENT
    settings.CARTS_CONSENT_POLICY = "anyone"
    assert no.emailable_reason() == ""


def test_search_by_email_name_and_cart_id() -> None:
    _cart("11", customer_email="ada@customer.example", customer_name="Ada Lovelace", external_id="c500123")
    _cart("12", customer_email="bob@customer.example", customer_name="Bob Stone", name="Cart #7")
    found = lambda q: sorted(Cart.objects.search(q).values_list("hubspot_id", flat=True))  # noqa: E731
    assert found("ADA@customer") == ["11"]
    assert found("lovelace") == ["11"]
    assert found("12") == ["12"]
    assert found("C500123") == ["11"]
    assert found("cart #7") == ["12"]
    assert found("  ") == ["11", "12"]
    assert found("nobody\x00") == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"order_hubspot_id": "5001"}, ALREADY_ORDERED),
        ({"status": "completed"}, COMPLETED),
        ({"cart_url": ""}, NO_LINK),
        ({"cart_url": "javascript:alert(1)"}, NO_LINK),
        ({"cart_url": "https://"}, NO_LINK),
        ({"customer_email": ""}, NO_EMAIL),
        ({"customer_email": "not an address"}, NO_EMAIL),
        ({"customer_email": "Gone@customer.example"}, UNSUBSCRIBED),
        ({}, ""),
    ],
)
def test_why_a_cart_is_not_emailable(fields: dict[str, str], reason: str) -> None:
    Suppression.objects.create(
        email="gone@customer.example", email_hash=email_hash("gone@customer.example"), source="staff"
    )
    cart = _cart("1", **fields)
    assert cart.emailable_reason() == reason
    assert cart.is_emailable is (reason == "")
