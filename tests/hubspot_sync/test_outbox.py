"""The outbox services and the push, run in this process against the sandbox over HTTP (no worker: the
tests call the push directly; test_push.py runs the same paths through a real worker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sandbox import objects as remote_objects
from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.server import Sandbox
from hubspot_sync import client, outbox, push, sync, sync_state
from hubspot_sync.models import Association, Change, ChangeKind, ChangeStatus, ConnectionProblem, Resolution
from orders.models import Order
from pipelines import services as pipeline_services
from pipelines.models import Pipeline, Stage
from tests import factories
from tests.hubspot_sync.pushkit import an_order, batch_calls, remote, serving_portal, writes_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    with serving_portal(settings, monkeypatch, tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Push tasks the code queued (recorded, not sent: no worker runs in these tests)."""
    from hubspot_sync.tasks import push_changes_task

    sent: list[str] = []
    monkeypatch.setattr(push_changes_task, "delay", lambda *a, **k: sent.append("now"))
    monkeypatch.setattr(push_changes_task, "apply_async", lambda *a, **k: sent.append(f"later {k}"))
    return sent


@pytest.fixture
def staff(db: None) -> Any:
    return factories.support_user()


@pytest.fixture
def admin(db: None) -> Any:
    """Pipelines and stages are edited by Pipeline admins only."""
    return factories.pipeline_admin()


def test_an_edit_is_local_at_once_and_queues_one_push(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    before = order.prop("hs_order_name")

    change = outbox.record_change(obj=order, properties={"hs_order_name": "Gift wrap"}, by=staff)

    order.refresh_from_db()
    assert order.name == "Gift wrap" and order.properties["hs_order_name"] == "Gift wrap"
    assert change.status == ChangeStatus.PENDING
    assert change.base == {"hs_order_name": before} and change.new == {"hs_order_name": "Gift wrap"}
    assert change.created_by == staff and change.created_by_name == staff.get_full_name()
    assert queued == ["now"]
    # A second edit while that push has not started queues nothing more: the queued task will see it.
    outbox.record_change(obj=order, properties={"hs_order_name": "Gift wrap 2"}, by=staff)
    assert queued == ["now"]
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == before


def test_the_push_applies_edits_in_hubspot_and_coalesces_them(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    for name in ("First", "Second", "Third"):
        outbox.record_change(obj=order, properties={"hs_order_name": name}, by=staff)

    push.push_outbox()

    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Third"
    assert writes_of(portal, "orders", order.hubspot_id, "hs_order_name", "First") == 0
    assert batch_calls(portal, "orders", "update") == 1
    changes = Change.objects.for_record("orders", order.hubspot_id)
    assert {c.status for c in changes} == {ChangeStatus.APPLIED}
    assert all(c.applied_at is not None and c.response.get("id") == order.hubspot_id for c in changes)


def test_a_stage_move_sets_the_cards_stage_and_reaches_hubspot(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    target = Stage.objects.filter(pipeline=order.pipeline).exclude(pk=order.stage_id).first()
    assert target is not None

    outbox.record_change(
        obj=order,
        properties={"hs_pipeline": target.pipeline.hubspot_id, "hs_pipeline_stage": target.hubspot_id},
        by=staff,
    )
    order.refresh_from_db()
    assert order.stage == target and order.stage_entered_at is not None
    assert timezone.now() - order.stage_entered_at < timedelta(minutes=1)

    push.push_outbox()
    assert remote(portal, "orders", order.hubspot_id)["hs_pipeline_stage"] == target.hubspot_id


def test_pending_values_stay_on_top_when_a_sync_brings_hubspots(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    outbox.record_change(obj=order, properties={"hs_order_name": "Mine, pending"}, by=staff)
    # HubSpot changes another property meanwhile; a sync reads the record with the old name.
    remote_objects.update_record(
        portal.state, "orders", order.hubspot_id, {"hs_shipping_tracking_number": "TRK1"}
    )

    sync.refresh_records("orders", [order.hubspot_id])

    order.refresh_from_db()
    assert order.name == "Mine, pending"  # kept on top
    assert order.tracking_number == "TRK1"  # HubSpot's other change came in
    push.push_outbox()
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Mine, pending"
    sync.refresh_records("orders", [order.hubspot_id])
    order.refresh_from_db()
    assert order.name == "Mine, pending"


def test_a_failed_change_is_not_kept_on_top_but_stays_listed(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_total_price": "lots"}, by=staff)

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED
    assert "lots was not a valid number" in change.error
    assert change.response["message"] and change.response["category"]
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "failed"
    assert list(sync_state.hubspot_ids_with_sync_state("orders", "failed")) == [order.hubspot_id]


def test_retry_with_a_corrected_value_applies_it(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_total_price": "12,50"}, by=staff)
    push.push_outbox()
    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED

    outbox.change_retry(change=change, by=staff, properties={"hs_total_price": "12.50"})
    order.refresh_from_db()
    assert str(order.total) == "12.5000"
    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED and change.new == {"hs_total_price": "12.50"}
    assert remote(portal, "orders", order.hubspot_id)["hs_total_price"] == "12.50"


def test_discard_restores_the_value_hubspot_has(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    before = order.prop("hs_total_price")
    change = outbox.record_change(obj=order, properties={"hs_total_price": "not a number"}, by=staff)
    push.push_outbox()

    outbox.change_discard(change=outbox_change(change), by=staff)

    order.refresh_from_db()
    assert order.prop("hs_total_price") == before
    change.refresh_from_db()
    assert change.status == ChangeStatus.DISCARDED and change.resolution == Resolution.DISCARDED
    assert change.resolved_by == staff and change.settled_at is not None
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "settled"
    with pytest.raises(outbox.ChangeNotAllowed):
        outbox.change_retry(change=change, by=staff)


def outbox_change(change: Change) -> Change:
    return Change.objects.get(pk=change.pk)


def test_a_remote_change_to_the_same_property_is_a_conflict_and_keep_mine_wins(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Mine"}, by=staff)
    remote_objects.update_record(portal.state, "orders", order.hubspot_id, {"hs_order_name": "Theirs"})

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.CONFLICT
    assert change.remote == {"hs_order_name": "Theirs"}
    assert "Theirs" in change.error
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Theirs"
    order.refresh_from_db()
    assert order.name == "Mine"  # the card keeps showing the edit while the conflict waits

    outbox.change_keep_mine(change=change, by=staff)
    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED and change.resolution == Resolution.KEPT_MINE
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Mine"


def test_take_hubspots_drops_mine_and_shows_theirs(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Mine"}, by=staff)
    remote_objects.update_record(portal.state, "orders", order.hubspot_id, {"hs_order_name": "Theirs"})
    push.push_outbox()

    outbox.change_take_hubspot(change=outbox_change(change), by=staff)

    order.refresh_from_db()
    assert order.name == "Theirs"
    change.refresh_from_db()
    assert change.status == ChangeStatus.DISCARDED and change.resolution == Resolution.TOOK_HUBSPOT
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Theirs"


def test_a_remote_change_to_another_property_is_no_conflict(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Mine"}, by=staff)
    remote_objects.update_record(
        portal.state, "orders", order.hubspot_id, {"hs_shipping_tracking_number": "X1"}
    )

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    assert remote(portal, "orders", order.hubspot_id)["hs_shipping_tracking_number"] == "X1"


def test_a_create_gets_hubspots_id_and_is_never_made_twice(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    contact_id = next(r.id for r in portal.state.live("contacts"))
    contact = sync_contact(contact_id)
    order, change = outbox.record_create(
        object_type="orders",
        properties={
            "hs_order_name": "Phone order",
            "hs_currency_code": "EUR",
            "hs_external_order_id": "PH-1",
        },
        by=staff,
        links=[(contact, None)],
    )
    temp_id = order.hubspot_id
    assert temp_id.startswith("tmp-") and order.name == "Phone order"
    assert Association.objects.filter(from_type="orders", from_id=temp_id, to_id=contact_id).exists()
    assert sync_state.record_sync_state("orders", temp_id).state == "pending"

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    real_id = change.object_id
    assert not real_id.startswith("tmp-") and change.response["id"] == real_id
    assert Order.objects.filter(hubspot_id=real_id, name="Phone order").exists()
    assert not Order.objects.filter(hubspot_id=temp_id).exists()
    assert Association.objects.filter(from_type="orders", from_id=real_id, to_id=contact_id).exists()
    assert remote(portal, "orders", real_id)["hs_external_order_id"] == "PH-1"
    # The page that still holds the temporary id finds the record.
    assert sync_state.record_sync_state("orders", temp_id).object_id == real_id

    # An attempt whose answer was lost is made again with the same trace id: HubSpot makes no second record.
    Change.objects.filter(pk=change.pk).update(status=ChangeStatus.PENDING, object_id=temp_id)
    Order.objects.filter(hubspot_id=real_id).update(hubspot_id=temp_id)
    push.push_outbox()
    made = [r for r in portal.state.live("orders") if r.properties.get("hs_external_order_id") == "PH-1"]
    assert len(made) == 1


def sync_contact(contact_id: str) -> Any:
    from hubspot_sync.models import Contact

    sync.refresh_records("contacts", [contact_id])
    return Contact.objects.get(hubspot_id=contact_id)


def test_a_new_stage_is_created_before_an_order_moves_into_it(
    portal: Sandbox, queued: list[str], admin: Any
) -> None:
    order = an_order()
    pipeline = order.pipeline
    assert pipeline is not None
    stage = pipeline_services.stage_create(pipeline=pipeline, label="Waiting for stock", by=admin)
    move = outbox.record_change(
        obj=order,
        properties={"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id},
        by=admin,
    )
    assert move.waits_for == stage.hubspot_id
    order.refresh_from_db()
    assert order.stage == stage

    push.push_outbox()

    stage.refresh_from_db()
    move.refresh_from_db()
    assert not stage.hubspot_id.startswith("tmp-")
    remote_stages = {s["id"]: s for s in portal.state.pipelines["orders"][pipeline.hubspot_id]["stages"]}
    assert remote_stages[stage.hubspot_id]["label"] == "Waiting for stock"
    assert move.status == ChangeStatus.APPLIED and move.new["hs_pipeline_stage"] == stage.hubspot_id
    assert remote(portal, "orders", order.hubspot_id)["hs_pipeline_stage"] == stage.hubspot_id
    order.refresh_from_db()
    assert order.stage == stage and order.properties["hs_pipeline_stage"] == stage.hubspot_id


def test_a_pipeline_with_stages_is_created_renamed_and_its_stages_reordered(
    portal: Sandbox, queued: list[str], admin: Any
) -> None:
    pipeline = pipeline_services.pipeline_create(
        label="Returns", stages=[("Requested", "OPEN"), ("Refunded", "CLOSED")], by=admin
    )
    push.push_outbox()
    pipeline.refresh_from_db()
    assert not pipeline.hubspot_id.startswith("tmp-")
    stages = list(pipeline.stages.order_by("display_order"))
    assert all(not s.hubspot_id.startswith("tmp-") for s in stages)

    pipeline_services.pipeline_update(pipeline=pipeline, by=admin, label="Returns and refunds")
    pipeline_services.stages_reorder(pipeline=pipeline, stages=list(reversed(stages)), by=admin)
    pipeline_services.stage_update(
        stage=Stage.objects.get(pk=stages[0].pk), by=admin, state="CLOSED", label="Asked"
    )
    push.push_outbox()

    remote_pipeline = portal.state.pipelines["orders"][pipeline.hubspot_id]
    assert remote_pipeline["label"] == "Returns and refunds"
    by_id = {s["id"]: s for s in remote_pipeline["stages"]}
    assert by_id[stages[0].hubspot_id]["label"] == "Asked"
    assert by_id[stages[0].hubspot_id]["metadata"]["state"] == "CLOSED"
    assert by_id[stages[1].hubspot_id]["displayOrder"] == 0
    assert not Change.objects.exclude(status=ChangeStatus.APPLIED).exists()


def test_deleting_a_stage_in_use_fails_with_hubspots_message_and_discard_restores_it(
    portal: Sandbox, queued: list[str], admin: Any
) -> None:
    pipeline = an_order().pipeline
    assert pipeline is not None
    stage = pipeline_services.stage_create(pipeline=pipeline, label="Backorder", by=admin)
    push.push_outbox()
    stage.refresh_from_db()
    # An order enters the stage in HubSpot after the last sync: the cache holds none there, HubSpot does.
    remote_objects.create_record(
        portal.state,
        "orders",
        {"hs_order_name": "#R1", "hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id},
    )
    change = pipeline_services.stage_delete(stage=stage, by=admin)
    stage.refresh_from_db()
    assert stage.archived

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED and change.response["message"]
    outbox.change_discard(change=change, by=admin)
    stage.refresh_from_db()
    assert not stage.archived


def test_links_are_added_and_removed_in_hubspot(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    contact_ids = [r.id for r in portal.state.live("contacts")]
    linked = {
        to_id
        for (to_type, to_id) in portal.state.associations.get(("orders", order.hubspot_id), {})
        if to_type == "contacts"
    }
    new_id = next(i for i in contact_ids if i not in linked)
    contact = sync_contact(new_id)

    outbox.association_add(obj=order, to=contact, by=staff)
    assert Association.objects.filter(from_type="orders", from_id=order.hubspot_id, to_id=new_id).exists()
    push.push_outbox()
    assert ("contacts", new_id) in portal.state.associations[("orders", order.hubspot_id)]

    outbox.association_remove(obj=order, to=contact, by=staff)
    push.push_outbox()
    assert not portal.state.associations[("orders", order.hubspot_id)].get(("contacts", new_id))
    assert not Association.objects.filter(from_type="orders", from_id=order.hubspot_id, to_id=new_id).exists()


def test_a_daily_limit_pauses_pushing_with_a_banner_until_the_reset(
    portal: Sandbox, queued: list[str], staff: Any, client: Any
) -> None:
    portal.faults.set([FaultRule(kind="storm", policy="DAILY", count=1)])
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "After the limit"}, by=staff)

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.PENDING and change.next_attempt_at is not None
    problem = ConnectionProblem.objects.get(kind=ConnectionProblem.Kind.DAILY_LIMIT)
    assert problem.until is not None and problem.until > timezone.now()
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "paused"
    client.force_login(staff)
    page = client.get("/carts/").content.decode()  # any page: the banner comes with the base template
    assert 'class="banner banner-error"' in page and "daily API limit" in page
    # Nothing is sent while paused, even when the change is due.
    Change.objects.filter(pk=change.pk).update(next_attempt_at=None)
    push.push_outbox()
    assert Change.objects.get(pk=change.pk).status == ChangeStatus.PENDING

    # The reset passes: the sweep drops the pause and the change goes.
    ConnectionProblem.objects.update(until=timezone.now() - timedelta(seconds=1))
    push.outbox_sweep()
    push.push_outbox()
    assert Change.objects.get(pk=change.pk).status == ChangeStatus.APPLIED
    assert not ConnectionProblem.objects.exists()


def test_5xx_and_429_outlasting_the_client_retries_leave_the_change_pending(
    portal: Sandbox, queued: list[str], staff: Any, settings: Any
) -> None:
    settings.HUBSPOT_MAX_RETRIES = 1
    portal.faults.set([FaultRule(kind="error", status=503, path="batch/update")])
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Eventually"}, by=staff)

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.PENDING and change.attempts == 1
    assert change.next_attempt_at is not None and "did not answer" in change.error
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "retrying"
    assert any(q.startswith("later") for q in queued)  # a delayed push is queued for the retry

    portal.faults.clear()
    Change.objects.filter(pk=change.pk).update(next_attempt_at=None)
    push.push_outbox()
    assert Change.objects.get(pk=change.pk).status == ChangeStatus.APPLIED


def test_a_claim_whose_worker_died_is_sent_again_after_its_lease(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Orphaned"}, by=staff)
    claim, _ = push.claim_next()
    assert claim is not None and [c.pk for c in claim.changes] == [change.pk]
    # While claimed, nobody else takes the record.
    assert push.claim_next()[0] is None
    # The worker dies without a word: its lease runs out.
    Change.objects.filter(pk=change.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    assert push.outbox_sweep() == 1
    change.refresh_from_db()
    assert change.status == ChangeStatus.PENDING and change.claim == ""
    Change.objects.filter(pk=change.pk).update(next_attempt_at=None)
    push.push_outbox()
    assert Change.objects.get(pk=change.pk).status == ChangeStatus.APPLIED
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Orphaned"


def test_a_new_edit_replaces_a_failed_one_of_the_same_property(
    portal: Sandbox, queued: list[str], staff: Any
) -> None:
    order = an_order()
    failed = outbox.record_change(obj=order, properties={"hs_total_price": "abc"}, by=staff)
    push.push_outbox()
    assert Change.objects.get(pk=failed.pk).status == ChangeStatus.FAILED

    fixed = outbox.record_change(
        obj=Order.objects.get(pk=order.pk), properties={"hs_total_price": "40"}, by=staff
    )

    failed.refresh_from_db()
    assert failed.status == ChangeStatus.DISCARDED and failed.resolution == Resolution.SUPERSEDED
    push.push_outbox()
    assert Change.objects.get(pk=fixed.pk).status == ChangeStatus.APPLIED
    assert remote(portal, "orders", order.hubspot_id)["hs_total_price"] == "40"


def test_running_the_push_twice_sends_nothing_more(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    outbox.record_change(obj=order, properties={"hs_order_name": "Once"}, by=staff)
    push.push_outbox()
    calls = client.stats().calls

    push.push_outbox()
    push.outbox_sweep()
    push.push_outbox()

    assert client.stats().calls == calls
    assert writes_of(portal, "orders", order.hubspot_id, "hs_order_name", "Once") == 1


def test_the_card_state_and_filters(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "settled"
    outbox.record_change(obj=order, properties={"hs_order_name": "x"}, by=staff)
    state = sync_state.record_sync_state("orders", order.hubspot_id)
    assert state.state == "pending" and state.polling
    assert list(sync_state.hubspot_ids_with_sync_state("orders", "unsettled")) == [order.hubspot_id]
    push.push_outbox()
    state = sync_state.record_sync_state("orders", order.hubspot_id)
    assert state.state == "pushed" and not state.polling
    assert list(sync_state.hubspot_ids_with_sync_state("orders", "unsettled")) == []
    with pytest.raises(ValueError):
        sync_state.hubspot_ids_with_sync_state("orders", "sideways")


def test_kinds_and_the_timeline_record_who_did_what(portal: Sandbox, queued: list[str], staff: Any) -> None:
    order = an_order()
    outbox.record_change(obj=order, properties={"hs_order_name": "a"}, by=staff)
    outbox.record_change(obj=order, properties={"hs_order_name": "b"}, by=None)
    timeline = list(Change.objects.timeline("orders", order.hubspot_id))
    assert [c.new["hs_order_name"] for c in timeline] == ["b", "a"]
    assert [c.kind for c in timeline] == [ChangeKind.UPDATE, ChangeKind.UPDATE]
    assert timeline[0].created_by is None and timeline[1].created_by == staff
    assert Pipeline.objects.exists()


def test_a_move_into_a_stage_hubspot_refused_is_held_back_and_goes_with_it(
    portal: Sandbox, queued: list[str], admin: Any
) -> None:
    order = an_order()
    pipeline, before = order.pipeline, order.stage
    assert pipeline is not None and before is not None
    # A stage of this label was made in HubSpot since the last sync; labels are unique: HubSpot refuses ours.
    client.create_stage(
        "orders", pipeline.hubspot_id, label="Backorder", display_order=50, metadata={"state": "OPEN"}
    )
    stage = pipeline_services.stage_create(pipeline=pipeline, label="Backorder", by=admin)
    move = outbox.record_change(
        obj=order,
        properties={"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id},
        by=admin,
    )

    push.push_outbox()

    create = Change.objects.get(kind=ChangeKind.STAGE_CREATE)
    assert create.status == ChangeStatus.FAILED and create.response["message"]
    state = sync_state.record_sync_state("orders", order.hubspot_id)
    assert state.state == "failed" and not state.polling
    assert [c.pk for c in state.problems] == [move.pk]
    assert sync_state.blocked_by(state.problems[0]) == create

    outbox.change_discard(change=create, by=admin)

    move.refresh_from_db()
    assert move.status == ChangeStatus.DISCARDED and move.resolution == Resolution.CASCADED
    assert not Stage.objects.filter(pk=stage.pk).exists()
    order.refresh_from_db()
    assert order.stage == before


@pytest.mark.parametrize("senders", [1, 2])
def test_a_backlog_is_sent_by_as_many_senders_as_set_and_each_record_once(
    portal: Sandbox,
    queued: list[str],
    staff: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    senders: int,
) -> None:
    settings.HUBSPOT_PUSH_BATCH = 10
    settings.HUBSPOT_PUSH_SENDERS = senders
    orders = list(Order.objects.filter(archived=False).order_by("hubspot_id")[:30])
    assert len(orders) == 30
    for order in orders:
        outbox.record_change(obj=order, properties={"hs_order_name": f"Sent {order.hubspot_id}"}, by=staff)
    lock = threading.Lock()
    in_flight = {"now": 0, "most": 0}
    threads: set[str] = set()
    send = push.push_claim

    def slow_send(claim: push.Claim) -> int:
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.3)  # a slow HubSpot: the claims overlap if they can
            return send(claim)
        finally:
            with lock:
                in_flight["now"] -= 1

    monkeypatch.setattr(push, "push_claim", slow_send)

    assert push.push_outbox() == 30

    assert in_flight["most"] == senders
    assert len(threads) == senders
    for order in orders:
        assert writes_of(portal, "orders", order.hubspot_id, "hs_order_name", f"Sent {order.hubspot_id}") == 1
    assert batch_calls(portal, "orders", "update") == 3
    assert batch_calls(portal, "orders", "read") == 3
    assert set(Change.objects.values_list("status", flat=True)) == {ChangeStatus.APPLIED}
