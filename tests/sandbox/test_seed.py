"""The seeder: realistic, consistent, deterministic data, written straight into the state."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from hubspot_sandbox.defaults import DEFAULT_ORDER_PIPELINE_ID, RETURNS_PIPELINE_ID, active_stages
from hubspot_sandbox.objects import parse_time_ms
from hubspot_sandbox.seed import HOSTILE_TEXT, seed
from hubspot_sandbox.state import SandboxState

NOW = 1_760_000_000_000


def seeded(**options: Any) -> tuple[SandboxState, dict[str, int]]:
    state = SandboxState()
    counts = seed(state, **{"contacts": 60, "orders": 300, "carts": 150, "now": NOW, **options})
    return state, counts


@pytest.fixture(scope="module")
def data() -> tuple[SandboxState, dict[str, int]]:
    return seeded()


def linked(state: SandboxState, from_type: str, from_id: str, to_type: str) -> dict[str, Any]:
    return state.associated(from_type, from_id, to_type)


def money(value: str | None) -> Decimal:
    return Decimal(value or "0")


def test_counts_are_what_was_asked(data: tuple[SandboxState, dict[str, int]]) -> None:
    state, counts = data
    assert counts["contacts"] == len(state.records["contacts"]) == 60
    assert counts["orders"] == len(state.records["orders"]) == 300
    assert counts["carts"] == len(state.records["carts"]) == 150
    assert counts["line_items"] == len(state.records["line_items"])


def test_every_order_has_one_contact_and_one_to_five_line_items(
    data: tuple[SandboxState, dict[str, int]],
) -> None:
    state, _ = data
    sizes = Counter()
    for order in state.records["orders"].values():
        contacts = linked(state, "orders", order.id, "contacts")
        assert len(contacts) == 1
        assert contacts[next(iter(contacts))] == {("HUBSPOT_DEFINED", 507)}
        items = linked(state, "orders", order.id, "line_items")
        assert 1 <= len(items) <= 5
        sizes[len(items)] += 1
        for item_id in items:
            # Both directions, with the paired type ids (reference §5.3).
            assert linked(state, "line_items", item_id, "orders") == {order.id: {("HUBSPOT_DEFINED", 514)}}
    assert len(sizes) >= 4  # a spread of basket sizes, not always the same


def test_order_totals_add_up(data: tuple[SandboxState, dict[str, int]]) -> None:
    state, _ = data
    for order in state.records["orders"].values():
        p = order.properties
        items = [
            state.records["line_items"][i].properties for i in linked(state, "orders", order.id, "line_items")
        ]
        for item in items:
            assert money(item["amount"]) == money(item["price"]) * int(item["quantity"])
            assert item["hs_line_item_currency_code"] == p["hs_currency_code"]
        assert money(p["hs_subtotal_price"]) == sum(money(i["amount"]) for i in items)
        expected = (
            money(p["hs_subtotal_price"])
            - money(p.get("hs_order_discount"))
            + money(p["hs_shipping_cost"])
            + money(p["hs_tax"])
        )
        assert money(p["hs_total_price"]) == expected


def test_orders_spread_over_both_pipelines_with_consistent_statuses(
    data: tuple[SandboxState, dict[str, int]],
) -> None:
    state, _ = data
    pipelines = state.pipelines["orders"]
    used: Counter[str] = Counter()
    for order in state.records["orders"].values():
        p = order.properties
        stage_ids = [s["id"] for s in active_stages(pipelines[p["hs_pipeline"]])]
        assert p["hs_pipeline_stage"] in stage_ids
        used[p["hs_pipeline_stage"]] += 1
        label = next(
            s["label"] for s in pipelines[p["hs_pipeline"]]["stages"] if s["id"] == p["hs_pipeline_stage"]
        )
        if label == "Delivered":
            assert p["hs_fulfillment_status"] == "Delivered"
            assert p["hs_shipping_tracking_number"] and p["hs_shipping_status_url"].startswith("https://")
        if label == "Open":
            assert p["hs_fulfillment_status"] == "Unfulfilled"
            assert "hs_shipping_tracking_number" not in p
        if label == "Cancelled":
            assert p["hs_fulfillment_status"] == "Cancelled"
        created = parse_time_ms(p["hs_createdate"])
        modified = parse_time_ms(p["hs_lastmodifieddate"])
        assert created is not None and modified is not None
        assert created == order.created_ms <= modified == order.updated_ms <= NOW
    default_stages = {s["id"] for s in pipelines[DEFAULT_ORDER_PIPELINE_ID]["stages"]}
    returns_stages = {s["id"] for s in pipelines[RETURNS_PIPELINE_ID]["stages"]}
    assert len(default_stages & used.keys()) == len(default_stages)  # every default stage has orders
    assert returns_stages & used.keys()
    open_orders = (
        sum(n for stage, n in used.items() if stage in default_stages)
        - used["3725360f-519b-4b18-a593-494d60a29c9f"]
    )
    assert open_orders >= 30  # the board has cards to move, not only delivered orders


def test_stage_history_follows_the_pipeline(data: tuple[SandboxState, dict[str, int]]) -> None:
    state, _ = data
    moved = [o for o in state.records["orders"].values() if len(o.history.get("hs_pipeline_stage", [])) > 1]
    assert moved
    for order in moved:
        history = order.history["hs_pipeline_stage"]
        assert history[0][0] == order.properties["hs_pipeline_stage"]  # newest first
        timestamps = [ts for _value, ts, _source in history]
        assert timestamps == sorted(timestamps, reverse=True)


def test_carts_have_recovery_links_contacts_and_conversions(
    data: tuple[SandboxState, dict[str, int]],
) -> None:
    state, _ = data
    statuses: Counter[str] = Counter()
    without_contact = 0
    for cart in state.records["carts"].values():
        p = cart.properties
        statuses[p["hs_external_status"]] += 1
        assert p["hs_cart_url"].startswith("https://") and "/cart/recover/" in p["hs_cart_url"]
        assert 1 <= len(linked(state, "carts", cart.id, "line_items")) <= 5
        contacts = linked(state, "carts", cart.id, "contacts")
        without_contact += not contacts
        orders = linked(state, "carts", cart.id, "orders")
        if p["hs_external_status"] == "fulfilled":
            assert len(orders) == 1
            order_id = next(iter(orders))
            assert linked(state, "orders", order_id, "carts") == {cart.id: {("HUBSPOT_DEFINED", 593)}}
            assert (
                state.records["orders"][order_id].properties["hs_external_cart_id"]
                == p["hs_external_cart_id"]
            )
            assert set(contacts) == set(linked(state, "orders", order_id, "contacts"))
        else:
            assert not orders
    assert statuses["fulfilled"] >= 20
    # Most carts were left behind: the abandoned-cart list has plenty to show.
    assert statuses["pending"] + statuses["abandoned"] > statuses["fulfilled"] * 2
    assert without_contact < 20


def test_contacts_look_like_people(data: tuple[SandboxState, dict[str, int]]) -> None:
    state, _ = data
    emails = [c.properties["email"] for c in state.records["contacts"].values()]
    assert len(set(emails)) == len(emails)
    assert all("@example." in e for e in emails)
    optouts = Counter(c.properties["hs_email_optout"] for c in state.records["contacts"].values())
    assert optouts["false"] > optouts["true"]
    customers = [c for c in state.records["contacts"].values() if linked(state, "contacts", c.id, "orders")]
    assert all(c.properties["lifecyclestage"] == "customer" for c in customers)
    for contact in state.records["contacts"].values():
        assert contact.properties["firstname"] and contact.properties["phone"].startswith("+")


def test_every_value_is_valid_for_its_definition(data: tuple[SandboxState, dict[str, int]]) -> None:
    state, _ = data
    for type_name, records in state.records.items():
        definitions = state.properties[type_name]
        for rec in records.values():
            assert rec.properties["hs_object_id"] == rec.id
            for name, value in rec.properties.items():
                assert isinstance(value, str) and value, (type_name, name)
                definition = definitions.get(name)
                assert definition is not None, (type_name, name)
                if definition["type"] == "enumeration" and name not in {"hs_pipeline", "hs_pipeline_stage"}:
                    assert value in {o["value"] for o in definition["options"]}, (type_name, name, value)
                elif definition["type"] == "number":
                    float(value)
                elif definition["type"] == "datetime":
                    assert parse_time_ms(value) is not None and value.endswith("Z")


def test_seeding_emits_no_events() -> None:
    state = SandboxState()
    events: list[Any] = []
    state.subscribe(events.append)
    seed(state, contacts=5, orders=10, carts=5, now=NOW)
    assert events == []


def test_the_same_seed_gives_the_same_data() -> None:
    first, _ = seeded(seed=7)
    second, _ = seeded(seed=7)
    other, _ = seeded(seed=8)
    for type_name in first.records:
        a = {rid: (r.properties, r.created_ms, r.updated_ms) for rid, r in first.records[type_name].items()}
        b = {rid: (r.properties, r.created_ms, r.updated_ms) for rid, r in second.records[type_name].items()}
        assert a == b
    assert first.associations == second.associations
    assert [o.properties for o in first.records["orders"].values()] != [
        o.properties for o in other.records["orders"].values()
    ]


def test_seeding_twice_keeps_unique_values_unique() -> None:
    state = SandboxState()
    seed(state, contacts=20, orders=40, carts=20, now=NOW)
    seed(state, contacts=20, orders=40, carts=20, now=NOW)
    external = [o.properties["hs_external_order_id"] for o in state.records["orders"].values()]
    assert len(set(external)) == 80
    emails = [c.properties["email"] for c in state.records["contacts"].values()]
    assert len(set(emails)) == 40
    carts = [c.properties["hs_external_cart_id"] for c in state.records["carts"].values()]
    assert len(set(carts)) == 40


def test_hostile_plants_markup_scripts_rtl_emoji_and_long_text() -> None:
    state, _ = seeded(hostile=True)
    values = [
        v for records in state.records.values() for r in records.values() for v in r.properties.values()
    ]
    planted = set(values) & set(HOSTILE_TEXT)
    assert any("<script>" in v for v in planted)
    assert any("\u202e" in v for v in planted) or any(
        "\u05e9" in v for v in planted
    )  # bidi override or Hebrew
    assert any(len(v) >= 10_000 for v in planted)
    assert len(planted) >= 8
    assert any(v.startswith(("javascript:", "data:")) for v in values)  # recovery links
    # Numbers, ids and enumerations stay valid even when hostile.
    for order in state.records["orders"].values():
        float(order.properties["hs_total_price"])


def test_hostile_values_come_back_intact_over_the_api(sandbox: Any, sandbox_api: Any) -> None:
    seed(sandbox.state, contacts=30, orders=120, carts=10, hostile=True, seed=3)
    state = sandbox.state
    with state.lock:
        order = next(
            o for o in state.records["orders"].values() if o.properties.get("hs_order_name") in HOSTILE_TEXT
        )
        expected = order.properties["hs_order_name"]
    response = sandbox_api.get(f"/crm/v3/objects/orders/{order.id}", params={"properties": "hs_order_name"})
    assert response.status_code == 200
    assert response.json()["properties"]["hs_order_name"] == expected


def test_new_records_get_ids_after_the_seeded_ones(sandbox: Any, sandbox_api: Any) -> None:
    with sandbox.state.lock:
        highest = max(int(i) for i in sandbox.state.records["orders"])
    response = sandbox_api.post("/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#new"}})
    assert int(response.json()["id"]) > highest


def test_seeded_orders_read_back_with_their_associations(sandbox_api: Any) -> None:
    page = sandbox_api.get(
        "/crm/v3/objects/orders",
        params={"limit": 5, "associations": "contacts,line_items", "properties": "hs_total_price"},
    ).json()
    assert len(page["results"]) == 5
    for order in page["results"]:
        assert len(order["associations"]["contacts"]["results"]) == 1
        assert order["properties"]["hs_total_price"]


def test_without_contacts_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="contacts"):
        seed(SandboxState(), contacts=0, orders=5, carts=0)


def test_larger_sets_stay_consistent() -> None:
    state, counts = seeded(contacts=400, orders=3000, carts=1500, full_history=False)
    assert counts["line_items"] > 3000
    assert all(len(r.history) <= 1 for r in state.records["line_items"].values())
    converted = sum(1 for c in state.records["carts"].values() if linked(state, "carts", c.id, "orders"))
    assert 250 <= converted <= 300


@pytest.mark.parametrize("type_name", ["contacts", "orders", "carts", "line_items"])
def test_updated_at_is_distinct_and_never_before_created_or_after_now(type_name: str) -> None:
    # Seeded changes that would fall after "now" used to be capped at it: a hundred recent contacts shared
    # one updatedAt, and every incremental client read them again on each run.
    state, _ = seeded(contacts=300, orders=400, carts=200)
    records = list(state.records[type_name].values())
    updated = [r.updated_ms for r in records]
    assert len(set(updated)) == len(updated), Counter(updated).most_common(3)
    modified_key = "lastmodifieddate" if type_name == "contacts" else "hs_lastmodifieddate"
    for rec in records:
        assert rec.created_ms <= rec.updated_ms < NOW
        assert parse_time_ms(rec.properties[modified_key]) == rec.updated_ms
        # No change in a record's history is newer than its last-modified moment.
        assert all(ts <= rec.updated_ms for entries in rec.history.values() for _v, ts, _s in entries)
