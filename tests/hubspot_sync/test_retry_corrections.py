"""Retrying a failed change with corrections: values typed and validated like inline edits; a failed move
corrected by choosing a stage of the order's pipeline under its rules, never by typing ids."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition
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


def failed_move(pipeline: Pipeline, *, before: str = "Paid", to: str = "Shipped", **new: str) -> Change:
    """An order HubSpot has in ``before``, whose move to ``to`` HubSpot refused (the card shows ``to``)."""
    order = factories.OrderFactory(stage=stage(pipeline, to))
    return Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id=order.hubspot_id,
        base={"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage(pipeline, before).hubspot_id},
        new={"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage(pipeline, to).hubspot_id, **new},
        status=ChangeStatus.FAILED,
        error="HubSpot refused this change",
    )


def retry(client: Any, change: Change, **data: str) -> Any:
    return client.post(f"/sync/changes/{change.pk}/retry/", data, headers=HTMX)


def order_of(change: Change) -> Order:
    return Order.objects.select_related("stage").get(hubspot_id=change.object_id)


class TestFailedMove:
    def test_the_record_offers_a_choice_of_the_pipelines_stages_not_id_inputs(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        factories.pipeline_with_stages(labels=("Returned",), label="Returns")
        change = failed_move(pipeline)
        html = support_client.get(f"/sync/records/orders/{change.object_id}/").content.decode()
        assert '<select name="prop_hs_pipeline_stage"' in html
        for label in ("Open", "Paid", "Shipped", "Delivered", "Cancelled"):
            assert f">{label}</option>" in html
        assert ">Returned</option>" not in html
        assert 'name="prop_hs_pipeline"' not in html
        assert '<input type="text" name="prop_hs_pipeline_stage"' not in html
        shipped = stage(pipeline, "Shipped")
        assert f'<option value="{shipped.hubspot_id}" selected>' in html

    def test_a_typed_stage_id_of_another_pipeline_is_refused(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        other = factories.pipeline_with_stages(labels=("Returned",), label="Returns")
        change = failed_move(pipeline)
        response = retry(
            support_client,
            change,
            prop_hs_pipeline_stage=other.stages.get().hubspot_id,
            prop_hs_pipeline=other.hubspot_id,
        )
        assert response.status_code == 200
        assert "Choose a stage of Online orders." in unescape(response.content.decode())
        change.refresh_from_db()
        assert change.status == ChangeStatus.FAILED
        assert change.new["hs_pipeline"] == pipeline.hubspot_id

    def test_hs_pipeline_is_never_taken_from_the_request(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        other = factories.pipeline_with_stages(labels=("Returned",), label="Returns")
        change = failed_move(pipeline)
        retry(support_client, change, prop_hs_pipeline=other.hubspot_id)
        change.refresh_from_db()
        assert change.status == ChangeStatus.PENDING
        assert change.new["hs_pipeline"] == pipeline.hubspot_id
        assert order_of(change).pipeline == pipeline

    def test_choosing_a_stage_of_the_pipeline_sends_it(self, support_client: Any, pipeline: Pipeline) -> None:
        change = failed_move(pipeline)
        delivered = stage(pipeline, "Delivered")
        response = retry(support_client, change, prop_hs_pipeline_stage=delivered.hubspot_id)
        assert "Sent to HubSpot again." in response.content.decode()
        change.refresh_from_db()
        assert change.status == ChangeStatus.PENDING
        assert change.new == {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": delivered.hubspot_id}
        assert order_of(change).stage == delivered

    def test_the_stage_rules_apply_from_the_stage_hubspot_has(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        pipeline.allow_moving_back = False
        pipeline.allow_skipping = False
        pipeline.save()
        change = failed_move(pipeline, before="Paid", to="Shipped")
        back = retry(support_client, change, prop_hs_pipeline_stage=stage(pipeline, "Open").hubspot_id)
        assert "doesn't allow moving orders back" in unescape(back.content.decode())
        change.refresh_from_db()
        assert change.status == ChangeStatus.FAILED
        assert change.new["hs_pipeline_stage"] == stage(pipeline, "Shipped").hubspot_id
        # Paid → Shipped is the next stage: allowed.
        ok = retry(support_client, change, prop_hs_pipeline_stage=stage(pipeline, "Shipped").hubspot_id)
        assert "Sent to HubSpot again." in ok.content.decode()

    def test_a_stage_that_needs_a_value_the_order_lacks_is_refused(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        delivered = stage(pipeline, "Delivered")
        delivered.required_properties = ["hs_delivered_to"]
        delivered.save()
        change = failed_move(pipeline)
        response = retry(support_client, change, prop_hs_pipeline_stage=delivered.hubspot_id)
        assert "“Delivered” needs a value first." in unescape(response.content.decode())
        change.refresh_from_db()
        assert change.status == ChangeStatus.FAILED

    def test_a_move_of_an_order_no_longer_cached_takes_no_typed_stage(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        change = failed_move(pipeline)
        Order.objects.filter(hubspot_id=change.object_id).delete()
        retry(support_client, change, prop_hs_pipeline_stage="typed-id", prop_hs_pipeline="other")
        change.refresh_from_db()
        assert change.new["hs_pipeline_stage"] == stage(pipeline, "Shipped").hubspot_id
        assert change.new["hs_pipeline"] == pipeline.hubspot_id

    def test_the_plain_form_path_says_why_too(self, support_client: Any, pipeline: Pipeline) -> None:
        change = failed_move(pipeline)
        response = support_client.post(
            f"/sync/changes/{change.pk}/retry/", {"prop_hs_pipeline_stage": "typed-id"}, follow=True
        )
        assert "Choose a stage of Online orders." in unescape(response.content.decode())
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.FAILED


class TestTypedCorrections:
    @pytest.fixture
    def change(self, pipeline: Pipeline) -> Change:
        PropertyDefinition.objects.create(
            object_type="orders", name="hs_tax", label="Tax", type="number", field_type="number"
        )
        PropertyDefinition.objects.create(
            object_type="orders",
            name="hs_createdate",
            label="Created",
            type="datetime",
            field_type="date",
            read_only_value=True,
        )
        order = factories.OrderFactory(stage=stage(pipeline, "Open"))
        return Change.objects.create(
            kind=ChangeKind.UPDATE,
            object_type="orders",
            object_id=order.hubspot_id,
            base={"hs_tax": "1"},
            new={"hs_tax": "abc", "hs_createdate": "2024-01-01T00:00:00.000Z"},
            status=ChangeStatus.FAILED,
        )

    @pytest.mark.parametrize(
        ("value", "message"),
        [("abc2", "Tax takes a number."), ("1E+999999", "Tax is too large"), ("NaN", "Tax takes a number.")],
    )
    def test_a_bad_value_is_refused_like_an_inline_edit(
        self, support_client: Any, change: Change, value: str, message: str
    ) -> None:
        response = retry(support_client, change, prop_hs_tax=value)
        assert message in unescape(response.content.decode())
        change.refresh_from_db()
        assert change.status == ChangeStatus.FAILED and change.new["hs_tax"] == "abc"

    def test_a_good_value_is_sent_parsed(self, support_client: Any, change: Change) -> None:
        retry(support_client, change, prop_hs_tax="12.50")
        change.refresh_from_db()
        assert change.status == ChangeStatus.PENDING and change.new["hs_tax"] == "12.5"

    def test_a_read_only_property_is_neither_offered_nor_taken(
        self, support_client: Any, change: Change
    ) -> None:
        html = support_client.get(f"/sync/records/orders/{change.object_id}/").content.decode()
        assert 'name="prop_hs_tax"' in html and 'type="number"' in html
        assert 'name="prop_hs_createdate"' not in html
        retry(support_client, change, prop_hs_tax="2", prop_hs_createdate="1999-01-01T00:00:00Z")
        change.refresh_from_db()
        assert change.new == {"hs_tax": "2", "hs_createdate": "2024-01-01T00:00:00.000Z"}

    def test_a_retry_without_inputs_sends_the_values_as_they_were(
        self, support_client: Any, change: Change
    ) -> None:
        retry(support_client, change)
        change.refresh_from_db()
        assert change.status == ChangeStatus.PENDING and change.new["hs_tax"] == "abc"

    @pytest.mark.parametrize("value", ["1\x002", "1\x072"])
    def test_control_characters_are_refused(self, support_client: Any, change: Change, value: str) -> None:
        response = retry(support_client, change, prop_hs_tax=value)
        assert "Not sent:" in response.content.decode()
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.FAILED


@pytest.mark.parametrize("pk", ["99999999999999999999", "-99999999999999999999", "abc", "0"])
def test_bulk_retry_with_an_id_no_key_holds_is_a_message(support_client: Any, pk: str) -> None:
    response = support_client.post("/sync/outbox/bulk/", {"action": "retry", "change": pk}, headers=HTMX)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "don't exist" in html or "valid value" in html or "Select a valid choice" in html
