"""Batch read/create/update/upsert/archive (reference §1.1, §1.3, checklist §10 "Batch")."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import ISO_MS, assert_error, contact, order, property_problems

pytestmark = pytest.mark.sandbox(empty=True)

BATCH = "/crm/v3/objects/orders/batch"


def assert_batch_envelope(body: dict) -> None:
    assert body["status"] == "COMPLETE"
    assert ISO_MS.match(body["startedAt"]) and ISO_MS.match(body["completedAt"])


@pytest.mark.parametrize("action", ["read", "create", "update", "upsert", "archive"])
def test_more_than_100_inputs_is_a_400(sandbox_api, action):
    inputs = [{"id": str(n), "properties": {"hs_order_name": "x"}} for n in range(101)]
    assert_error(sandbox_api.post(f"{BATCH}/{action}", json={"inputs": inputs}), 400, "VALIDATION_ERROR")


class TestRead:
    def test_reads_in_input_order_with_the_asked_properties(self, sandbox_api):
        a, b = order(sandbox_api, "A"), order(sandbox_api, "B")
        response = sandbox_api.post(
            f"{BATCH}/read",
            json={
                "inputs": [{"id": b["id"]}, {"id": a["id"]}],
                "properties": ["hs_order_name"],
                "propertiesWithHistory": [],
            },
        )
        assert response.status_code == 200
        body = response.json()
        assert_batch_envelope(body)
        assert [r["properties"]["hs_order_name"] for r in body["results"]] == ["B", "A"]
        assert "numErrors" not in body and "errors" not in body

    def test_missing_ids_make_a_207_with_one_object_not_found_error(self, sandbox_api):
        a = order(sandbox_api, "A")
        response = sandbox_api.post(
            f"{BATCH}/read", json={"inputs": [{"id": a["id"]}, {"id": "1"}, {"id": "2"}]}
        )
        assert response.status_code == 207
        body = response.json()
        assert [r["id"] for r in body["results"]] == [a["id"]]
        assert body["numErrors"] == 1
        [error] = body["errors"]
        assert error["status"] == "error"
        assert error["category"] == "OBJECT_NOT_FOUND"
        assert error["context"] == {"ids": ["1", "2"]}
        assert error["message"].startswith("Could not get some ORDER objects")

    def test_reads_by_id_property(self, sandbox_api):
        person = contact(sandbox_api, "lin@example.com")
        response = sandbox_api.post(
            "/crm/v3/objects/contacts/batch/read",
            json={"inputs": [{"id": "lin@example.com"}], "idProperty": "email", "properties": ["email"]},
        )
        assert response.json()["results"][0]["id"] == person["id"]

    def test_history_reads_are_capped_at_50_inputs(self, sandbox_api):
        response = sandbox_api.post(
            f"{BATCH}/read",
            json={"inputs": [{"id": str(n)} for n in range(51)], "propertiesWithHistory": ["hs_order_name"]},
        )
        body = assert_error(response, 400, "VALIDATION_ERROR")
        assert body["message"] == (
            "The maximum number of inputs supported in a batch request for property histories is 50"
        )

    def test_archived_true_reads_archived_records(self, sandbox_api):
        a = order(sandbox_api)
        sandbox_api.delete(f"/crm/v3/objects/orders/{a['id']}")
        assert sandbox_api.post(f"{BATCH}/read", json={"inputs": [{"id": a["id"]}]}).status_code == 207
        archived = sandbox_api.post(f"{BATCH}/read?archived=true", json={"inputs": [{"id": a["id"]}]})
        assert archived.status_code == 200 and archived.json()["results"][0]["archived"] is True


class TestCreate:
    def test_creates_answer_201(self, sandbox_api):
        response = sandbox_api.post(
            f"{BATCH}/create", json={"inputs": [{"properties": {"hs_order_name": n}} for n in "ABC"]}
        )
        assert response.status_code == 201
        body = response.json()
        assert_batch_envelope(body)
        assert [r["properties"]["hs_order_name"] for r in body["results"]] == ["A", "B", "C"]

    def test_without_trace_ids_one_bad_input_fails_the_whole_batch(self, sandbox_api):
        inputs = [
            {"properties": {"hs_order_name": "ok"}},
            {"properties": {"hs_order_name": "x", "missing": "1"}},
        ]
        response = sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs})
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["name"] == "missing"
        assert sandbox_api.get("/crm/v3/objects/orders").json()["results"] == []

    def test_with_trace_ids_bad_inputs_become_207_errors(self, sandbox_api):
        inputs = [
            {"properties": {"hs_order_name": "ok"}, "objectWriteTraceId": "t1"},
            {"properties": {"hs_order_name": "x", "missing": "1"}, "objectWriteTraceId": "t2"},
        ]
        response = sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs})
        assert response.status_code == 207
        body = response.json()
        assert [r["objectWriteTraceId"] for r in body["results"]] == ["t1"]
        assert body["numErrors"] == 1
        [error] = body["errors"]
        assert error["category"] == "VALIDATION_ERROR"
        assert error["context"]["objectWriteTraceId"] == ["t2"]
        assert 'Property \\"missing\\" does not exist' in error["message"]

    def test_a_retried_trace_id_never_creates_twice(self, sandbox_api):
        inputs = [{"properties": {"hs_order_name": "once"}, "objectWriteTraceId": "push-42"}]
        first = sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs}).json()["results"][0]
        again = sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs + inputs}).json()["results"]
        assert [r["id"] for r in again] == [first["id"], first["id"]]
        assert len(sandbox_api.get("/crm/v3/objects/orders").json()["results"]) == 1

    def test_creates_can_carry_associations(self, sandbox_api):
        person = contact(sandbox_api, "assoc@example.com")
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
        inputs = [
            {
                "properties": {"hs_order_name": "A"},
                "associations": [{"to": {"id": person["id"]}, "types": [spec]}],
            }
        ]
        created = sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs}).json()["results"][0]
        links = sandbox_api.get(f"/crm/v4/objects/orders/{created['id']}/associations/contacts").json()
        assert links["results"][0]["toObjectId"] == int(person["id"])

    def test_an_association_to_a_missing_record_is_refused(self, sandbox_api):
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
        inputs = [
            {"properties": {"hs_order_name": "A"}, "associations": [{"to": {"id": "999"}, "types": [spec]}]}
        ]
        assert_error(sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs}), 400, "VALIDATION_ERROR")


class TestUpdate:
    def test_updates_answer_200(self, sandbox_api):
        a, b = order(sandbox_api, "A"), order(sandbox_api, "B")
        inputs = [
            {"id": a["id"], "properties": {"hs_order_name": "A2"}},
            {"id": b["id"], "properties": {"hs_order_name": "B2"}},
        ]
        response = sandbox_api.post(f"{BATCH}/update", json={"inputs": inputs})
        assert response.status_code == 200
        assert [r["properties"]["hs_order_name"] for r in response.json()["results"]] == ["A2", "B2"]

    def test_missing_ids_make_a_207(self, sandbox_api):
        a = order(sandbox_api, "A")
        inputs = [
            {"id": a["id"], "properties": {"hs_order_name": "A2"}},
            {"id": "77", "properties": {"hs_order_name": "x"}},
        ]
        response = sandbox_api.post(f"{BATCH}/update", json={"inputs": inputs})
        assert response.status_code == 207
        body = response.json()
        assert body["numErrors"] == 1 and body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
        assert body["errors"][0]["context"] == {"ids": ["77"]}
        assert body["results"][0]["properties"]["hs_order_name"] == "A2"

    def test_the_same_id_twice_is_refused(self, sandbox_api):
        a = order(sandbox_api)
        inputs = [{"id": a["id"], "properties": {"hs_order_name": n}} for n in "XY"]
        body = assert_error(
            sandbox_api.post(f"{BATCH}/update", json={"inputs": inputs}), 400, "VALIDATION_ERROR"
        )
        assert a["id"] in body["message"]

    def test_a_read_only_property_fails_the_batch(self, sandbox_api):
        a = order(sandbox_api, "A")
        inputs = [{"id": a["id"], "properties": {"hs_object_id": "5"}}]
        response = sandbox_api.post(f"{BATCH}/update", json={"inputs": inputs})
        [problem] = property_problems(assert_error(response, 400, "VALIDATION_ERROR"))
        assert problem["error"] == "READ_ONLY_VALUE"


class TestUpsert:
    def test_creates_or_updates_by_a_unique_property(self, sandbox_api):
        existing = order(sandbox_api, "Old", hs_external_order_id="E-1")
        inputs = [
            {"id": "E-1", "idProperty": "hs_external_order_id", "properties": {"hs_order_name": "Updated"}},
            {"id": "E-2", "idProperty": "hs_external_order_id", "properties": {"hs_order_name": "Created"}},
        ]
        response = sandbox_api.post(f"{BATCH}/upsert", json={"inputs": inputs})
        assert response.status_code == 200
        results = response.json()["results"]
        assert [(r["new"], r["properties"]["hs_order_name"]) for r in results] == [
            (False, "Updated"),
            (True, "Created"),
        ]
        assert results[0]["id"] == existing["id"]
        assert results[1]["properties"]["hs_external_order_id"] == "E-2"
        # a second run creates nothing new
        rerun = sandbox_api.post(f"{BATCH}/upsert", json={"inputs": inputs}).json()["results"]
        assert [r["new"] for r in rerun] == [False, False]

    def test_contacts_upsert_by_email(self, sandbox_api):
        inputs = [{"id": "up@example.com", "idProperty": "email", "properties": {"firstname": "Up"}}]
        first = sandbox_api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}).json()
        second = sandbox_api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}).json()
        assert first["results"][0]["new"] is True and second["results"][0]["new"] is False
        assert first["results"][0]["id"] == second["results"][0]["id"]


class TestArchive:
    def test_archives_answer_204_and_ignore_missing_ids(self, sandbox_api):
        a, b = order(sandbox_api, "A"), order(sandbox_api, "B")
        response = sandbox_api.post(f"{BATCH}/archive", json={"inputs": [{"id": a["id"]}, {"id": "404"}]})
        assert response.status_code == 204 and response.content == b""
        assert [r["id"] for r in sandbox_api.get("/crm/v3/objects/orders").json()["results"]] == [b["id"]]


def test_one_email_twice_in_a_batch_is_refused(sandbox_api):
    inputs = [{"properties": {"email": "twice@example.com"}}, {"properties": {"email": "Twice@example.com"}}]
    response = sandbox_api.post("/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
    assert_error(response, 400, "VALIDATION_ERROR")
    assert sandbox_api.get("/crm/v3/objects/contacts").json()["results"] == []


@pytest.mark.parametrize(
    "inputs", [["1", "2"], [{"properties": {"hs_order_name": "x"}, "associations": [1]}]]
)
def test_malformed_inputs_are_a_400_not_a_crash(sandbox_api, inputs):
    assert_error(sandbox_api.post(f"{BATCH}/create", json={"inputs": inputs}), 400, "VALIDATION_ERROR")
