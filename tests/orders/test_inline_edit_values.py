"""Inline edits through their URL (the drawer's save, /boards/orders/<id>/properties/<name>/save/): a time
with an offset is stored as that moment in UTC, and a year-1 date, an unbounded number or a NUL byte is
refused with a message in the row, with nothing written to the order or the outbox (issue 11: each was
stored or sent as typed, and the NUL broke PostgreSQL's jsonb)."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.test import Client

from hubspot_sync.models import Change
from orders.models import Order
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}

BEFORE = {
    "promised_delivery": "2024-04-01T09:00:00.000Z",
    "hs_order_discount": "5",
    "hs_shipping_tracking_number": "1Z000",
}


@pytest.fixture
def order() -> Order:
    pipeline = factories.pipeline_with_stages()
    order = factories.OrderFactory(stage=pipeline.stages.get(label="Open"))
    order.properties.update(BEFORE)
    order.save()
    factories.order_property("promised_delivery", "Promised delivery", "datetime", "date")
    factories.order_property("hs_order_discount", "Discount", "number", "number")
    factories.order_property("hs_shipping_tracking_number", "Tracking number", "string", "text")
    return order


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(factories.support_user())
    return client


def save(staff: Client, order: Order, name: str, value: str) -> Any:
    return staff.post(
        f"/boards/orders/{order.hubspot_id}/properties/{name}/save/", {"value": value}, headers=HTMX
    )


def test_a_time_with_an_offset_is_stored_and_sent_as_that_moment_in_utc(staff: Client, order: Order) -> None:
    response = save(staff, order, "promised_delivery", "2024-05-01T10:00+05:00")

    order.refresh_from_db()
    assert order.properties["promised_delivery"] == "2024-05-01T05:00:00.000Z"
    change = Change.objects.get()
    assert change.new == {"promised_delivery": "2024-05-01T05:00:00.000Z"}
    assert change.base == {"promised_delivery": BEFORE["promised_delivery"]}
    assert response.status_code == 200
    assert "2024-05-01 05:00 UTC" in unescape(response.content.decode())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("promised_delivery", "0001-01-01T00:00", "Promised delivery takes a date between 1900 and 2200."),
        (
            "promised_delivery",
            "0001-01-01T03:00+05:00",
            "Promised delivery takes a date between 1900 and 2200.",
        ),
        ("hs_order_discount", "1E+999999", "Discount is too large"),
        ("hs_shipping_tracking_number", "1Z\x00999", "Tracking number contains a control character"),
    ],
    ids=["year-1", "year-1-with-offset", "unbounded-number", "nul-byte"],
)
def test_a_value_out_of_bounds_is_refused_with_a_message_and_nothing_is_stored(
    staff: Client, order: Order, name: str, value: str, message: str
) -> None:
    response = save(staff, order, name, value)

    assert response.status_code == 200
    html = unescape(response.content.decode())
    # The row again, its editor open, saying why.
    assert f'id="property-{name}"' in html and 'role="alert">' + message in html
    order.refresh_from_db()
    assert {key: order.properties.get(key) for key in BEFORE} == BEFORE
    assert not Change.objects.exists()
