"""CRM v3 object endpoints: create, read, update, archive, list (reference §1, checklist §10)."""

from __future__ import annotations

from typing import Any

import pytest

from hubspot_sandbox import objects
from hubspot_sandbox.state import ChangeEvent
from tests.sandbox.helpers import (
    DEFAULT_PIPELINE,
    ISO_MS,
    ORDER_STAGES,
    RETURNS_PIPELINE,
    assert_error,
    contact,
    create,
    order,
    property_problems,
)

pytestmark = pytest.mark.sandbox(empty=True)


def batch_create(api: Any, type_name: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = api.post(f"/crm/v3/objects/{type_name}/batch/create", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def make_orders(api: Any, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 100):
        chunk = [
            {"properties": {"hs_order_name": f"Order {n}"}} for n in range(start, min(count, start + 100))
        ]
        ids += [r["id"] for r in batch_create(api, "orders", chunk)]
    return ids


class TestCreateAndRead:
    def test_create_answers_201_with_string_values_and_millisecond_timestamps(self, sandbox_api):
        body = order(sandbox_api, "Camping supplies", hs_total_price=12.5, hs_exchange_rate=1)
        assert body["id"].isdigit()
        props = body["properties"]
        assert props["hs_order_name"] == "Camping supplies"
        assert props["hs_total_price"] == "12.5"
        assert props["hs_exchange_rate"] == "1"
        assert props["hs_object_id"] == body["id"]
        assert props["hs_object_source"] == "API"
        assert props["hs_object_source_label"] == "INTERNAL_PROCESSING"
        assert ISO_MS.match(body["createdAt"]) and ISO_MS.match(body["updatedAt"])
        assert props["hs_createdate"] == body["createdAt"]
        assert props["hs_lastmodifieddate"] == body["updatedAt"]
        assert body["archived"] is False
        assert all(isinstance(v, str) for v in props.values())

    def test_contacts_use_createdate_and_lastmodifieddate(self, sandbox_api):
        body = contact(sandbox_api, "ada@Example.com", firstname="Ada")
        props = body["properties"]
        assert props["hs_email_domain"] == "example.com"
        assert props["createdate"] == body["createdAt"]
        assert props["lastmodifieddate"] == body["updatedAt"]
        assert "hs_createdate" not in props

    def test_bare_get_returns_only_the_default_properties(self, sandbox_api):
        created = order(sandbox_api, "Tent", hs_currency_code="USD")
        body = sandbox_api.get(f"/crm/v3/objects/orders/{created['id']}").json()
        assert set(body["properties"]) == {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}

    def test_requested_properties_without_a_value_and_unknown_ones_are_left_out(self, sandbox_api):
        created = order(sandbox_api, "Tent")
        response = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}",
            params={"properties": "hs_order_name,hs_source_store,no_such_property"},
        )
        assert response.status_code == 200
        assert response.json()["properties"] == {"hs_order_name": "Tent"}

    @pytest.mark.parametrize("path_name", ["orders", "order", "0-123", "ORDERS", "Order"])
    def test_orders_answer_to_singular_plural_type_id_and_any_case(self, sandbox_api, path_name):
        created = order(sandbox_api)
        response = sandbox_api.get(f"/crm/v3/objects/{path_name}/{created['id']}")
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]

    @pytest.mark.parametrize(
        "names",
        [("carts", "cart", "0-142"), ("line_items", "line_item", "0-8"), ("contacts", "contact", "0-1")],
    )
    def test_every_type_answers_to_its_names(self, sandbox_api, names):
        created = create(sandbox_api, names[0], {})
        for name in names:
            assert sandbox_api.get(f"/crm/v3/objects/{name}/{created['id']}").status_code == 200

    def test_the_date_versioned_path_family_answers_too(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.get(f"/crm/objects/2026-03/orders/{created['id']}")
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]

    def test_an_unknown_object_type_is_a_400(self, sandbox_api):
        assert_error(sandbox_api.get("/crm/v3/objects/deal_flows"), 400, "VALIDATION_ERROR")

    def test_a_missing_record_is_a_404_with_hubspots_body(self, sandbox_api):
        body = assert_error(sandbox_api.get("/crm/v3/objects/orders/999"), 404, "OBJECT_NOT_FOUND")
        assert body["message"] == "resource not found"

    def test_get_by_a_unique_id_property(self, sandbox_api):
        created = order(sandbox_api, "Ext", hs_external_order_id="SHOP-1001")
        response = sandbox_api.get(
            "/crm/v3/objects/orders/SHOP-1001", params={"idProperty": "hs_external_order_id"}
        )
        assert response.json()["id"] == created["id"]
        person = contact(sandbox_api, "grace@example.com")
        by_email = sandbox_api.get(
            "/crm/v3/objects/contacts/GRACE@example.com", params={"idProperty": "email"}
        )
        assert by_email.json()["id"] == person["id"]

    def test_a_non_unique_id_property_is_refused(self, sandbox_api):
        created = order(sandbox_api, "Ext")
        response = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}", params={"idProperty": "hs_order_name"}
        )
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_properties_with_history_lists_values_newest_first(self, sandbox_api):
        created = order(sandbox_api, "First")
        sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_order_name": "Second"}}
        )
        body = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}", params={"propertiesWithHistory": "hs_order_name"}
        ).json()
        history = body["propertiesWithHistory"]["hs_order_name"]
        assert [h["value"] for h in history] == ["Second", "First"]
        assert all(h["sourceType"] == "API" and ISO_MS.match(h["timestamp"]) for h in history)

    def test_a_line_items_amount_is_quantity_times_price(self, sandbox_api):
        body = create(sandbox_api, "line_items", {"name": "Mug", "price": "7.5", "quantity": "4"})
        assert body["properties"]["amount"] == "30"


class TestUpdate:
    def test_patch_answers_200_and_moves_the_modified_date(self, sandbox_api):
        created = order(sandbox_api, "Before")
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_order_name": "After"}}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["properties"]["hs_order_name"] == "After"
        assert body["updatedAt"] > created["updatedAt"]
        assert body["properties"]["hs_lastmodifieddate"] == body["updatedAt"]
        assert body["createdAt"] == created["createdAt"]

    def test_an_unknown_property_is_a_validation_error_naming_it(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}",
            json={"properties": {"missing": "x", "hs_order_name": "y"}},
        )
        body = assert_error(response, 400, "VALIDATION_ERROR")
        [problem] = property_problems(body)
        assert problem["error"] == "PROPERTY_DOESNT_EXIST"
        assert problem["name"] == "missing"
        assert problem["message"] == 'Property "missing" does not exist'
        assert problem["isValid"] is False
        assert body["errors"] == [
            {
                "message": 'Property "missing" does not exist',
                "code": "PROPERTY_DOESNT_EXIST",
                "context": {"propertyName": ["missing"]},
            }
        ]
        # nothing was written
        again = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}", params={"properties": "hs_order_name"}
        )
        assert again.json()["properties"]["hs_order_name"] == "Order"

    @pytest.mark.parametrize("name", ["hs_object_id", "hs_lastmodifieddate", "hs_homecurrency_amount"])
    def test_read_only_properties_are_refused(self, sandbox_api, name):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {name: "1"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert (problem["error"], problem["name"]) == ("READ_ONLY_VALUE", name)

    def test_a_value_that_is_not_an_option_is_refused(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_currency_code": "XYZ"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["error"] == "INVALID_OPTION"
        assert "XYZ was not one of the allowed options" in problem["message"]

    def test_a_number_property_refuses_text(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_total_price": "lots"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["error"] == "INVALID_INTEGER"

    def test_an_empty_string_clears_a_value(self, sandbox_api):
        created = order(sandbox_api, hs_source_store="Portland")
        url = f"/crm/v3/objects/orders/{created['id']}"
        assert sandbox_api.patch(url, json={"properties": {"hs_source_store": ""}}).status_code == 200
        body = sandbox_api.get(
            url, params={"properties": "hs_source_store", "propertiesWithHistory": "hs_source_store"}
        )
        assert "hs_source_store" not in body.json()["properties"]
        assert [h["value"] for h in body.json()["propertiesWithHistory"]["hs_source_store"]] == [
            "",
            "Portland",
        ]

    def test_patching_a_missing_record_is_a_404(self, sandbox_api):
        response = sandbox_api.patch(
            "/crm/v3/objects/orders/123", json={"properties": {"hs_order_name": "x"}}
        )
        assert_error(response, 404, "OBJECT_NOT_FOUND")

    def test_patch_by_id_property(self, sandbox_api):
        created = order(sandbox_api, hs_external_order_id="EXT-7")
        response = sandbox_api.patch(
            "/crm/v3/objects/orders/EXT-7",
            params={"idProperty": "hs_external_order_id"},
            json={"properties": {"hs_order_name": "Found"}},
        )
        assert response.json()["id"] == created["id"]

    def test_an_order_needs_a_name(self, sandbox_api):
        response = sandbox_api.post(
            "/crm/v3/objects/orders", json={"properties": {"hs_currency_code": "USD"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["name"] == "hs_order_name"

    def test_a_second_contact_with_the_same_email_is_a_conflict(self, sandbox_api):
        first = contact(sandbox_api, "same@example.com")
        response = sandbox_api.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": "SAME@example.com"}}
        )
        body = assert_error(response, 409, "CONFLICT")
        assert body["message"] == f"Contact already exists. Existing ID: {first['id']}"

    def test_a_unique_property_value_cannot_be_given_twice(self, sandbox_api):
        order(sandbox_api, hs_external_order_id="DUP-1")
        response = sandbox_api.post(
            "/crm/v3/objects/orders",
            json={"properties": {"hs_order_name": "B", "hs_external_order_id": "DUP-1"}},
        )
        assert_error(response, 400, "VALIDATION_ERROR")


class TestOrderPipelines:
    def test_a_new_order_lands_in_the_default_pipeline_and_its_first_stage(self, sandbox_api):
        created = order(sandbox_api)
        assert created["properties"]["hs_pipeline"] == DEFAULT_PIPELINE
        assert created["properties"]["hs_pipeline_stage"] == ORDER_STAGES["open"]

    def test_an_unknown_stage_is_a_validation_error_that_says_why(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_pipeline_stage": "nope"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["name"] == "hs_pipeline_stage"
        assert problem["error"] == "INVALID_OPTION"
        assert DEFAULT_PIPELINE in problem["message"] and ORDER_STAGES["open"] in problem["message"]

    def test_a_stage_of_another_pipeline_is_refused(self, sandbox_api):
        response = sandbox_api.post(
            "/crm/v3/objects/orders",
            json={"properties": {"hs_order_name": "x", "hs_pipeline_stage": "87134203"}},
        )
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_an_unknown_pipeline_is_refused(self, sandbox_api):
        response = sandbox_api.post(
            "/crm/v3/objects/orders", json={"properties": {"hs_order_name": "x", "hs_pipeline": "404"}}
        )
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["name"] == "hs_pipeline"

    def test_moving_to_another_pipeline_without_a_stage_takes_its_first_stage(self, sandbox_api):
        created = order(sandbox_api)
        response = sandbox_api.patch(
            f"/crm/v3/objects/orders/{created['id']}", json={"properties": {"hs_pipeline": RETURNS_PIPELINE}}
        )
        assert response.status_code == 200
        props = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}", params={"properties": "hs_pipeline,hs_pipeline_stage"}
        ).json()["properties"]
        assert props == {"hs_pipeline": RETURNS_PIPELINE, "hs_pipeline_stage": "87134203"}


class TestArchive:
    def test_delete_archives_and_answers_204_even_twice(self, sandbox_api):
        created = order(sandbox_api)
        url = f"/crm/v3/objects/orders/{created['id']}"
        response = sandbox_api.delete(url)
        assert response.status_code == 204 and response.content == b""
        assert sandbox_api.get(url).status_code == 404
        archived = sandbox_api.get(url, params={"archived": "true"}).json()
        assert archived["archived"] is True and ISO_MS.match(archived["archivedAt"])
        # archiving does not move the modified date (reference §9 item 2)
        assert archived["updatedAt"] == created["updatedAt"]
        assert sandbox_api.delete(url).status_code == 204

    def test_archived_true_lists_only_archived_records(self, sandbox_api):
        ids = make_orders(sandbox_api, 5)
        sandbox_api.delete(f"/crm/v3/objects/orders/{ids[1]}")
        live = sandbox_api.get("/crm/v3/objects/orders").json()["results"]
        gone = sandbox_api.get("/crm/v3/objects/orders", params={"archived": "true"}).json()["results"]
        assert [r["id"] for r in gone] == [ids[1]]
        assert ids[1] not in [r["id"] for r in live] and len(live) == 4


class TestList:
    def test_pages_of_ten_by_default_until_a_last_page_without_paging(self, sandbox_api):
        ids = make_orders(sandbox_api, 25)
        seen: list[str] = []
        sizes = []
        params: dict[str, str] = {}
        while True:
            body = sandbox_api.get("/crm/v3/objects/orders", params=params).json()
            sizes.append(len(body["results"]))
            seen += [r["id"] for r in body["results"]]
            if "paging" not in body:
                break
            assert body["paging"]["next"]["link"].endswith(f"after={body['paging']['next']['after']}")
            params = {"after": body["paging"]["next"]["after"]}
        assert sizes == [10, 10, 5]
        assert seen == ids

    def test_a_full_last_page_has_no_paging(self, sandbox_api):
        make_orders(sandbox_api, 10)
        body = sandbox_api.get("/crm/v3/objects/orders", params={"limit": 10}).json()
        assert len(body["results"]) == 10 and "paging" not in body

    def test_limit_is_at_most_100(self, sandbox_api):
        make_orders(sandbox_api, 120)
        body = sandbox_api.get("/crm/v3/objects/orders", params={"limit": 500}).json()
        assert len(body["results"]) == 100 and "paging" in body

    def test_a_legacy_offset_client_ends_on_a_short_page(self, sandbox_api):
        ids = make_orders(sandbox_api, 25)
        body = sandbox_api.get("/crm/v3/objects/orders", params={"offset": 20, "limit": 10}).json()
        assert [r["id"] for r in body["results"]] == ids[20:]

    def test_history_lowers_the_page_size(self, sandbox_api):
        make_orders(sandbox_api, 60)
        body = sandbox_api.get(
            "/crm/v3/objects/orders", params={"limit": 100, "propertiesWithHistory": "hs_order_name"}
        ).json()
        assert len(body["results"]) == 50
        assert body["results"][0]["propertiesWithHistory"]["hs_order_name"][0]["value"] == "Order 0"

    def test_associations_use_hubspots_keys_and_type_strings(self, sandbox_api):
        person = contact(sandbox_api, "buyer@example.com")
        item = create(sandbox_api, "line_items", {"name": "Stove"})
        links = [(person["id"], 507), (item["id"], 513)]
        created = create(
            sandbox_api,
            "orders",
            {"hs_order_name": "Linked"},
            associations=[
                {
                    "to": {"id": to_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}],
                }
                for to_id, t in links
            ],
        )
        body = sandbox_api.get(
            "/crm/v3/objects/orders", params={"associations": "contacts,line_items,carts"}
        ).json()
        [result] = body["results"]
        assert result["id"] == created["id"]
        assert result["associations"] == {
            "contacts": {"results": [{"id": person["id"], "type": "order_to_contact"}]},
            "line items": {"results": [{"id": item["id"], "type": "order_to_line_item"}]},
        }
        back = sandbox_api.get(
            f"/crm/v3/objects/contacts/{person['id']}", params={"associations": "orders"}
        ).json()
        assert back["associations"]["orders"]["results"] == [
            {"id": created["id"], "type": "contact_to_order"}
        ]

    def test_association_lists_page_at_100(self, sandbox_api):
        created = order(sandbox_api)
        items = batch_create(
            sandbox_api, "line_items", [{"properties": {"name": f"i{n}"}} for n in range(100)]
        )
        items += batch_create(
            sandbox_api, "line_items", [{"properties": {"name": f"j{n}"}} for n in range(5)]
        )
        inputs = [{"from": {"id": created["id"]}, "to": {"id": i["id"]}} for i in items]
        sandbox_api.post(
            "/crm/v4/associations/orders/line_items/batch/associate/default", json={"inputs": inputs}
        )
        body = sandbox_api.get(
            f"/crm/v3/objects/orders/{created['id']}", params={"associations": "line_items"}
        ).json()
        page = body["associations"]["line items"]
        assert len(page["results"]) == 100
        rest = sandbox_api.get(page["paging"]["next"]["link"]).json()
        assert len(rest["results"]) == 5 and "paging" not in rest
        assert {r["id"] for r in page["results"] + rest["results"]} == {i["id"] for i in items}


class TestChangeEvents:
    def test_writes_emit_hubspots_event_types(self, sandbox, sandbox_api):
        events: list[ChangeEvent] = []
        sandbox.state.subscribe(events.append)

        def drain() -> list[tuple[str, str | None]]:
            kinds = [(e.subscription_type, e.property_name) for e in events]
            assert all(e.object_type_id == "0-123" for e in events)
            events.clear()
            return kinds

        created = order(sandbox_api, "Evented", hs_source_store="Portland")
        url = f"/crm/v3/objects/orders/{created['id']}"
        on_create = drain()
        assert on_create[0] == ("object.creation", None)
        assert {"hs_order_name", "hs_source_store", "hs_pipeline_stage"} <= {
            name for _, name in on_create[1:]
        }
        sandbox_api.patch(
            url, json={"properties": {"hs_order_name": "Renamed", "hs_source_store": "Portland"}}
        )
        # only what changed; never the modified date (reference §7.2)
        assert drain() == [("object.propertyChange", "hs_order_name")]
        sandbox_api.delete(url)
        assert drain() == [("object.deletion", None)]
        assert sandbox_api.post(f"/_sandbox/restore/orders/{created['id']}").status_code == 200
        assert drain() == [("object.restore", None)]

    def test_a_repeated_trace_id_returns_the_first_record(self, sandbox):
        first = objects.create_record(sandbox.state, "orders", {"hs_order_name": "A"}, trace_id="t-1")
        again = objects.create_record(sandbox.state, "order", {"hs_order_name": "A"}, trace_id="t-1")
        assert first is again
        assert len(sandbox.state.records["orders"]) == 1
