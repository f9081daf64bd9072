"""The pipeline editor's operations reach the sandbox through a real Celery worker process (issue 15, "Done
when"): a new pipeline arrives as made, edits and deletes follow, a stage's 120 orders move before HubSpot is
asked to delete it, HubSpot's refusals and conflicts are shown and resolved, and nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubspot_sandbox import objects as remote_objects
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import SandboxSession
from hubspot_sync import outbox, sync
from hubspot_sync.models import Change, ChangeKind, ChangeStatus, Resolution
from hubspot_sync.registry import parse_datetime
from orders.models import Order
from pipelines import services
from pipelines.models import Pipeline, Stage
from tests import factories
from tests.conftest import WorkerProcess, wait_until
from tests.hubspot_sync.pushkit import remote, serving_portal

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    with serving_portal(settings, monkeypatch, tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def worker(portal: Sandbox, celery_worker_process: WorkerProcess) -> WorkerProcess:
    """A worker started after the sandbox, so it inherits the environment that points at it."""
    return celery_worker_process


@pytest.fixture
def admin(transactional_db: None) -> Any:
    return factories.pipeline_admin()


def api(sandbox: Sandbox) -> SandboxSession:
    return SandboxSession(sandbox.url, sandbox.config.token)


def settled(worker: WorkerProcess, timeout_s: float = 90) -> None:
    """Until nothing is on its way to HubSpot; fail with the worker's log otherwise."""
    try:
        wait_until(
            lambda: (
                not Change.objects.filter(status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING)).exists()
            ),
            timeout_s=timeout_s,
            interval_s=0.2,
        )
    except AssertionError:
        pytest.fail(f"the outbox did not settle; the worker's log:\n{worker.output()[-6000:]}")


def remote_stages(sandbox: Sandbox, pipeline_id: str) -> list[tuple[str, int, str]]:
    found = api(sandbox).get(f"/crm/v3/pipelines/orders/{pipeline_id}")
    assert found.status_code == 200, found.text
    return [(s["label"], s["displayOrder"], s["metadata"]["state"]) for s in found.json()["stages"]]


def live(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(archived=False).order_by("display_order"))


def created(pipeline: Pipeline, worker: WorkerProcess) -> Pipeline:
    settled(worker)
    pipeline.refresh_from_db()
    assert not pipeline.hubspot_id.startswith("tmp-")
    assert not Change.objects.exclude(status=ChangeStatus.APPLIED).exists()
    return pipeline


def test_a_six_stage_pipeline_arrives_as_made_and_its_edits_and_deletes_follow(
    portal: Sandbox, worker: WorkerProcess, admin: Any
) -> None:
    made = [
        ("Received", "OPEN"),
        ("Paid", "OPEN"),
        ("Picking", "OPEN"),
        ("Packed", "OPEN"),
        ("Delivered", "CLOSED"),
        ("Cancelled", "CLOSED"),
    ]
    pipeline = created(services.pipeline_create(label="Wholesale", stages=made, by=admin), worker)

    assert remote_stages(portal, pipeline.hubspot_id) == [
        (label, i, state) for i, (label, state) in enumerate(made)
    ]
    assert all(not s.hubspot_id.startswith("tmp-") for s in live(pipeline))

    received, paid, picking, packed, delivered, cancelled = live(pipeline)
    services.pipeline_update(pipeline=pipeline, by=admin, label="Wholesale orders")
    services.stage_update(stage=paid, by=admin, label="Paid in full")
    services.stages_reorder(
        pipeline=pipeline, stages=[received, paid, packed, picking, delivered, cancelled], by=admin
    )
    services.stage_update(stage=Stage.objects.get(pk=cancelled.pk), by=admin, state="OPEN")
    services.stage_delete(stage=Stage.objects.get(pk=picking.pk), by=admin)
    services.stage_create(pipeline=pipeline, label="Returned", state="CLOSED", by=admin)
    settled(worker)

    assert not Change.objects.exclude(status=ChangeStatus.APPLIED).exists()
    assert portal.state.pipelines["orders"][pipeline.hubspot_id]["label"] == "Wholesale orders"
    assert remote_stages(portal, pipeline.hubspot_id) == [
        ("Received", 0, "OPEN"),
        ("Paid in full", 1, "OPEN"),
        ("Packed", 2, "OPEN"),
        ("Delivered", 4, "CLOSED"),
        ("Cancelled", 5, "OPEN"),
        ("Returned", 6, "CLOSED"),
    ]
    assert [(s.label, s.display_order, s.state) for s in live(pipeline)] == remote_stages(
        portal, pipeline.hubspot_id
    )


@pytest.fixture
def small_move_chunks(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delete moves 50 orders at once and the rest in the worker, 40 at a time (set before it starts)."""
    for name, value in (("PIPELINE_DELETE_MOVES_NOW", 50), ("PIPELINE_DELETE_MOVE_CHUNK", 40)):
        monkeypatch.setenv(name, str(value))
        setattr(settings, name, value)


def test_deleting_a_stage_with_120_orders_moves_them_first_and_hubspot_never_refuses_it(
    small_move_chunks: None, portal: Sandbox, worker: WorkerProcess, admin: Any
) -> None:
    pipeline = created(
        services.pipeline_create(
            label="Wholesale", stages=[("New", "OPEN"), ("Packed", "OPEN"), ("Shipped", "CLOSED")], by=admin
        ),
        worker,
    )
    _, packed, shipped = live(pipeline)
    ids = [
        remote_objects.create_record(
            portal.state,
            "orders",
            {
                "hs_order_name": f"#W{i}",
                "hs_pipeline": pipeline.hubspot_id,
                "hs_pipeline_stage": packed.hubspot_id,
            },
        ).id
        for i in range(120)
    ]
    sync.refresh_records("orders", ids)
    assert Order.objects.filter(stage=packed).count() == 120
    preview = services.stage_delete_preview(stage=packed, move_to=shipped)
    assert preview.allowed and preview.orders_to_move == 120
    portal.stats.reset()

    delete = services.stage_delete(stage=packed, by=admin, move_to=shipped)
    assert Order.objects.filter(stage=shipped).count() == 50  # the rest move in the worker
    settled(worker)

    delete.refresh_from_db()
    assert delete.status == ChangeStatus.APPLIED and delete.payload["moved"] == 120
    assert Change.objects.filter(kind=ChangeKind.UPDATE, status=ChangeStatus.APPLIED).count() == 120
    stats = portal.stats.json()
    assert not [status for status in stats["by_status"] if status.startswith("4")], stats
    assert remote_stages(portal, pipeline.hubspot_id) == [("New", 0, "OPEN"), ("Shipped", 2, "CLOSED")]
    deleted_at = parse_datetime(
        next(
            s
            for s in portal.state.pipelines["orders"][pipeline.hubspot_id]["stages"]
            if s["id"] == packed.hubspot_id
        )["archivedAt"]
    )
    assert deleted_at is not None
    for hubspot_id in ids:
        properties = remote(portal, "orders", hubspot_id)
        assert properties["hs_pipeline_stage"] == shipped.hubspot_id
        moved_at = parse_datetime(properties["hs_lastmodifieddate"])
        assert moved_at is not None and moved_at <= deleted_at  # every move landed before the delete
    assert Order.objects.filter(stage=shipped).count() == 120
    # Two batch updates of up to 100, each after its batch read.
    assert stats["by_route"].get("POST /crm/v3/objects/{objectType}/batch/update") == 2


def test_a_duplicate_label_made_in_hubspot_meanwhile_is_refused_with_its_message_and_nothing_is_lost(
    portal: Sandbox, worker: WorkerProcess, admin: Any
) -> None:
    pipeline = created(
        services.pipeline_create(
            label="Wholesale", stages=[("New", "OPEN"), ("Shipped", "CLOSED")], by=admin
        ),
        worker,
    )
    _, shipped = live(pipeline)
    made = api(portal).post(
        f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages",
        json={"label": "Sent", "displayOrder": 7, "metadata": {"state": "OPEN"}},
    )
    assert made.status_code == 201

    change = services.stage_update(stage=shipped, by=admin, label="Sent")
    settled(worker)

    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED
    assert change.error == f"HubSpot refused this change: {change.response['message']}"
    assert "'Sent' is used more than once" in change.error
    assert Stage.objects.get(pk=shipped.pk).label == "Sent"  # kept here until retried or discarded

    # HubSpot's stage is renamed; Retry then sends ours.
    api(portal).patch(
        f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages/{made.json()['id']}",
        json={"label": "Sent back", "metadata": {"state": "OPEN"}},
    ).raise_for_status()
    outbox.change_retry(change=change, by=admin)
    settled(worker)

    assert Change.objects.get(pk=change.pk).status == ChangeStatus.APPLIED
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Sent", "Sent back"]


def test_a_stage_renamed_in_hubspot_meanwhile_is_a_conflict_and_both_resolutions_work(
    portal: Sandbox, worker: WorkerProcess, admin: Any
) -> None:
    pipeline = created(
        services.pipeline_create(
            label="Wholesale", stages=[("New", "OPEN"), ("Packed", "OPEN"), ("Shipped", "CLOSED")], by=admin
        ),
        worker,
    )
    _, packed, shipped = live(pipeline)
    for stage, label in ((packed, "Packing"), (shipped, "Sent")):
        api(portal).patch(
            f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages/{stage.hubspot_id}",
            json={"label": label, "metadata": {"state": stage.state}},
        ).raise_for_status()

    keep = services.stage_update(stage=packed, by=admin, label="Packed and weighed")
    take = services.stage_update(stage=shipped, by=admin, label="Shipped out")
    settled(worker)

    for change, theirs in ((keep, "Packing"), (take, "Sent")):
        change.refresh_from_db()
        assert (change.status, change.remote) == (ChangeStatus.CONFLICT, {"label": theirs})
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Packing", "Sent"]

    outbox.change_keep_mine(change=keep, by=admin)
    outbox.change_take_hubspot(change=take, by=admin)
    settled(worker)

    assert Change.objects.get(pk=keep.pk).status == ChangeStatus.APPLIED
    take.refresh_from_db()
    assert (take.status, take.resolution) == (ChangeStatus.DISCARDED, Resolution.TOOK_HUBSPOT)
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Packed and weighed", "Sent"]
    assert [s.label for s in live(pipeline)] == ["New", "Packed and weighed", "Sent"]
