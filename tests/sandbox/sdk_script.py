"""Drive the sandbox with the official SDK (hubspot-api-client); run in-process by test_sdk.py, or on its
own: ``python tests/sandbox/sdk_script.py URL TOKEN``. It prints one JSON object of what the SDK
deserialised.
"""

from __future__ import annotations

import json
import sys

from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec, BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException


def main(url: str, token: str) -> None:
    client = HubSpot(access_token=token, host=url)
    objects = client.crm.objects
    out: dict[str, object] = {}
    out["get_all"] = len(objects.get_all("orders", properties=["hs_order_name"], associations=["contacts"]))
    page = objects.basic_api.get_page("orders", limit=5, associations=["contacts", "line_items"])
    out["page_after"] = page.paging.next.after
    out["association_keys"] = sorted(page.results[0].associations)
    person = objects.basic_api.create(
        "contacts",
        SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com", "firstname": "Sdk"}),
    )
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}
    created = objects.basic_api.create(
        "orders",
        SimplePublicObjectInputForCreate(
            properties={"hs_order_name": "SDK order"},
            associations=[{"to": {"id": person.id}, "types": [spec]}],
        ),
    )
    out["created_type"] = type(created.created_at).__name__
    got = objects.basic_api.get_by_id(
        "orders",
        created.id,
        properties=["hs_pipeline_stage"],
        properties_with_history=["hs_order_name"],
        associations=["contacts"],
    )
    out["stage"] = got.properties["hs_pipeline_stage"]
    out["history"] = got.properties_with_history["hs_order_name"][0].value
    out["association_type"] = got.associations["contacts"].results[0].type
    updated = objects.basic_api.update(
        "orders", created.id, SimplePublicObjectInput(properties={"hs_order_name": "Renamed"})
    )
    out["updated"] = updated.properties["hs_order_name"]
    found = objects.search_api.do_search(
        "orders",
        PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "hs_order_name", "operator": "EQ", "value": "renamed"}]}
            ],
            properties=["hs_order_name"],
        ),
    )
    out["search_total"] = found.total
    read = objects.batch_api.read(
        "orders",
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": created.id}, {"id": "1"}], properties=["hs_order_name"], properties_with_history=[]
        ),
    )
    out["batch_read"] = [type(read).__name__, read.num_errors, read.errors[0].category]
    carts = objects.batch_api.create(
        "carts",
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=[{"properties": {"hs_cart_name": "x"}}]),
    )
    out["batch_create"] = [type(carts).__name__, len(carts.results)]
    upserted = objects.batch_api.upsert(
        "contacts",
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": "sdk@example.com", "idProperty": "email", "properties": {"lastname": "Kit"}},
                {"id": "new@example.com", "idProperty": "email", "properties": {"lastname": "New"}},
            ]
        ),
    )
    out["upsert_new"] = sorted(r.new for r in upserted.results)
    v4 = client.crm.associations.v4
    listed = v4.basic_api.get_page("orders", created.id, "contacts")
    out["v4_list"] = [listed.results[0].to_object_id, listed.results[0].association_types[0].type_id]
    pair = v4.basic_api.create(
        "orders",
        created.id,
        "contacts",
        person.id,
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=507)],
    )
    out["v4_put"] = [pair.to_object_id, pair.labels]
    default = v4.basic_api.create_default("carts", carts.results[0].id, "contacts", person.id)
    out["v4_default"] = len(default.results)
    batch = v4.batch_api.get_page(
        "orders", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": created.id}])
    )
    out["v4_batch_read"] = [type(batch).__name__, len(batch.results[0].to)]
    out["labels"] = [
        label.type_id for label in v4.schema.definitions_api.get_all("orders", "contacts").results
    ]
    objects.basic_api.archive("orders", created.id)
    try:
        objects.basic_api.get_by_id("orders", created.id)
    except ApiException as exc:
        out["not_found"] = [exc.status, json.loads(exc.body)["category"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
