"""A cart's last change by its customer (``Cart.customer_changed_at``), which "abandoned" counts from: our own
write-back of the recovery properties moves HubSpot's last-modified date but not it; a real change does."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from carts import sending, writeback
from carts.customer_change import customer_digest
from carts.models import Cart, RecoveryTemplate, SendStatus
from carts.services import cart_send_request
from hubspot_sync import push, sync
from hubspot_sync.models import SyncKind, SyncStatus
from tests.carts.conftest import Portal, SmtpServer, emailable_cart

_MIGRATION = importlib.import_module("carts.migrations.0011_cart_customer_changed_at")


def _abandoned_at(now: Any) -> set[str]:
    return set(Cart.objects.abandoned(now=now).values_list("hubspot_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_our_write_back_leaves_an_emailed_cart_abandoned_and_a_real_change_resets_it(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate
) -> None:
    cart = emailable_cart(portal, "still.abandoned@example.com", "Still")
    changed = cart.customer_changed_at
    assert changed is not None and changed == cart.remote_updated_at
    # An hour after the customer's last change the cart counts as abandoned.
    an_hour_on = changed + timedelta(minutes=60)
    assert cart.hubspot_id in _abandoned_at(an_hour_on)

    send = cart_send_request(cart=cart, step=1, by=None)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert writeback.recovery_writeback() == 1
    push.push_outbox()

    # The write-back reached HubSpot and came back with a later last-modified date, by each way of reading.
    sync.refresh_records("carts", [cart.hubspot_id])
    run = sync.run_sync(SyncKind.INCREMENTAL, manual=True)
    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    portal.sync()  # a full run: the whole-table pass
    cart.refresh_from_db()
    assert cart.prop(writeback.STATE) == "emailed"
    assert cart.remote_updated_at is not None and cart.remote_updated_at > changed
    assert cart.customer_changed_at == changed
    assert cart.hubspot_id in _abandoned_at(an_hour_on)

    # The customer changes the cart (an item added: a new total): the cart is no longer abandoned an hour
    # after the old change, and is again an hour after the new one.
    portal.patch_cart(cart.hubspot_id, {"hs_total_price": "123.45"})
    sync.refresh_records("carts", [cart.hubspot_id])
    cart.refresh_from_db()
    assert cart.total == Decimal("123.45")
    assert cart.customer_changed_at is not None and cart.customer_changed_at > changed
    assert cart.customer_changed_at == cart.remote_updated_at
    assert cart.hubspot_id not in _abandoned_at(an_hour_on)
    assert cart.hubspot_id in _abandoned_at(cart.customer_changed_at + timedelta(minutes=60))


def test_the_digest_leaves_out_our_properties_hubspots_bookkeeping_and_empty_values() -> None:
    base = {"hs_cart_name": "Cart", "hs_total_price": "10.00", "hs_lastmodifieddate": "2026-01-01T00:00:00Z"}
    same = [
        {**base, "hs_lastmodifieddate": "2026-02-02T00:00:00Z", "hs_updated_by_user_id": "7"},
        {**base, writeback.STATE: "emailed", writeback.LAST_EMAIL_AT: "2026-02-02T00:00:00.000Z"},
        {**base, "hs_new_property": None, "hs_other_new": ""},
        dict(reversed(list(base.items()))),
    ]
    for properties in same:
        assert customer_digest(properties) == customer_digest(base)
    for other in ({**base, "hs_total_price": "12.00"}, {**base, "hs_cart_url": "https://shop.example/c"}):
        assert customer_digest(other) != customer_digest(base)


@pytest.mark.django_db
def test_the_migration_fills_the_moment_from_the_current_last_change() -> None:
    moment = timezone.now() - timedelta(days=2)
    properties = {"hs_cart_name": "Old cart", writeback.STATE: "emailed"}
    Cart.objects.create(hubspot_id="880001", remote_updated_at=moment, properties=properties)
    Cart.objects.create(hubspot_id="880002", remote_updated_at=None)
    Cart.objects.update(customer_changed_at=None, customer_digest=None, customer_changed_digest=None)

    _MIGRATION.fill(apps, None)

    first = Cart.objects.get(hubspot_id="880001")
    assert first.customer_changed_at == moment
    assert first.customer_digest == first.customer_changed_digest == customer_digest(properties)
    assert Cart.objects.get(hubspot_id="880002").customer_changed_at is None
    # A new cart saved here counts from its last change too.
    assert Cart.objects.create(hubspot_id="880003", remote_updated_at=moment).customer_changed_at == moment
