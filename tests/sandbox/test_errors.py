"""HubSpot's error bodies and status codes on every path (reference §2)."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.helpers import assert_error, order

pytestmark = pytest.mark.sandbox(empty=True)

AUTH_MESSAGE_START = "Authentication credentials not found."


def test_a_missing_token_is_a_401(sandbox):
    response = requests.get(f"{sandbox.url}/crm/v3/objects/orders", timeout=10)
    body = assert_error(response, 401, "INVALID_AUTHENTICATION")
    assert body["message"].startswith(AUTH_MESSAGE_START)


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic c2FuZGJveA==", "Bearer "])
def test_any_other_credential_is_a_401(sandbox, header):
    response = requests.get(
        f"{sandbox.url}/crm/v3/objects/orders", headers={"Authorization": header}, timeout=10
    )
    assert_error(response, 401, "INVALID_AUTHENTICATION")


@pytest.mark.sandbox(empty=True, token=None)
def test_without_a_configured_token_any_bearer_token_is_accepted(sandbox):
    response = requests.get(
        f"{sandbox.url}/crm/v3/objects/orders", headers={"Authorization": "Bearer whatever"}, timeout=10
    )
    assert response.status_code == 200


def test_admin_routes_need_no_token(sandbox):
    assert requests.get(f"{sandbox.url}/_sandbox/health", timeout=10).json()["ok"] is True


def test_an_unknown_path_is_a_404(sandbox_api):
    assert_error(sandbox_api.get("/crm/v3/nothing/here"), 404, "OBJECT_NOT_FOUND")


def test_a_known_path_with_the_wrong_method_is_a_405(sandbox_api):
    created = order(sandbox_api)
    assert_error(
        sandbox_api.post(f"/crm/v3/objects/orders/{created['id']}", json={}), 405, "METHOD_NOT_ALLOWED"
    )


def test_a_body_that_is_not_json_is_a_400(sandbox_api):
    response = sandbox_api.post(
        "/crm/v3/objects/orders", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["message"].startswith("Invalid input JSON")


def test_a_body_of_the_wrong_shape_is_a_400(sandbox_api):
    assert_error(
        sandbox_api.post("/crm/v3/objects/orders/batch/read", json={"inputs": "1,2"}), 400, "VALIDATION_ERROR"
    )
    assert_error(sandbox_api.post("/crm/v3/objects/orders", json=[1, 2]), 400, "VALIDATION_ERROR")


def test_an_over_long_uri_is_a_414(sandbox_api):
    many = ",".join(f"custom_property_{n}" for n in range(1000))
    assert len(many) > 16_384
    response = sandbox_api.get("/crm/v3/objects/orders", params={"properties": many})
    assert_error(response, 414, "URI_TOO_LONG")
    # what third parties do about it: chunks under 15,000 characters work
    chunk = ",".join(f"p{n}" for n in range(2000))[:14_000].rsplit(",", 1)[0]
    assert sandbox_api.get("/crm/v3/objects/orders", params={"properties": chunk}).status_code == 200


def test_a_request_line_past_the_servers_own_limit_is_a_json_414(sandbox):
    response = requests.get(f"{sandbox.url}/crm/v3/objects/orders?properties={'x' * 70_000}", timeout=10)
    assert_error(response, 414, "URI_TOO_LONG")


def test_a_failing_handler_is_a_500_in_hubspots_shape(sandbox, sandbox_api):
    def broken(request, state):
        raise RuntimeError("boom")

    sandbox.router.add("GET", "/crm/v3/broken", broken)
    assert_error(sandbox_api.get("/crm/v3/broken"), 500, "INTERNAL_ERROR")
    # the connection and the server carry on
    assert sandbox_api.get("/crm/v3/objects/orders").status_code == 200
