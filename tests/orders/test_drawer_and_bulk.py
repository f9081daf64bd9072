"""The order drawer (properties by definition, inline edits, line items, customer, timeline), bulk moves."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from typing import Any

import pytest

from hubspot_sync.models import Association, Change, Contact, LineItem
from orders.models import Order
from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def order() -> Order:
    pipeline = factories.pipeline_with_stages()
    order = factories.OrderFactory(stage=pipeline.stages.get(label="Open"), contact_hubspot_id="501")
    order.properties.update(
        {
            "hs_fulfillment_status": "Packing",
            "hs_object_id": order.hubspot_id,
            "hs_shipping_tracking_number": "",
        }
    )
    order.save()
    for name, label, type_, field_type, options, read_only in (
        (
            "hs_fulfillment_status",
            "Fulfillment status",
            "enumeration",
            "select",
            [{"label": "Packing", "value": "Packing"}, {"label": "Shipped", "value": "Shipped"}],
            False,
        ),
        ("hs_shipping_tracking_number", "Tracking number", "string", "text", [], False),
        ("hs_object_id", "Record ID", "number", "number", [], True),
        ("hs_order_discount", "Discount", "number", "number", [], False),
    ):
        factories.order_property(name, label, type_, field_type, options=options, read_only_value=read_only)
    Contact.objects.create(hubspot_id="501", email="kim@shop.example", first_name="Kim", last_name="Lee")
    for n, (qty, price) in enumerate(((2, "10.00"), (1, "5.50"))):
        LineItem.objects.create(
            hubspot_id=f"70{n}",
            name=f"Item {n}",
            quantity=qty,
            price=Decimal(price),
            amount=qty * Decimal(price),
        )
        Association.objects.create(
            from_type="orders", from_id=order.hubspot_id, to_type="line_items", to_id=f"70{n}", type_id=513
        )
    return order


def test_the_drawer_shows_properties_line_items_customer_and_is_its_own_page(
    support_client: Any, order: Order
) -> None:
    html = unescape(support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode())
    assert "<html" in html  # its own URL is a whole page
    assert "Fulfillment status" in html and "Tracking number" in html
    assert re.search(r"Record ID\s*<span class=\"muted\"[^>]*>· read-only", html)
    assert "Kim Lee" in html and "kim@shop.example" in html
    assert "Item 0" in html and "25.50 EUR" in html  # 2 × 10.00 + 5.50
    partial = support_client.get(f"/boards/orders/{order.hubspot_id}/", headers=HTMX).content.decode()
    assert "<html" not in partial and 'id="drawer-body"' in partial


def test_an_inline_edit_uses_the_right_input_and_is_recorded(support_client: Any, order: Order) -> None:
    form = support_client.get(
        f"/boards/orders/{order.hubspot_id}/properties/hs_fulfillment_status/", headers=HTMX
    ).content.decode()
    assert '<select id="input-hs_fulfillment_status" name="value">' in form
    assert '<option value="Shipped"' in form

    saved = support_client.post(
        f"/boards/orders/{order.hubspot_id}/properties/hs_fulfillment_status/save/",
        {"value": "Shipped"},
        headers=HTMX,
    )
    assert "Shipped" in saved.content.decode()
    order.refresh_from_db()
    assert order.fulfillment_status == "Shipped"
    change = Change.objects.get()
    assert change.new == {"hs_fulfillment_status": "Shipped"} and change.base == {
        "hs_fulfillment_status": "Packing"
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("hs_fulfillment_status", "Teleported", "Choose one of the options"),
        ("hs_order_discount", "ten", "takes a number"),
        ("hs_object_id", "5", "doesn't let this property be edited"),
    ],
)
def test_bad_edits_say_why_and_change_nothing(
    support_client: Any, order: Order, name: str, value: str, message: str
) -> None:
    response = support_client.post(
        f"/boards/orders/{order.hubspot_id}/properties/{name}/save/", {"value": value}, headers=HTMX
    )
    assert message in unescape(response.content.decode())
    assert not Change.objects.exists()
    before = dict(order.properties)
    order.refresh_from_db()
    assert order.properties == before


def test_the_timeline_lists_staff_changes_with_outcomes(support_client: Any, order: Order) -> None:
    support_client.post(
        f"/boards/orders/{order.hubspot_id}/properties/hs_shipping_tracking_number/save/",
        {"value": "1Z<b>9</b>"},
        headers=HTMX,
    )
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode()
    assert "hs_shipping_tracking_number" in html and "1Z&lt;b&gt;9&lt;/b&gt;" in html
    assert "Waiting to be sent" in html or "Being sent" in html


def test_resync_queues_a_refresh(support_client: Any, order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubspot_sync import tasks

    queued: list[Any] = []
    monkeypatch.setattr(tasks.refresh_records_task, "delay", lambda *a: queued.append(a))
    response = support_client.post(f"/boards/orders/{order.hubspot_id}/resync/", headers=HTMX)
    assert queued == [("orders", [order.hubspot_id])]
    assert "Reading this order from HubSpot again" in response.content.decode()


def confirmed(confirmation: Any) -> dict[str, list[str]]:
    """What the confirmation's Move button posts: its hidden inputs (it carries what it showed)."""
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="(\w+)" value="([^"]*)">', confirmation.content.decode()
    ):
        if name != "csrfmiddlewaretoken":
            fields.setdefault(name, []).append(unescape(value))
    assert fields.get("confirm") == ["1"]
    return fields


class TestBulkMove:
    @pytest.fixture
    def pipeline(self) -> Pipeline:
        return factories.pipeline_with_stages()

    def test_the_confirmation_states_the_scope_then_the_move_reports_a_summary(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        open_stage, shipped = pipeline.stages.get(label="Open"), pipeline.stages.get(label="Shipped")
        shipped.required_properties = ["hs_shipping_tracking_number"]
        shipped.save()
        ready = [factories.OrderFactory(stage=open_stage, store="Portland") for _ in range(3)]
        for o in ready[:2]:
            o.properties["hs_shipping_tracking_number"] = "1Z"
            o.save()
        factories.OrderFactory(stage=open_stage, store="Seattle")
        data = {"scope": "all", "stage": shipped.pk, "filters": "store=Portland"}

        confirm = support_client.post(f"/boards/{pipeline.pk}/bulk-move/", data, headers=HTMX)
        html = unescape(confirm.content.decode())
        assert "all 3 orders matching the filters (store “Portland”)" in html and "Shipped" in html
        assert Order.objects.filter(stage=shipped).count() == 0  # nothing moves before the confirmation

        done = support_client.post(f"/boards/{pipeline.pk}/bulk-move/", confirmed(confirm), headers=HTMX)
        summary = unescape(done.content.decode())
        assert (
            "Moved 2 of all 3 orders" in summary and "1 not moved: “Shipped” needs a value first." in summary
        )
        assert "boardChanged" in done["HX-Trigger"]
        assert Order.objects.filter(stage=shipped).count() == 2

    def test_selected_cards_only(self, support_client: Any, pipeline: Pipeline) -> None:
        open_stage, paid = pipeline.stages.get(label="Open"), pipeline.stages.get(label="Paid")
        a, b, _ = (factories.OrderFactory(stage=open_stage) for _ in range(3))
        confirm = support_client.post(
            f"/boards/{pipeline.pk}/bulk-move/",
            {"scope": "selected", "selected": [a.hubspot_id, b.hubspot_id], "stage": paid.pk, "filters": ""},
            headers=HTMX,
        )
        support_client.post(f"/boards/{pipeline.pk}/bulk-move/", confirmed(confirm), headers=HTMX)
        assert set(Order.objects.filter(stage=paid).values_list("pk", flat=True)) == {a.pk, b.pk}

    def test_nothing_selected_or_no_stage_is_a_clear_message(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        html = support_client.post(
            f"/boards/{pipeline.pk}/bulk-move/", {"scope": "selected", "stage": ""}, headers=HTMX
        ).content.decode()
        assert "Choose the stage" in html
        paid = pipeline.stages.get(label="Paid")
        html = support_client.post(
            f"/boards/{pipeline.pk}/bulk-move/", {"scope": "selected", "stage": paid.pk}, headers=HTMX
        ).content.decode()
        assert "No orders are selected" in html


def test_the_timeline_shows_what_hubspot_told_us(support_client: Any, order: Order) -> None:
    from hubspot_sync.models import WebhookEvent

    WebhookEvent.objects.create(
        event_id="9",
        subscription_type="object.propertyChange",
        object_type="orders",
        object_id=order.hubspot_id,
        payload={"propertyName": "hs_order_name", "propertyValue": "<i>Renamed</i>"},
    )
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode()
    # Labelled (no definition here, so the name) and escaped; values are isolated in <bdi>.
    assert "hs_order_name set to “&lt;i&gt;Renamed&lt;/i&gt;”" in re.sub(r"</?bdi>", "", html)
