"""Associations v3 and v4 (reference §5, checklist §10 "Associations")."""

from __future__ import annotations

from typing import Any

import pytest

from hubspot_sandbox import objects
from hubspot_sandbox.state import ChangeEvent
from tests.sandbox.helpers import ISO_MS, assert_error, contact, create, order

pytestmark = pytest.mark.sandbox(empty=True)


def v4_ids(api: Any, from_type: str, from_id: str, to_type: str) -> dict[int, list[int]]:
    body = api.get(f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}").json()
    return {r["toObjectId"]: [t["typeId"] for t in r["associationTypes"]] for r in body["results"]}


@pytest.fixture
def pair(sandbox_api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return order(sandbox_api, "Linked"), contact(sandbox_api, "linked@example.com")


@pytest.mark.parametrize(
    ("from_type", "to_type", "type_id", "reverse"),
    [
        ("orders", "contacts", 507, 508),
        ("orders", "line_items", 513, 514),
        ("orders", "carts", 593, 592),
        ("carts", "contacts", 586, 587),
        ("carts", "line_items", 590, 591),
    ],
)
def test_default_types_and_their_reverse(sandbox_api, from_type, to_type, type_id, reverse):
    names = {"orders": {"hs_order_name": "o"}, "contacts": {}, "line_items": {}, "carts": {}}
    a, b = create(sandbox_api, from_type, names[from_type]), create(sandbox_api, to_type, names[to_type])
    response = sandbox_api.put(
        f"/crm/v4/objects/{from_type}/{a['id']}/associations/default/{to_type}/{b['id']}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and ISO_MS.match(body["startedAt"])
    specs = [
        (r["from"]["id"], r["to"]["id"], r["associationSpec"]["associationTypeId"]) for r in body["results"]
    ]
    assert specs == [(a["id"], b["id"], type_id), (b["id"], a["id"], reverse)]
    assert v4_ids(sandbox_api, from_type, a["id"], to_type) == {int(b["id"]): [type_id]}
    assert v4_ids(sandbox_api, to_type, b["id"], from_type) == {int(a["id"]): [reverse]}


class TestV3ObjectEndpoints:
    def test_put_returns_the_object_with_its_associations(self, sandbox_api, pair):
        o, c = pair
        response = sandbox_api.put(
            f"/crm/v3/objects/orders/{o['id']}/associations/contacts/{c['id']}/order_to_contact"
        )
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == o["id"]
        assert body["associations"] == {
            "contacts": {"results": [{"id": c["id"], "type": "order_to_contact"}]}
        }

    def test_put_accepts_a_numeric_type_and_delete_removes_it(self, sandbox_api, pair):
        o, c = pair
        base = f"/crm/v3/objects/order/{o['id']}/associations/contact/{c['id']}/507"
        assert sandbox_api.put(base).status_code == 200
        listed = sandbox_api.get(f"/crm/v3/objects/contacts/{c['id']}/associations/orders").json()
        assert listed == {"results": [{"id": o["id"], "type": "contact_to_order"}]}
        response = sandbox_api.delete(base)
        assert response.status_code == 204 and response.content == b""
        assert sandbox_api.get(f"/crm/v3/objects/contacts/{c['id']}/associations/orders").json() == {
            "results": []
        }

    def test_a_wrong_type_for_the_pair_is_a_400(self, sandbox_api, pair):
        o, c = pair
        response = sandbox_api.put(f"/crm/v3/objects/orders/{o['id']}/associations/contacts/{c['id']}/513")
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_get_pages_at_100(self, sandbox, sandbox_api):
        o = order(sandbox_api)
        for n in range(130):
            item = objects.create_record(sandbox.state, "line_items", {"name": f"i{n}"})
            objects.associate_records(sandbox.state, "orders", o["id"], "line_items", item.id)
        first = sandbox_api.get(f"/crm/v3/objects/orders/{o['id']}/associations/line_items").json()
        assert len(first["results"]) == 100
        second = sandbox_api.get(
            f"/crm/v3/objects/orders/{o['id']}/associations/line_items",
            params={"after": first["paging"]["next"]["after"]},
        ).json()
        assert len(second["results"]) == 30 and "paging" not in second


class TestV3Batch:
    def test_create_read_archive_and_types(self, sandbox_api, pair):
        o, c = pair
        base = "/crm/v3/associations/orders/contacts/batch"
        created = sandbox_api.post(
            f"{base}/create",
            json={"inputs": [{"from": {"id": o["id"]}, "to": {"id": c["id"]}, "type": "order_to_contact"}]},
        )
        assert created.status_code == 201
        assert created.json()["results"] == [
            {"from": {"id": o["id"]}, "to": {"id": c["id"]}, "type": "order_to_contact"}
        ]
        read = sandbox_api.post(f"{base}/read", json={"inputs": [{"id": o["id"]}]})
        assert read.status_code == 200
        assert read.json()["results"] == [
            {"from": {"id": o["id"]}, "to": [{"id": c["id"], "type": "order_to_contact"}]}
        ]
        archived = sandbox_api.post(
            f"{base}/archive",
            json={"inputs": [{"from": {"id": o["id"]}, "to": {"id": c["id"]}, "type": "order_to_contact"}]},
        )
        assert archived.status_code == 204
        assert v4_ids(sandbox_api, "contacts", c["id"], "orders") == {}
        types = sandbox_api.get("/crm/v3/associations/orders/contacts/types").json()
        assert types == {"results": [{"id": "507", "name": "order_to_contact"}]}

    def test_read_of_a_record_without_associations_is_a_207_item(self, sandbox_api, pair):
        o, _c = pair
        response = sandbox_api.post(
            "/crm/v3/associations/orders/contacts/batch/read", json={"inputs": [{"id": o["id"]}]}
        )
        assert response.status_code == 207
        assert response.json()["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"


class TestV4:
    def test_put_with_types_answers_201_labels_between_the_pair(self, sandbox_api, pair):
        o, c = pair
        response = sandbox_api.put(
            f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}",
            json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}],
        )
        assert response.status_code == 201
        assert response.json() == {
            "fromObjectTypeId": "0-123",
            "fromObjectId": int(o["id"]),
            "toObjectTypeId": "0-1",
            "toObjectId": int(c["id"]),
            "labels": [],
        }

    def test_get_pages_at_500(self, sandbox, sandbox_api):
        c = contact(sandbox_api, "many@example.com")
        for n in range(510):
            rec = objects.create_record(sandbox.state, "orders", {"hs_order_name": f"o{n}"})
            objects.associate_records(sandbox.state, "contacts", c["id"], "orders", rec.id)
        url = f"/crm/v4/objects/contacts/{c['id']}/associations/orders"
        first = sandbox_api.get(url).json()
        assert len(first["results"]) == 500
        second = sandbox_api.get(url, params={"after": first["paging"]["next"]["after"]}).json()
        assert len(second["results"]) == 10 and "paging" not in second
        assert sandbox_api.get(url, params={"limit": 20}).json()["paging"]["next"]["after"]

    def test_delete_removes_every_association_of_the_pair_both_ways(self, sandbox_api, pair):
        o, c = pair
        sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
        response = sandbox_api.delete(f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}")
        assert response.status_code == 204
        assert v4_ids(sandbox_api, "orders", o["id"], "contacts") == {}
        assert v4_ids(sandbox_api, "contacts", c["id"], "orders") == {}

    def test_an_association_to_a_missing_record_is_a_404(self, sandbox_api, pair):
        o, _c = pair
        response = sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/999")
        assert_error(response, 404, "OBJECT_NOT_FOUND")

    def test_archived_records_drop_out_of_association_lists(self, sandbox_api, pair):
        o, c = pair
        sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
        sandbox_api.delete(f"/crm/v3/objects/orders/{o['id']}")
        assert v4_ids(sandbox_api, "contacts", c["id"], "orders") == {}
        sandbox_api.post(f"/_sandbox/restore/orders/{o['id']}")
        assert v4_ids(sandbox_api, "contacts", c["id"], "orders") == {int(o["id"]): [508]}


class TestV4Batch:
    def test_associate_default_create_read_and_archive(self, sandbox_api):
        orders = [order(sandbox_api, f"o{n}") for n in range(3)]
        c = contact(sandbox_api, "batch@example.com")
        base = "/crm/v4/associations/orders/contacts/batch"
        default = sandbox_api.post(
            f"{base}/associate/default",
            json={"inputs": [{"from": {"id": orders[0]["id"]}, "to": {"id": c["id"]}}]},
        )
        assert default.status_code == 200 and len(default.json()["results"]) == 2
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
        created = sandbox_api.post(
            f"{base}/create",
            json={"inputs": [{"from": {"id": orders[1]["id"]}, "to": {"id": c["id"]}, "types": [spec]}]},
        )
        assert created.status_code == 201
        assert created.json()["results"][0]["toObjectId"] == int(c["id"])
        read = sandbox_api.post(
            "/crm/v4/associations/contacts/orders/batch/read", json={"inputs": [{"id": c["id"]}]}
        ).json()
        [result] = read["results"]
        assert result["from"] == {"id": c["id"]}
        assert [t["toObjectId"] for t in result["to"]] == [int(orders[0]["id"]), int(orders[1]["id"])]
        assert result["to"][0]["associationTypes"] == [
            {"category": "HUBSPOT_DEFINED", "typeId": 508, "label": None}
        ]
        archive = sandbox_api.post(
            f"{base}/archive", json={"inputs": [{"from": {"id": orders[0]["id"]}, "to": [{"id": c["id"]}]}]}
        )
        assert archive.status_code == 204
        assert v4_ids(sandbox_api, "contacts", c["id"], "orders") == {int(orders[1]["id"]): [508]}

    def test_read_gives_a_207_item_for_a_record_with_none(self, sandbox_api, pair):
        o, c = pair
        other = order(sandbox_api, "Alone")
        sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
        response = sandbox_api.post(
            "/crm/v4/associations/orders/contacts/batch/read",
            json={"inputs": [{"id": o["id"]}, {"id": other["id"]}]},
        )
        assert response.status_code == 207
        body = response.json()
        assert [r["from"]["id"] for r in body["results"]] == [o["id"]]
        [error] = body["errors"]
        assert error["category"] == "OBJECT_NOT_FOUND"
        assert error["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
        assert body["numErrors"] == 1

    def test_batch_caps(self, sandbox_api):
        read = [{"id": str(n)} for n in range(1001)]
        response = sandbox_api.post("/crm/v4/associations/orders/contacts/batch/read", json={"inputs": read})
        assert_error(response, 400, "VALIDATION_ERROR")
        ok_size = sandbox_api.post(
            "/crm/v4/associations/orders/contacts/batch/read", json={"inputs": read[:1000]}
        )
        assert ok_size.status_code == 207
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
        create_inputs = [{"from": {"id": "1"}, "to": {"id": "2"}, "types": [spec]}] * 2001
        response = sandbox_api.post(
            "/crm/v4/associations/orders/contacts/batch/create", json={"inputs": create_inputs}
        )
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_create_with_missing_records_is_a_207(self, sandbox_api, pair):
        o, c = pair
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
        inputs = [
            {"from": {"id": o["id"]}, "to": {"id": c["id"]}, "types": [spec]},
            {"from": {"id": "1"}, "to": {"id": c["id"]}, "types": [spec]},
        ]
        response = sandbox_api.post(
            "/crm/v4/associations/orders/contacts/batch/create", json={"inputs": inputs}
        )
        assert response.status_code == 207
        assert response.json()["numErrors"] == 1 and len(response.json()["results"]) == 1


class TestLabels:
    def test_label_lifecycle(self, sandbox_api, pair):
        o, c = pair
        labels = "/crm/v4/associations/orders/contacts/labels"
        assert sandbox_api.get(labels).json() == {
            "results": [{"category": "HUBSPOT_DEFINED", "typeId": 507, "label": None}]
        }
        created = sandbox_api.post(labels, json={"label": "Billing contact", "name": "billing_contact"})
        assert created.status_code == 200
        [new] = created.json()["results"]
        assert new["category"] == "USER_DEFINED" and new["label"] == "Billing contact"
        type_id = new["typeId"]
        # a labelled association comes with the unlabelled one
        put = sandbox_api.put(
            f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}",
            json=[{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}],
        )
        assert put.status_code == 201 and put.json()["labels"] == ["Billing contact"]
        assert v4_ids(sandbox_api, "orders", o["id"], "contacts") == {int(c["id"]): [507, type_id]}
        assert (
            sandbox_api.put(labels, json={"associationTypeId": type_id, "label": "Payer"}).status_code == 204
        )
        listed = sandbox_api.get(f"/crm/v4/objects/orders/{o['id']}/associations/contacts").json()["results"][
            0
        ]
        assert {"category": "USER_DEFINED", "typeId": type_id, "label": "Payer"} in listed["associationTypes"]
        assert sandbox_api.delete(f"{labels}/{type_id}").status_code == 204
        assert v4_ids(sandbox_api, "orders", o["id"], "contacts") == {int(c["id"]): [507]}

    def test_archiving_the_unlabelled_type_removes_the_labelled_ones(self, sandbox_api, pair):
        o, c = pair
        labels = "/crm/v4/associations/orders/contacts/labels"
        type_id = sandbox_api.post(labels, json={"label": "Gift", "name": "gift"}).json()["results"][0][
            "typeId"
        ]
        sandbox_api.put(
            f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}",
            json=[{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}],
        )
        only_label = {
            "from": {"id": o["id"]},
            "to": {"id": c["id"]},
            "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}],
        }
        base = "/crm/v4/associations/orders/contacts/batch/labels/archive"
        assert sandbox_api.post(base, json={"inputs": [only_label]}).status_code == 204
        assert v4_ids(sandbox_api, "orders", o["id"], "contacts") == {int(c["id"]): [507]}
        unlabelled = {
            "from": {"id": o["id"]},
            "to": {"id": c["id"]},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}],
        }
        sandbox_api.put(
            f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}",
            json=[{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}],
        )
        assert sandbox_api.post(base, json={"inputs": [unlabelled]}).status_code == 204
        assert v4_ids(sandbox_api, "orders", o["id"], "contacts") == {}


class TestEvents:
    def test_each_side_of_a_change_gets_an_association_event(self, sandbox, sandbox_api, pair):
        o, c = pair
        events: list[ChangeEvent] = []
        sandbox.state.subscribe(events.append)
        sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
        sandbox_api.delete(f"/crm/v4/objects/orders/{o['id']}/associations/contacts/{c['id']}")
        seen = [
            (
                e.subscription_type,
                e.object_type_id,
                e.object_id,
                e.extra["associationTypeId"],
                e.extra["associationRemoved"],
            )
            for e in events
        ]
        assert seen == [
            ("object.associationChange", "0-123", o["id"], 507, False),
            ("object.associationChange", "0-1", c["id"], 508, False),
            ("object.associationChange", "0-123", o["id"], 507, True),
            ("object.associationChange", "0-1", c["id"], 508, True),
        ]
        assert events[0].extra["associationType"] == "ORDER_TO_CONTACT"
        assert events[0].extra["toObjectId"] == int(c["id"])

    def test_modified_dates_stay_unless_configured(self, sandbox, sandbox_api, pair):
        o, c = pair
        sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
        assert sandbox_api.get(f"/crm/v3/objects/orders/{o['id']}").json()["updatedAt"] == o["updatedAt"]


@pytest.mark.sandbox(empty=True, association_changes_bump_modified=True)
def test_association_changes_can_bump_modified_dates(sandbox_api):
    o, c = order(sandbox_api), contact(sandbox_api, "bump@example.com")
    sandbox_api.put(f"/crm/v4/objects/orders/{o['id']}/associations/default/contacts/{c['id']}")
    assert sandbox_api.get(f"/crm/v3/objects/orders/{o['id']}").json()["updatedAt"] > o["updatedAt"]
    assert sandbox_api.get(f"/crm/v3/objects/contacts/{c['id']}").json()["updatedAt"] > c["updatedAt"]
