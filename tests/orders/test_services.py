"""The staff writes of orders, called directly: a move is under the pipeline's rules whoever calls it, a bulk
move too large for the request goes to a worker leaving orders moved after the confirmation, and saved
views keep the filters alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sync.models import Change
from orders import services, tasks
from orders.models import Order, SavedView
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def stage(pipeline: Pipeline, label: str) -> Stage:
    return pipeline.stages.get(label=label)


def test_a_move_the_rules_stop_is_refused_and_records_nothing(pipeline: Pipeline) -> None:
    pipeline.allow_moving_back = False
    pipeline.save()
    order = factories.OrderFactory(stage=stage(pipeline, "Shipped"))
    with pytest.raises(services.MoveRefused, match="doesn't allow moving orders back"):
        services.order_move_to_stage(order=order, stage=stage(pipeline, "Open"), by=factories.support_user())
    shipped = stage(pipeline, "Shipped")
    shipped.required_properties = ["hs_shipping_tracking_number"]
    shipped.save()
    other = factories.OrderFactory(stage=stage(pipeline, "Paid"))
    with pytest.raises(services.MoveRefused) as refused:
        services.order_move_to_stage(order=other, stage=shipped, by=factories.support_user())
    assert refused.value.missing == ["hs_shipping_tracking_number"]
    assert not Change.objects.exists()
    assert Order.objects.get(pk=other.pk).stage == stage(pipeline, "Paid")


def test_a_move_to_the_stage_it_is_in_says_so_and_records_nothing(pipeline: Pipeline) -> None:
    order = factories.OrderFactory(stage=stage(pipeline, "Paid"))
    moved = services.order_move_to_stage(
        order=order, stage=stage(pipeline, "Paid"), by=factories.support_user()
    )
    assert moved is False
    assert not Change.objects.exists()


def test_a_bulk_move_counts_moved_unchanged_and_refused(pipeline: Pipeline) -> None:
    pipeline.allow_moving_back = False
    pipeline.save()
    orders = [factories.OrderFactory(stage=stage(pipeline, label)) for label in ("Open", "Paid", "Delivered")]
    result = services.orders_bulk_move(
        orders=Order.objects.filter(pk__in=[o.pk for o in orders]).select_related("stage"),
        stage=stage(pipeline, "Paid"),
        by=factories.support_user(),
    )
    assert (result.moved, result.unchanged, sum(result.refused.values())) == (1, 1, 1)
    assert result.warns
    summary = result.summary(described="3 selected orders", stage=stage(pipeline, "Paid"))
    assert summary.startswith("Moved 1 of 3 selected orders to Paid. 1 were there already. 1 not moved:")


def test_a_large_bulk_move_goes_to_a_worker_without_orders_moved_since_the_confirmation(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown_at = timezone.now()
    before = [factories.OrderFactory(stage=stage(pipeline, "Open")) for _ in range(3)]
    Order.objects.filter(pk__in=[o.pk for o in before]).update(stage_entered_at=shown_at - timedelta(hours=1))
    meanwhile = factories.OrderFactory(stage=stage(pipeline, "Open"))
    Order.objects.filter(pk=meanwhile.pk).update(stage_entered_at=shown_at + timedelta(seconds=5))
    queued: list[Any] = []
    monkeypatch.setattr(tasks.orders_bulk_move_task, "delay", lambda *args: queued.append(args))
    user = factories.support_user()
    result = services.orders_bulk_move_confirmed(
        orders=Order.objects.filter(pipeline=pipeline),
        stage=stage(pipeline, "Paid"),
        by=user,
        seen=None,
        shown_at=shown_at,
    )
    [(stage_pk, ids, user_pk)] = queued
    assert (stage_pk, sorted(ids), user_pk) == (
        stage(pipeline, "Paid").pk,
        sorted(o.hubspot_id for o in before),
        user.pk,
    )
    assert (result.background, result.queued, result.moved_meanwhile, result.warns) == (True, 3, 1, True)
    summary = result.summary(described="all 4 orders matching the filters", stage=stage(pipeline, "Paid"))
    assert summary.startswith("Moving 3 of all 4 orders matching the filters to Paid in the background")
    assert "1 changed stage after the confirmation was shown" in summary
    # The worker's half moves them, and running it twice moves nothing more.
    assert tasks.orders_bulk_move_task(stage(pipeline, "Paid").pk, queued[0][1], user.pk) == 3
    assert tasks.orders_bulk_move_task(stage(pipeline, "Paid").pk, queued[0][1], user.pk) == 0
    assert Order.objects.get(pk=meanwhile.pk).stage == stage(pipeline, "Open")


def test_a_saved_view_keeps_the_filters_alone_and_replaces_one_of_its_name(pipeline: Pipeline) -> None:
    user = factories.support_user()
    view = services.saved_view_save(
        user=user, pipeline=pipeline, name="Portland", query="store=Portland&page=3&evil=1"
    )
    assert view.query == "store=Portland"
    again = services.saved_view_save(user=user, pipeline=pipeline, name="Portland", query="currency=EUR")
    assert again.pk == view.pk and SavedView.objects.get().query == "currency=EUR"
    services.saved_view_delete(view=again)
    assert not SavedView.objects.exists()
