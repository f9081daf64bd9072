"""Moves carry only what a move may carry (the target stage, and its required properties typed), are
refused from an out-of-date card with who moved the order, change nothing when the order is there already;
bulk moves validate their stage and leave orders moved after the confirmation where they are."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sync.models import Change, PropertyDefinition
from orders import board, services
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def stage(pipeline: Pipeline, label: str) -> Stage:
    return pipeline.stages.get(label=label)


def order_in(pipeline: Pipeline, label: str, **kwargs: Any) -> Order:
    return factories.OrderFactory(stage=stage(pipeline, label), **kwargs)


def move(client: Any, order: Order, target: Stage | int | str, **extra: Any) -> Any:
    data = {
        "stage": target.pk if isinstance(target, Stage) else target,
        "from_stage": order.stage_id,
        "filters": "",
        **extra,
    }
    return client.post(f"/boards/orders/{order.hubspot_id}/move/", data, headers=HTMX)


def text(response: Any) -> str:
    return unescape(response.content.decode())


def trigger(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.get("HX-Trigger-After-Swap", "{}")))


def define(name: str, label: str, type_: str, **kwargs: Any) -> PropertyDefinition:
    field_type = {"number": "number", "date": "date", "datetime": "date"}.get(type_, "text")
    return PropertyDefinition.objects.create(
        object_type="orders", name=name, label=label, type=type_, field_type=field_type, **kwargs
    )


class TestForgedProperties:
    def test_forged_pipeline_stage_and_other_properties_never_reach_the_change(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        pipeline.allow_moving_back = False
        pipeline.save()
        other = factories.pipeline_with_stages(label="Returns")
        order = order_in(pipeline, "Paid", total="49.90")
        shipped = stage(pipeline, "Shipped")

        response = move(
            support_client,
            order,
            shipped,
            # Back past "no moving back", into another pipeline, and properties a move doesn't set.
            prop_hs_pipeline_stage=stage(pipeline, "Open").hubspot_id,
            prop_hs_pipeline=other.hubspot_id,
            prop_hs_createdate="2001-01-01T00:00:00Z",
            prop_hs_total_price="0.01",
            prop_hs_tax="not-a-number",
        )

        assert "orderMoved" in trigger(response)
        change = Change.objects.get()
        assert change.new == {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": shipped.hubspot_id}
        order.refresh_from_db()
        assert order.stage == shipped and order.pipeline == pipeline
        assert order.properties["hs_total_price"] == "49.90" and "hs_tax" not in order.properties

    def test_a_required_property_is_typed_like_an_inline_edit(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        shipped = stage(pipeline, "Shipped")
        shipped.required_properties = ["hs_tax", "hs_shipped_at"]
        shipped.save()
        define("hs_tax", "Tax", "number")
        define("hs_shipped_at", "Shipped at", "datetime")
        order = order_in(pipeline, "Open")

        refused = move(
            support_client, order, shipped, prop_hs_tax="not-a-number", prop_hs_shipped_at="2024-05-01T10:00"
        )
        html = text(refused)
        assert "Tax takes a number." in html and "moveRefused" in trigger(refused)
        # The prompt asks again, with typed inputs.
        assert 'name="prop_hs_tax"' in html and 'type="number"' in html and 'type="datetime-local"' in html
        assert not Change.objects.exists()

        done = move(
            support_client, order, shipped, prop_hs_tax="1E+3", prop_hs_shipped_at="2024-05-01T10:00+05:00"
        )
        assert "orderMoved" in trigger(done)
        change = Change.objects.get()
        assert change.new == {
            "hs_tax": "1000",
            "hs_shipped_at": "2024-05-01T05:00:00.000Z",
            "hs_pipeline": pipeline.hubspot_id,
            "hs_pipeline_stage": shipped.hubspot_id,
        }

    def test_a_stage_requiring_its_own_stage_property_cannot_be_steered_by_it(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        shipped = stage(pipeline, "Shipped")
        shipped.required_properties = ["hs_pipeline_stage", "hs_pipeline"]
        shipped.save()
        order = order_in(pipeline, "Open")
        move(support_client, order, shipped, prop_hs_pipeline_stage=stage(pipeline, "Delivered").hubspot_id)
        assert Change.objects.get().new["hs_pipeline_stage"] == shipped.hubspot_id

    def test_the_service_refuses_values_the_stage_does_not_require(self, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Open")
        user = factories.support_user()
        for forged in ({"hs_pipeline_stage": "x"}, {"hs_total_price": "0.01"}, {"hs_createdate": "1"}):
            with pytest.raises(ValueError, match="can't set"):
                services.order_move_to_stage(
                    order=order, stage=stage(pipeline, "Paid"), by=user, values=forged
                )
        assert not Change.objects.exists()

    def test_the_service_sets_pipeline_and_stage_from_the_target_over_any_value(
        self, pipeline: Pipeline
    ) -> None:
        shipped = stage(pipeline, "Shipped")
        shipped.required_properties = ["hs_shipping_tracking_number"]
        shipped.save()
        order = order_in(pipeline, "Open")
        services.order_move_to_stage(
            order=order,
            stage=shipped,
            by=factories.support_user(),
            values={"hs_shipping_tracking_number": "1Z"},
        )
        assert Change.objects.get().new == {
            "hs_shipping_tracking_number": "1Z",
            "hs_pipeline": pipeline.hubspot_id,
            "hs_pipeline_stage": shipped.hubspot_id,
        }

    @pytest.mark.parametrize("junk", ["abc", "", "99999999999999999999999999", "-1", "1e3", "\x00"])
    def test_a_junk_stage_is_refused_clearly(
        self, support_client: Any, pipeline: Pipeline, junk: str
    ) -> None:
        order = order_in(pipeline, "Open")
        response = move(support_client, order, junk)
        assert response.status_code == 200 and "moveRefused" in trigger(response)
        assert "stage" in text(response)
        assert not Change.objects.exists()


class TestStaleMoves:
    def test_a_move_without_from_stage_is_refused_with_who_moved_it_and_where_it_is(
        self, support_client: Any, client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        kim = factories.support_user(first_name="Kim", last_name="Lee")
        client.force_login(kim)
        move(client, order, stage(pipeline, "Paid"))
        order.refresh_from_db()

        response = support_client.post(
            f"/boards/orders/{order.hubspot_id}/move/",
            {"stage": stage(pipeline, "Shipped").pk, "filters": ""},
            headers=HTMX,
        )

        html = text(response)
        assert "didn't say which stage the card was in" in html and "Kim Lee" in html and "“Paid”" in html
        assert trigger(response)["moveRefused"] == {"order": order.hubspot_id, "stage": order.stage_id}
        assert Change.objects.count() == 1  # only Kim's
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Paid")

    def test_a_move_from_a_stale_card_names_the_mover_and_redraws_the_columns(
        self, support_client: Any, client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        seen_in = order.stage_id
        client.force_login(factories.support_user(first_name="Kim", last_name="Lee"))
        move(client, order, stage(pipeline, "Paid"))

        response = move(support_client, order, stage(pipeline, "Shipped"), from_stage=seen_in)

        html = text(response)
        assert "Kim Lee moved this order to “Paid” meanwhile; it stays there." in html
        paid, open_ = stage(pipeline, "Paid"), stage(pipeline, "Open")
        # The card goes to its real column, whose header (and the one it left) are redrawn.
        assert trigger(response)["moveRefused"]["stage"] == paid.pk
        assert f'id="column-header-{paid.pk}" hx-swap-oob="true"' in html
        assert f'id="column-header-{open_.pk}" hx-swap-oob="true"' in html
        order.refresh_from_db()
        assert order.stage == paid and Change.objects.count() == 1

    def test_a_stage_that_came_by_sync_is_hubspots(self, support_client: Any, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Paid")
        response = move(
            support_client, order, stage(pipeline, "Shipped"), from_stage=stage(pipeline, "Open").pk
        )
        assert "HubSpot moved this order to “Paid” meanwhile" in text(response)
        assert not Change.objects.exists()

    def test_a_later_hubspot_move_is_hubspots_not_the_earlier_mover(self, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Open")
        services.order_move_to_stage(
            order=order, stage=stage(pipeline, "Paid"), by=factories.support_user(first_name="Kim")
        )
        assert board.who_moved(order).startswith("Kim")
        # HubSpot moved it to Paid again later (say after Shipped and back): the entry is newer.
        order.stage_entered_at = timezone.now() + timedelta(hours=1)
        assert board.who_moved(order) == "HubSpot"

    def test_the_service_refuses_a_move_seen_in_another_stage(self, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Paid")
        with pytest.raises(services.MovedMeanwhile):
            services.order_move_to_stage(
                order=order,
                stage=stage(pipeline, "Shipped"),
                by=factories.support_user(),
                seen_in=stage(pipeline, "Open").pk,
            )
        assert not Change.objects.exists()

    def test_the_forms_send_the_stage_the_card_was_seen_in(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        for headers in (HTMX, {}):
            html = support_client.get(f"/boards/orders/{order.hubspot_id}/move/", headers=headers).content
            assert f'name="from_stage" value="{order.stage_id}"'.encode() in html
        shipped = stage(pipeline, "Shipped")
        shipped.required_properties = ["hs_shipping_tracking_number"]
        shipped.save()
        prompt = move(support_client, order, shipped).content.decode()
        assert f'name="from_stage" value="{order.stage_id}"' in prompt
        with open("static/js/board.js") as js:
            assert "from_stage: from" in js.read()


class TestSameStage:
    def test_a_move_to_the_stage_it_is_in_records_nothing(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Paid")
        entered = timezone.now() - timedelta(days=9)
        Order.objects.filter(pk=order.pk).update(stage_entered_at=entered)
        order.refresh_from_db()

        response = move(support_client, order, stage(pipeline, "Paid"))

        assert response.status_code == 200 and "Already in “Paid”; nothing changed." in text(response)
        assert not Change.objects.exists()
        order.refresh_from_db()
        assert order.stage_entered_at == entered and order.days_in_stage == 9

    def test_the_service_is_a_no_op_too(self, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Paid")
        services.order_move_to_stage(order=order, stage=stage(pipeline, "Paid"), by=factories.support_user())
        assert not Change.objects.exists()


class TestBulkMoveInput:
    @pytest.mark.parametrize(
        "junk", ["abc", "", None, "99999999999999999999999999", "-5", "other-pipeline", "archived"]
    )
    def test_a_bad_stage_is_a_message_in_the_page(
        self, support_client: Any, pipeline: Pipeline, junk: str | None
    ) -> None:
        order = order_in(pipeline, "Open")
        if junk == "other-pipeline":
            junk = str(factories.pipeline_with_stages(label="Returns").stages.first().pk)  # type: ignore[union-attr]
        elif junk == "archived":
            gone = factories.StageFactory(pipeline=pipeline, archived=True)
            junk = str(gone.pk)
        data: dict[str, Any] = {"scope": "selected", "selected": [order.hubspot_id], "filters": ""}
        if junk is not None:
            data["stage"] = junk
        for confirm in ({}, {"confirm": "1", "shown_at": timezone.now().isoformat()}):
            response = support_client.post(
                f"/boards/{pipeline.pk}/bulk-move/", {**data, **confirm}, headers=HTMX
            )
            assert response.status_code == 200
            assert "Choose the stage to move them to" in text(response) or "isn't on this board" in text(
                response
            )
        assert not Change.objects.exists()

    @pytest.mark.parametrize(
        "extra",
        [
            {"scope": "everything"},
            {"selected": ["1;DROP TABLE"]},
            {"filters": "q=" + "x" * 5000},
            {"seen": ["x" * 100]},
            {"shown_at": "yesterday"},
        ],
    )
    def test_other_junk_is_answered_without_a_500(
        self, support_client: Any, pipeline: Pipeline, extra: dict[str, Any]
    ) -> None:
        order = order_in(pipeline, "Open")
        data = {"scope": "selected", "selected": [order.hubspot_id], "stage": stage(pipeline, "Paid").pk}
        response = support_client.post(
            f"/boards/{pipeline.pk}/bulk-move/", {**data, **extra, "confirm": "1"}, headers=HTMX
        )
        assert response.status_code == 200
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Open") or "seen" in extra

    def test_orders_moved_after_the_confirmation_stay_where_they_are(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        a, b, c = (order_in(pipeline, "Open") for _ in range(3))
        shipped = stage(pipeline, "Shipped")
        data = {"scope": "all", "stage": shipped.pk, "filters": ""}
        confirmation = support_client.post(f"/boards/{pipeline.pk}/bulk-move/", data, headers=HTMX)
        assert "all 3 orders" in text(confirmation)
        # Meanwhile: someone moves b, and a new order arrives.
        services.order_move_to_stage(order=b, stage=stage(pipeline, "Paid"), by=factories.support_user())
        late = order_in(pipeline, "Open")

        done = support_client.post(f"/boards/{pipeline.pk}/bulk-move/", confirmed(confirmation), headers=HTMX)

        summary = text(done)
        assert "Moved 2 of all" in summary
        assert "2 not moved: they changed stage after the confirmation was shown" in summary
        assert set(Order.objects.filter(stage=shipped)) == {a, c}
        b.refresh_from_db()
        late.refresh_from_db()
        assert b.stage == stage(pipeline, "Paid") and late.stage == stage(pipeline, "Open")

    def test_a_confirm_without_the_confirmation_moves_nothing(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        response = support_client.post(
            f"/boards/{pipeline.pk}/bulk-move/",
            {
                "scope": "selected",
                "selected": [order.hubspot_id],
                "stage": stage(pipeline, "Paid").pk,
                "confirm": "1",
            },
            headers=HTMX,
        )
        assert "out of date" in text(response)
        assert not Change.objects.exists()


def confirmed(confirmation: Any) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="(\w+)" value="([^"]*)">', confirmation.content.decode()
    ):
        if name != "csrfmiddlewaretoken":
            fields.setdefault(name, []).append(unescape(value))
    return fields
