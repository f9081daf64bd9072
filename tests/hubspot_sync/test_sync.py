"""Pull sync against the sandbox over real HTTP: the cache ends equal to HubSpot, whatever happens."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from carts.models import Cart
from hubspot_sandbox import objects as remote
from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import cache, client, registry, sync
from hubspot_sync.models import (
    Association,
    ConnectionProblem,
    Contact,
    LineItem,
    SyncKind,
    SyncLease,
    SyncRun,
    SyncStatus,
)
from hubspot_sync.verify import verify
from orders.models import Order
from pipelines.models import Stage

pytestmark = pytest.mark.django_db(transaction=True)

SEED = {"seed_contacts": 30, "seed_orders": 60, "seed_carts": 25}


def point_client_at(settings: Any, sandbox: Sandbox) -> None:
    settings.HUBSPOT_API_BASE = sandbox.url
    settings.HUBSPOT_ACCESS_TOKEN = sandbox.config.token
    settings.HUBSPOT_SYNC_LOOKBACK_S = 0
    settings.HUBSPOT_SEARCH_LAG_S = 0
    settings.HUBSPOT_SYNC_DELETION_CHECK_EVERY = 1


@pytest.fixture
def remote_portal(settings: Any) -> Iterator[Sandbox]:
    sandbox = start_sandbox(**SEED, association_changes_bump_modified=True)
    point_client_at(settings, sandbox)
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


def assert_cache_equals(sandbox: Sandbox) -> None:
    drifts = verify()
    for drift in drifts:
        assert drift.clean, drift
    state = sandbox.state
    for spec, model in (("orders", Order), ("carts", Cart), ("contacts", Contact), ("line_items", LineItem)):
        remote_ids = {r.id for r in state.live(spec)}
        local_ids = set(model.objects.filter(archived=False).values_list("hubspot_id", flat=True))
        assert local_ids == remote_ids, spec
    # Every association edge, both directions.
    remote_edges = {
        (f[0], f[1], t[0], t[1])
        for f, targets in state.associations.items()
        for t, types in targets.items()
        if types and state.get(f[0], f[1]) and state.get(t[0], t[1])
    }
    local_edges = set(Association.objects.values_list("from_type", "from_id", "to_type", "to_id"))
    assert local_edges == remote_edges


def test_full_sync_makes_the_cache_equal_to_hubspot(remote_portal: Sandbox) -> None:
    run = sync.run_sync(SyncKind.FULL)

    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    assert_cache_equals(remote_portal)
    assert run.objects_written == sum(
        len(list(remote_portal.state.live(t))) for t in remote_portal.state.records
    )
    assert run.api_calls > 0 and run.http_429 == 0
    # Typed columns and derived fields.
    order = Order.objects.exclude(stage=None).first()
    assert order is not None and order.pipeline == order.stage.pipeline  # type: ignore[union-attr]
    record = remote_portal.state.get("orders", order.hubspot_id)
    assert record is not None
    assert order.name == record.properties.get("hs_order_name", "")
    assert str(order.total.normalize()) == str(
        __import__("decimal").Decimal(record.properties["hs_total_price"]).normalize()
    )  # type: ignore[union-attr]
    assert Order.objects.filter(stage=None).count() == 0
    with_contact = Order.objects.exclude(contact_hubspot_id="").first()
    assert with_contact is not None
    contact = Contact.objects.get(hubspot_id=with_contact.contact_hubspot_id)
    assert with_contact.customer_email == contact.email
    assert Stage.objects.filter(pipeline__hubspot_id="14a2e10e-5471-408a-906e-c51f3b04369e").count() >= 5


def random_remote_changes(sandbox: Sandbox, rng: random.Random) -> dict[str, int]:
    state = sandbox.state
    counts = {"created": 0, "updated": 0, "archived": 0, "associations": 0}
    orders = [r.id for r in state.live("orders")]
    contacts = [r.id for r in state.live("contacts")]
    for order_id in rng.sample(orders, 15):
        remote.update_record(
            state,
            "orders",
            order_id,
            {
                "hs_fulfillment_status": rng.choice(["Packing", "Shipped"]),
                "hs_order_name": f"Changed {rng.randint(1, 10**6)}",
            },
        )
        counts["updated"] += 1
    for order_id in rng.sample(orders, 3):
        remote.archive_record(state, "orders", order_id)
        counts["archived"] += 1
    for contact_id in rng.sample(contacts, 4):
        remote.update_record(
            state, "contacts", contact_id, {"email": f"new{rng.randint(1, 10**6)}@shop.example"}
        )
        counts["updated"] += 1
    for _ in range(5):
        created = remote.create_record(
            state, "orders", {"hs_order_name": "Brand new", "hs_currency_code": "EUR"}
        )
        remote.associate_records(state, "orders", created.id, "contacts", rng.choice(contacts))
        counts["created"] += 1
    live_orders = [r.id for r in state.live("orders")]
    for order_id in rng.sample(live_orders, 4):
        remote.associate_records(state, "orders", order_id, "contacts", rng.choice(contacts))
        counts["associations"] += 1
    return counts


def test_incremental_sync_catches_up_after_random_remote_changes(remote_portal: Sandbox) -> None:
    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED
    rng = random.Random(7)
    time.sleep(0.01)
    counts = random_remote_changes(remote_portal, rng)
    assert sum(counts.values()) > 20
    # A change in the very millisecond the run starts belongs to the next run's window (the window ends before
    # the run's start, exclusive): step past it, as a scheduled run always is.
    time.sleep(0.01)

    run = sync.run_sync(SyncKind.INCREMENTAL)

    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    assert_cache_equals(remote_portal)


def test_an_incremental_run_with_nothing_changed_makes_one_call_per_type(
    remote_portal: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_SYNC_DELETION_CHECK_EVERY = 1000
    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED
    run = sync.run_sync(SyncKind.INCREMENTAL)
    assert run.status == SyncStatus.SUCCEEDED
    assert run.api_calls == len(registry.all_types())
    assert run.objects_written == 0


def test_more_than_ten_thousand_changes_in_one_window(settings: Any) -> None:
    sandbox = start_sandbox(seed_contacts=5, seed_orders=5, seed_carts=0, rate_limits=False)
    point_client_at(settings, sandbox)
    settings.HUBSPOT_SEARCH_PER_S = 1000
    try:
        assert sync.run_sync(SyncKind.FULL, ["orders"]).status == SyncStatus.SUCCEEDED
        time.sleep(0.01)
        for n in range(10_050):
            remote.create_record(sandbox.state, "orders", {"hs_order_name": f"Bulk {n}"})
        run = sync.run_sync(SyncKind.INCREMENTAL, ["orders"])
        assert run.status == SyncStatus.SUCCEEDED, run.error_detail
        assert Order.objects.filter(archived=False).count() == len(list(sandbox.state.live("orders")))
        assert Order.objects.filter(name="Bulk 10049").exists()
        # 10,050 changes at 200 a page: 51 search pages (none past the 10,000-result cap), then the edges of
        # the changed orders to contacts and line items at 1,000 ids a call (2 × 11), and one deletion check.
        assert run.api_calls == 51 + 2 * 11 + 1
    finally:
        sandbox.stop(save_snapshot=False)


def test_injected_429s_5xx_and_timeouts_change_nothing_in_the_result(
    remote_portal: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_READ_TIMEOUT_S = 1.0
    remote_portal.faults.set(
        [
            FaultRule(kind="error", status=503, probability=0.15),
            FaultRule(kind="storm", probability=0.1),
            FaultRule(kind="hang", probability=0.03, hang_s=3.0),
        ]
    )
    run = sync.run_sync(SyncKind.FULL)
    remote_portal.faults.clear()

    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    assert client.stats().retries > 0
    assert_cache_equals(remote_portal)


def test_a_rejected_token_stops_syncing_and_says_what_to_fix(remote_portal: Sandbox, settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-00000000-0000-0000-0000-00000000dead"
    run = sync.run_sync(SyncKind.INCREMENTAL)
    assert run.status == SyncStatus.FAILED
    assert "HUBSPOT_ACCESS_TOKEN" in run.error_message
    assert settings.HUBSPOT_ACCESS_TOKEN not in run.error_detail
    problem = ConnectionProblem.objects.get()
    assert problem.kind == ConnectionProblem.Kind.AUTH
    with pytest.raises(sync.SyncHalted):
        sync.run_sync(SyncKind.INCREMENTAL)
    # A person fixes the token and presses "Sync now": the stop is lifted.
    settings.HUBSPOT_ACCESS_TOKEN = remote_portal.config.token
    assert sync.run_sync(SyncKind.INCREMENTAL, manual=True).status == SyncStatus.SUCCEEDED
    assert not ConnectionProblem.objects.exists()


def test_a_crashed_full_run_resumes_from_its_cursor(remote_portal: Sandbox) -> None:
    first = client.list_objects("orders", properties=["hs_order_name"], limit=100)
    crashed = SyncRun.objects.create(
        kind=SyncKind.FULL,
        object_types=",".join(t.name for t in registry.all_types()),
        status=SyncStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
        cursor={
            "started": (timezone.now() - timedelta(hours=1)).isoformat(),
            "lists": {"orders": {"after": first.next_after}},
        },
    )
    run = sync.run_sync(SyncKind.FULL)
    crashed.refresh_from_db()
    assert crashed.status == SyncStatus.INTERRUPTED
    assert run.resumed_from_id == crashed.pk
    assert run.status == SyncStatus.SUCCEEDED
    assert Order.objects.filter(archived=False).count() == len(list(remote_portal.state.live("orders")))


def test_two_runs_of_one_kind_never_overlap(remote_portal: Sandbox) -> None:
    SyncLease.objects.create(
        name="sync:incremental", owner="another-worker", expires_at=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(sync.SyncBusy):
        sync.run_sync(SyncKind.INCREMENTAL)
    # An expired lease (its holder crashed) is taken over.
    SyncLease.objects.filter(name="sync:incremental").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert sync.run_sync(SyncKind.INCREMENTAL).status == SyncStatus.SUCCEEDED


def test_refresh_reads_named_records_and_archives_deleted_ones(remote_portal: Sandbox) -> None:
    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED
    changed, deleted = [r.id for r in remote_portal.state.live("orders")][:2]
    remote.update_record(remote_portal.state, "orders", changed, {"hs_order_name": "Refreshed name"})
    remote.archive_record(remote_portal.state, "orders", deleted)

    sync.refresh_records("orders", [changed, deleted])

    assert Order.objects.get(hubspot_id=changed).name == "Refreshed name"
    assert Order.objects.get(hubspot_id=deleted).archived


class FakeRecord:
    def __init__(self, record_id: str, name: str, updated: Any) -> None:
        self.id = record_id
        self.properties = {"hs_order_name": name, "hs_lastmodifieddate": updated.isoformat()}
        self.created_at = updated
        self.updated_at = updated
        self.archived = False
        self.associations: dict[str, list[str]] = {}


def test_an_older_version_never_overwrites_a_newer_one() -> None:
    spec = registry.get("orders")
    now = timezone.now()
    cache.upsert_records(spec, [FakeRecord("901", "newer", now)])
    result = cache.upsert_records(spec, [FakeRecord("901", "older", now - timedelta(minutes=5))])
    assert Order.objects.get(hubspot_id="901").name == "newer"
    assert result.written == 0 and result.skipped == 1
    cache.upsert_records(spec, [FakeRecord("901", "newest", now + timedelta(minutes=5))])
    assert Order.objects.get(hubspot_id="901").name == "newest"


def test_a_malformed_record_is_skipped_not_fatal() -> None:
    spec = registry.get("orders")
    bad = FakeRecord("x" * 40, "too long an id", timezone.now())
    good = FakeRecord("902", "fine", timezone.now())
    result = cache.upsert_records(spec, [bad, good])
    assert result.malformed == 1
    assert Order.objects.filter(hubspot_id="902").exists()


def test_a_full_runs_whole_table_copies_equal_the_per_record_copies(remote_portal: Sandbox) -> None:
    """A full run copies contacts and orders onto orders and carts at its end, set-based; the result is what
    the per-record hooks (incremental runs, refreshes) make of the same edges."""
    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED
    orders = list(Order.objects.order_by("hubspot_id").values_list("hubspot_id", flat=True))
    # A second contact with a lower id (the copy takes the first by id), and orders that lost theirs.
    low = Contact.objects.order_by("hubspot_id").values_list("hubspot_id", flat=True).first()
    assert low is not None
    Association.objects.bulk_create(
        [
            Association(from_type="orders", from_id=order_id, to_type="contacts", to_id=low, type_id=507)
            for order_id in orders[:5]
        ],
        ignore_conflicts=True,
    )
    Association.objects.filter(from_type="orders", from_id__in=orders[5:10], to_type="contacts").delete()
    cache.run_after_upsert(registry.get("orders"), orders)
    cache.run_after_upsert(registry.get("carts"), list(Cart.objects.values_list("hubspot_id", flat=True)))

    def copies() -> tuple[list[Any], list[Any]]:
        return (
            list(
                Order.objects.order_by("hubspot_id").values_list(
                    "hubspot_id", "contact_hubspot_id", "customer_email", "customer_name"
                )
            ),
            list(
                Cart.objects.order_by("hubspot_id").values_list(
                    "hubspot_id", "contact_hubspot_id", "customer_email", "customer_name", "order_hubspot_id"
                )
            ),
        )

    expected = copies()
    assert any(row[1] == low for row in expected[0]) and any(row[1] == "" for row in expected[0])
    Order.objects.filter(hubspot_id__in=orders[:8]).update(contact_hubspot_id="stale", customer_name="stale")
    Order.objects.filter(hubspot_id__in=orders[8:12]).update(customer_email="stale@example.com")
    Cart.objects.update(order_hubspot_id="stale", customer_name="stale")

    cache.run_whole_table_hooks(registry.all_types())

    assert copies() == expected


def test_a_second_full_run_replaces_edges_that_the_first_wrote_as_plain_inserts(
    remote_portal: Sandbox,
) -> None:
    # The first full run finds every table empty, so pages add edges without deleting; the next one must
    # replace them, and drop an edge HubSpot no longer has, from either side.
    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED
    state = remote_portal.state
    order_id, cart_id = next(
        (f[1], t[1])
        for f, targets in state.associations.items()
        if f[0] == "orders"
        for t, types in targets.items()
        if t[0] == "carts" and types
    )
    contact_order = next(
        (f[1], t[1])
        for f, targets in state.associations.items()
        if f[0] == "orders"
        for t, types in targets.items()
        if t[0] == "contacts" and types
    )
    assert remote.dissociate_records(state, "orders", order_id, "carts", cart_id)
    assert remote.dissociate_records(state, "orders", contact_order[0], "contacts", contact_order[1])

    assert sync.run_sync(SyncKind.FULL).status == SyncStatus.SUCCEEDED

    assert not Association.objects.filter(from_type="carts", from_id=cart_id, to_id=order_id).exists()
    assert not Association.objects.filter(from_type="orders", from_id=order_id, to_id=cart_id).exists()
    assert not Association.objects.filter(
        from_type="contacts", from_id=contact_order[1], to_id=contact_order[0]
    ).exists()
    assert_cache_equals(remote_portal)


def _on_postgresql() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def test_on_postgresql_line_items_are_written_by_a_second_writer(
    remote_portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _on_postgresql():
        pytest.skip("the second writer is for PostgreSQL (SQLite has one writer at a time)")
    groups: list[str] = []
    write = sync._SideWriter._write

    def counting(self: Any, group: list[Any]) -> None:
        groups.append(group[0].spec.name)
        write(self, group)

    monkeypatch.setattr(sync._SideWriter, "_write", counting)
    run = sync.run_sync(SyncKind.FULL)

    assert run.status == SyncStatus.SUCCEEDED, run.error_detail
    assert groups and set(groups) == {"line_items"}
    assert_cache_equals(remote_portal)
    assert run.objects_written == sum(
        len(list(remote_portal.state.live(t))) for t in remote_portal.state.records
    )


def test_on_postgresql_a_failing_second_writer_fails_the_run_and_stops(
    remote_portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _on_postgresql():
        pytest.skip("the second writer is for PostgreSQL (SQLite has one writer at a time)")

    def failing(self: Any, group: list[Any]) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sync._SideWriter, "_write", failing)
    with pytest.raises(RuntimeError, match="disk full"):  # an unexpected error is recorded, then raised
        sync.run_sync(SyncKind.FULL)

    run = SyncRun.objects.latest("pk")
    assert run.status == SyncStatus.FAILED
    assert "disk full" in (run.error_message + run.error_detail)
    assert not [t for t in threading.enumerate() if t.name == "sync-writer-2"]
