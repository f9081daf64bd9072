"""The board's maintained totals and its search index stay exact whatever writes the orders.

BoardTotal and the search index are kept by database triggers (orders migration 0004): these tests write
orders every way the project does (the ORM, the sync's raw upserts, whole-table updates, archiving, moves,
deletes) and compare them with a fresh aggregate of the orders themselves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from hubspot_sync import cache, registry
from hubspot_sync.client import ApiObject
from orders import board as boards
from orders.models import BoardTotal, Order
from orders.services import order_move_to_stage
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db

Key = tuple[int, int, str, str, str]


def fresh_totals() -> dict[Key, tuple[int, int, int]]:
    """What BoardTotal should hold, aggregated from the orders now."""
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for order in Order.objects.filter(pipeline__isnull=False, archived=False):
        key = (
            order.pipeline_id,
            order.stage_id or 0,
            order.currency,
            order.store,
            order.fulfillment_status,
        )
        entry = totals[key]
        entry[0] += 1
        if order.total is not None:
            entry[1] += 1
            entry[2] += int(Decimal(order.total) * 10000)
    return {key: (n, priced, amount) for key, (n, priced, amount) in totals.items()}


def maintained_totals() -> dict[Key, tuple[int, int, int]]:
    return {
        (t.pipeline_id, t.stage_id, t.currency, t.store, t.fulfillment_status): (t.count, t.priced, t.amount)
        for t in BoardTotal.objects.all()
        if (t.count, t.priced, t.amount) != (0, 0, 0)
    }


def assert_exact() -> None:
    assert maintained_totals() == fresh_totals()


def record(
    hubspot_id: str,
    stage: Stage,
    *,
    total: str | None = "12.34",
    currency: str = "EUR",
    store: str = "Main store",
    name: str = "Synced order",
    updated: Any = None,
    archived: bool = False,
) -> ApiObject:
    """An order as HubSpot sends it (every value a string)."""
    updated = updated or timezone.now()
    properties: dict[str, str | None] = {
        "hs_order_name": name,
        "hs_pipeline": stage.pipeline.hubspot_id,
        "hs_pipeline_stage": stage.hubspot_id,
        "hs_total_price": total,
        "hs_currency_code": currency,
        "hs_source_store": store,
        "hs_fulfillment_status": "Unfulfilled",
        "hs_lastmodifieddate": updated.isoformat(),
    }
    return ApiObject(
        id=hubspot_id, properties=properties, created_at=updated, updated_at=updated, archived=archived
    )


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def stage(pipeline: Pipeline, label: str) -> Stage:
    return pipeline.stages.get(label=label)


def test_orm_writes_keep_the_totals_exact(pipeline: Pipeline, support_user: Any) -> None:
    opened, paid = stage(pipeline, "Open"), stage(pipeline, "Paid")
    orders = [
        factories.OrderFactory(stage=opened, total=Decimal("10.10"), currency="EUR"),
        factories.OrderFactory(stage=opened, total=Decimal("0.0001"), currency="USD"),
        factories.OrderFactory(stage=paid, total=None, currency="USD"),
        factories.OrderFactory(stage=paid, total=Decimal("99999999.9999"), currency="", store=""),
    ]
    assert_exact()

    order_move_to_stage(order=orders[0], stage=paid, by=support_user)  # a staff move
    assert_exact()
    orders[1].currency = "GBP"  # a currency change through save()
    orders[1].total = Decimal("3.3333")
    orders[1].save()
    assert_exact()
    Order.objects.filter(pk=orders[2].pk).update(total=Decimal("1.50"))  # a first total
    Order.objects.filter(pk=orders[3].pk).update(archived=True)  # archived: off the board
    assert_exact()
    Order.objects.filter(pk=orders[3].pk).update(archived=False, total=None)
    assert_exact()
    orders[1].delete()
    assert_exact()
    Order.objects.filter(stage=paid).update(stage=opened)  # many at once
    assert_exact()


def test_stage_and_pipeline_deletions_keep_the_totals_exact(pipeline: Pipeline) -> None:
    opened, paid = stage(pipeline, "Open"), stage(pipeline, "Paid")
    factories.OrderFactory(stage=opened)
    factories.OrderFactory(stage=paid)
    paid.delete()  # its orders keep their pipeline, with no stage
    assert_exact()
    other = factories.pipeline_with_stages(label="Returns")
    factories.OrderFactory(stage=other.stages.first())
    other.delete()  # its orders leave every board
    assert_exact()
    Order.objects.all().delete()
    assert_exact()
    assert maintained_totals() == {}


def test_sync_upserts_archiving_and_whole_table_updates_keep_the_totals_exact(pipeline: Pipeline) -> None:
    spec = registry.get("orders")
    opened, paid = stage(pipeline, "Open"), stage(pipeline, "Paid")
    now = timezone.now() - timedelta(hours=1)
    cache.upsert_records(spec, [record(str(900 + i), opened, updated=now) for i in range(20)])
    assert_exact()

    later = now + timedelta(minutes=5)
    changed = [
        record("900", paid, updated=later),  # moved in HubSpot
        record("901", opened, currency="USD", updated=later),  # currency changed
        record("902", opened, total=None, updated=later),  # total cleared
        record("903", opened, total="7.77", store="Outlet", updated=later),
        record("904", paid, updated=now - timedelta(days=1)),  # older: ignored
        record("999", paid, total="1.00", updated=later),  # new
    ]
    cache.upsert_records(spec, changed)
    assert_exact()
    assert Order.objects.get(hubspot_id="904").stage == opened

    cache.mark_archived(spec, ["905", "906"])
    assert_exact()
    Order.objects.update(customer_name="Renamed")  # a whole-table copy touches no total
    assert_exact()
    Order.objects.filter(hubspot_id__in=["907", "908"]).delete()
    assert_exact()


def test_the_board_from_maintained_totals_equals_counting_the_orders(pipeline: Pipeline) -> None:
    opened, paid, shipped = stage(pipeline, "Open"), stage(pipeline, "Paid"), stage(pipeline, "Shipped")
    for i in range(30):
        factories.OrderFactory(
            stage=(opened, paid, shipped)[i % 3],
            total=None if i % 7 == 0 else Decimal(i) + Decimal("0.25"),
            currency=("EUR", "USD", "")[i % 3 if i % 2 else 0],
            store=("Main store", "Outlet")[i % 2],
            fulfillment_status=("Unfulfilled", "Shipped")[i % 5 == 0],
            archived=i % 11 == 0,
        )
    Order.objects.filter(pk=Order.objects.first().pk).update(stage=None)  # type: ignore[union-attr]
    for filters in (
        {},
        {"store": "Outlet"},
        {"currency": "USD"},
        {"status": "Shipped", "store": "Main store"},
        {"currency": "none-such"},
    ):
        assert BoardTotal.objects.answers(filters)
        counted = boards.filtered(pipeline, filters).stage_totals()
        assert boards.stage_totals(pipeline, filters) == counted
        ids = [opened.pk, shipped.pk]
        assert boards.stage_totals(pipeline, filters, ids) == {k: v for k, v in counted.items() if k in ids}


@pytest.mark.parametrize(
    "text",
    [
        "alice",  # customer name, any case
        "ALICE@SHOP",  # email
        "1Z999",  # tracking number
        "ext-77",  # external id, a part of it
        "#10",  # order name
        "30000000",  # a part of a HubSpot id matches nothing: only the whole id does
        "4242",  # a whole HubSpot id
        "ce 10",  # spans a space in the name
        "de@sh",  # across name and email of one order: no match
        "50%",  # LIKE's wildcards are plain characters
        "a_b",
        'say "hi"',  # FTS5's quote
        "zö",  # beyond ASCII
        "ZÖ",
        "al",  # too short for a trigram: searched without the index
        "nothing like it",
    ],
)
def test_search_finds_exactly_the_substring_matches(pipeline: Pipeline, text: str) -> None:
    opened = stage(pipeline, "Open")
    factories.OrderFactory(stage=opened, name="Order #101", customer_name="Alice Doe", external_id="EXT-771")
    factories.OrderFactory(stage=opened, name="Price 100", customer_email="alice@shop.example")
    factories.OrderFactory(stage=opened, tracking_number="1Z9999", name="Sale 50% off", hubspot_id="4242")
    factories.OrderFactory(stage=opened, name='a_b and say "hi"', customer_name="Zöe")
    factories.OrderFactory(stage=opened, name="axb", customer_name="Jude", customer_email="x@shop.example")
    later = factories.OrderFactory(stage=opened, name="placeholder")
    Order.objects.filter(pk=later.pk).update(name="Renamed Alice", customer_name="ZÖRN")  # index follows

    found = set(boards.filtered(pipeline, {"q": text}).values_list("pk", flat=True))

    expected = {
        order.pk
        for order in Order.objects.filter(pipeline=pipeline, archived=False)
        if order.hubspot_id == text
        or any(
            fold(text) in fold(value)
            for value in (
                order.name,
                order.external_id,
                order.customer_name,
                order.customer_email,
                order.tracking_number,
            )
        )
    }
    assert found == expected


def fold(value: str) -> str:
    """Case as each database's case-insensitive LIKE ignores it (SQLite's only for ASCII letters)."""
    if connection.vendor == "sqlite":
        return "".join(c.lower() if c.isascii() else c for c in value)
    return value.upper()


def test_search_index_follows_deletes_and_renames(pipeline: Pipeline) -> None:
    opened = stage(pipeline, "Open")
    kept = factories.OrderFactory(stage=opened, customer_name="Quentin Blake")
    gone = factories.OrderFactory(stage=opened, customer_name="Quentin Tarantino")
    gone.delete()
    assert list(boards.filtered(pipeline, {"q": "quentin"})) == [kept]
    kept.customer_name = "Roald Dahl"
    kept.save()
    assert list(boards.filtered(pipeline, {"q": "quentin"})) == []
    assert list(boards.filtered(pipeline, {"q": "roald"})) == [kept]


def test_search_index_follows_pages_of_synced_orders(pipeline: Pipeline) -> None:
    # A page of orders the sync writes is indexed as a page (orders.search on SQLite), new and changed
    # orders alike, and a page smaller than orders.search.SMALL_PAGE by the triggers.
    spec = registry.get("orders")
    opened = stage(pipeline, "Open")
    then = timezone.now() - timedelta(hours=1)
    cache.upsert_records(
        spec, [record(str(700 + i), opened, name=f"Walrus {i}", updated=then) for i in range(30)]
    )
    assert boards.filtered(pipeline, {"q": "walrus"}).count() == 30

    later = then + timedelta(minutes=5)
    renamed = [record(str(700 + i), opened, name=f"Narwhal {i}", updated=later) for i in range(0, 30, 2)]
    older = [record("701", opened, name="Stale name", updated=then - timedelta(days=1))]  # left alone
    new = [record(str(800 + i), opened, name=f"Narwhal new {i}", updated=later) for i in range(5)]
    cache.upsert_records(spec, renamed + older + new)
    cache.upsert_records(spec, [record("703", opened, name="Narwhal single", updated=later)])  # a small page

    assert boards.filtered(pipeline, {"q": "walrus"}).count() == 14
    assert boards.filtered(pipeline, {"q": "narwhal"}).count() == 15 + 5 + 1
    assert not boards.filtered(pipeline, {"q": "stale"}).exists()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # raises if the index disagrees with the orders' columns
            cursor.execute(
                "INSERT INTO orders_order_search (orders_order_search, rank) VALUES ('integrity-check', 1)"
            )
            cursor.execute("SELECT COUNT(*) FROM orders_order_search_paused")
            assert cursor.fetchone()[0] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE fires no row triggers on PostgreSQL")
def test_truncating_the_orders_empties_the_totals(pipeline: Pipeline) -> None:
    factories.OrderFactory(stage=stage(pipeline, "Open"))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as a flush outside a test's transaction
        cursor.execute("TRUNCATE orders_order CASCADE")
    assert maintained_totals() == {}


@pytest.mark.parametrize("filters", [{}, {"store": "Outlet"}, {"q": "alice"}, {"q": "al", "currency": "USD"}])
def test_first_pages_in_one_query_equal_each_columns_own_page(
    pipeline: Pipeline, filters: dict[str, Any]
) -> None:
    stages = boards.stages_of(pipeline)
    now = timezone.now()
    for i in range(70):
        factories.OrderFactory(
            stage=stages[i % 3],
            store=("Main store", "Outlet")[i % 2],
            currency=("EUR", "USD")[i % 3 == 0],
            customer_name=("Alice", "Bob")[i % 4 == 0],
            remote_created_at=now - timedelta(minutes=i // 2),  # ties on created, broken by id
        )
    orders = boards.filtered(pipeline, filters)

    pages = boards.first_pages(orders, stages, searched="q" in filters)

    for stage in stages:
        cards, cursor = boards.column_page(orders, stage, None)
        assert [o.pk for o in pages[stage.pk][0]] == [o.pk for o in cards]
        assert pages[stage.pk][1] == cursor
