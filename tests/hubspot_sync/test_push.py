"""Push through a real Celery worker process to the sandbox over HTTP: every edit reaches HubSpot once, or
stays visible until it does (issue 5, "Done when")."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from hubspot_sandbox import objects as remote_objects
from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.server import Sandbox
from hubspot_sync import outbox, ratelimit, sync_state
from hubspot_sync.models import Change, ChangeStatus, Resolution
from orders.models import Order
from tests import factories
from tests.conftest import WorkerProcess, wait_until
from tests.hubspot_sync.pushkit import (
    BeatProcess,
    an_order,
    batch_calls,
    configure,
    history,
    remote,
    serving_portal,
    start_portal,
    writes_of,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Long enough for three edits made one after another to land in one push, short enough to keep tests quick.
WORKER_ENV = {"HUBSPOT_PUSH_DEBOUNCE_S": "0.5", "HUBSPOT_PUSH_FILL_S": "0.5"}


@pytest.fixture
def env_for_worker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
        setattr(settings, name, float(value))


@pytest.fixture
def portal(
    env_for_worker: None,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Sandbox]:
    marker = request.node.get_closest_marker("sandbox")
    with serving_portal(settings, monkeypatch, tmp_path, **(marker.kwargs if marker else {})) as sandbox:
        yield sandbox


@pytest.fixture
def worker(portal: Sandbox, celery_worker_process: WorkerProcess) -> WorkerProcess:
    """A worker started after the sandbox, so it inherits the environment that points at it."""
    return celery_worker_process


@pytest.fixture
def staff(transactional_db: None) -> Any:
    return factories.support_user()


def settled(change: Change, worker: WorkerProcess, timeout_s: float = 60) -> Change:
    """Wait until the change is no longer on its way; fail with the worker's log otherwise."""

    def done() -> Change | None:
        current = Change.objects.get(pk=change.pk)
        return current if current.status not in (ChangeStatus.PENDING, ChangeStatus.PUSHING) else None

    try:
        return wait_until(done, timeout_s=timeout_s)
    except AssertionError:
        pytest.fail(f"change {change.pk} did not settle; the worker's log:\n{worker.output()[-6000:]}")


def test_an_edit_is_applied_in_hubspot(portal: Sandbox, worker: WorkerProcess, staff: Any) -> None:
    order = an_order()

    change = outbox.record_change(obj=order, properties={"hs_order_name": "Expedite"}, by=staff)

    assert settled(change, worker).status == ChangeStatus.APPLIED
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Expedite"
    assert sync_state.record_sync_state("orders", order.hubspot_id).state == "pushed"


def test_three_quick_edits_to_one_record_make_one_write(
    portal: Sandbox, worker: WorkerProcess, staff: Any
) -> None:
    order = an_order()
    stages = list(order.pipeline.stages.exclude(pk=order.stage_id)[:3])  # type: ignore[union-attr]
    assert len(stages) == 3

    before = history(portal, "orders", order.hubspot_id, "hs_pipeline_stage")

    changes = [
        outbox.record_change(
            obj=order,
            properties={"hs_pipeline": s.pipeline.hubspot_id, "hs_pipeline_stage": s.hubspot_id},
            by=staff,
        )
        for s in stages
    ]

    for change in changes:
        assert settled(change, worker).status == ChangeStatus.APPLIED
    assert batch_calls(portal, "orders", "update") == 1
    # HubSpot saw one move, straight to the last stage.
    assert history(portal, "orders", order.hubspot_id, "hs_pipeline_stage") == [
        stages[-1].hubspot_id,
        *before,
    ]


@pytest.mark.sandbox(seed_orders=260)
def test_250_edits_make_at_most_three_batch_calls(portal: Sandbox, worker: WorkerProcess, staff: Any) -> None:
    orders = list(Order.objects.order_by("hubspot_id")[:250])
    assert len(orders) == 250

    # A bulk edit: one transaction, one push.
    with transaction.atomic():
        changes = [
            outbox.record_change(obj=o, properties={"hs_fulfillment_status": "Packing"}, by=staff)
            for o in orders
        ]

    settled(changes[-1], worker)
    wait_until(lambda: not Change.objects.unsettled().exists(), timeout_s=60)
    assert Change.objects.filter(status=ChangeStatus.APPLIED).count() == 250
    assert batch_calls(portal, "orders", "update") <= 3
    assert batch_calls(portal, "orders", "read") <= 3
    assert all(remote(portal, "orders", o.hubspot_id)["hs_fulfillment_status"] == "Packing" for o in orders)


@pytest.mark.sandbox(window_ms=1000)
def test_a_429_storm_5xx_and_hung_requests_delay_edits_but_lose_none(
    portal: Sandbox, worker: WorkerProcess, staff: Any
) -> None:
    portal.faults.set(
        [
            # The first requests meet a 429 storm, however long the worker takes to send them.
            FaultRule(kind="storm", count=4),
            FaultRule(kind="error", probability=0.3, path="/batch/"),
            FaultRule(kind="hang", probability=0.15, path="/batch/", hang_s=3.0),
        ],
        seed=7,
    )
    orders = list(Order.objects.order_by("hubspot_id")[:20])
    intended: dict[str, str] = {}
    changes = []
    for round_ in range(3):
        for order in orders[round_ * 5 : round_ * 5 + 10]:
            value = f"R{round_}-{order.hubspot_id[-4:]}"
            changes.append(
                outbox.record_change(
                    obj=Order.objects.get(pk=order.pk),
                    properties={"hs_shipping_tracking_number": value},
                    by=staff,
                )
            )
            intended[order.hubspot_id] = value

    for change in changes:
        assert settled(change, worker, timeout_s=120).status == ChangeStatus.APPLIED
    fired = portal.faults.json()["fired"]
    assert fired.get("storm") and fired.get("error") and fired.get("hang")
    for hubspot_id, value in intended.items():
        assert remote(portal, "orders", hubspot_id)["hs_shipping_tracking_number"] == value
        assert Order.objects.get(hubspot_id=hubspot_id).tracking_number == value


def test_a_worker_killed_mid_push_applies_the_edit_exactly_once_after_restart(
    env_for_worker: None,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    staff: Any,
) -> None:
    sandbox = start_portal(settings, monkeypatch, tmp_path)
    # Hung writes are applied by HubSpot after 3-4 s, when the client has long given up on them; the record's
    # next write must wait that out.
    configure(settings, monkeypatch, sandbox, tmp_path, HUBSPOT_PUSH_GHOST_WINDOW_S="5")
    queue = f"test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    from config.celery import app

    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    first = WorkerProcess(queue, tmp_path / "worker-1.log")
    second = WorkerProcess(queue, tmp_path / "worker-2.log")
    beat = None
    try:
        sandbox.faults.set(
            [
                # The create's first attempt hangs: the client's retry carries the same trace id.
                FaultRule(kind="hang", path="/batch/create", hang_s=3.0, count=1),
                # Every update hangs: the worker is killed while it waits for one.
                FaultRule(kind="hang", path="/batch/update", hang_s=4.0),
            ]
        )
        first.start()
        order = an_order()
        created, create = outbox.record_create(
            object_type="orders",
            properties={
                "hs_order_name": "Made once",
                "hs_currency_code": "EUR",
                "hs_external_order_id": "ONCE-1",
            },
            by=staff,
        )
        edit = outbox.record_change(obj=order, properties={"hs_order_name": "Survives a crash"}, by=staff)
        assert settled(create, first, timeout_s=60).status == ChangeStatus.APPLIED
        wait_until(lambda: Change.objects.get(pk=edit.pk).status == ChangeStatus.PUSHING, timeout_s=60)
        wait_until(lambda: sandbox.faults.json()["fired"].get("hang", 0) >= 2, timeout_s=60)

        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=20)
        assert Change.objects.get(pk=edit.pk).status == ChangeStatus.PUSHING  # stuck, as after any crash
        sandbox.faults.clear()
        second.start()
        beat = BeatProcess(queue, tmp_path)

        assert settled(edit, second, timeout_s=90).status == ChangeStatus.APPLIED
        assert remote(sandbox, "orders", order.hubspot_id)["hs_order_name"] == "Survives a crash"
        assert writes_of(sandbox, "orders", order.hubspot_id, "hs_order_name", "Survives a crash") == 1
        made = [
            r for r in sandbox.state.live("orders") if r.properties.get("hs_external_order_id") == "ONCE-1"
        ]
        assert len(made) == 1
        assert Order.objects.filter(hubspot_id=made[0].id, name="Made once").exists()
        assert not Order.objects.filter(hubspot_id=created.hubspot_id).exists()  # the temporary id is gone
    finally:
        for process in (first, second):
            if process.process is not None:
                process.stop()
        if beat is not None:
            beat.stop()
        app.conf.task_default_queue = previous_queue
        sandbox.stop(save_snapshot=False)
        ratelimit.close_limiters()


def test_an_edit_whose_task_was_lost_is_sent_by_the_sweep(
    portal: Sandbox, worker: WorkerProcess, staff: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hubspot_sync.tasks import push_changes_task

    # The broker loses the message (a restart of the embedded broker, say): nothing is queued for this edit.
    monkeypatch.setattr(push_changes_task, "delay", lambda *a, **k: None)
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_order_name": "Not lost"}, by=staff)
    monkeypatch.undo()
    beat = BeatProcess(worker.queue, tmp_path)
    try:
        assert settled(change, worker).status == ChangeStatus.APPLIED
    finally:
        beat.stop()
    assert remote(portal, "orders", order.hubspot_id)["hs_order_name"] == "Not lost"


def test_a_remote_change_to_the_same_property_is_a_conflict_and_both_resolutions_work(
    portal: Sandbox, worker: WorkerProcess, staff: Any
) -> None:
    mine, theirs = list(Order.objects.filter(archived=False).order_by("hubspot_id")[:2])
    # HubSpot changes both orders after our last sync; staff edit the same property from the stale values.
    for order in (mine, theirs):
        remote_objects.update_record(
            portal.state, "orders", order.hubspot_id, {"hs_order_name": "Changed in HubSpot"}
        )
    keep = outbox.record_change(obj=mine, properties={"hs_order_name": "Ours"}, by=staff)
    take = outbox.record_change(obj=theirs, properties={"hs_order_name": "Ours too"}, by=staff)

    for change in (keep, take):
        conflicted = settled(change, worker)
        assert conflicted.status == ChangeStatus.CONFLICT
        assert conflicted.remote == {"hs_order_name": "Changed in HubSpot"}
    assert sync_state.record_sync_state("orders", mine.hubspot_id).state == "conflict"

    outbox.change_keep_mine(change=keep, by=staff)
    outbox.change_take_hubspot(change=take, by=staff)

    assert settled(keep, worker).status == ChangeStatus.APPLIED
    assert remote(portal, "orders", mine.hubspot_id)["hs_order_name"] == "Ours"
    take.refresh_from_db()
    assert take.status == ChangeStatus.DISCARDED and take.resolution == Resolution.TOOK_HUBSPOT
    assert remote(portal, "orders", theirs.hubspot_id)["hs_order_name"] == "Changed in HubSpot"
    wait_until(lambda: Order.objects.get(pk=theirs.pk).name == "Changed in HubSpot", timeout_s=30)
    assert Order.objects.get(pk=mine.pk).name == "Ours"


def test_a_validation_error_fails_with_hubspots_message_and_retry_after_fixing_applies_it(
    portal: Sandbox, worker: WorkerProcess, staff: Any
) -> None:
    order = an_order()
    change = outbox.record_change(obj=order, properties={"hs_total_price": "12,50"}, by=staff)

    failed = settled(change, worker)
    assert failed.status == ChangeStatus.FAILED
    assert failed.response[
        "message"
    ] == "12,50 was not a valid number" or "12,50 was not a valid number" in str(failed.response)
    assert "12,50 was not a valid number" in failed.error
    assert (
        "hs_total_price" not in remote(portal, "orders", order.hubspot_id)
        or remote(portal, "orders", order.hubspot_id)["hs_total_price"] != "12,50"
    )

    outbox.change_retry(change=failed, by=staff, properties={"hs_total_price": "12.50"})

    assert settled(change, worker).status == ChangeStatus.APPLIED
    assert remote(portal, "orders", order.hubspot_id)["hs_total_price"] == "12.50"
    assert str(Order.objects.get(pk=order.pk).total) == "12.5000"
