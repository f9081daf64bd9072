"""The recovery state in HubSpot: the OrderDeck property group and its properties made in the sandbox by the
worker's task (once, idempotently), and each cart's values sent through the outbox after a send, a click and
an unsubscribe."""

from __future__ import annotations

from typing import Any

import pytest

from carts import links, sending, writeback
from carts.models import Cart, RecoveryTemplate, SendStatus, SequenceSettings
from carts.services import cart_send_request, click, unsubscribe
from hubspot_sync import push, sync
from hubspot_sync.models import Change, ChangeStatus
from tests.carts.conftest import Portal, SmtpServer, emailable_cart

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = (
    writeback.STATE,
    writeback.LAST_EMAIL_AT,
    writeback.LAST_STEP,
    writeback.CLICKED_AT,
    writeback.RECOVERED_AT,
)


def _remote(portal: Portal, cart: Cart) -> dict[str, Any]:
    response = portal.http.get(
        portal.url(f"/crm/v3/objects/carts/{cart.hubspot_id}"),
        params={"properties": ",".join(NAMES)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["properties"])


def _drain() -> None:
    assert writeback.recovery_writeback() >= 0
    push.push_outbox()


def test_the_properties_are_made_once_and_the_values_follow_send_click_and_unsubscribe(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate
) -> None:
    cart = emailable_cart(portal, "hubspot-sees@example.com", "Hub")
    send = cart_send_request(cart=cart, step=1, by=None)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert Cart.objects.get(pk=cart.pk).writeback_due

    _drain()

    group = portal.http.get(portal.url("/crm/v3/properties/carts/groups/orderdeck"), timeout=10)
    assert group.status_code == 200 and group.json()["label"] == "OrderDeck"
    listed = portal.http.get(portal.url("/crm/v3/properties/carts"), timeout=10).json()["results"]
    ours = {p["name"]: p for p in listed if p["name"].startswith("orderdeck_")}
    assert set(ours) == set(NAMES)
    assert {p["groupName"] for p in ours.values()} == {"orderdeck"}
    assert ours[writeback.STATE]["type"] == "enumeration"
    assert {o["value"] for o in ours[writeback.STATE]["options"]} == {
        "new",
        "emailed",
        "clicked",
        "recovered",
        "unsubscribed",
        "not_emailable",
    }
    assert ours[writeback.LAST_STEP]["type"] == "number"
    assert ours[writeback.LAST_EMAIL_AT]["type"] == "datetime"

    remote = _remote(portal, cart)
    assert remote[writeback.STATE] == "emailed"
    assert remote[writeback.LAST_STEP] == "1"
    assert remote[writeback.LAST_EMAIL_AT]
    assert not remote.get(writeback.CLICKED_AT)
    assert not Change.objects.filter(object_id=cart.hubspot_id).exclude(status=ChangeStatus.APPLIED).exists()

    send.refresh_from_db()
    click(links.sign(send.token, links.CLICK_SALT))
    _drain()
    remote = _remote(portal, cart)
    assert remote[writeback.STATE] == "clicked" and remote[writeback.CLICKED_AT]

    unsubscribe(links.sign(send.token, links.UNSUBSCRIBE_SALT))
    _drain()
    assert _remote(portal, cart)[writeback.STATE] == "unsubscribed"

    # The cart becomes an order in HubSpot: once synced, it is recovered there too.
    portal.associate("carts", cart.hubspot_id, "orders", portal.any_order_id())
    sync.refresh_records("carts", [cart.hubspot_id])
    fresh = Cart.objects.get(pk=cart.pk)
    assert fresh.order_hubspot_id and fresh.writeback_due, (fresh.order_hubspot_id, fresh.writeback_due)
    _drain()
    remote = _remote(portal, cart)
    changes = list(Change.objects.filter(object_id=cart.hubspot_id).values_list("status", "new", "error"))
    assert remote[writeback.STATE] == "recovered" and remote[writeback.RECOVERED_AT], changes
    assert not Cart.objects.filter(writeback_due=True).exists()


def test_making_the_properties_again_or_after_someone_else_is_harmless(portal: Portal) -> None:
    # Someone made the group (and one property) already: 409s and existing definitions are success.
    made = portal.http.post(
        portal.url("/crm/v3/properties/carts/groups"),
        json={"name": "orderdeck", "label": "OrderDeck"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    assert writeback.ensure_properties() is True
    assert writeback.ensure_properties(force=True) is True
    assert SequenceSettings.objects.get(pk=1).properties_ready_at is not None
    listed = portal.http.get(portal.url("/crm/v3/properties/carts"), timeout=10).json()["results"]
    assert sum(1 for p in listed if p["name"] == writeback.STATE) == 1
