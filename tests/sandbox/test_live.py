"""Live activity: the demo data keeps changing, through the same functions the API uses."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hubspot_sandbox.defaults import active_stages
from hubspot_sandbox.live import LiveActivity
from hubspot_sandbox.seed import seed
from hubspot_sandbox.state import ChangeEvent, SandboxState
from tests.sandbox.test_webhooks import APP_ID, SECRET, Receiver

NOW = 1_760_000_000_000


def seeded_state(seed_value: int = 4) -> SandboxState:
    state = SandboxState()
    seed(state, contacts=20, orders=60, carts=30, seed=seed_value, now=NOW)
    return state


def run(state: SandboxState, ticks: int, seed_value: int = 1) -> LiveActivity:
    live = LiveActivity(state, interval_s=60, seed=seed_value)
    for _ in range(ticks):
        live.tick()
    return live


def test_ticks_create_orders_carts_and_move_orders_through_the_api_functions() -> None:
    state = seeded_state()
    events: list[ChangeEvent] = []
    state.subscribe(events.append)
    before = {t: len(r) for t, r in state.records.items()}
    live = run(state, 40)
    assert live.errors == 0
    assert live.counts["new_order"] > 0 and live.counts["new_cart"] > 0
    assert live.counts["advance_order"] > 0 and live.counts["convert_cart"] > 0
    assert (
        len(state.records["orders"])
        == before["orders"] + live.counts["new_order"] + live.counts["convert_cart"]
    )
    assert len(state.records["carts"]) == before["carts"] + live.counts["new_cart"]
    kinds = Counter(e.subscription_type for e in events)
    assert kinds["object.creation"] >= live.counts["new_order"] + live.counts["new_cart"]
    assert kinds["object.propertyChange"] > 0 and kinds["object.associationChange"] > 0
    assert {e.change_source for e in events} == {"INTEGRATION"}


def test_new_orders_are_complete_and_consistent() -> None:
    state = seeded_state()
    known = set(state.records["orders"])
    run(state, 30)
    new = [o for oid, o in state.records["orders"].items() if oid not in known]
    assert new
    for order in new:
        p = order.properties
        assert p["hs_order_name"].startswith("#")
        contacts = state.associated("orders", order.id, "contacts")
        assert len(contacts) == 1
        items = [
            state.records["line_items"][i].properties
            for i in state.associated("orders", order.id, "line_items")
        ]
        assert items
        subtotal = sum(Decimal(i["amount"]) for i in items)
        assert Decimal(p["hs_subtotal_price"]) == subtotal
        assert Decimal(p["hs_total_price"]) == subtotal + Decimal(p["hs_shipping_cost"]) + Decimal(
            p["hs_tax"]
        )
        pipeline = state.pipelines["orders"][p["hs_pipeline"]]
        assert p["hs_pipeline_stage"] in [s["id"] for s in active_stages(pipeline)]
        assert p["hs_object_source"] == "INTEGRATION"
    external_ids = [o.properties["hs_external_order_id"] for o in state.records["orders"].values()]
    assert len(set(external_ids)) == len(external_ids)


def test_orders_only_move_forward_one_stage_or_to_cancelled() -> None:
    state = seeded_state()
    stage_order = {}
    for pipeline in state.pipelines["orders"].values():
        for index, stage in enumerate(active_stages(pipeline)):
            stage_order[stage["id"]] = (pipeline["id"], index, stage["label"])
    run(state, 40)
    steps = 0
    for order in state.records["orders"].values():
        # The live moves are the history entries after the seeded ones (the seed's "now" is in the past).
        history = [value for value, ts, _source in reversed(order.history.get("hs_pipeline_stage", []))]
        live_from = sum(1 for _v, ts, _s in order.history.get("hs_pipeline_stage", []) if ts <= NOW)
        start = max(0, live_from - 1)
        for old_stage, new_stage in zip(history[start:], history[start + 1 :], strict=False):
            old_pipeline, old_index, _ = stage_order[old_stage]
            new_pipeline, new_index, label = stage_order[new_stage]
            assert new_pipeline == old_pipeline
            assert new_index == old_index + 1 or ("Cancel" in label and new_index > old_index)
            steps += 1
        props = order.properties
        if stage_order[props["hs_pipeline_stage"]][2] == "Shipped" and len(history) > live_from:
            assert props["hs_fulfillment_status"] == "Shipped" and props["hs_shipping_tracking_number"]
    assert steps > 0


def test_converted_carts_are_linked_to_their_order() -> None:
    state = seeded_state()
    fulfilled_before = {
        cid for cid, c in state.records["carts"].items() if c.properties["hs_external_status"] == "fulfilled"
    }
    live = run(state, 40)
    converted = [
        cid
        for cid, cart in state.records["carts"].items()
        if cart.properties["hs_external_status"] == "fulfilled" and cid not in fulfilled_before
    ]
    assert len(converted) == live.counts["convert_cart"] > 0
    for cart_id in converted:
        orders = state.associated("carts", cart_id, "orders")
        assert len(orders) == 1
        order_id = next(iter(orders))
        assert state.associated("orders", order_id, "carts") == {cart_id: {("HUBSPOT_DEFINED", 593)}}
        assert set(state.associated("orders", order_id, "contacts")) == set(
            state.associated("carts", cart_id, "contacts")
        )


def test_the_same_seed_does_the_same_things() -> None:
    first = run(seeded_state(), 25, seed_value=9)
    second = run(seeded_state(), 25, seed_value=9)
    assert first.counts == second.counts


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_the_thread_runs_until_stopped() -> None:
    state = seeded_state()
    live = LiveActivity(state, interval_s=0.01, seed=2).start()
    try:
        wait_until(lambda: sum(live.counts.values()) >= 5)
    finally:
        live.stop()
    done = sum(live.counts.values())
    time.sleep(0.05)
    assert sum(live.counts.values()) == done  # nothing after stop
    assert live.errors == 0


def test_live_changes_reach_webhooks_and_the_api(sandbox: Any, sandbox_api: Any) -> None:
    receiver = Receiver().start()
    try:
        sandbox.set_webhook(receiver.url(), SECRET, APP_ID)
        sandbox.set_live(True, interval_s=0.02, seed=3)
        receiver.wait_for(
            lambda r: any(
                e["subscriptionType"] == "object.creation" and e["objectTypeId"] == "0-123"
                for e in r.events()
            )
        )
        sandbox.set_live(False)
        assert sandbox.webhooks.flush(15)
        assert all(d.signature_ok for d in receiver.deliveries)
        events = receiver.events()
        assert {e["changeSource"] for e in events} == {"INTEGRATION"}
        order_id = next(
            e["objectId"]
            for e in events
            if e["subscriptionType"] == "object.creation" and e["objectTypeId"] == "0-123"
        )
        order = sandbox_api.get(
            f"/crm/v3/objects/orders/{order_id}",
            params={"associations": "contacts", "properties": "hs_order_name"},
        ).json()
        assert order["properties"]["hs_order_name"].startswith("#")
        assert len(order["associations"]["contacts"]["results"]) == 1
    finally:
        sandbox.set_live(False)
        receiver.stop()
