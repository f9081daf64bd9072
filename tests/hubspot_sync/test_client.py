"""The HubSpot client against the sandbox over real HTTP: shapes, paging, batches, errors, retries."""

from __future__ import annotations

import dataclasses
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from hubspot_sandbox import objects as remote
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import client, ratelimit
from tests.conftest import wait_until

ORDER_FIELDS = ["hs_order_name", "hs_pipeline", "hs_pipeline_stage", "hs_currency_code"]
BAD_TOKEN = "pat-na1-00000000-dead-beef-0000-000000000000"


def add_fault(sandbox: Sandbox, **rule: Any) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/faults", json=rule, timeout=5)
    assert response.status_code == 200, response.text


def clear_faults(sandbox: Sandbox) -> None:
    assert requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).status_code == 204


def sandbox_stats(sandbox: Sandbox) -> dict[str, Any]:
    response = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5)
    return dict(response.json())


def route_count(sandbox: Sandbox, route: str) -> int:
    return int(sandbox_stats(sandbox)["by_route"].get(route, 0))


def live_ids(sandbox: Sandbox, type_name: str) -> list[str]:
    with sandbox.state.lock:
        return sorted((r.id for r in sandbox.state.live(type_name)), key=int)


def all_orders(**kwargs: Any) -> list[client.ApiObject]:
    out: list[client.ApiObject] = []
    for page in client.iter_objects("orders", **kwargs):
        out.extend(page.results)
    return out


def first_contact(sandbox: Sandbox) -> str:
    return live_ids(sandbox, "contacts")[0]


# --- reading: shapes and paging ---------------------------------------------------------------------------


def test_list_objects_pages_to_the_end_in_id_order(hubspot_sandbox: Sandbox) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = client.list_objects("orders", properties=ORDER_FIELDS, limit=5, after=after)
        pages += 1
        assert len(page.results) <= 5
        seen.extend(o.id for o in page.results)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == live_ids(hubspot_sandbox, "orders")
    assert pages == -(-len(seen) // 5)
    assert client.stats().calls_by_operation == {"list_objects": pages}


def test_api_object_shape(hubspot_sandbox: Sandbox) -> None:
    page = client.list_objects("orders", properties=ORDER_FIELDS, associations=["line_items", "contacts"])
    order = page.results[0]
    record = hubspot_sandbox.state.get("orders", order.id)
    assert record is not None
    assert isinstance(order, client.ApiObject)
    assert order.properties == {k: record.properties[k] for k in ORDER_FIELDS if k in record.properties}
    assert order.created_at == datetime.fromtimestamp(record.created_ms / 1000, tz=UTC)
    assert order.updated_at.tzinfo is UTC
    assert order.archived is False and order.archived_at is None
    # The sandbox, like HubSpot, names line items "line items" inside associations: canonical names here.
    assert set(order.associations) <= {"line_items", "contacts"}
    with hubspot_sandbox.state.lock:
        expected = [
            to_id
            for to_id, _ in remote.live_associations(hubspot_sandbox.state, "orders", order.id, "line_items")
        ]
    assert order.associations.get("line_items", []) == expected
    assert order.truncated_associations == frozenset()
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.id = "1"  # type: ignore[misc]


def test_inline_associations_past_one_page_are_flagged_and_read_in_full_by_v4(
    hubspot_sandbox: Sandbox,
) -> None:
    state = hubspot_sandbox.state
    order_id = live_ids(hubspot_sandbox, "orders")[0]
    with state.lock:
        for n in range(520):
            item = remote.create_record(
                state, "line_items", {"name": f"Part {n}", "quantity": "1", "price": "1"}
            )
            remote.associate_records(state, "orders", order_id, "line_items", item.id)
        expected = [to_id for to_id, _ in remote.live_associations(state, "orders", order_id, "line_items")]
    order = client.get_object("orders", order_id, properties=["hs_order_name"], associations=["line_items"])
    assert len(order.associations["line_items"]) == 100
    assert order.truncated_associations == frozenset({"line_items"})

    client.reset_stats()
    found = client.read_associations("orders", "line_items", [order_id])
    assert [a.to_id for a in found[order_id]] == expected
    assert all(a.type_ids == (513,) for a in found[order_id])
    # 520 associations page at 500 per record: one follow-up call for the rest.
    assert client.stats().calls_by_operation == {"read_associations": 2}


def test_get_object_and_not_found(hubspot_sandbox: Sandbox) -> None:
    order_id = live_ids(hubspot_sandbox, "orders")[3]
    order = client.get_object("orders", order_id, properties=ORDER_FIELDS)
    assert order.id == order_id
    assert set(order.properties) <= set(ORDER_FIELDS)
    with pytest.raises(client.NotFound) as caught:
        client.get_object("orders", "123456789", properties=ORDER_FIELDS)
    assert caught.value.status == 404
    assert isinstance(caught.value, client.Rejected)


def test_properties_beyond_the_url_budget_are_read_by_batch_read(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    names = [p.name for p in client.list_properties("orders")]
    full = client.batch_read("orders", live_ids(hubspot_sandbox, "orders"), properties=names)
    expected = {o.id: o.properties for o in full.results}
    settings.HUBSPOT_MAX_URL_LENGTH = 400
    client.reset_stats()

    listed = all_orders(properties=names)

    assert {o.id: o.properties for o in listed} == expected
    calls = client.stats().calls_by_operation
    assert calls["batch_read"] == calls["list_objects"]  # one batch read per page for the rest
    assert route_count(hubspot_sandbox, "GET /crm/v3/objects/{objectType}") == calls["list_objects"]


@pytest.mark.sandbox(max_uri_length=700)
def test_a_414_shortens_the_url_and_still_reads_every_property(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_MAX_URL_LENGTH = 100_000  # the client's estimate is wrong: HubSpot refuses shorter URLs
    names = [p.name for p in client.list_properties("orders")]
    order_id = live_ids(hubspot_sandbox, "orders")[0]
    expected = client.batch_read("orders", [order_id], properties=names).results[0].properties

    order = client.get_object("orders", order_id, properties=names)

    assert order.properties == expected
    assert sandbox_stats(hubspot_sandbox)["by_status"].get("414", 0) >= 1


def test_search_pages_to_the_end_with_the_total(hubspot_sandbox: Sandbox) -> None:
    filters = [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "0"}]}]
    sorts = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    seen: list[str] = []
    after = None
    totals = set()
    while True:
        page = client.search_objects(
            "orders", filter_groups=filters, sorts=sorts, properties=["hs_order_name"], after=after, limit=5
        )
        totals.add(page.total)
        seen.extend(o.id for o in page.results)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == live_ids(hubspot_sandbox, "orders")
    assert totals == {len(seen)}
    assert all(
        set(o.properties) >= {"hs_order_name"}
        for o in client.search_objects(
            "orders", filter_groups=filters, sorts=sorts, properties=["hs_order_name"], limit=1
        ).results
    )


def test_batch_read_chunks_by_100_and_reports_missing_ids(hubspot_sandbox: Sandbox) -> None:
    real = live_ids(hubspot_sandbox, "orders")
    fake = [str(900_000 + n) for n in range(150)]
    result = client.batch_read("orders", real + fake, properties=["hs_order_name"])
    assert sorted((o.id for o in result.results), key=int) == real
    assert sorted(result.missing) == sorted(fake)
    assert result.errors == []
    assert client.stats().calls_by_operation == {"batch_read": 2}


# --- writing ---------------------------------------------------------------------------------------------


def test_batch_create_with_trace_ids_reports_each_failing_input(hubspot_sandbox: Sandbox) -> None:
    contact = first_contact(hubspot_sandbox)
    inputs = [
        client.CreateInput({"hs_order_name": "Tent"}, associations=[client.AssociationSpec(contact, 507)]),
        client.CreateInput({"hs_order_name": "Stove", "no_such_property": "1"}),
        {"properties": {"hs_order_name": "Lamp"}},
    ]
    result = client.batch_create("orders", inputs, object_write_trace_ids=["t-tent", "t-stove", "t-lamp"])

    assert sorted(o.object_write_trace_id or "" for o in result.results) == ["t-lamp", "t-tent"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.trace_id == "t-stove"
    assert error.category == "VALIDATION_ERROR"
    assert "no_such_property" in error.message
    tent = next(o for o in result.results if o.object_write_trace_id == "t-tent")
    with hubspot_sandbox.state.lock:
        linked = [
            i for i, _ in remote.live_associations(hubspot_sandbox.state, "orders", tent.id, "contacts")
        ]
    assert linked == [contact]


def test_batch_create_without_trace_ids_fails_whole(hubspot_sandbox: Sandbox) -> None:
    before = len(live_ids(hubspot_sandbox, "orders"))
    with pytest.raises(client.Rejected) as caught:
        client.batch_create(
            "orders",
            [client.CreateInput({"hs_order_name": "A"}), client.CreateInput({"no_such_property": "1"})],
        )
    assert caught.value.status == 400
    assert "no_such_property" in caught.value.message
    assert len(live_ids(hubspot_sandbox, "orders")) == before


def test_batch_update_maps_errors_to_their_inputs(hubspot_sandbox: Sandbox) -> None:
    first, second = live_ids(hubspot_sandbox, "orders")[:2]
    result = client.batch_update(
        "orders",
        [
            client.UpdateInput(first, {"hs_order_name": "Renamed"}),
            client.UpdateInput("987654321", {"hs_order_name": "Ghost"}),
            client.UpdateInput(second, {"no_such_property": "1"}),
        ],
    )
    assert [o.id for o in result.results] == [first]
    assert result.results[0].properties["hs_order_name"] == "Renamed"
    assert result.missing == ["987654321"]
    assert [(e.input_id, e.category) for e in result.errors] == [(second, "VALIDATION_ERROR")]
    record = hubspot_sandbox.state.get("orders", first)
    assert record is not None and record.properties["hs_order_name"] == "Renamed"


def test_batch_upsert_creates_and_updates_by_a_unique_property(hubspot_sandbox: Sandbox) -> None:
    existing = live_ids(hubspot_sandbox, "orders")[0]
    client.update_object("orders", existing, {"hs_external_order_id": "ext-1"})
    result = client.batch_upsert(
        "orders",
        [
            client.UpsertInput("ext-1", {"hs_order_name": "Known"}),
            client.UpsertInput("ext-2", {"hs_order_name": "Fresh"}),
        ],
        id_property="hs_external_order_id",
    )
    by_name = {o.properties.get("hs_order_name"): o for o in result.results}
    assert by_name["Known"].id == existing and by_name["Known"].new is False
    assert by_name["Fresh"].new is True
    assert result.errors == [] and result.missing == []


def test_batch_archive_and_archived_listing(hubspot_sandbox: Sandbox) -> None:
    ids = live_ids(hubspot_sandbox, "orders")[:3]
    assert client.batch_archive("orders", ids) == client.BatchResult(results=[])
    assert not set(ids) & set(live_ids(hubspot_sandbox, "orders"))
    archived = all_orders(properties=["hs_order_name"], archived=True)
    assert sorted(o.id for o in archived) == sorted(ids)
    assert all(o.archived and o.archived_at is not None for o in archived)


def test_single_create_update_archive(hubspot_sandbox: Sandbox) -> None:
    contact = first_contact(hubspot_sandbox)
    created = client.create_object(
        "orders",
        {"hs_order_name": "Single", "hs_currency_code": "EUR"},
        associations=[client.AssociationSpec(contact, 507)],
    )
    assert created.properties["hs_order_name"] == "Single"
    updated = client.update_object(
        "orders", created.id, {"hs_order_name": "Single 2", "hs_currency_code": None}
    )
    assert updated.properties["hs_order_name"] == "Single 2"
    fetched = client.get_object("orders", created.id, properties=["hs_order_name"], associations=["contacts"])
    assert fetched.associations == {"contacts": [contact]}
    client.archive_object("orders", created.id)
    with pytest.raises(client.NotFound):
        client.get_object("orders", created.id, properties=["hs_order_name"])


def test_validation_error_is_rejected_with_hubspots_message(hubspot_sandbox: Sandbox) -> None:
    order_id = live_ids(hubspot_sandbox, "orders")[0]
    with pytest.raises(client.Rejected) as caught:
        client.update_object("orders", order_id, {"no_such_property": "x"})
    error = caught.value
    assert not isinstance(error, client.NotFound)
    assert error.status == 400
    assert error.category == "VALIDATION_ERROR"
    assert "no_such_property" in error.message
    assert error.correlation_id


# --- associations ----------------------------------------------------------------------------------------


def test_associations_default_labelled_batch_and_removal(hubspot_sandbox: Sandbox, sandbox_api: Any) -> None:
    order = client.create_object("orders", {"hs_order_name": "Linked"})
    contacts = live_ids(hubspot_sandbox, "contacts")[:3]
    label = sandbox_api.post(
        "/crm/v4/associations/orders/contacts/labels", json={"label": "Buyer", "name": "buyer"}
    )
    label_id = label.json()["results"][0]["typeId"]

    client.associate("orders", order.id, "contacts", contacts[0])
    client.associate("orders", order.id, "contacts", contacts[0], type_id=label_id, category="USER_DEFINED")
    found = client.read_associations("orders", "contacts", [order.id])[order.id]
    assert found == [client.ApiAssociation(contacts[0], (507, label_id), ("Buyer",))]

    client.dissociate("orders", order.id, "contacts", contacts[0], type_id=label_id, category="USER_DEFINED")
    found = client.read_associations("orders", "contacts", [order.id])[order.id]
    assert found == [client.ApiAssociation(contacts[0], (507,), ())]

    result = client.associate_batch("orders", "contacts", [(order.id, contacts[1]), (order.id, "55555555")])
    assert result.missing == ["55555555"]
    client.associate_batch(
        "orders", "contacts", [(order.id, contacts[2])], type_id=label_id, category="USER_DEFINED"
    )
    found = client.read_associations("orders", "contacts", [order.id])[order.id]
    assert {a.to_id: a.type_ids for a in found} == {
        contacts[0]: (507,),
        contacts[1]: (507,),
        contacts[2]: (507, label_id),  # a labelled association comes with the unlabelled one
    }

    client.dissociate("orders", order.id, "contacts", contacts[0])
    client.dissociate_batch("orders", "contacts", [(order.id, contacts[1]), (order.id, contacts[2])])
    assert client.read_associations("orders", "contacts", [order.id]) == {order.id: []}


def test_read_associations_takes_1000_ids_a_call_and_maps_no_associations_to_empty(
    hubspot_sandbox: Sandbox,
) -> None:
    orders = live_ids(hubspot_sandbox, "orders")
    fake = [str(800_000 + n) for n in range(1000)]
    found = client.read_associations("orders", "line_items", orders + fake)
    with hubspot_sandbox.state.lock:
        for order_id in orders:
            expected = [
                i
                for i, _ in remote.live_associations(hubspot_sandbox.state, "orders", order_id, "line_items")
            ]
            assert [a.to_id for a in found[order_id]] == expected
    assert all(found[i] == [] for i in fake)
    assert client.stats().calls_by_operation == {"read_associations": 2}


# --- pipelines and properties ----------------------------------------------------------------------------


def test_pipelines_and_stages(hubspot_sandbox: Sandbox) -> None:
    pipelines = client.list_pipelines("orders")
    assert pipelines and all(isinstance(p, client.ApiPipeline) for p in pipelines)
    stage = pipelines[0].stages[0]
    assert isinstance(stage, client.ApiStage) and stage.metadata.get("state") in {"OPEN", "CLOSED"}

    created = client.create_pipeline(
        "orders",
        label="Wholesale",
        display_order=5,
        stages=[
            client.StageInput("New", 0, {"state": "OPEN"}),
            client.StageInput("Done", 1, {"state": "CLOSED"}),
        ],
    )
    assert [s.label for s in created.stages] == ["New", "Done"]
    assert isinstance(created.created_at, datetime)
    renamed = client.update_pipeline("orders", created.id, label="Wholesale B2B")
    assert renamed.label == "Wholesale B2B"

    packing = client.create_stage(
        "orders", created.id, label="Packing", display_order=1, metadata={"state": "OPEN"}
    )
    changed = client.update_stage(
        "orders", created.id, packing.id, metadata={"state": "OPEN"}, label="Packed"
    )
    assert changed.label == "Packed"
    assert "Packed" in [s.label for s in client.get_pipeline("orders", created.id).stages]
    client.delete_stage("orders", created.id, packing.id)

    client.update_object(
        "orders",
        live_ids(hubspot_sandbox, "orders")[0],
        {"hs_pipeline": created.id, "hs_pipeline_stage": created.stages[0].id},
    )
    with pytest.raises(client.Rejected) as caught:
        client.delete_pipeline("orders", created.id)
    assert caught.value.sub_category == "PipelineError.STAGE_ID_IN_USE"
    client.delete_pipeline("orders", created.id, validate_references=False)
    with pytest.raises(client.NotFound):
        client.get_pipeline("orders", created.id)


def test_properties_and_groups(hubspot_sandbox: Sandbox) -> None:
    properties = {p.name: p for p in client.list_properties("orders")}
    assert properties["hs_object_id"].read_only_value is True
    assert properties["hs_external_order_id"].has_unique_value is True
    currency = properties["hs_currency_code"]
    assert currency.type == "enumeration" and currency.options
    assert all(isinstance(o, client.ApiOption) for o in currency.options)
    groups = client.list_property_groups("orders")
    assert {p.group_name for p in properties.values()} <= {g.name for g in groups}


# --- auth, secrets, logging ------------------------------------------------------------------------------


def test_a_bad_token_is_auth_failed_and_never_shown(
    hubspot_sandbox: Sandbox, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = BAD_TOKEN
    caplog.set_level(logging.DEBUG)
    with pytest.raises(client.AuthFailed) as caught:
        client.list_objects("orders", properties=ORDER_FIELDS)
    error = caught.value
    assert error.status == 401
    assert "token" in str(error)
    for text in (str(error), repr(error), repr(error.args), caplog.text):
        assert BAD_TOKEN not in text
    assert client.stats().retries == 0


def test_no_token_fails_before_calling(hubspot_sandbox: Sandbox, settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = ""
    with pytest.raises(client.AuthFailed):
        client.list_objects("orders", properties=ORDER_FIELDS)
    assert client.stats().calls == 0


def test_request_log_lines_show_method_path_status_and_no_secrets(
    hubspot_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubspot_sync.client")
    client.list_objects("orders", properties=ORDER_FIELDS, limit=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "hubspot_sync.client"]
    assert any(line.startswith("HubSpot GET /crm/v3/objects/orders -> 200 in ") for line in lines)
    token = hubspot_sandbox.config.token
    assert token and all(token not in line and "?" not in line for line in lines)


def test_settings_are_read_per_call(hubspot_sandbox: Sandbox, settings: Any) -> None:
    other = start_sandbox(empty=True)
    try:
        settings.HUBSPOT_API_BASE = other.url
        settings.HUBSPOT_ACCESS_TOKEN = other.config.token
        assert client.list_objects("orders", properties=ORDER_FIELDS).results == []
    finally:
        other.stop(save_snapshot=False)
    settings.HUBSPOT_API_BASE = hubspot_sandbox.url
    settings.HUBSPOT_ACCESS_TOKEN = hubspot_sandbox.config.token
    assert client.list_objects("orders", properties=ORDER_FIELDS).results


def test_many_threads_share_the_client(hubspot_sandbox: Sandbox) -> None:
    ids = live_ids(hubspot_sandbox, "orders")

    def read(order_id: str) -> str:
        return client.get_object("orders", order_id, properties=["hs_order_name"]).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(read, ids * 4))
    assert got == ids * 4
    assert client.stats().calls_by_operation == {"get_object": len(ids) * 4}


# --- faults and retries ----------------------------------------------------------------------------------


def test_injected_5xx_are_retried_and_the_result_is_unchanged(hubspot_sandbox: Sandbox) -> None:
    expected = all_orders(properties=ORDER_FIELDS)
    client.reset_stats()
    add_fault(hubspot_sandbox, kind="error", status=503, count=3, path="/crm/v3/objects/orders$")

    assert all_orders(properties=ORDER_FIELDS) == expected
    stats = client.stats()
    assert stats.retries == 3
    assert stats.calls == len(expected) // 100 + 1 + 3
    assert sandbox_stats(hubspot_sandbox)["by_status"]["503"] == 3


def test_a_423_lock_is_retried(hubspot_sandbox: Sandbox) -> None:
    add_fault(hubspot_sandbox, kind="lock", count=1, path="/batch/update$")
    order_id = live_ids(hubspot_sandbox, "orders")[0]
    result = client.batch_update("orders", [client.UpdateInput(order_id, {"hs_order_name": "After lock"})])
    assert [o.properties["hs_order_name"] for o in result.results] == ["After lock"]
    stats = client.stats()
    assert stats.retries == 1
    assert stats.retry_wait_s >= 2.0  # "include a delay of at least 2 seconds"


def test_hung_reads_time_out_and_are_retried(hubspot_sandbox: Sandbox, settings: Any) -> None:
    expected = client.search_objects(
        "orders", filter_groups=[], sorts=[], properties=["hs_order_name"], limit=200
    )
    client.reset_stats()
    settings.HUBSPOT_READ_TIMEOUT_S = 0.3
    add_fault(hubspot_sandbox, kind="hang", hang_s=5, count=2, path="/search$")

    again = client.search_objects(
        "orders", filter_groups=[], sorts=[], properties=["hs_order_name"], limit=200
    )

    assert again == expected
    assert client.stats().retries == 2


def test_dropped_connections_are_retried(hubspot_sandbox: Sandbox) -> None:
    expected = all_orders(properties=ORDER_FIELDS)
    client.reset_stats()
    add_fault(hubspot_sandbox, kind="drop", count=2, path="/crm/v3/objects/orders$")
    assert all_orders(properties=ORDER_FIELDS) == expected
    assert client.stats().retries == 2


def test_a_create_without_trace_id_is_not_resent_after_a_timeout(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_READ_TIMEOUT_S = 0.3
    add_fault(
        hubspot_sandbox, kind="hang", hang_s=1.0, apply=True, count=1, method="POST", path="/objects/orders$"
    )
    with pytest.raises(client.Retryable) as caught:
        client.create_object("orders", {"hs_order_name": "Maybe"})
    assert caught.value.maybe_applied is True
    assert client.stats().calls == 1
    # HubSpot went on to create it: exactly once, since the client did not send it again.
    wait_until(lambda: route_count(hubspot_sandbox, "POST /crm/v3/objects/{objectType}") == 1, timeout_s=10)
    names = [r.properties.get("hs_order_name") for r in hubspot_sandbox.state.live("orders")]
    assert names.count("Maybe") == 1


def test_a_traced_batch_create_is_resent_after_a_timeout_without_duplicating(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_READ_TIMEOUT_S = 0.3
    add_fault(hubspot_sandbox, kind="hang", hang_s=1.0, apply=True, count=1, path="/batch/create$")
    result = client.batch_create(
        "orders",
        [client.CreateInput({"hs_order_name": "Once A"}), client.CreateInput({"hs_order_name": "Once B"})],
        object_write_trace_ids=["once-a", "once-b"],
    )
    assert sorted(o.object_write_trace_id or "" for o in result.results) == ["once-a", "once-b"]
    assert client.stats().retries == 1
    # The hung first attempt is applied after the retry; the trace ids keep it from creating again.
    wait_until(
        lambda: route_count(hubspot_sandbox, "POST /crm/v3/objects/{objectType}/batch/create") == 2,
        timeout_s=10,
    )
    names = [r.properties.get("hs_order_name") for r in hubspot_sandbox.state.live("orders")]
    assert names.count("Once A") == 1 and names.count("Once B") == 1


def test_a_connection_that_never_opened_is_retried_even_for_a_create(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.HUBSPOT_API_BASE = f"http://127.0.0.1:{closed_port}"
    settings.HUBSPOT_MAX_RETRIES = 2
    with pytest.raises(client.Retryable) as caught:
        client.create_object("orders", {"hs_order_name": "Nowhere"})
    assert caught.value.maybe_applied is False
    stats = client.stats()
    assert stats.calls == 3 and stats.retries == 2


def test_a_429_storm_is_waited_out_and_the_result_is_unchanged(hubspot_sandbox: Sandbox) -> None:
    expected = all_orders(properties=ORDER_FIELDS)
    client.reset_stats()
    add_fault(
        hubspot_sandbox, kind="storm", policy="TEN_SECONDLY_ROLLING", count=3, path="/crm/v3/objects/orders$"
    )

    assert all_orders(properties=ORDER_FIELDS) == expected
    stats = client.stats()
    assert stats.http_429 == 3 and stats.retries == 3
    assert sandbox_stats(hubspot_sandbox)["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 3}


def test_a_search_429_is_retried_after_about_a_second(hubspot_sandbox: Sandbox) -> None:
    expected = client.search_objects("orders", filter_groups=[], sorts=[], properties=["hs_order_name"])
    client.reset_stats()
    add_fault(hubspot_sandbox, kind="storm", policy="SECONDLY", count=1, path="/search$")
    assert (
        client.search_objects("orders", filter_groups=[], sorts=[], properties=["hs_order_name"]) == expected
    )
    stats = client.stats()
    assert stats.http_429 == 1 and stats.retries == 1
    assert stats.retry_wait_s >= 1.0


def test_a_daily_429_is_never_retried(hubspot_sandbox: Sandbox) -> None:
    add_fault(hubspot_sandbox, kind="storm", policy="DAILY", count=5)
    with pytest.raises(client.DailyLimitReached) as caught:
        client.list_objects("orders", properties=ORDER_FIELDS)
    error = caught.value
    assert error.daily is True and error.policy_name == "DAILY"
    assert isinstance(error, client.RateLimited)
    stats = client.stats()
    assert stats.calls == 1 and stats.retries == 0 and stats.http_429 == 1


def test_retries_stop_at_the_configured_attempts(hubspot_sandbox: Sandbox, settings: Any) -> None:
    settings.HUBSPOT_MAX_RETRIES = 2
    add_fault(hubspot_sandbox, kind="error", status=502, path="/crm/v3/objects/orders$")
    with pytest.raises(client.Retryable) as caught:
        client.list_objects("orders", properties=ORDER_FIELDS)
    assert caught.value.status == 502
    assert client.stats().calls == 3
    clear_faults(hubspot_sandbox)
    assert client.list_objects("orders", properties=ORDER_FIELDS).results


def test_retries_stop_at_the_configured_total_wait(hubspot_sandbox: Sandbox, settings: Any) -> None:
    settings.HUBSPOT_RETRY_429_WAIT_S = 0.2
    settings.HUBSPOT_RETRY_MAX_WAIT_S = 0.5
    add_fault(hubspot_sandbox, kind="storm", policy="TEN_SECONDLY_ROLLING", path="/crm/v3/objects/orders$")
    with pytest.raises(client.RateLimited) as caught:
        client.list_objects("orders", properties=ORDER_FIELDS)
    assert not isinstance(caught.value, client.DailyLimitReached)
    assert caught.value.retry_after_s is not None
    stats = client.stats()
    assert stats.retry_wait_s <= 0.5
    assert stats.retries < settings.HUBSPOT_MAX_RETRIES


@pytest.mark.sandbox(ten_second_limit=4, window_ms=500, retry_after=True)
def test_real_429s_with_retry_after_are_honoured(hubspot_sandbox: Sandbox, settings: Any) -> None:
    settings.HUBSPOT_LIMITER_ENABLED = False  # let the sandbox's own limit bite
    ids = live_ids(hubspot_sandbox, "orders")
    got = [client.get_object("orders", i, properties=["hs_order_name"]).id for i in ids]
    assert got == ids
    stats = client.stats()
    assert stats.http_429 > 0 and stats.retries == stats.http_429
    assert stats.retry_wait_s >= stats.http_429 * 1.0  # Retry-After: 1 (whole seconds)


@pytest.mark.sandbox(ten_second_limit=5, window_ms=1000)
def test_the_limiter_adapts_down_to_hubspots_headers(hubspot_sandbox: Sandbox, settings: Any) -> None:
    # Configured for 190 per 10 s; the headers say 5 a second: the client follows them, and no 429 comes.
    assert settings.HUBSPOT_RATE_LIMIT_PER_10S == 190
    ids = live_ids(hubspot_sandbox, "orders")
    got = [client.get_object("orders", i, properties=["hs_order_name"]).id for i in ids]
    assert got == ids
    assert client.stats().http_429 == 0
    assert sandbox_stats(hubspot_sandbox)["rate_limited"] == 0


@pytest.mark.sandbox(ten_second_limit=3, window_ms=60_000, rate_limits=False)
def test_a_lower_limit_in_hubspots_headers_becomes_the_shared_limit(hubspot_sandbox: Sandbox) -> None:
    # The sandbox refuses nothing here but says "3 per minute" in its headers: after one call, the shared
    # limiter holds every process to that (the call took one permit, two remain).
    client.list_pipelines("orders")
    limiter = ratelimit.get_limiter()
    limiter.acquire(ratelimit.GENERAL, max_wait_s=0)
    limiter.acquire(ratelimit.GENERAL, max_wait_s=0)
    with pytest.raises(ratelimit.LimiterTimeout):
        limiter.acquire(ratelimit.GENERAL, max_wait_s=0)


def test_stats_count_by_operation_and_reset(hubspot_sandbox: Sandbox) -> None:
    client.list_pipelines("orders")
    client.list_properties("orders")
    client.list_properties("orders")
    stats = client.stats()
    assert stats.calls_by_operation == {"list_pipelines": 1, "list_properties": 2}
    assert stats.calls == 3
    assert stats.daily_remaining is not None
    client.reset_stats()
    assert client.stats().calls == 0


def test_unknown_object_types_are_refused_before_calling(hubspot_sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown object type"):
        client.list_objects("deals", properties=[])
    assert client.stats().calls == 0


def test_a_limiter_wait_past_its_bound_is_rate_limited_not_sent(
    hubspot_sandbox: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_SEARCH_PER_S = 1
    settings.HUBSPOT_LIMITER_MAX_WAIT_S = 0.05
    client.search_objects("orders", filter_groups=[], sorts=[], properties=[])
    with pytest.raises(client.RateLimited) as caught:
        client.search_objects("orders", filter_groups=[], sorts=[], properties=[])
    assert caught.value.policy_name == "LOCAL_LIMITER"
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 0
    assert client.stats().calls_by_operation == {"search_objects": 1}  # the second was never sent
