"""Writing many rows at once (hubspot_sync.pending.insert_rows, update_rows, write_values_many(fresh=True))
stores exactly what Django's own writes store, on SQLite and on PostgreSQL; and a stage's orders moved out in
bulk (outbox.record_changes) end as the same changes and the same records as one move at a time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hubspot_sync import outbox, pending, registry
from hubspot_sync.models import Change, ChangeKind, ChangeStatus
from orders.models import BoardTotal, Order
from tests import factories

pytestmark = pytest.mark.django_db

HOSTILE = 'quote \' " back\\slash ‮gnp.exe {"json": [1]} , ; )'


def _stored(change: Change) -> dict[str, Any]:
    stored = Change.objects.get(object_id=change.object_id)
    values = {f.attname: getattr(stored, f.attname) for f in Change._meta.concrete_fields}
    for name in ("id", "trace_id", "updated_at"):
        values.pop(name)
    return values


def test_insert_rows_stores_what_bulk_create_stores() -> None:
    user = factories.support_user()
    at = timezone.now().replace(microsecond=123456) - timedelta(days=3)
    common: dict[str, Any] = {
        "kind": ChangeKind.UPDATE,
        "status": ChangeStatus.FAILED,
        "object_type": "orders",
        "base": {"hs_pipeline_stage": HOSTILE, "n": None},
        "new": {"hs_pipeline_stage": "2", "list": [1, 2.5, "x"]},
        "payload": {"nested": {"deep": [True, False, None]}},
        "association_type_id": 279,
        "force": True,
        "attempts": 3,
        "next_attempt_at": at,
        "created_at": at - timedelta(hours=1),
        "error": HOSTILE,
        "created_by": user,
        "created_by_name": HOSTILE,
    }
    ours = Change(object_id="via-insert-rows", **common)
    django = Change(object_id="via-bulk-create", **common)
    with transaction.atomic():
        pending.insert_rows(Change, [ours])
    Change.objects.bulk_create([django])

    mine, theirs = _stored(ours), _stored(django)
    assert mine.pop("object_id") == "via-insert-rows"
    assert theirs.pop("object_id") == "via-bulk-create"
    assert mine == theirs
    assert mine["next_attempt_at"] == at
    assert mine["base"] == {"hs_pipeline_stage": HOSTILE, "n": None}
    assert mine["created_by_id"] == user.pk
    assert mine["pushed_at"] is None
    # The key was made by the database and the trace ids stay unique.
    assert Change.objects.count() == 2
    assert len(set(Change.objects.values_list("trace_id", flat=True))) == 2


def test_update_rows_stores_what_save_stores() -> None:
    pipeline = factories.pipeline_with_stages()
    first, last = pipeline.stages.order_by("display_order")[0], pipeline.stages.order_by("display_order")[4]
    orders = [factories.OrderFactory(stage=first) for _ in range(3)]
    twins = [factories.OrderFactory(stage=first) for _ in range(3)]
    entered = timezone.now().replace(microsecond=654321) - timedelta(days=2)
    for i, (order, twin) in enumerate(zip(orders, twins, strict=True)):
        for record in (order, twin):
            record.stage = last
            record.total = Decimal("1234567.89") + i
            record.customer_name = f"{HOSTILE} {i}" if i else ""
            record.stage_entered_at = entered
            record.properties = {"hs_pipeline_stage": last.hubspot_id, "x": HOSTILE, "n": i}
    names = ["stage", "total", "customer_name", "stage_entered_at", "properties"]
    with transaction.atomic():
        pending.update_rows(Order, orders, names)
    for twin in twins:
        twin.save(update_fields=names)

    for order, twin in zip(orders, twins, strict=True):
        mine = Order.objects.values(*[f if f != "stage" else "stage_id" for f in names]).get(pk=order.pk)
        theirs = Order.objects.values(*[f if f != "stage" else "stage_id" for f in names]).get(pk=twin.pk)
        assert mine == theirs
        assert mine["stage_id"] == last.pk
        assert mine["stage_entered_at"] == entered
    # The board's totals follow the written stage (a statement trigger on PostgreSQL, row triggers on SQLite).
    in_last = BoardTotal.objects.filter(stage_id=last.pk).values_list("count", flat=True)
    assert sum(in_last) == 6


def test_a_fresh_write_leaves_out_the_columns_that_keep_their_value() -> None:
    pipeline = factories.pipeline_with_stages()
    first, second = pipeline.stages.order_by("display_order")[:2]
    orders = list(Order.objects.filter(pk__in=[factories.OrderFactory(stage=first).pk for _ in range(3)]))
    spec = registry.get("orders")
    place = {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": second.hubspot_id}
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        pending.write_values_many(spec, [(order, place) for order in orders], fresh=True)
    update = next(q["sql"] for q in queries.captured_queries if 'UPDATE "orders_order"' in q["sql"])
    set_list = update.split(" SET ", 1)[1]
    assert '"stage_id"' in set_list
    # The order's name and total did not change: no search-text or totals column is rewritten for them.
    assert '"name"' not in set_list
    assert '"total"' not in set_list
    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("stage_id", flat=True)) == {
        second.pk
    }


@pytest.mark.django_db(transaction=True)
def test_moving_out_in_bulk_equals_moving_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "queue_push", lambda **kwargs: False)
    user = factories.pipeline_admin()
    pipeline = factories.pipeline_with_stages()
    first, second = pipeline.stages.order_by("display_order")[:2]
    singles = [factories.OrderFactory(stage=first, name=f"{HOSTILE} {i}") for i in range(4)]
    bulk = [factories.OrderFactory(stage=first, name=f"{HOSTILE} {i}") for i in range(4)]
    # An earlier failed move of one of each is replaced (superseded) by the new one, either way.
    for order in (singles[0], bulk[0]):
        Change.objects.create(
            object_type="orders",
            object_id=order.hubspot_id,
            status=ChangeStatus.FAILED,
            base={"hs_pipeline_stage": first.hubspot_id},
            new={"hs_pipeline_stage": "refused"},
        )
    place = {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": second.hubspot_id}

    for order in singles:
        outbox.record_change(obj=order, properties=place, by=user)
    with transaction.atomic():
        locked = list(Order.objects.select_for_update().filter(pk__in=[o.pk for o in bulk]).order_by("pk"))
        recorded = outbox.record_changes(items=[(order, place) for order in locked], by=user, locked=True)
    assert recorded == 4

    def outcome(order: Order) -> dict[str, Any]:
        order.refresh_from_db()
        change = Change.objects.get(object_id=order.hubspot_id, status=ChangeStatus.PENDING)
        superseded = Change.objects.filter(object_id=order.hubspot_id, status=ChangeStatus.DISCARDED).count()
        return {
            "stage": order.stage_id,
            "pipeline": order.pipeline_id,
            "properties": {k: v for k, v in order.properties.items() if k != "hs_order_name"},
            "name_kept": order.name.startswith(HOSTILE),
            "base": change.base,
            "new": change.new,
            "by": (change.created_by_id, change.created_by_name),
            "superseded": superseded,
        }

    for single, moved in zip(singles, bulk, strict=True):
        assert outcome(moved) == outcome(single)
    assert outcome(bulk[0])["superseded"] == 1
    assert outcome(bulk[1])["stage"] == second.pk
    assert outcome(bulk[1])["base"] == {
        "hs_pipeline": pipeline.hubspot_id,
        "hs_pipeline_stage": first.hubspot_id,
    }
    # The search index still finds the moved orders by their names.
    assert Order.objects.filter(pk__in=[o.pk for o in bulk], stage=second).count() == 4


def test_a_pushed_write_keeps_hubspots_newer_time_and_never_an_older_one() -> None:
    """After a write HubSpot's modification time is noted on the record (one statement per batch on
    PostgreSQL), so a sync page read before the write can't put the old values back; an older time never
    replaces a newer one."""
    from hubspot_sync import client, push

    pipeline = factories.pipeline_with_stages()
    stage = pipeline.stages.first()
    now = timezone.now().replace(microsecond=0)
    stale = factories.OrderFactory(stage=stage, remote_updated_at=now - timedelta(hours=1))
    newer = factories.OrderFactory(stage=stage, remote_updated_at=now + timedelta(hours=1))
    never = factories.OrderFactory(stage=stage, remote_updated_at=None)

    def answer(order: Order) -> client.ApiObject:
        return client.ApiObject(id=order.hubspot_id, properties={}, created_at=now, updated_at=now)

    push._note_remote("orders", [answer(stale), answer(newer), answer(never)])

    assert Order.objects.get(pk=stale.pk).remote_updated_at == now
    assert Order.objects.get(pk=newer.pk).remote_updated_at == now + timedelta(hours=1)
    assert Order.objects.get(pk=never.pk).remote_updated_at == now
