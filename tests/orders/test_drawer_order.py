"""The order drawer as support reads it: what comes first, empty fields behind "Show empty", timelines in
labels rather than ids, hostile text isolated, and a refresh that sends only the changed rows."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from hubspot_sync.models import Change, ChangeStatus, PropertyDefinition, WebhookEvent
from orders import cards, details
from orders.models import Order
from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}

DEFINITIONS = (
    # name, label, group, type, options
    ("hs_order_name", "Name", "orderinformation", "string", []),
    ("hs_pipeline", "Pipeline", "orderinformation", "enumeration", []),
    ("hs_pipeline_stage", "Order Stage", "orderinformation", "enumeration", []),
    ("hs_external_order_id", "External order ID", "orderinformation", "string", []),
    ("hs_total_price", "Total Price", "orderinformation", "number", []),
    (
        "hs_fulfillment_status",
        "Fulfillment status",
        "orderinformation",
        "enumeration",
        [{"value": "unfulfilled", "label": "Not sent yet"}, {"value": "shipped", "label": "On its way"}],
    ),
    ("hs_tags", "Tags", "orderinformation", "string", []),
    ("hs_shipping_tracking_number", "Shipping tracking number", "order_shipping", "string", []),
    ("hs_shipping_carrier", "Shipping carrier", "order_shipping", "string", []),
    ("hs_billing_address_city", "Billing address city", "order_billing", "string", []),
    ("hs_billing_address_street", "Billing address street", "order_billing", "string", []),
)


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages()


@pytest.fixture
def order(pipeline: Pipeline) -> Order:
    for name, label, group, type_, options in DEFINITIONS:
        PropertyDefinition.objects.create(
            object_type="orders",
            name=name,
            label=label,
            group_name=group,
            type=type_,
            field_type="select" if options else "text",
            options=options,
        )
    order = factories.OrderFactory(stage=pipeline.stages.get(label="Open"))
    order.properties.update(
        {
            "hs_fulfillment_status": "unfulfilled",
            "hs_shipping_tracking_number": "1Z999",
            "hs_shipping_carrier": "",
            "hs_tags": "",
            "hs_billing_address_city": "",
            "x_custom": "from a store app",
        }
    )
    order.save()
    return order


def test_groups_come_in_the_order_support_reads_them(order: Order) -> None:
    groups = details.property_groups(order)
    assert [g.key for g in groups] == ["status", "shipping", "orderinformation", "order_billing", "other"]
    assert [f.name for f in groups[0].fields] == [
        "hs_fulfillment_status",
        "hs_total_price",
        "hs_external_order_id",
    ]
    assert [f.name for f in groups[1].fields] == ["hs_shipping_carrier", "hs_shipping_tracking_number"]
    names = [f.name for g in groups for f in g.fields]
    assert len(names) == len(set(names))  # each row's id is on the page once
    assert "hs_pipeline_stage" not in names and "hs_pipeline" not in names  # shown as the stage


def test_the_drawer_opens_on_values_with_the_empty_ones_behind_show_empty(
    support_client: Any, order: Order
) -> None:
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/", headers=HTMX).content.decode()
    # Status (with the stage and its "Move to…"), customer, line items, shipping, then the rest.
    positions = [
        html.index(marker)
        for marker in (
            "<h3>Status</h3>",
            'id="drawer-stage"',
            ">Move to…<",
            'id="customer-title"',
            'id="line-items-title"',
            "<h3>Shipping</h3>",
            "<h3>Order details</h3>",
            'id="drawer-timeline"',
        )
    ]
    assert positions == sorted(positions)
    # An empty field waits in its group's "Show empty"; a group with nothing in it under "Show empty groups".
    empty_fields = re.search(
        r'<details class="empty-fields" data-group="shipping-empty">(.*?)</details>', html, re.S
    )
    assert empty_fields and 'id="property-hs_shipping_carrier"' in empty_fields.group(1)
    assert 'id="property-hs_shipping_carrier"' not in html.replace(empty_fields.group(1), "")
    empty_groups = html[html.index('<details class="empty-groups') : html.index('id="drawer-timeline"')]
    assert 'id="property-hs_billing_address_city"' in empty_groups and "Billing" in empty_groups
    # The first thing shown is not an empty billing field.
    assert html.index('id="property-hs_billing_address_city"') > html.index(
        'id="property-hs_shipping_tracking_number"'
    )


def test_the_stage_has_a_move_to_form_for_the_stages_of_its_pipeline(
    support_client: Any, order: Order, pipeline: Pipeline
) -> None:
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/", headers=HTMX).content.decode()
    stage_row = html[
        html.index('id="drawer-stage"') : html.index("</details>", html.index('id="drawer-stage"'))
    ]
    assert f'action="{order.move_url}"' in stage_row and 'name="from_stage"' in stage_row
    assert re.findall(r"<option value=\"(\d+)\"", stage_row) == [
        str(s.pk) for s in pipeline.stages.order_by("display_order")
    ]


def test_timelines_say_what_changed_in_labels_not_ids(
    support_client: Any, order: Order, pipeline: Pipeline
) -> None:
    open_stage, paid = pipeline.stages.get(label="Open"), pipeline.stages.get(label="Paid")
    Change.objects.create(
        object_type="orders",
        object_id=order.hubspot_id,
        base={"hs_pipeline_stage": open_stage.hubspot_id, "hs_fulfillment_status": "unfulfilled"},
        new={"hs_pipeline_stage": paid.hubspot_id, "hs_fulfillment_status": "shipped"},
        status=ChangeStatus.APPLIED,
        created_by_name="Sam",
    )
    for n, (name, value) in enumerate(
        (("hs_pipeline_stage", open_stage.hubspot_id), ("hs_pipeline", pipeline.hubspot_id))
    ):
        WebhookEvent.objects.create(
            event_id=f"labels-{n}",
            subscription_type="object.propertyChange",
            object_type="orders",
            object_id=order.hubspot_id,
            payload={"propertyName": name, "propertyValue": value},
        )

    drawer = re.sub(
        r"</?bdi>", "", unescape(support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode())
    )
    timeline = drawer[drawer.index('id="drawer-timeline"') :]
    assert "Stage: Open → Paid" in timeline
    assert "Fulfillment status: Not sent yet → On its way" in timeline
    assert "Stage set to “Open”" in timeline and f"Pipeline set to “{pipeline.label}”" in timeline
    assert open_stage.hubspot_id not in timeline and "hs_pipeline_stage" not in timeline

    record = re.sub(
        r"</?bdi>",
        "",
        unescape(support_client.get(f"/sync/records/orders/{order.hubspot_id}/").content.decode()),
    )
    assert (
        "Stage: “Open” → “Paid”" in record and "Fulfillment status: “Not sent yet” → “On its way”" in record
    )
    assert "hs_pipeline_stage" not in record


def test_right_to_left_overrides_are_not_shown_and_text_is_isolated(
    support_client: Any, order: Order
) -> None:
    order.name = "\u202egnp.exe\u202c Invoice"
    order.properties["hs_shipping_tracking_number"] = "\u202egnp.exe\u202c"
    order.save()
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode()
    assert "\u202e" not in html  # shown as stored: "gnp.exe", which an override would show as "exe.png"
    assert '<h2 id="drawer-title"><bdi>gnp.exe Invoice</bdi></h2>' in html
    assert re.search(
        r'id="property-hs_shipping_tracking_number".*?<span class="value"><bdi>gnp\.exe</bdi>', html, re.S
    )
    card = str(cards.card_menu(order, query=""))
    assert "\u202e" not in card


def test_the_card_menu_names_itself_by_its_visible_text(order: Order) -> None:
    menu = str(cards.card_menu(order, query=""))
    summary = re.search(r"<summary([^>]*)>(.*?)</summary>", menu)
    assert summary is not None
    assert "aria-label" not in summary.group(1)  # the visible "Move to…" is the start of its name
    assert summary.group(2).startswith("Move to…") and order.name in summary.group(2)


class TestRefresh:
    def _seen(self, html: str) -> str:
        return ",".join(f"{i}:{v}" for i, v in re.findall(r'id="([^"]+)" data-v="([^"]+)"', html))

    def test_only_the_changed_rows_come_back_out_of_band(self, support_client: Any, order: Order) -> None:
        url = f"/boards/orders/{order.hubspot_id}/"
        first = support_client.get(url, headers=HTMX).content.decode()
        seen = self._seen(first)
        assert "property-hs_shipping_tracking_number:" in seen and "drawer-timeline:" in seen

        nothing = support_client.get(url, {"seen": seen}, headers=HTMX).content.decode()
        assert "hx-swap-oob" not in nothing

        support_client.post(
            f"{url}properties/hs_shipping_tracking_number/save/", {"value": "1Z000"}, headers=HTMX
        )
        refresh = support_client.get(url, {"seen": seen}, headers=HTMX).content.decode()
        swapped = re.findall(r'<[^>]* id="([^"]+)"[^>]* hx-swap-oob="true"', refresh)
        assert sorted(swapped) == ["drawer-timeline", "property-hs_shipping_tracking_number"]
        assert "1Z000" in refresh and "<details" not in refresh  # rows only: the groups are left alone

    @pytest.mark.parametrize(
        "seen", ["", "garbage", "a:b:c,,,:", "property-<script>:1", "x" * 100_000, "\x00:\x00"]
    )
    def test_a_bad_seen_list_is_no_error(self, support_client: Any, order: Order, seen: str) -> None:
        response = support_client.get(f"/boards/orders/{order.hubspot_id}/", {"seen": seen}, headers=HTMX)
        assert response.status_code == 200 and "hx-swap-oob" not in response.content.decode()


def test_a_very_long_value_is_shown_in_part_until_asked(support_client: Any, order: Order) -> None:
    order.properties["hs_tags"] = "W" * 7000
    order.save()
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode()
    row = html[html.index('id="property-hs_tags"') : html.index("</dd>", html.index('id="property-hs_tags"'))]
    assert "Show all 7,000 characters" in row and "W" * 7000 in row  # all of it, behind a <details>
    assert re.search(r"<summary><bdi>W{199}…</bdi>", row)


def test_the_drawers_move_to_moves_the_order(support_client: Any, order: Order, pipeline: Pipeline) -> None:
    html = support_client.get(f"/boards/orders/{order.hubspot_id}/").content.decode()
    form = html[html.index('<details class="move-menu drawer-move">') :]
    from_stage = re.search(r'name="from_stage" value="(\d+)"', form)
    assert from_stage is not None
    paid = pipeline.stages.get(label="Paid")
    response = support_client.post(order.move_url, {"stage": paid.pk, "from_stage": from_stage.group(1)})
    assert response.status_code == 302  # a plain form: back to the board, which says what happened
    order.refresh_from_db()
    assert order.stage_id == paid.pk


def test_the_sync_pages_outbox_names_stages_too(client: Any, order: Order, pipeline: Pipeline) -> None:
    client.force_login(factories.pipeline_admin())
    paid = pipeline.stages.get(label="Paid")
    Change.objects.create(
        object_type="orders",
        object_id=order.hubspot_id,
        base={"hs_pipeline_stage": pipeline.stages.get(label="Open").hubspot_id},
        new={"hs_pipeline_stage": paid.hubspot_id},
        status=ChangeStatus.FAILED,
        error="HubSpot refused it.",
    )
    html = re.sub(r"</?bdi>", "", unescape(client.get("/sync/").content.decode()))
    assert "Stage → “Paid”" in html and paid.hubspot_id not in html
