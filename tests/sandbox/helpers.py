"""Small assertions and builders shared by the sandbox fidelity tests."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import textwrap
import uuid
from typing import Any
from unittest import mock

import requests

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ORDER_STAGES = {
    "open": "4b27b500-f031-4927-9811-68a0b525cbae",
    "processed": "937ea84d-0a4f-4dcf-9028-3f9c2aafbf03",
    "shipped": "aa99e8d0-c1d5-4071-b915-d240bbb1aed9",
}
DEFAULT_PIPELINE = "14a2e10e-5471-408a-906e-c51f3b04369e"
RETURNS_PIPELINE = "87134202"


def assert_error(response: requests.Response, status: int, category: str | None) -> dict[str, Any]:
    """HubSpot's error body (reference §2): status "error", a message, a uuid correlationId, a category."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    uuid.UUID(body["correlationId"])
    if category is None:
        assert "category" not in body
    else:
        assert body["category"] == category
    return body


def property_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-property problems HubSpot packs into a VALIDATION_ERROR message (reference §1.3)."""
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix), body["message"]
    problems: list[dict[str, Any]] = json.loads(body["message"][len(prefix) :])
    return problems


def create(api: requests.Session, type_name: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = api.post(f"/crm/v3/objects/{type_name}", json={"properties": properties, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def order(api: requests.Session, name: str = "Order", **properties: Any) -> dict[str, Any]:
    return create(api, "orders", {"hs_order_name": name, **properties})


def contact(api: requests.Session, email: str, **properties: Any) -> dict[str, Any]:
    return create(api, "contacts", {"email": email, **properties})


def run_sdk_script(source: str, *argv: str) -> Any:
    """Run a script written against HubSpot's official SDK (hubspot-api-client) in this interpreter, with
    ``argv`` as its arguments, and return the JSON object it prints. ``import hubspot`` in it is the SDK:
    the project's own packages are ``hubspot_sync`` and ``hubspot_sandbox``."""
    out = io.StringIO()
    with mock.patch.object(sys, "argv", ["sdk_script", *argv]), contextlib.redirect_stdout(out):
        exec(compile(textwrap.dedent(source), "<sdk script>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return json.loads(out.getvalue())
