"""Properties, property groups, the legacy v2 list and schemas, over HTTP (reference §6, §10)."""

from __future__ import annotations

from typing import Any

import pytest

from hubspot_sandbox.properties import VALID_FIELD_TYPES
from tests.sandbox.helpers import run_sdk_script

# What the SDK's ModelProperty / Option / PropertyModificationMetadata / PropertyGroup require.
PROPERTY_REQUIRED = {"name", "label", "type", "fieldType", "groupName", "description", "options"}
OPTION_REQUIRED = {"label", "value", "hidden"}
METADATA_REQUIRED = {"archivable", "readOnlyDefinition", "readOnlyValue"}


def new_property(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "gift_message",
        "label": "Gift message",
        "type": "string",
        "fieldType": "textarea",
        "groupName": "orderinformation",
        "description": "Printed on the packing slip.",
    }
    body.update(overrides)
    return body


def names(response: Any) -> list[str]:
    return [p["name"] for p in response.json()["results"]]


class TestList:
    @pytest.mark.parametrize("object_type", ["order", "orders", "0-123"])
    def test_every_spelling_of_orders_answers_the_same_list(self, sandbox_api: Any, object_type: str) -> None:
        response = sandbox_api.get(f"/crm/v3/properties/{object_type}")
        assert response.status_code == 200
        assert names(response) == names(sandbox_api.get("/crm/v3/properties/orders"))

    @pytest.mark.parametrize("object_type", ["contacts", "line_items", "orders", "carts"])
    def test_definitions_have_hubspots_shape(self, sandbox_api: Any, object_type: str) -> None:
        results = sandbox_api.get(f"/crm/v3/properties/{object_type}").json()["results"]
        assert results
        for prop in results:
            assert prop.keys() >= PROPERTY_REQUIRED, prop["name"]
            assert prop["modificationMetadata"].keys() >= METADATA_REQUIRED
            assert prop["fieldType"] in VALID_FIELD_TYPES[prop["type"]], prop["name"]
            assert prop["hubspotDefined"] is True
            assert prop["archived"] is False
            assert prop["createdAt"].endswith("Z") and "." in prop["createdAt"]
            for option in prop["options"]:
                assert option.keys() >= OPTION_REQUIRED
                assert isinstance(option["value"], str)

    def test_orders_carry_what_an_order_dashboard_needs(self, sandbox_api: Any) -> None:
        by_name = {p["name"]: p for p in sandbox_api.get("/crm/v3/properties/order").json()["results"]}
        for name in (
            "hs_order_name",
            "hs_total_price",
            "hs_currency_code",
            "hs_source_store",
            "hs_fulfillment_status",
            "hs_shipping_tracking_number",
            "hs_shipping_status_url",
            "hs_shipping_address_street",
            "hs_shipping_address_city",
            "hs_shipping_address_postal_code",
            "hs_external_order_id",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_order_discount",
            "hs_tax",
            "hs_object_source",
        ):
            assert name in by_name, name
        fulfillment = by_name["hs_fulfillment_status"]
        assert fulfillment["type"] == "enumeration"
        assert "Packing" in {o["value"] for o in fulfillment["options"]}  # the documented example value
        assert by_name["hs_total_price"]["type"] == "number"
        assert by_name["hs_object_id"]["modificationMetadata"]["readOnlyValue"] is True
        assert by_name["hs_createdate"]["type"] == "datetime"

    def test_carts_carry_the_documented_cart_properties(self, sandbox_api: Any) -> None:
        by_name = {p["name"]: p for p in sandbox_api.get("/crm/v3/properties/cart").json()["results"]}
        for name in (
            "hs_cart_name",
            "hs_external_cart_id",
            "hs_external_status",
            "hs_cart_url",
            "hs_cart_discount",
        ):
            assert name in by_name
        # Free text: no published option list (reference §6 "Abandoned carts").
        assert by_name["hs_external_status"]["type"] == "string"
        assert "hs_pipeline" not in by_name

    def test_pipeline_stage_options_are_the_live_stages(self, sandbox_api: Any) -> None:
        stage = next(
            p
            for p in sandbox_api.get("/crm/v3/properties/orders").json()["results"]
            if p["name"] == "hs_pipeline_stage"
        )
        pipelines = sandbox_api.get("/crm/v3/pipelines/orders").json()["results"]
        stage_ids = [s["id"] for p in pipelines for s in p["stages"]]
        assert [o["value"] for o in stage["options"]] == stage_ids

    def test_properties_param_filters_and_archived_lists_only_archived(self, sandbox_api: Any) -> None:
        response = sandbox_api.get("/crm/v3/properties/orders", params={"properties": "hs_order_name,hs_tax"})
        assert sorted(names(response)) == ["hs_order_name", "hs_tax"]
        assert names(sandbox_api.get("/crm/v3/properties/orders", params={"archived": "true"})) == []

    def test_unknown_object_type_is_a_400(self, sandbox_api: Any) -> None:
        response = sandbox_api.get("/crm/v3/properties/invoices_of_doom")
        assert response.status_code == 400
        assert response.json()["category"] == "VALIDATION_ERROR"


class TestCreate:
    def test_create_answers_201_and_the_property_reads_back(self, sandbox_api: Any) -> None:
        created = sandbox_api.post("/crm/v3/properties/order", json=new_property())
        assert created.status_code == 201
        body = created.json()
        assert body["modificationMetadata"] == {
            "archivable": True,
            "readOnlyDefinition": False,
            "readOnlyValue": False,
        }
        assert "hubspotDefined" not in body
        fetched = sandbox_api.get("/crm/v3/properties/0-123/gift_message")
        assert fetched.status_code == 200
        assert fetched.json() == body

    def test_a_duplicate_name_is_a_409_with_hubspots_body(self, sandbox_api: Any) -> None:
        assert sandbox_api.post("/crm/v3/properties/orders", json=new_property()).status_code == 201
        response = sandbox_api.post("/crm/v3/properties/orders", json=new_property(label="Again"))
        assert response.status_code == 409
        body = response.json()
        assert body["status"] == "error"
        assert body["category"] == "OBJECT_ALREADY_EXISTS"
        assert body["correlationId"]
        assert "gift_message" in body["message"]

    def test_a_default_name_is_taken_too(self, sandbox_api: Any) -> None:
        response = sandbox_api.post("/crm/v3/properties/orders", json=new_property(name="hs_order_name"))
        assert response.status_code == 409

    @pytest.mark.parametrize(
        ("type_", "field_type"),
        [
            ("number", "select"),
            ("string", "number"),
            ("bool", "text"),
            ("date", "text"),
            ("enumeration", "textarea"),
        ],
    )
    def test_type_and_field_type_must_go_together(
        self, sandbox_api: Any, type_: str, field_type: str
    ) -> None:
        response = sandbox_api.post(
            "/crm/v3/properties/orders", json=new_property(type=type_, fieldType=field_type)
        )
        assert response.status_code == 400
        assert response.json()["category"] == "VALIDATION_ERROR"
        assert sandbox_api.get("/crm/v3/properties/orders/gift_message").status_code == 404

    @pytest.mark.parametrize(
        ("type_", "field_type"), [("number", "calculation_equation"), ("string", "phonenumber")]
    )
    def test_valid_combinations_are_accepted(self, sandbox_api: Any, type_: str, field_type: str) -> None:
        response = sandbox_api.post(
            "/crm/v3/properties/orders", json=new_property(type=type_, fieldType=field_type)
        )
        assert response.status_code == 201

    def test_unknown_type_missing_group_and_bad_name_are_400s(self, sandbox_api: Any) -> None:
        for body in (
            new_property(type="money"),
            new_property(fieldType="slider"),
            new_property(groupName="no_such_group"),
            new_property(name="Gift Message"),
            {k: v for k, v in new_property().items() if k != "label"},
        ):
            response = sandbox_api.post("/crm/v3/properties/orders", json=body)
            assert response.status_code == 400, body

    def test_bool_gets_true_and_false_options(self, sandbox_api: Any) -> None:
        body = sandbox_api.post(
            "/crm/v3/properties/orders",
            json=new_property(name="is_gift", type="bool", fieldType="booleancheckbox"),
        ).json()
        assert [o["value"] for o in body["options"]] == ["true", "false"]

    def test_duplicate_option_values_are_refused(self, sandbox_api: Any) -> None:
        options = [{"label": "A", "value": "a"}, {"label": "Also A", "value": "a"}]
        body = new_property(name="wrap", type="enumeration", fieldType="select", options=options)
        assert sandbox_api.post("/crm/v3/properties/orders", json=body).status_code == 400

    def test_a_new_enumeration_validates_record_writes(self, sandbox_api: Any) -> None:
        options = [{"label": "Paper", "value": "paper", "displayOrder": 0}, {"label": "Box", "value": "box"}]
        body = new_property(name="gift_wrap", type="enumeration", fieldType="select", options=options)
        assert sandbox_api.post("/crm/v3/properties/orders", json=body).status_code == 201
        ok = sandbox_api.post(
            "/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#1", "gift_wrap": "box"}}
        )
        assert ok.status_code == 201
        bad = sandbox_api.post(
            "/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#2", "gift_wrap": "tin"}}
        )
        assert bad.status_code == 400
        assert "INVALID_OPTION" in bad.text


class TestUpdateAndArchive:
    def test_patch_changes_a_custom_property(self, sandbox_api: Any) -> None:
        sandbox_api.post("/crm/v3/properties/orders", json=new_property())
        response = sandbox_api.patch(
            "/crm/v3/properties/orders/gift_message", json={"label": "Gift note", "hidden": True}
        )
        assert response.status_code == 200
        assert response.json()["label"] == "Gift note"
        assert response.json()["hidden"] is True
        assert sandbox_api.get("/crm/v3/properties/orders/gift_message").json()["label"] == "Gift note"

    def test_patch_validates_field_type_and_group(self, sandbox_api: Any) -> None:
        sandbox_api.post("/crm/v3/properties/orders", json=new_property())
        assert (
            sandbox_api.patch(
                "/crm/v3/properties/orders/gift_message", json={"fieldType": "number"}
            ).status_code
            == 400
        )
        assert (
            sandbox_api.patch(
                "/crm/v3/properties/orders/gift_message", json={"groupName": "nope"}
            ).status_code
            == 400
        )

    def test_a_read_only_definition_cannot_be_changed(self, sandbox_api: Any) -> None:
        response = sandbox_api.patch("/crm/v3/properties/orders/hs_order_name", json={"label": "Title"})
        assert response.status_code == 400
        assert sandbox_api.get("/crm/v3/properties/orders/hs_order_name").json()["label"] == "Name"

    def test_a_default_enumeration_may_get_new_options(self, sandbox_api: Any) -> None:
        current = sandbox_api.get("/crm/v3/properties/orders/hs_fulfillment_status").json()["options"]
        options = [*current, {"label": "On hold", "value": "On hold", "hidden": False}]
        response = sandbox_api.patch(
            "/crm/v3/properties/orders/hs_fulfillment_status", json={"options": options}
        )
        assert response.status_code == 200
        assert "On hold" in [o["value"] for o in response.json()["options"]]

    def test_read_only_definitions_cannot_be_archived(self, sandbox_api: Any) -> None:
        response = sandbox_api.delete("/crm/v3/properties/orders/hs_order_name")
        assert response.status_code == 400
        assert sandbox_api.get("/crm/v3/properties/orders/hs_order_name").status_code == 200

    def test_archive_hides_the_property_and_keeps_its_name(self, sandbox_api: Any) -> None:
        sandbox_api.post("/crm/v3/properties/orders", json=new_property())
        assert sandbox_api.delete("/crm/v3/properties/orders/gift_message").status_code == 204
        assert sandbox_api.get("/crm/v3/properties/orders/gift_message").status_code == 404
        assert "gift_message" not in names(sandbox_api.get("/crm/v3/properties/orders"))
        archived = sandbox_api.get("/crm/v3/properties/orders", params={"archived": "true"})
        assert names(archived) == ["gift_message"]
        assert archived.json()["results"][0]["archived"] is True
        assert "archivedAt" in archived.json()["results"][0]
        assert (
            sandbox_api.get("/crm/v3/properties/orders/gift_message", params={"archived": "true"}).status_code
            == 200
        )
        assert sandbox_api.post("/crm/v3/properties/orders", json=new_property()).status_code == 409

    def test_missing_property_is_a_404(self, sandbox_api: Any) -> None:
        response = sandbox_api.get("/crm/v3/properties/orders/nope")
        assert response.status_code == 404
        assert response.json()["category"] == "OBJECT_NOT_FOUND"
        assert sandbox_api.patch("/crm/v3/properties/orders/nope", json={"label": "x"}).status_code == 404
        assert sandbox_api.delete("/crm/v3/properties/orders/nope").status_code == 404


class TestBatch:
    def test_batch_create_answers_201_or_207_with_item_errors(self, sandbox_api: Any) -> None:
        ok = sandbox_api.post("/crm/v3/properties/orders/batch/create", json={"inputs": [new_property()]})
        assert ok.status_code == 201
        assert ok.json()["status"] == "COMPLETE"
        assert [p["name"] for p in ok.json()["results"]] == ["gift_message"]
        mixed = sandbox_api.post(
            "/crm/v3/properties/orders/batch/create",
            json={"inputs": [new_property(name="gift_from"), new_property()]},
        )
        assert mixed.status_code == 207
        body = mixed.json()
        assert [p["name"] for p in body["results"]] == ["gift_from"]
        assert body["numErrors"] == 1
        error = body["errors"][0]
        assert {"status", "category", "message", "context", "errors", "links"} <= error.keys()
        assert error["category"] == "OBJECT_ALREADY_EXISTS"
        assert {"startedAt", "completedAt"} <= body.keys()

    def test_batch_read_reports_missing_names(self, sandbox_api: Any) -> None:
        response = sandbox_api.post(
            "/crm/v3/properties/orders/batch/read",
            json={"archived": False, "inputs": [{"name": "hs_order_name"}, {"name": "nope"}]},
        )
        assert response.status_code == 207
        assert [p["name"] for p in response.json()["results"]] == ["hs_order_name"]
        assert response.json()["errors"][0]["context"] == {"propertyName": ["nope"]}
        full = sandbox_api.post("/crm/v3/properties/orders/batch/read", json={"inputs": [{"name": "hs_tax"}]})
        assert full.status_code == 200

    def test_batch_archive_refuses_read_only_definitions_entirely(self, sandbox_api: Any) -> None:
        sandbox_api.post("/crm/v3/properties/orders", json=new_property())
        refused = sandbox_api.post(
            "/crm/v3/properties/orders/batch/archive",
            json={"inputs": [{"name": "gift_message"}, {"name": "hs_tax"}]},
        )
        assert refused.status_code == 400
        assert sandbox_api.get("/crm/v3/properties/orders/gift_message").status_code == 200
        done = sandbox_api.post(
            "/crm/v3/properties/orders/batch/archive", json={"inputs": [{"name": "gift_message"}]}
        )
        assert done.status_code == 204
        assert sandbox_api.get("/crm/v3/properties/orders/gift_message").status_code == 404


class TestGroups:
    def test_groups_list_create_get_patch_delete(self, sandbox_api: Any) -> None:
        listed = sandbox_api.get("/crm/v3/properties/orders/groups")
        assert listed.status_code == 200
        assert "orderinformation" in [g["name"] for g in listed.json()["results"]]
        for group in listed.json()["results"]:
            assert {"name", "label", "displayOrder", "archived"} <= group.keys()
        created = sandbox_api.post(
            "/crm/v3/properties/orders/groups", json={"name": "gifting", "label": "Gifting"}
        )
        assert created.status_code == 201
        assert created.json() == {
            "name": "gifting",
            "label": "Gifting",
            "displayOrder": -1,
            "archived": False,
        }
        again = sandbox_api.post(
            "/crm/v3/properties/orders/groups", json={"name": "gifting", "label": "Again"}
        )
        assert again.status_code == 409
        patched = sandbox_api.patch(
            "/crm/v3/properties/orders/groups/gifting", json={"label": "Gifts", "displayOrder": 3}
        )
        assert patched.json()["label"] == "Gifts" and patched.json()["displayOrder"] == 3
        assert sandbox_api.get("/crm/v3/properties/orders/groups/gifting").json()["label"] == "Gifts"
        # A group with properties in it stays; an empty one goes.
        sandbox_api.post("/crm/v3/properties/orders", json=new_property(groupName="gifting"))
        assert sandbox_api.delete("/crm/v3/properties/orders/groups/gifting").status_code == 400
        sandbox_api.delete("/crm/v3/properties/orders/gift_message")
        assert sandbox_api.delete("/crm/v3/properties/orders/groups/gifting").status_code == 204
        assert sandbox_api.get("/crm/v3/properties/orders/groups/gifting").status_code == 404

    def test_hubspot_groups_cannot_be_deleted(self, sandbox_api: Any) -> None:
        assert sandbox_api.delete("/crm/v3/properties/contacts/groups/contactinformation").status_code == 400

    def test_properties_need_an_existing_group(self, sandbox_api: Any) -> None:
        sandbox_api.post("/crm/v3/properties/orders/groups", json={"name": "gifting", "label": "Gifting"})
        assert (
            sandbox_api.post("/crm/v3/properties/orders", json=new_property(groupName="gifting")).status_code
            == 201
        )


class TestLegacyAndSchemas:
    def test_v2_list_is_a_bare_list_in_the_v2_shape(self, sandbox_api: Any) -> None:
        response = sandbox_api.get("/properties/v2/contacts/properties")
        assert response.status_code == 200
        body = response.json()
        assert isinstance(body, list)
        email = next(p for p in body if p["name"] == "email")
        assert email["readOnlyValue"] is False and email["readOnlyDefinition"] is True
        assert isinstance(email["createdAt"], int) and email["deleted"] is False
        assert "modificationMetadata" not in email
        assert {p["name"] for p in body} == set(names(sandbox_api.get("/crm/v3/properties/contacts")))

    @pytest.mark.parametrize("base", ["/crm/v3/schemas", "/crm-object-schemas/v3/schemas"])
    def test_schemas_list_custom_objects_only(self, sandbox_api: Any, base: str) -> None:
        response = sandbox_api.get(base)
        assert response.status_code == 200
        assert response.json() == {"results": []}

    @pytest.mark.parametrize("object_type", ["order", "orders", "0-123"])
    def test_schema_of_a_standard_type(self, sandbox_api: Any, object_type: str) -> None:
        body = sandbox_api.get(f"/crm/v3/schemas/{object_type}").json()
        assert body["objectTypeId"] == "0-123"
        assert body["requiredProperties"] == ["hs_order_name"]
        assert body["labels"] == {"singular": "Order", "plural": "Orders"}
        ids = {a["id"] for a in body["associations"]}
        # to contacts, line items and carts, and to HubSpot's other standard objects (deal 512, company 934)
        assert {"507", "513", "593", "512", "934"} <= ids
        assert all(a["fromObjectTypeId"] == "0-123" for a in body["associations"])
        assert {"associations", "labels", "requiredProperties", "name", "id", "properties"} <= body.keys()
        assert "hs_order_name" in [p["name"] for p in body["properties"]]

    def test_unknown_schema_is_a_404(self, sandbox_api: Any) -> None:
        assert sandbox_api.get("/crm/v3/schemas/2-99999").status_code == 404


SDK_SCRIPT = """
import json, sys
import hubspot
from hubspot.crm.properties import (
    BatchReadInputPropertyName, PropertyCreate, PropertyGroupCreate, PropertyName,
)

client = hubspot.Client.create(access_token=sys.argv[2], host=sys.argv[1])
out = {}
out["orders"] = len(client.crm.properties.core_api.get_all(object_type="orders").results)
out["contacts"] = len(client.crm.properties.core_api.get_all(object_type="contacts").results)
client.crm.properties.groups_api.create(
    object_type="orders", property_group_create=PropertyGroupCreate(name="sdk_group", label="SDK group")
)
created = client.crm.properties.core_api.create(
    object_type="orders",
    property_create=PropertyCreate(
        name="sdk_choice", label="Choice", type="enumeration", field_type="select", group_name="sdk_group",
        options=[{"label": "One", "value": "1", "hidden": False, "displayOrder": 0}],
    ),
)
out["created"] = [created.name, created.options[0].value, created.modification_metadata.archivable]
read = client.crm.properties.batch_api.read(
    object_type="orders",
    batch_read_input_property_name=BatchReadInputPropertyName(
        archived=False, inputs=[PropertyName(name="sdk_choice"), PropertyName(name="missing")]
    ),
)
out["batch"] = [len(read.results), read.num_errors]
out["groups"] = [g.name for g in client.crm.properties.groups_api.get_all(object_type="orders").results]
out["schemas"] = len(client.crm.schemas.core_api.get_all().results)
schema = client.crm.schemas.core_api.get_by_id(object_type="carts")
out["schema"] = [schema.object_type_id, sorted(a.id for a in schema.associations)]
client.crm.properties.core_api.archive(object_type="orders", property_name="sdk_choice")
print(json.dumps(out))
"""


def test_the_official_sdk_deserialises_every_answer(sandbox: Any) -> None:
    out = run_sdk_script(SDK_SCRIPT, sandbox.url, sandbox.config.token)
    assert out["orders"] > 40 and out["contacts"] > 20
    assert out["created"] == ["sdk_choice", "1", True]
    assert out["batch"] == [1, 1]
    assert "sdk_group" in out["groups"]
    assert out["schemas"] == 0
    # carts: to contacts, line items and orders, and to HubSpot's other standard objects (deal, quote)
    assert out["schema"] == ["0-142", ["1347", "586", "590", "592", "732"]]
