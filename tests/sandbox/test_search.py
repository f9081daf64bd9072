"""POST /crm/v3/objects/{T}/search (reference §1.5, checklist §10 "Search")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubspot_sandbox import objects
from tests.sandbox.helpers import assert_error, contact, create, order

pytestmark = pytest.mark.sandbox(empty=True)

SEARCH = "/crm/v3/objects/orders/search"


def search(api: Any, *filters: dict[str, Any], **body: Any) -> dict[str, Any]:
    if filters:
        body.setdefault("filterGroups", [{"filters": list(filters)}])
    body.setdefault("properties", ["hs_order_name"])
    body.setdefault("limit", 200)
    response = api.post(SEARCH, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def names(result: dict[str, Any]) -> list[str]:
    return [r["properties"]["hs_order_name"] for r in result["results"]]


@pytest.fixture
def shop(sandbox_api: Any) -> dict[str, dict[str, Any]]:
    """Four orders with a spread of values to filter on."""
    rows = {
        "Tent": {
            "hs_total_price": "120",
            "hs_currency_code": "USD",
            "hs_source_store": "REI Portland",
            "hs_order_date": "2024-03-01T10:00:00.000Z",
            "hs_billing_address_email": "ann@hubspot.com",
        },
        "Stove": {
            "hs_total_price": "45.5",
            "hs_currency_code": "EUR",
            "hs_source_store": "REI Seattle",
            "hs_order_date": "2024-03-05T10:00:00.000Z",
            "hs_billing_address_email": "bob@example.com",
        },
        "Lamp": {
            "hs_total_price": "9",
            "hs_currency_code": "USD",
            "hs_order_date": "2024-04-01T00:00:00.000Z",
        },
        "Mat": {"hs_total_price": "300", "hs_currency_code": "GBP", "hs_source_store": "Outdoor Shop"},
    }
    return {name: order(sandbox_api, name, **props) for name, props in rows.items()}


class TestOperators:
    @pytest.mark.parametrize(
        ("operator", "value", "expected"),
        [
            ("EQ", "120", ["Tent"]),
            ("NEQ", "120", ["Stove", "Lamp", "Mat"]),
            ("LT", "45.5", ["Lamp"]),
            ("LTE", "45.5", ["Stove", "Lamp"]),
            ("GT", "120", ["Mat"]),
            ("GTE", "120", ["Tent", "Mat"]),
        ],
    )
    def test_number_comparisons_are_numeric(self, sandbox_api, shop, operator, value, expected):
        result = search(sandbox_api, {"propertyName": "hs_total_price", "operator": operator, "value": value})
        assert names(result) == expected

    def test_between_is_inclusive(self, sandbox_api, shop):
        flt = {"propertyName": "hs_total_price", "operator": "BETWEEN", "value": "9", "highValue": "120"}
        assert names(search(sandbox_api, flt)) == ["Tent", "Stove", "Lamp"]

    def test_dates_filter_as_iso_or_epoch_milliseconds(self, sandbox_api, shop):
        iso = {"propertyName": "hs_order_date", "operator": "GTE", "value": "2024-03-05T10:00:00.000Z"}
        epoch = {
            "propertyName": "hs_order_date",
            "operator": "BETWEEN",
            "value": "1709200000000",
            "highValue": "1709700000000",
        }
        assert names(search(sandbox_api, iso)) == ["Stove", "Lamp"]
        assert names(search(sandbox_api, epoch)) == ["Tent", "Stove"]

    def test_in_and_not_in(self, sandbox_api, shop):
        assert names(
            search(
                sandbox_api, {"propertyName": "hs_currency_code", "operator": "IN", "values": ["EUR", "GBP"]}
            )
        ) == [
            "Stove",
            "Mat",
        ]
        not_in = {"propertyName": "hs_currency_code", "operator": "NOT_IN", "values": ["USD"]}
        assert names(search(sandbox_api, not_in)) == ["Stove", "Mat"]

    def test_string_in_values_must_be_lower_case(self, sandbox_api, shop):
        upper = {"propertyName": "hs_source_store", "operator": "IN", "values": ["REI Portland"]}
        lower = {"propertyName": "hs_source_store", "operator": "IN", "values": ["rei portland"]}
        assert names(search(sandbox_api, upper)) == []
        assert names(search(sandbox_api, lower)) == ["Tent"]

    def test_string_equality_ignores_case_but_enumerations_do_not(self, sandbox_api, shop):
        assert names(
            search(sandbox_api, {"propertyName": "hs_source_store", "operator": "EQ", "value": "rei seattle"})
        ) == ["Stove"]
        assert (
            names(search(sandbox_api, {"propertyName": "hs_currency_code", "operator": "EQ", "value": "usd"}))
            == []
        )

    def test_has_and_not_has_property(self, sandbox_api, shop):
        assert names(
            search(sandbox_api, {"propertyName": "hs_source_store", "operator": "HAS_PROPERTY"})
        ) == [
            "Tent",
            "Stove",
            "Mat",
        ]
        assert names(
            search(sandbox_api, {"propertyName": "hs_source_store", "operator": "NOT_HAS_PROPERTY"})
        ) == ["Lamp"]

    def test_contains_token_with_and_without_a_wildcard(self, sandbox_api, shop):
        token = {"propertyName": "hs_source_store", "operator": "CONTAINS_TOKEN", "value": "rei"}
        wildcard = {
            "propertyName": "hs_billing_address_email",
            "operator": "CONTAINS_TOKEN",
            "value": "*@hubspot.com",
        }
        not_token = {"propertyName": "hs_source_store", "operator": "NOT_CONTAINS_TOKEN", "value": "rei"}
        assert names(search(sandbox_api, token)) == ["Tent", "Stove"]
        assert names(search(sandbox_api, wildcard)) == ["Tent"]
        assert names(search(sandbox_api, not_token)) == ["Lamp", "Mat"]

    def test_filters_and_within_a_group_and_or_across_groups(self, sandbox_api, shop):
        usd_cheap = [
            {"propertyName": "hs_currency_code", "operator": "EQ", "value": "USD"},
            {"propertyName": "hs_total_price", "operator": "LT", "value": "100"},
        ]
        gbp = [{"propertyName": "hs_currency_code", "operator": "EQ", "value": "GBP"}]
        result = search(sandbox_api, filterGroups=[{"filters": usd_cheap}, {"filters": gbp}])
        assert names(result) == ["Lamp", "Mat"]

    def test_the_older_body_with_top_level_filters(self, sandbox_api, shop):
        result = search(
            sandbox_api, filters=[{"propertyName": "hs_currency_code", "operator": "EQ", "value": "EUR"}]
        )
        assert names(result) == ["Stove"]

    def test_an_unknown_operator_is_a_400(self, sandbox_api, shop):
        response = sandbox_api.post(
            SEARCH,
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "hs_total_price", "operator": "LIKE", "value": "1"}]}
                ]
            },
        )
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_associations_pseudo_property(self, sandbox_api, shop):
        person = contact(sandbox_api, "assoc@example.com")
        sandbox_api.put(
            f"/crm/v4/objects/orders/{shop['Stove']['id']}/associations/default/contacts/{person['id']}"
        )
        result = search(
            sandbox_api, {"propertyName": "associations.contact", "operator": "EQ", "value": person["id"]}
        )
        assert names(result) == ["Stove"]

    def test_query_searches_the_default_text_fields(self, sandbox_api, shop):
        assert names(search(sandbox_api, query="sto")) == ["Stove"]
        person = contact(sandbox_api, "carol@example.com", firstname="Carol")
        found = sandbox_api.post("/crm/v3/objects/contacts/search", json={"query": "carol"}).json()
        assert [r["id"] for r in found["results"]] == [person["id"]]


class TestShapeAndPaging:
    def test_response_has_total_results_and_offset_paging_without_link(self, sandbox_api, shop):
        body = search(sandbox_api, limit=3)
        assert body["total"] == 4
        assert len(body["results"]) == 3
        assert body["paging"] == {"next": {"after": "3"}}
        last = search(sandbox_api, limit=3, after="3")
        assert len(last["results"]) == 1 and "paging" not in last
        first = body["results"][0]
        assert set(first) == {"id", "properties", "createdAt", "updatedAt", "archived"}

    def test_default_limit_is_10_and_default_properties(self, sandbox_api):
        for n in range(12):
            order(sandbox_api, f"O{n}")
        body = sandbox_api.post(SEARCH, json={}).json()
        assert len(body["results"]) == 10 and body["total"] == 12
        assert set(body["results"][0]["properties"]) == {
            "hs_createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
        }

    def test_limit_is_at_most_200(self, sandbox, sandbox_api):
        for n in range(205):
            objects.create_record(sandbox.state, "orders", {"hs_order_name": f"O{n}"})
        body = sandbox_api.post(SEARCH, json={"limit": 500}).json()
        assert len(body["results"]) == 200 and body["paging"]["next"]["after"] == "200"

    def test_default_order_is_creation_oldest_first(self, sandbox, sandbox_api):
        late = objects.create_record(sandbox.state, "orders", {"hs_order_name": "Late"})
        early = objects.create_record(sandbox.state, "orders", {"hs_order_name": "Early"})
        late.created_ms, early.created_ms = 2_000, 1_000  # creation order differs from id order
        assert names(search(sandbox_api)) == ["Early", "Late"]

    def test_one_sort_ascending_or_descending_with_missing_values_last(self, sandbox_api, shop):
        by_price = {"propertyName": "hs_total_price", "direction": "DESCENDING"}
        assert names(search(sandbox_api, sorts=[by_price])) == ["Mat", "Tent", "Stove", "Lamp"]
        by_store = {"propertyName": "hs_source_store", "direction": "ASCENDING"}
        assert names(search(sandbox_api, sorts=[by_store])) == ["Mat", "Tent", "Stove", "Lamp"]
        assert names(search(sandbox_api, sorts=["-hs_total_price"])) == ["Mat", "Tent", "Stove", "Lamp"]

    def test_more_than_one_sort_is_a_400(self, sandbox_api, shop):
        sorts = [{"propertyName": "hs_total_price"}, {"propertyName": "hs_order_name"}]
        assert_error(sandbox_api.post(SEARCH, json={"sorts": sorts}), 400, "VALIDATION_ERROR")

    def test_archived_records_never_match(self, sandbox_api, shop):
        sandbox_api.delete(f"/crm/v3/objects/orders/{shop['Tent']['id']}")
        body = search(sandbox_api)
        assert body["total"] == 3 and "Tent" not in names(body)

    def test_no_rate_limit_headers_on_search(self, sandbox_api, shop):
        response = sandbox_api.post(SEARCH, json={})
        assert not [h for h in response.headers if h.lower().startswith("x-hubspot-ratelimit")]
        listed = sandbox_api.get("/crm/v3/objects/orders")
        assert "X-HubSpot-RateLimit-Remaining" in listed.headers

    def test_createdate_names_the_creation_date_of_orders(self, sandbox_api, shop):
        body = search(sandbox_api, sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}])
        assert names(body) == ["Mat", "Lamp", "Stove", "Tent"]


class TestLimits:
    def flt(self, n: int) -> dict[str, Any]:
        return {"propertyName": "hs_total_price", "operator": "GT", "value": str(n)}

    def test_five_groups_is_the_most(self, sandbox_api):
        groups = [{"filters": [self.flt(n)]} for n in range(5)]
        assert sandbox_api.post(SEARCH, json={"filterGroups": groups}).status_code == 200
        response = sandbox_api.post(SEARCH, json={"filterGroups": [*groups, {"filters": [self.flt(9)]}]})
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_six_filters_per_group_is_the_most(self, sandbox_api):
        six = [self.flt(n) for n in range(6)]
        assert sandbox_api.post(SEARCH, json={"filterGroups": [{"filters": six}]}).status_code == 200
        seven = [*six, self.flt(7)]
        assert_error(
            sandbox_api.post(SEARCH, json={"filterGroups": [{"filters": seven}]}), 400, "VALIDATION_ERROR"
        )

    def test_eighteen_filters_in_all_is_the_most(self, sandbox_api):
        three_by_six = [{"filters": [self.flt(n) for n in range(6)]} for _ in range(3)]
        assert sandbox_api.post(SEARCH, json={"filterGroups": three_by_six}).status_code == 200
        nineteen = [*three_by_six, {"filters": [self.flt(1)]}]
        assert_error(sandbox_api.post(SEARCH, json={"filterGroups": nineteen}), 400, "VALIDATION_ERROR")

    def test_a_body_over_3000_characters_is_a_400(self, sandbox_api):
        body = {"query": "x" * 2960, "limit": 10}
        assert len(json.dumps(body)) <= 3000
        assert sandbox_api.post(
            SEARCH, data=json.dumps(body), headers={"Content-Type": "application/json"}
        ).ok
        body["query"] = "x" * 3000
        response = sandbox_api.post(
            SEARCH, data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_paging_past_10000_results_is_a_400(self, sandbox_api):
        assert sandbox_api.post(SEARCH, json={"after": "9900", "limit": 100}).status_code == 200
        assert_error(sandbox_api.post(SEARCH, json={"after": "9901", "limit": 100}), 400, "VALIDATION_ERROR")
        assert_error(sandbox_api.post(SEARCH, json={"after": "10000", "limit": 1}), 400, "VALIDATION_ERROR")

    def test_the_cursor_is_offered_at_10000_and_fails_when_followed(self, sandbox, sandbox_api):
        for n in range(10_001):
            objects.create_record(sandbox.state, "line_items", {"name": f"i{n}"})
        url = "/crm/v3/objects/line_items/search"
        body = sandbox_api.post(url, json={"after": "9800", "limit": 200}).json()
        assert body["total"] == 10_001
        assert body["paging"]["next"]["after"] == "10000"
        assert_error(sandbox_api.post(url, json={"after": "10000", "limit": 200}), 400, "VALIDATION_ERROR")

    def test_after_must_be_an_integer(self, sandbox_api):
        assert_error(sandbox_api.post(SEARCH, json={"after": "abc"}), 400, "VALIDATION_ERROR")


@pytest.mark.sandbox(empty=True, search_lag_s=3600)
def test_search_can_lag_behind_writes(sandbox_api):
    created = create(sandbox_api, "orders", {"hs_order_name": "Fresh"})
    assert sandbox_api.get(f"/crm/v3/objects/orders/{created['id']}").status_code == 200
    assert sandbox_api.post(SEARCH, json={}).json()["total"] == 0
