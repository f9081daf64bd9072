"""The official Python SDK (hubspot-api-client 12) pointed at the sandbox deserialises every answer."""

from __future__ import annotations

from pathlib import Path

import hubspot

from hubspot_sandbox.testing import DEFAULT_SEED
from tests.sandbox.helpers import run_sdk_script

SCRIPT = Path(__file__).with_name("sdk_script.py")


def test_import_hubspot_is_the_official_sdk():
    # The project's packages (hubspot_sync, hubspot_sandbox) leave the name to HubSpot's SDK.
    assert "site-packages" in Path(hubspot.__file__).parts
    assert hasattr(hubspot, "HubSpot") and hasattr(hubspot, "Client")


def test_the_official_sdk_works_against_the_sandbox(sandbox):
    out = run_sdk_script(SCRIPT.read_text(), sandbox.url, sandbox.config.token)
    assert out["get_all"] == DEFAULT_SEED["seed_orders"]
    assert out["page_after"].isdigit()
    assert out["association_keys"] == ["contacts", "line items"]
    assert out["created_type"] == "datetime"
    assert out["stage"] == "4b27b500-f031-4927-9811-68a0b525cbae"
    assert out["history"] == "SDK order"
    assert out["association_type"] == "order_to_contact"
    assert out["updated"] == "Renamed"
    assert out["search_total"] == 1
    assert out["batch_read"] == ["BatchResponseSimplePublicObjectWithErrors", 1, "OBJECT_NOT_FOUND"]
    assert out["batch_create"] == ["BatchResponseSimplePublicObject", 1]
    assert out["upsert_new"] == [False, True]
    assert out["v4_list"][1] == 507
    assert out["v4_put"][1] == []
    assert out["v4_default"] == 2
    assert out["v4_batch_read"] == ["BatchResponsePublicAssociationMultiWithLabel", 1]
    assert out["labels"] == [507]
    assert out["not_found"] == [404, "OBJECT_NOT_FOUND"]
