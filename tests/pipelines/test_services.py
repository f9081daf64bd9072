"""The pipeline and stage services on the cache and the outbox (no HubSpot: test_push.py and test_live.py send
what they record): HubSpot's rules and the stage rules are checked before anything is written, deletes move
their orders first, and the previews say what will happen."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition
from orders.models import Order
from pipelines import services
from pipelines.models import Pipeline, Stage
from pipelines.push import must_wait
from pipelines.services import PipelineRuleError
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db: None) -> Any:
    return factories.pipeline_admin()


@pytest.fixture(autouse=True)
def _no_push(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pushes are queued on commit; no worker runs here."""
    from hubspot_sync.tasks import push_changes_task

    monkeypatch.setattr(push_changes_task, "delay", lambda *a, **k: None)


def stages_of(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(archived=False).order_by("display_order"))


def orders_in(stage: Stage, count: int, **properties: str) -> list[Order]:
    made = factories.OrderFactory.create_batch(count, stage=stage)
    if properties:
        for order in made:
            order.properties = {**order.properties, **properties}
            order.save(update_fields=["properties"])
    return made


def refused(call: Any, **kwargs: Any) -> str:
    """The refusal's message; and nothing was written or queued for HubSpot."""
    counts = (Pipeline.objects.count(), Stage.objects.count(), Change.objects.count())
    labels = sorted(Stage.objects.values_list("label", flat=True))
    with pytest.raises(PipelineRuleError) as caught:
        call(**kwargs)
    assert (Pipeline.objects.count(), Stage.objects.count(), Change.objects.count()) == counts
    assert sorted(Stage.objects.values_list("label", flat=True)) == labels
    return str(caught.value)


# --- create, rename, reorder: HubSpot's rules first -------------------------------------------------------


class TestPipelineCreate:
    def test_a_pipeline_is_created_here_at_once_and_recorded_for_hubspot(self, admin: Any) -> None:
        pipeline = services.pipeline_create(
            label="  Wholesale ",
            stages=[("New", "OPEN"), ("Packed", "OPEN"), ("Shipped", "CLOSED")],
            by=admin,
        )

        assert pipeline.label == "Wholesale" and pipeline.hubspot_id.startswith("tmp-")
        assert [(s.label, s.state, s.display_order) for s in stages_of(pipeline)] == [
            ("New", "OPEN", 0),
            ("Packed", "OPEN", 1),
            ("Shipped", "CLOSED", 2),
        ]
        change = Change.objects.get(kind=ChangeKind.PIPELINE_CREATE)
        assert change.object_id == pipeline.hubspot_id and change.new["label"] == "Wholesale"
        assert [s["label"] for s in change.payload["stages"]] == ["New", "Packed", "Shipped"]

    @pytest.mark.parametrize(
        ("label", "stages", "says"),
        [
            ("   ", [("New", "OPEN")], "A pipeline needs a label."),
            ("W" * 37, [("New", "OPEN")], "at most 36"),
            ("Tabs\there", [("New", "OPEN")], "control characters"),
            ("Wholesale", [], "at least one stage"),
            ("Wholesale", [("New", "OPEN"), ("new ", "CLOSED")], "Two stages are called “New”"),
            ("Wholesale", [("New", "MAYBE")], "either OPEN or CLOSED"),
            ("Wholesale", [("", "OPEN")], "A stage needs a label."),
            ("Wholesale", [(f"Stage {i}", "OPEN") for i in range(31)], "at most 30 stages"),
        ],
    )
    def test_what_hubspot_would_refuse_is_refused_before_anything_is_written(
        self, admin: Any, label: str, stages: list[tuple[str, str]], says: str
    ) -> None:
        assert says in refused(services.pipeline_create, label=label, stages=stages, by=admin)

    def test_pipeline_labels_are_unique_among_order_pipelines_whatever_the_case(self, admin: Any) -> None:
        factories.pipeline_with_stages(label="Online orders")
        message = refused(services.pipeline_create, label="ONLINE ORDERS", stages=[("A", "OPEN")], by=admin)
        assert message == "There is already an order pipeline called “Online orders”."

    def test_the_case_rule_and_the_caps_are_settings(self, admin: Any, settings: Any) -> None:
        factories.pipeline_with_stages(label="Online orders")
        settings.HUBSPOT_PIPELINE_LABELS_IGNORE_CASE = False
        settings.HUBSPOT_PIPELINE_STAGE_CAP = 2
        services.pipeline_create(label="ONLINE ORDERS", stages=[("A", "OPEN"), ("B", "OPEN")], by=admin)
        assert "at most 2 stages" in refused(
            services.pipeline_create, label="Third", stages=[("A", "OPEN")] * 3, by=admin
        )
        settings.HUBSPOT_PIPELINE_CAP = 2
        assert "at most 2 order pipelines" in refused(
            services.pipeline_create, label="Third", stages=[("A", "OPEN")], by=admin
        )

    def test_only_pipeline_admins_edit(self) -> None:
        support = factories.support_user()
        with pytest.raises(PermissionDenied):
            services.pipeline_create(label="Wholesale", stages=[("New", "OPEN")], by=support)
        assert not Pipeline.objects.exists() and not Change.objects.exists()


class TestRenameAndStages:
    def test_a_rename_records_its_base_and_a_clash_is_refused(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        stage = stages_of(pipeline)[1]  # Paid

        change = services.stage_update(stage=stage, by=admin, label=" Paid in full ")

        assert (change.kind, change.base, change.new) == (
            ChangeKind.STAGE_UPDATE,
            {"label": "Paid"},
            {"label": "Paid in full"},
        )
        assert Stage.objects.get(pk=stage.pk).label == "Paid in full"
        assert refused(services.stage_update, stage=stage, by=admin, label="shipped") == (
            f"{pipeline.label} already has a stage called “Shipped”: stage labels are unique within a "
            "pipeline."
        )
        assert "Nothing to change" in refused(
            services.stage_update, stage=stage, by=admin, label="Paid in full"
        )

    def test_a_stage_name_may_repeat_in_another_pipeline(self, admin: Any) -> None:
        factories.pipeline_with_stages(label="Online")
        other = factories.pipeline_with_stages(
            label="Returns", labels=("Requested", "Done"), closed=("Done",)
        )
        services.stage_create(pipeline=other, label="Paid", by=admin)
        assert [s.label for s in stages_of(other)] == ["Requested", "Done", "Paid"]

    def test_the_thirty_first_stage_is_refused(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages(labels=tuple(f"Stage {i}" for i in range(30)), closed=())
        assert refused(services.stage_create, pipeline=pipeline, label="One more", by=admin) == (
            f"{pipeline.label} can have at most 30 stages in HubSpot; this would make 31."
        )

    def test_a_state_switch_and_a_taken_place(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        paid = stages_of(pipeline)[1]
        change = services.stage_update(stage=paid, by=admin, state="CLOSED")
        assert (
            change.new == {"state": "CLOSED"} and Stage.objects.get(pk=paid.pk).metadata["state"] == "CLOSED"
        )
        assert "has that place" in refused(services.stage_update, stage=paid, by=admin, display_order=0)
        assert "whole number" in refused(services.stage_update, stage=paid, by=admin, display_order=-1)

    def test_a_reorder_moves_only_what_changed_and_names_every_stage(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        a, b, c, d, e = stages_of(pipeline)

        changes = services.stages_reorder(pipeline=pipeline, stages=[a, c, b, d, e], by=admin)

        assert [(ch.object_id, ch.new) for ch in changes] == [
            (c.hubspot_id, {"display_order": 1}),
            (b.hubspot_id, {"display_order": 2}),
        ]
        assert [s.label for s in stages_of(pipeline)] == ["Open", "Shipped", "Paid", "Delivered", "Cancelled"]
        assert "each of" in refused(services.stages_reorder, pipeline=pipeline, stages=[a, b, c, d], by=admin)
        assert "each of" in refused(
            services.stages_reorder, pipeline=pipeline, stages=[a, a, b, c, d, e], by=admin
        )

    def test_an_edit_of_a_stage_hubspot_has_not_created_changes_its_create(self, admin: Any) -> None:
        pipeline = services.pipeline_create(
            label="Wholesale", stages=[("New", "OPEN"), ("Done", "CLOSED")], by=admin
        )
        new, done = stages_of(pipeline)
        services.stage_update(stage=done, by=admin, label="Finished")
        services.stages_reorder(pipeline=pipeline, stages=[done, new], by=admin)
        added = services.stage_create(pipeline=pipeline, label="Waiting", by=admin)
        services.pipeline_update(pipeline=pipeline, by=admin, label="Wholesale B2B")

        [create] = Change.objects.all()  # still one create, carrying it all
        assert create.new["label"] == "Wholesale B2B"
        assert [(s["id"], s["label"], s["display_order"]) for s in create.payload["stages"]] == [
            (new.hubspot_id, "New", 1),
            (done.hubspot_id, "Finished", 0),
            (added.hubspot_id, "Waiting", 2),
        ]

    def test_a_later_edit_after_a_refused_one_keeps_hubspots_value_as_its_base(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        paid = stages_of(pipeline)[1]
        first = services.stage_update(stage=paid, by=admin, label="Paid up")
        Change.objects.filter(pk=first.pk).update(status=ChangeStatus.FAILED, error="refused")

        second = services.stage_update(stage=paid, by=admin, label="Settled")

        assert second.base == {"label": "Paid"}
        first.refresh_from_db()
        assert first.status == ChangeStatus.DISCARDED  # replaced by the newer edit of the same label


# --- deletes: orders move first, under the stage rules ----------------------------------------------------


class TestStageDelete:
    def test_the_preview_asks_for_a_target_and_says_what_reaches_hubspot(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        opened, paid, shipped, *_ = stages_of(pipeline)
        orders_in(paid, 120)

        blocked = services.stage_delete_preview(stage=paid)
        assert blocked.orders_to_move == 120 and blocked.target is None
        assert blocked.blocked == "Choose a stage for the 120 orders in it."
        assert "Choose a stage for the 120 orders" in refused(services.stage_delete, stage=paid, by=admin)

        preview = services.stage_delete_preview(stage=paid, move_to=shipped)
        assert preview.allowed and preview.target == shipped
        assert preview.local_changes == [
            "120 orders move from “Paid” to “Shipped” at once.",
            f"“Paid” leaves {pipeline.label} at once.",
        ]
        assert preview.hubspot_calls[0].startswith(
            "120 order moves to “Shipped” in 2 batch updates of up to 100"
        )
        assert preview.hubspot_calls[-1] == (
            "DELETE stage “Paid” with validateReferencesBeforeDelete=true, once HubSpot has every move"
        )
        assert services.allowed_delete_targets(paid) == [opened, *stages_of(pipeline)[2:]]

    def test_an_empty_stage_needs_no_target_but_the_last_stage_stays(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages(labels=("Only", "Other"), closed=())
        only, other = stages_of(pipeline)
        preview = services.stage_delete_preview(stage=other)
        assert preview.allowed and preview.orders_to_move == 0 and preview.target is None
        services.stage_delete(stage=other, by=admin)
        assert "a pipeline keeps at least one" in refused(services.stage_delete, stage=only, by=admin)

    def test_the_stage_rules_limit_the_targets(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages(allow_moving_back=False, allow_skipping=False)
        opened, paid, shipped, delivered, cancelled = stages_of(pipeline)
        orders_in(paid, 3)

        assert services.allowed_delete_targets(paid) == [shipped, delivered, cancelled]
        back = services.stage_delete_preview(stage=paid, move_to=opened)
        assert back.blocked == (f"{pipeline.label} doesn't allow moving orders back, from “Paid” to “Open”.")
        assert refused(services.stage_delete, stage=paid, by=admin, move_to=opened) == back.blocked
        assert services.allowed_delete_targets(opened) == [paid, shipped, delivered, cancelled]  # empty
        orders_in(opened, 1)
        # The next open stage, or a closed one (closing an order skips nothing).
        assert services.allowed_delete_targets(opened) == [paid, delivered, cancelled]
        skip = services.stage_delete_preview(stage=opened, move_to=shipped)
        assert skip.blocked == f"{pipeline.label} doesn't allow skipping stages: move through “Paid” first."
        assert services.stage_delete_preview(stage=opened, move_to=delivered).allowed  # closed: no skipping

    def test_a_target_requiring_properties_some_orders_lack_is_refused_with_how_many(
        self, admin: Any
    ) -> None:
        PropertyDefinition.objects.create(
            object_type="orders",
            name="hs_shipping_tracking_number",
            label="Tracking number",
            type="string",
            field_type="text",
        )
        pipeline = factories.pipeline_with_stages()
        _, paid, shipped, *_ = stages_of(pipeline)
        shipped.required_properties = ["hs_shipping_tracking_number"]
        shipped.save()
        orders_in(paid, 4, hs_shipping_tracking_number="1Z999")
        orders_in(paid, 3)

        preview = services.stage_delete_preview(stage=paid, move_to=shipped)

        assert preview.blocked == (
            "3 of the 7 orders have no value for “Tracking number”, which “Shipped” requires: fill it in on "
            "them first, or choose another stage."
        )
        assert shipped not in services.allowed_delete_targets(paid)

    def test_the_delete_moves_every_order_as_a_change_and_waits_for_them(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        _, paid, shipped, *_ = stages_of(pipeline)
        moved = orders_in(paid, 120)
        elsewhere = orders_in(shipped, 2)

        delete = services.stage_delete(stage=paid, by=admin, move_to=shipped)

        assert Stage.objects.get(pk=paid.pk).archived
        assert Order.objects.filter(stage=shipped).count() == 122
        moves = Change.objects.filter(kind=ChangeKind.UPDATE, object_type="orders")
        assert moves.count() == 120 and {m.object_id for m in moves} == {o.hubspot_id for o in moved}
        assert all(
            m.new == {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": shipped.hubspot_id}
            and m.base["hs_pipeline_stage"] == paid.hubspot_id
            and m.created_by == admin
            for m in moves
        )
        order = Order.objects.get(pk=moved[0].pk)
        assert order.properties["hs_pipeline_stage"] == shipped.hubspot_id and order.stage_entered_at
        assert not Change.objects.filter(object_id__in=[o.hubspot_id for o in elsewhere]).exists()
        assert delete.kind == ChangeKind.STAGE_DELETE and delete.payload["moved"] == 120
        assert max(m.pk for m in moves) < delete.pk

        row = {
            "pk": delete.pk,
            "object_type": "stages",
            "object_id": paid.hubspot_id,
            "parent_id": pipeline.hubspot_id,
        }
        assert must_wait(row)
        moves.exclude(pk=moves.order_by("-pk")[0].pk).update(status=ChangeStatus.APPLIED)
        assert must_wait(row)  # one move is still on its way
        moves.update(status=ChangeStatus.APPLIED)
        assert not must_wait(row)

    def test_a_large_delete_moves_the_rest_in_a_worker_and_waits_for_it(
        self, admin: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pipelines.tasks import deletion_moves_task

        queued: list[int] = []
        monkeypatch.setattr(deletion_moves_task, "delay", queued.append)
        settings.PIPELINE_DELETE_MOVES_NOW = 50
        settings.PIPELINE_DELETE_MOVE_CHUNK = 30
        pipeline = factories.pipeline_with_stages()
        _, paid, shipped, *_ = stages_of(pipeline)
        orders_in(paid, 120)

        with self.captured_on_commit() as callbacks:
            delete = services.stage_delete(stage=paid, by=admin, move_to=shipped)
        for callback in callbacks:
            callback()

        assert queued == [delete.pk]
        assert Order.objects.filter(stage=shipped).count() == 50  # the first ones at once
        row = {"pk": delete.pk, "object_type": "stages", "object_id": paid.hubspot_id, "parent_id": ""}
        Change.objects.filter(kind=ChangeKind.UPDATE).update(status=ChangeStatus.APPLIED)
        assert must_wait(row)  # the rest are still being moved

        assert services.deletion_moves_continue(change_pk=delete.pk) == 70
        assert services.deletion_moves_continue(change_pk=delete.pk) == 0  # run twice: nothing more

        delete.refresh_from_db()
        assert "moving_until" not in delete.payload and delete.payload["moved"] == 120
        assert Order.objects.filter(stage=shipped).count() == 120
        assert Change.objects.filter(kind=ChangeKind.UPDATE).count() == 120
        assert must_wait(row)  # the last moves are on their way
        Change.objects.filter(kind=ChangeKind.UPDATE).update(status=ChangeStatus.APPLIED)
        assert not must_wait(row)

    @staticmethod
    def captured_on_commit() -> Any:
        from django.test import TestCase

        return TestCase.captureOnCommitCallbacks()

    def test_the_deleted_stage_is_not_a_target(self, admin: Any) -> None:
        pipeline = factories.pipeline_with_stages()
        _, paid, shipped, *_ = stages_of(pipeline)
        orders_in(paid, 1)
        orders_in(shipped, 1)
        services.stage_delete(stage=paid, by=admin, move_to=shipped)
        assert "is deleted" in services.stage_delete_preview(stage=shipped, move_to=paid).blocked


class TestPipelineArchive:
    def test_a_pipeline_with_orders_archives_only_with_a_stage_elsewhere(self, admin: Any) -> None:
        online = factories.pipeline_with_stages(label="Online")
        returns = factories.pipeline_with_stages(label="Returns", labels=("Requested", "Refunded"), closed=())
        orders_in(stages_of(returns)[0], 2)
        orders_in(stages_of(returns)[1], 3)

        preview = services.pipeline_archive_preview(pipeline=returns)
        assert preview.blocked == "Choose a stage in another pipeline for the 5 orders in it."
        assert (
            "another pipeline"
            in services.pipeline_archive_preview(pipeline=returns, move_to=stages_of(returns)[0]).blocked
        )
        assert services.allowed_archive_targets(returns) == stages_of(online)

        target = stages_of(online)[0]
        change = services.pipeline_delete(pipeline=returns, by=admin, move_to=target)

        assert Pipeline.objects.get(pk=returns.pk).archived
        assert Order.objects.filter(stage=target, pipeline=online).count() == 5
        assert change.kind == ChangeKind.PIPELINE_DELETE and change.payload["moved"] == 5
        assert "the only order pipeline" in refused(services.pipeline_delete, pipeline=online, by=admin)
