"""The pipeline and stage changes pushed to the sandbox over HTTP, in this process (the tests call the push;
test_live.py runs the same paths through a real worker): deletes after their moves, conflicts, refusals, and
the scheduled sync beside unsettled edits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sandbox import objects as remote_objects
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import SandboxSession
from hubspot_sync import client, outbox, push, sync
from hubspot_sync.models import Change, ChangeKind, ChangeStatus, Resolution
from orders.models import Order
from pipelines import services
from pipelines.models import Pipeline, Stage
from pipelines.sync import sync_pipelines
from tests import factories
from tests.hubspot_sync.pushkit import remote, serving_portal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    with serving_portal(settings, monkeypatch, tmp_path) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """Push tasks are not sent: no worker runs here; the tests push themselves."""
    from hubspot_sync.tasks import push_changes_task

    monkeypatch.setattr(push_changes_task, "delay", lambda *a, **k: None)
    monkeypatch.setattr(push_changes_task, "apply_async", lambda *a, **k: None)


@pytest.fixture
def admin(transactional_db: None) -> Any:
    return factories.pipeline_admin()


def api(sandbox: Sandbox) -> SandboxSession:
    return SandboxSession(sandbox.url, sandbox.config.token)


def remote_pipeline(sandbox: Sandbox, pipeline_id: str) -> dict[str, Any]:
    found = api(sandbox).get(f"/crm/v3/pipelines/orders/{pipeline_id}")
    assert found.status_code == 200, found.text
    return dict(found.json())


def remote_stages(sandbox: Sandbox, pipeline_id: str) -> list[tuple[str, int, str]]:
    """(label, displayOrder, state) of the pipeline's live stages in HubSpot, in display order."""
    return [
        (s["label"], s["displayOrder"], s["metadata"]["state"])
        for s in remote_pipeline(sandbox, pipeline_id)["stages"]
    ]


def pushed_pipeline(admin: Any, *labels: str) -> Pipeline:
    pipeline = services.pipeline_create(
        label="Wholesale", stages=[(label, "OPEN") for label in labels], by=admin
    )
    push.push_outbox()
    pipeline.refresh_from_db()
    assert not pipeline.hubspot_id.startswith("tmp-")
    return pipeline


def orders_in_hubspot(sandbox: Sandbox, stage: Stage, count: int) -> list[Order]:
    """Orders made in HubSpot in the stage, then read into the cache."""
    ids = [
        remote_objects.create_record(
            sandbox.state,
            "orders",
            {
                "hs_order_name": f"#W{i}",
                "hs_pipeline": stage.pipeline.hubspot_id,
                "hs_pipeline_stage": stage.hubspot_id,
            },
        ).id
        for i in range(count)
    ]
    sync.refresh_records("orders", ids)
    orders = list(Order.objects.filter(hubspot_id__in=ids))
    assert len(orders) == count and all(o.stage_id == stage.pk for o in orders)
    return orders


def live(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(archived=False).order_by("display_order"))


def test_the_sandbox_refuses_deleting_a_stage_in_use_when_asked_to_check(portal: Sandbox) -> None:
    order = Order.objects.filter(stage__isnull=False).select_related("stage__pipeline").first()
    assert order is not None and order.stage is not None

    with pytest.raises(client.Rejected) as refused:
        client.delete_stage("orders", order.stage.pipeline.hubspot_id, order.stage.hubspot_id)

    assert refused.value.category == "VALIDATION_ERROR"
    assert refused.value.sub_category == "PipelineError.STAGE_ID_IN_USE"
    assert order.hubspot_id in refused.value.message


def test_a_delete_waits_for_its_moves_even_into_a_stage_still_to_be_created(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = pushed_pipeline(admin, "New", "Packed", "Shipped")
    new, packed, _ = live(pipeline)
    moved = orders_in_hubspot(portal, packed, 3)
    waiting = services.stage_create(pipeline=pipeline, label="On hold", by=admin)

    delete = services.stage_delete(stage=packed, by=admin, move_to=waiting)

    moves = Change.objects.filter(object_type="orders", kind=ChangeKind.UPDATE)
    assert moves.count() == 3 and all(m.waits_for == waiting.hubspot_id for m in moves)
    # The moves are held back a while (as after a 429): the stage is created, the delete still waits.
    moves.update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    push.push_outbox()
    assert not Stage.objects.get(pk=waiting.pk).hubspot_id.startswith("tmp-")
    assert Change.objects.get(pk=delete.pk).status == ChangeStatus.PENDING
    assert "Packed" in [s[0] for s in remote_stages(portal, pipeline.hubspot_id)]

    moves.update(next_attempt_at=None)
    push.push_outbox()

    waiting.refresh_from_db()
    delete.refresh_from_db()
    assert not Change.objects.exclude(status=ChangeStatus.APPLIED).exists()
    assert all(
        remote(portal, "orders", o.hubspot_id)["hs_pipeline_stage"] == waiting.hubspot_id for o in moved
    )
    assert remote_stages(portal, pipeline.hubspot_id) == [
        ("New", 0, "OPEN"),
        ("Shipped", 2, "OPEN"),
        ("On hold", 3, "OPEN"),
    ]
    assert new.hubspot_id != waiting.hubspot_id


def test_a_move_hubspot_refused_fails_the_delete_here_without_sending_it(portal: Sandbox, admin: Any) -> None:
    pipeline = pushed_pipeline(admin, "New", "Packed", "Shipped")
    _, packed, shipped = live(pipeline)
    orders = orders_in_hubspot(portal, packed, 2)
    delete = services.stage_delete(stage=packed, by=admin, move_to=shipped)
    # One order is gone from HubSpot before its move is sent: that move fails.
    remote_objects.archive_record(portal.state, "orders", orders[0].hubspot_id)
    portal.stats.reset()

    push.push_outbox()

    delete.refresh_from_db()
    assert delete.status == ChangeStatus.FAILED
    assert "1 order could not be moved out first" in delete.error
    assert not any(route.startswith("DELETE") for route in portal.stats.json()["by_route"])
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Packed", "Shipped"]
    failed = Change.objects.get(object_id=orders[0].hubspot_id, status=ChangeStatus.FAILED)

    outbox.change_discard(change=failed, by=admin)
    outbox.change_retry(change=delete, by=admin)
    push.push_outbox()

    assert Change.objects.get(pk=delete.pk).status == ChangeStatus.APPLIED
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Shipped"]


def test_a_delete_whose_moving_worker_died_moves_the_rest_again_before_it_is_sent(
    portal: Sandbox, admin: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.tasks import deletion_moves_task

    queued: list[int] = []
    monkeypatch.setattr(deletion_moves_task, "delay", queued.append)  # the task is lost with its worker
    settings.PIPELINE_DELETE_MOVES_NOW = 2
    pipeline = pushed_pipeline(admin, "New", "Packed", "Shipped")
    _, packed, shipped = live(pipeline)
    orders = orders_in_hubspot(portal, packed, 5)
    delete = services.stage_delete(stage=packed, by=admin, move_to=shipped)
    push.push_outbox()
    assert Change.objects.get(pk=delete.pk).status == ChangeStatus.PENDING  # 3 orders still to move
    # The lease runs out: the worker moving them died.
    payload = {**delete.payload, "moving_until": (timezone.now() - timedelta(seconds=1)).isoformat()}
    Change.objects.filter(pk=delete.pk).update(payload=payload)

    push.push_outbox()

    delete.refresh_from_db()
    assert delete.status == ChangeStatus.PENDING and delete.error == "Moving its orders out first."
    assert "Packed" in [s[0] for s in remote_stages(portal, pipeline.hubspot_id)]  # not sent
    assert queued == [delete.pk, delete.pk]  # queued again
    services.deletion_moves_continue(change_pk=delete.pk)
    push.push_outbox()

    assert Change.objects.get(pk=delete.pk).status == ChangeStatus.APPLIED
    assert all(
        remote(portal, "orders", o.hubspot_id)["hs_pipeline_stage"] == shipped.hubspot_id for o in orders
    )


def test_archiving_a_pipeline_moves_its_orders_to_another_first(portal: Sandbox, admin: Any) -> None:
    pipeline = pushed_pipeline(admin, "New", "Done")
    orders = orders_in_hubspot(portal, live(pipeline)[0], 3) + orders_in_hubspot(portal, live(pipeline)[1], 2)
    target = Stage.objects.filter(archived=False).exclude(pipeline=pipeline).first()
    assert target is not None

    services.pipeline_delete(pipeline=pipeline, by=admin, move_to=target)
    push.push_outbox()

    assert not Change.objects.exclude(status=ChangeStatus.APPLIED).exists()
    assert portal.state.pipelines["orders"][pipeline.hubspot_id]["archived"] is True
    for order in orders:
        assert remote(portal, "orders", order.hubspot_id)["hs_pipeline"] == target.pipeline.hubspot_id


def test_a_stage_renamed_in_hubspot_meanwhile_is_a_conflict_with_both_resolutions(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = pushed_pipeline(admin, "New", "Packed", "Shipped")
    _, packed, shipped = live(pipeline)
    for stage, label in ((packed, "Packing"), (shipped, "Sent")):
        answer = api(portal).patch(
            f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages/{stage.hubspot_id}",
            json={"label": label, "metadata": {"state": "OPEN"}},
        )
        assert answer.status_code == 200, answer.text
    keep = services.stage_update(stage=packed, by=admin, label="Packed and weighed")
    take = services.stage_update(stage=shipped, by=admin, label="Shipped out")

    push.push_outbox()

    keep.refresh_from_db()
    take.refresh_from_db()
    assert (keep.status, keep.remote) == (ChangeStatus.CONFLICT, {"label": "Packing"})
    assert keep.error == "Someone changed the stage in HubSpot since your edit: its label is now “Packing”."
    assert take.status == ChangeStatus.CONFLICT
    # A sync meanwhile keeps the edits on top.
    sync_pipelines()
    assert Stage.objects.get(pk=packed.pk).label == "Packed and weighed"

    outbox.change_keep_mine(change=keep, by=admin)
    outbox.change_take_hubspot(change=take, by=admin)
    push.push_outbox()

    assert Change.objects.get(pk=keep.pk).status == ChangeStatus.APPLIED
    assert Change.objects.get(pk=take.pk).resolution == Resolution.TOOK_HUBSPOT
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == ["New", "Packed and weighed", "Sent"]
    assert Stage.objects.get(pk=shipped.pk).label == "Sent"
    assert Stage.objects.get(pk=packed.pk).label == "Packed and weighed"


def test_a_stage_deleted_in_hubspot_meanwhile_is_a_conflict_and_keep_mine_restores_it(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = pushed_pipeline(admin, "New", "Packed", "Shipped")
    _, packed, shipped = live(pipeline)
    for stage in (packed, shipped):
        gone = api(portal).delete(f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages/{stage.hubspot_id}")
        assert gone.status_code == 204
    keep = services.stage_update(stage=packed, by=admin, state="CLOSED")
    take = services.stage_update(stage=shipped, by=admin, label="Shipped out")
    # The scheduled sync does not archive a stage with an edit on its way.
    sync_pipelines()
    assert not Stage.objects.get(pk=packed.pk).archived

    push.push_outbox()

    keep.refresh_from_db()
    assert (keep.status, keep.remote) == (ChangeStatus.CONFLICT, {"archived": True})
    assert keep.error == "Someone deleted the stage in HubSpot since your edit."
    outbox.change_keep_mine(change=keep, by=admin)
    outbox.change_take_hubspot(change=Change.objects.get(pk=take.pk), by=admin)
    push.push_outbox()

    assert Change.objects.get(pk=keep.pk).status == ChangeStatus.APPLIED
    assert remote_stages(portal, pipeline.hubspot_id) == [("New", 0, "OPEN"), ("Packed", 1, "CLOSED")]
    assert Stage.objects.get(pk=shipped.pk).archived
    assert not Stage.objects.get(pk=packed.pk).archived


def test_a_label_made_in_hubspot_meanwhile_fails_the_create_and_a_rename_then_retry_sends_it(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = pushed_pipeline(admin, "New", "Shipped")
    made = api(portal).post(
        f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages",
        json={"label": "On hold", "displayOrder": 5, "metadata": {"state": "OPEN"}},
    )
    assert made.status_code == 201
    stage = services.stage_create(pipeline=pipeline, label="on hold", by=admin)
    order = orders_in_hubspot(portal, live(pipeline)[0], 1)[0]
    move = outbox.record_change(
        obj=order,
        properties={"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id},
        by=admin,
    )

    push.push_outbox()

    create = Change.objects.get(kind=ChangeKind.STAGE_CREATE)
    assert create.status == ChangeStatus.FAILED
    assert create.error.startswith("HubSpot refused this change: ") and "unique" in create.error
    assert Stage.objects.get(pk=stage.pk).label == "on hold"  # kept here, with the move waiting for it
    assert Change.objects.get(pk=move.pk).status == ChangeStatus.PENDING

    # Retry as it is: refused again, never taken for HubSpot's own stage of that label.
    outbox.change_retry(change=create, by=admin)
    push.push_outbox()
    assert Change.objects.get(pk=create.pk).status == ChangeStatus.FAILED

    services.stage_update(stage=stage, by=admin, label="Waiting for stock")
    outbox.change_retry(change=Change.objects.get(pk=create.pk), by=admin)
    push.push_outbox()

    stage.refresh_from_db()
    assert Change.objects.get(pk=create.pk).status == ChangeStatus.APPLIED
    assert Change.objects.get(pk=move.pk).status == ChangeStatus.APPLIED
    assert [s[0] for s in remote_stages(portal, pipeline.hubspot_id)] == [
        "New",
        "Shipped",
        "Waiting for stock",
        "On hold",
    ]
    assert remote(portal, "orders", order.hubspot_id)["hs_pipeline_stage"] == stage.hubspot_id


def test_a_rename_hubspot_refuses_fails_keeps_the_label_here_and_discard_restores_it(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = pushed_pipeline(admin, "New", "Shipped")
    _, shipped = live(pipeline)
    api(portal).post(
        f"/crm/v3/pipelines/orders/{pipeline.hubspot_id}/stages",
        json={"label": "Sent", "displayOrder": 5, "metadata": {"state": "OPEN"}},
    ).raise_for_status()
    change = services.stage_update(stage=shipped, by=admin, label="Sent")

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED and "unique" in change.error
    assert Stage.objects.get(pk=shipped.pk).label == "Sent"
    sync_pipelines()  # a sync meanwhile keeps it too
    assert Stage.objects.get(pk=shipped.pk).label == "Sent"

    outbox.change_discard(change=change, by=admin)
    assert Stage.objects.get(pk=shipped.pk).label == "Shipped"


def test_the_scheduled_sync_never_archives_what_hubspot_has_not_created_yet(
    portal: Sandbox, admin: Any
) -> None:
    pipeline = services.pipeline_create(label="Wholesale", stages=[("New", "OPEN")], by=admin)
    existing = Pipeline.objects.exclude(pk=pipeline.pk).first()
    assert existing is not None
    stage = services.stage_create(pipeline=existing, label="Waiting for stock", by=admin)
    renamed = live(existing)[0]
    services.stage_update(stage=renamed, by=admin, label="Just in")

    sync_pipelines()

    assert not Pipeline.objects.get(pk=pipeline.pk).archived
    assert not Stage.objects.get(pk=stage.pk).archived
    assert Stage.objects.get(pk=renamed.pk).label == "Just in"
    push.push_outbox()
    sync_pipelines()
    assert Stage.objects.get(pk=renamed.pk).label == "Just in"
    assert Pipeline.objects.filter(label="Wholesale", archived=False).count() == 1
