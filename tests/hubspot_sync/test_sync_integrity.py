"""A full or reconcile run archives only what it proved gone from HubSpot; its bar ends at 100 %; the
scheduled sync keeps pipelines and property definitions fresh; ``--verify`` re-checks each difference; a full
run leaves PostgreSQL with fresh statistics. Against the sandbox over HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from hubspot_sandbox import objects as remote
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import client, sync
from hubspot_sync.models import (
    Association,
    Contact,
    LineItem,
    PropertyDefinition,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from hubspot_sync.verify import verify
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests.hubspot_sync.test_sync import assert_cache_equals, point_client_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(settings: Any) -> Iterator[Sandbox]:
    sandbox = start_sandbox(seed_contacts=15, seed_orders=30, seed_carts=12)
    point_client_at(settings, sandbox)
    settings.HUBSPOT_SYNC_DELETION_CHECK_EVERY = 1000
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


def full(types: list[str] | None = None, kind: str = SyncKind.FULL) -> Any:
    run = sync.run_sync(kind, types)
    assert run.status == SyncStatus.SUCCEEDED, (run.error_message, run.error_detail)
    return run


def live_line_items() -> set[str]:
    return set(LineItem.objects.filter(archived=False).values_list("hubspot_id", flat=True))


def an_order_line_item(sandbox: Sandbox) -> tuple[str, str]:
    """(order id, line item id) of an edge HubSpot has."""
    return next(
        (f[1], t[1])
        for f, targets in sandbox.state.associations.items()
        if f[0] == "orders"
        for t, types in targets.items()
        if t[0] == "line_items" and types and sandbox.state.get("line_items", t[1])
    )


# --- what a run may archive ---------------------------------------------------------------------------------


def test_a_line_item_only_full_run_archives_nothing_that_exists_in_hubspot(portal: Sandbox) -> None:
    full()
    before_items = live_line_items()
    before_edges = Association.objects.count()
    assert len(before_items) > 20 and before_edges > 0

    out = StringIO()
    call_command("sync", "--full", "--type", "line_item", stdout=out)

    assert live_line_items() == before_items
    assert Association.objects.count() == before_edges
    assert_cache_equals(portal)
    # It says what it did: every line item was read again, each written or found unchanged (the run
    # said "0 written" having read none), and its bar ended on that number.
    run = SyncRun.objects.latest("pk")
    assert run.object_types == "line_items" and run.status == SyncStatus.SUCCEEDED
    assert run.objects_written + run.objects_skipped == len(before_items)
    assert run.progress_done == run.progress_total == len(before_items)
    reported = re.search(
        r"Full sync done in [\d.]+ s: ([\d,]+) written, ([\d,]+) unchanged or older", out.getvalue()
    )
    assert reported, out.getvalue()
    written, unchanged = (int(n.replace(",", "")) for n in reported.groups())
    assert (written, unchanged) == (run.objects_written, run.objects_skipped)


def test_a_line_item_deleted_in_hubspot_is_archived_by_a_line_item_only_run(portal: Sandbox) -> None:
    full()
    _, gone = an_order_line_item(portal)
    assert remote.archive_record(portal.state, "line_items", gone)

    run = full(["line_items"])

    assert LineItem.objects.get(hubspot_id=gone).archived
    assert not Association.objects.filter(to_type="line_items", to_id=gone).exists()
    assert live_line_items() == {r.id for r in portal.state.live("line_items")}
    assert run.progress_done == run.progress_total and run.percent == 100


@pytest.mark.parametrize("kind", [SyncKind.FULL, SyncKind.RECONCILE])
def test_records_deleted_in_hubspot_are_archived_by_a_full_or_reconcile_run(
    portal: Sandbox, kind: str
) -> None:
    full()
    order_id, item_id = an_order_line_item(portal)
    contact_id = next(iter(portal.state.live("contacts"))).id
    for type_name, record_id in (("orders", order_id), ("line_items", item_id), ("contacts", contact_id)):
        assert remote.archive_record(portal.state, type_name, record_id)

    full(kind=kind)

    assert Order.objects.get(hubspot_id=order_id).archived
    assert LineItem.objects.get(hubspot_id=item_id).archived
    assert Contact.objects.get(hubspot_id=contact_id).archived
    assert_cache_equals(portal)


def test_a_line_item_no_order_names_any_more_stays_while_hubspot_has_it(portal: Sandbox) -> None:
    full()
    order_id, item_id = an_order_line_item(portal)
    assert remote.dissociate_records(portal.state, "orders", order_id, "line_items", item_id)
    for cart in list(portal.state.live("carts")):
        remote.dissociate_records(portal.state, "carts", cart.id, "line_items", item_id)

    full()

    assert not LineItem.objects.get(hubspot_id=item_id).archived  # HubSpot still has it
    assert not Association.objects.filter(from_type="orders", from_id=order_id, to_id=item_id).exists()
    assert_cache_equals(portal)


def test_line_items_without_any_synced_orders_or_carts_fail_and_say_what_to_run(portal: Sandbox) -> None:
    run = sync.run_sync(SyncKind.FULL, ["contacts", "line_items"])

    assert run.status == SyncStatus.FAILED
    assert "orders" in run.error_message and "carts" in run.error_message
    assert run.api_calls == 0 and not Contact.objects.exists()
    with pytest.raises(CommandError, match="read through the orders"):
        call_command("sync", "--full", "--type", "contact", "--type", "line_item", stdout=StringIO())


# --- progress -----------------------------------------------------------------------------------------------


def test_a_finished_run_shows_100_percent_on_an_empty_and_a_filled_cache(portal: Sandbox) -> None:
    first = full()
    assert first.progress_total and first.progress_done == first.progress_total and first.percent == 100

    # Contacts and line items, once orders and carts are known: the line items join the bar as they are read.
    second = full(["contacts", "line_items"])
    assert (
        second.progress_done
        == second.progress_total
        == (len(list(portal.state.live("contacts"))) + len(list(portal.state.live("line_items"))))
    )
    assert second.percent == 100


def test_the_bar_total_counts_line_items_as_they_are_found_not_hubspots_whole_count(
    portal: Sandbox,
) -> None:
    seen: list[tuple[int, int | None]] = []
    # A line item on no order or cart (on a deal, say): HubSpot counts it, no order or cart names it.
    remote.create_record(portal.state, "line_items", {"name": "On a deal", "quantity": "1", "price": "3"})

    run = sync.run_sync(
        SyncKind.FULL, progress=lambda run: seen.append((run.progress_done, run.progress_total))
    )

    assert run.status == SyncStatus.SUCCEEDED
    assert seen and all(total is not None and done <= total for done, total in seen)
    assert seen[-1][0] == seen[-1][1]  # the bar's last word is 100 %, not short by what no order names


# --- pipelines and property definitions ---------------------------------------------------------------------


def test_the_scheduled_sync_brings_a_new_stage_at_once_when_an_order_names_it(portal: Sandbox) -> None:
    full()
    order = Order.objects.exclude(stage=None).first()
    assert order is not None and order.pipeline is not None
    stage = client.create_stage(
        "orders",
        order.pipeline.hubspot_id,
        label="Gift wrapping",
        display_order=99,
        metadata={"state": "OPEN"},
    )
    time.sleep(0.01)
    remote.update_record(portal.state, "orders", order.hubspot_id, {"hs_pipeline_stage": stage.id})

    full_kind = sync.run_sync(SyncKind.INCREMENTAL)

    assert full_kind.status == SyncStatus.SUCCEEDED, full_kind.error_detail
    order.refresh_from_db()
    assert order.stage is not None and order.stage.hubspot_id == stage.id
    assert Stage.objects.get(hubspot_id=stage.id).label == "Gift wrapping"


def test_the_scheduled_sync_refreshes_definitions_every_n_minutes_not_every_run(
    portal: Sandbox, settings: Any
) -> None:
    settings.HUBSPOT_SYNC_DEFINITIONS_EVERY_MIN = 15
    full()
    response = requests.post(
        f"{portal.url}/crm/v3/properties/orders",
        json={
            "name": "gift_message",
            "label": "Gift message",
            "type": "string",
            "fieldType": "text",
            "groupName": "orderinformation",
        },
        headers={"Authorization": f"Bearer {portal.config.token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    pipeline = Pipeline.objects.filter(object_type="orders").first()
    assert pipeline is not None
    client.update_pipeline("orders", pipeline.hubspot_id, label="Web shop, renamed")

    # Fresh definitions: nothing is read again (one search call per type).
    quiet = sync.run_sync(SyncKind.INCREMENTAL)
    assert quiet.api_calls == 4
    assert not PropertyDefinition.objects.filter(name="gift_message").exists()

    # Older than 15 minutes: read again, once per type and once for the pipelines.
    old = timezone.now() - timedelta(minutes=16)
    PropertyDefinition.objects.update(synced_at=old)
    Pipeline.objects.update(synced_at=old)
    refreshed = sync.run_sync(SyncKind.INCREMENTAL)
    assert refreshed.api_calls == 4 + 4 + 1
    assert PropertyDefinition.objects.get(object_type="orders", name="gift_message").label == "Gift message"
    pipeline.refresh_from_db()
    assert pipeline.label == "Web shop, renamed"


# --- verify -------------------------------------------------------------------------------------------------


def test_verify_leaves_out_what_hubspot_changed_while_it_ran_and_reports_the_rest(
    portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    full()
    orders = sorted(r.id for r in portal.state.live("orders"))
    drifted, busy = orders[0], orders[-1]
    # A real difference: the cache holds a value HubSpot never had.
    Order.objects.filter(hubspot_id=drifted).update(
        properties={**Order.objects.get(hubspot_id=drifted).properties, "hs_order_name": "Stale copy"}
    )
    listing = client.list_objects
    changed: list[str] = []

    def busy_hubspot(object_type: str, **kwargs: Any) -> Any:
        # HubSpot changes records during the verify's own minute: a workflow renames one, a shop adds one.
        if object_type == "orders" and not changed:
            time.sleep(0.01)
            remote.update_record(portal.state, "orders", busy, {"hs_order_name": "Renamed by a workflow"})
            changed.append(remote.create_record(portal.state, "orders", {"hs_order_name": "Brand new"}).id)
        return listing(object_type, **kwargs)

    monkeypatch.setattr(client, "list_objects", busy_hubspot)

    drift = next(d for d in verify(["orders"]) if d.object_type == "orders")

    assert drift.property_mismatches == [drifted]
    assert drift.mismatched_properties == {"hs_order_name": 1}
    assert drift.missing_locally == [] and drift.extra_locally == []
    assert busy in drift.changed_meanwhile and changed[0] in drift.changed_meanwhile
    assert drift.remote_count == drift.local_count
    assert not drift.clean  # the stale copy is still reported


def test_verify_drops_a_difference_the_cache_caught_up_with_meanwhile(
    portal: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    full()
    contact_id = sorted(r.id for r in portal.state.live("contacts"))[0]
    original = Contact.objects.get(hubspot_id=contact_id).properties
    Contact.objects.filter(hubspot_id=contact_id).update(properties={**original, "firstname": "Old"})
    batch_read = client.batch_read

    def caught_up(object_type: str, ids: Any, **kwargs: Any) -> Any:
        # A webhook's refresh lands between the listing and the re-check.
        Contact.objects.filter(hubspot_id=contact_id).update(properties=original)
        return batch_read(object_type, ids, **kwargs)

    monkeypatch.setattr(client, "batch_read", caught_up)
    drift = next(d for d in verify(["contacts"]))
    assert drift.clean and drift.changed_meanwhile == [contact_id]


# --- statistics ---------------------------------------------------------------------------------------------


def test_a_full_run_on_postgresql_analyzes_the_tables_it_wrote(portal: Sandbox) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("ANALYZE is run on PostgreSQL only")
    full()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL AND relname = ANY(%s)",
            [[Order._meta.db_table, LineItem._meta.db_table, Association._meta.db_table]],
        )
        analyzed = {row[0] for row in cursor.fetchall()}
    assert analyzed == {Order._meta.db_table, LineItem._meta.db_table, Association._meta.db_table}
