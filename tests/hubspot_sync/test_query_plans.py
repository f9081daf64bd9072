"""The history tables (Changes: the outbox and audit log; webhook events) are read through the index made for
each question, never walked end to end, however much history they hold: the board's sync states (a type's
unsettled Changes through a pk subquery the (type, status) index answers, its just-applied ones by a range on
that index), the board's sync-state filter, a record's webhook timeline in the drawer, and processing's
unprocessed events (the partial index that holds only them).

Each test runs the code that asks (a page, the processing service), records the statements it sends to the
table, and reads each one's plan: SQLite's ``EXPLAIN QUERY PLAN`` after ``ANALYZE`` (its statistics then see
that nearly every Change is applied, which is what made it walk the audit log), PostgreSQL's ``EXPLAIN`` with
sequential scans disabled, so that small test tables still show whether an index can answer the question."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, models, transaction
from django.test import Client
from django.utils import timezone

from hubspot_sync import services
from hubspot_sync.models import Change, ChangeStatus, WebhookEvent
from orders.models import Order
from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db

CHANGES = Change._meta.db_table
EVENTS = WebhookEvent._meta.db_table
# A year of history in miniature: what the audit log and the event table hold besides what pages ask for.
HISTORY = 3000


@dataclass
class Plan:
    """How the database answers one statement, as far as one table goes."""

    sql: str
    text: str  # the plan as the database gave it, for failure messages
    indexes: set[str] = field(default_factory=set)  # indexes of the table it seeks or reads in part
    walks: list[str] = field(default_factory=list)  # the table, or a whole index of it, read end to end

    def __str__(self) -> str:
        return f"{self.sql}\n{self.text}"


@dataclass
class History:
    pipeline: Pipeline
    orders: list[Order]


@pytest.fixture
def history(db: None) -> History:
    """Five orders on a board, three with something to show (a pending, a failed and a just-applied Change),
    behind thousands of applied Changes and processed webhook events of other orders, and a few unprocessed
    events; the tables analysed, as a long-running database's are."""
    pipeline = factories.pipeline_with_stages()
    orders = [factories.OrderFactory(stage=pipeline.stages.get(label="Open")) for _ in range(5)]
    long_ago = timezone.now() - timedelta(days=40)
    Change.objects.bulk_create(
        Change(
            object_type="orders",
            object_id=str(40_000_000_000 + n % 500),
            base={"hs_fulfillment_status": "Packing"},
            new={"hs_fulfillment_status": "Shipped"},
            status=ChangeStatus.APPLIED,
            created_at=long_ago,
            pushed_at=long_ago,
            applied_at=long_ago,
            settled_at=long_ago,
        )
        for n in range(HISTORY)
    )
    for order, status in zip(
        orders[:3], (ChangeStatus.PENDING, ChangeStatus.FAILED, ChangeStatus.APPLIED), strict=True
    ):
        Change.objects.create(
            object_type="orders",
            object_id=order.hubspot_id,
            new={"hs_fulfillment_status": "Shipped"},
            status=status,
            applied_at=timezone.now() if status == ChangeStatus.APPLIED else None,
        )
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            event_id=f"old-{n}",
            subscription_type="object.propertyChange",
            object_type="orders",
            object_id=str(40_000_000_000 + n % 500),
            occurred_at=long_ago,
            payload={"propertyName": "hs_fulfillment_status", "propertyValue": "Shipped"},
            processed_at=long_ago,
            outcome="refreshed",
        )
        for n in range(HISTORY)
    )
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            event_id=f"new-{order.pk}",
            subscription_type="object.propertyChange",
            object_type="orders",
            object_id=order.hubspot_id,
            occurred_at=timezone.now(),
            payload={"propertyName": "hs_fulfillment_status", "propertyValue": "Packing"},
        )
        for order in orders
    )
    assert Change.objects.count() > HISTORY and WebhookEvent.objects.count() > HISTORY
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else f"ANALYZE {CHANGES}, {EVENTS}")
    return History(pipeline, orders)


# --- reading plans ------------------------------------------------------------------------------------------


def statements(
    run: Callable[[], Any], tables: list[str]
) -> tuple[Any, list[list[tuple[str, Sequence[Any]]]]]:
    """What ``run`` returned, and the reads, updates and deletes it sent to each table (sql, params)."""
    sent: list[list[tuple[str, Sequence[Any]]]] = [[] for _ in tables]

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not many and sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            for table, by in zip(tables, sent, strict=True):
                if f'"{table}"' in sql:
                    by.append((sql, params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        result = run()
    for table, by in zip(tables, sent, strict=True):
        assert by, f"nothing read {table}"
    return result, sent


def partial_indexes(model: type[models.Model]) -> set[str]:
    """Indexes that hold only the rows a question asks for: reading one whole is what it is made for."""
    return {index.name for index in model._meta.indexes if index.condition is not None and index.name}


def plan_of(sql: str, params: Sequence[Any], model: type[models.Model]) -> Plan:
    table = model._meta.db_table
    partial = partial_indexes(model)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return _sqlite_plan(sql, [row[-1] for row in cursor.fetchall()], table, partial)
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
        index_names = set(connection.introspection.get_constraints(cursor, table))
    explained = json.loads(raw) if isinstance(raw, str) else raw
    return _postgresql_plan(sql, explained[0]["Plan"], table, index_names, partial)


def _sqlite_plan(sql: str, details: list[str], table: str, partial: set[str]) -> Plan:
    # The table under its own name and every alias a subquery gives it ("hubspot_change" U0).
    names = {table} | set(re.findall(rf'"{table}" (\w+)', sql))
    plan = Plan(sql, "\n".join(details))
    for detail in details:
        step = re.match(r"(SEARCH|SCAN) (\S+)(?: USING (AUTOMATIC )?(?:COVERING )?INDEX (\S+))?", detail)
        if step is None or step[2] not in names:
            continue
        how, _, automatic, index = step.groups()
        if automatic or (how == "SCAN" and index not in partial):
            plan.walks.append(detail)
        elif index:
            plan.indexes.add(index)
    return plan


def _postgresql_plan(
    sql: str, root: dict[str, Any], table: str, index_names: set[str], partial: set[str]
) -> Plan:
    plan = Plan(sql, json.dumps(root, indent=1))

    def visit(node: dict[str, Any]) -> None:
        index = node.get("Index Name")
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == table:
            plan.walks.append(f"Seq Scan on {table}")
        elif index in index_names:
            if "Index Cond" in node or index in partial:
                plan.indexes.add(index)
            else:  # an index read from end to end, only for its order
                plan.walks.append(f"{node['Node Type']} using {index} with no condition")
        for child in node.get("Plans", ()):
            visit(child)

    visit(root)
    return plan


def plans(run: Callable[[], Any], *tables: type[models.Model]) -> tuple[Any, list[list[Plan]]]:
    """What ``run`` returned, and the plans of the statements it sent to each table."""
    result, sent = statements(run, [model._meta.db_table for model in tables])
    return result, [
        [plan_of(sql, params, model) for sql, params in by] for model, by in zip(tables, sent, strict=True)
    ]


def assert_no_walk(found: list[Plan]) -> None:
    walked = [p for p in found if p.walks]
    assert not walked, "read end to end:\n\n" + "\n\n".join(str(p) for p in walked)


def the_one(found: list[Plan], pattern: str) -> Plan:
    """The plan of the statement whose SQL matches ``pattern`` (there must be one)."""
    matching = [p for p in found if re.search(pattern, p.sql)]
    assert matching, f"no statement matches {pattern!r} among:\n" + "\n".join(p.sql for p in found)
    return matching[0]


# --- the board: sync states ---------------------------------------------------------------------------------

# Statements by what they ask, whatever their shape: a type's unsettled Changes (four statuses), its Changes
# applied a moment ago (a range on applied_at).
UNSETTLED = r'"object_type" = %s AND \S*"status" IN \((%s, ){3}%s\)'
JUST_APPLIED = r'"applied_at" >= .*"status" = '


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(factories.support_user())
    return client


def test_the_boards_sync_states_read_a_types_unsettled_and_just_applied_changes_by_its_status_index(
    history: History, staff: Client
) -> None:
    response, (found,) = plans(lambda: staff.get(f"/boards/{history.pipeline.pk}/"), Change)

    assert response.status_code == 200
    # The states were read: the pending, failed and just-applied orders show theirs.
    content = response.content.decode()
    for order, state in zip(history.orders[:3], ("pending", "failed", "pushed"), strict=True):
        assert f'id="sync-orders-{order.hubspot_id}" class="sync-state sync-{state}"' in content
    unsettled = the_one(found, UNSETTLED)
    assert "change_type_status" in unsettled.indexes, str(unsettled)
    just_applied = the_one(found, JUST_APPLIED)
    assert "change_type_status" in just_applied.indexes, str(just_applied)
    assert_no_walk(found)


@pytest.mark.parametrize("state", ["unsettled", "failed", "conflict"])
def test_the_boards_sync_state_filter_reads_the_types_changes_by_its_status_index(
    history: History, staff: Client, state: str
) -> None:
    response, (found,) = plans(lambda: staff.get(f"/boards/{history.pipeline.pk}/?sync={state}"), Change)

    assert response.status_code == 200
    filtering = [p for p in found if re.search(r'"orders_order"\."hubspot_id" IN \(SELECT', p.sql)]
    assert filtering, "the filter was not applied"
    for plan in filtering:
        assert "change_type_status" in plan.indexes, str(plan)
    assert_no_walk(found)


# --- the drawer: a record's timeline ------------------------------------------------------------------------


def test_the_drawers_timeline_reads_the_records_webhook_events_by_the_record_index(
    history: History, staff: Client
) -> None:
    order = history.orders[0]
    response, (events, changes) = plans(
        lambda: staff.get(f"/boards/orders/{order.hubspot_id}/"), WebhookEvent, Change
    )

    assert response.status_code == 200
    timeline = the_one(events, r'"object_id" = .*"object_type" = .*ORDER BY .*"received_at" DESC')
    assert "webhook_record" in timeline.indexes, str(timeline)
    assert_no_walk(events)
    assert_no_walk(changes)


# --- processing: unprocessed events ------------------------------------------------------------------------


def test_processing_finds_unprocessed_events_in_their_partial_index(history: History) -> None:
    processed, (events,) = plans(services.webhook_events_process, WebhookEvent)

    assert processed == len(history.orders)
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    claims = [p for p in events if re.search(r'^SELECT .*"processed_at" IS NULL', p.sql)]
    assert claims, "no statement asked for unprocessed events"
    for claim in claims:
        assert "webhook_unprocessed" in claim.indexes, str(claim)
    assert_no_walk(events)


def test_processing_reads_changes_for_echoes_without_walking_the_audit_log(history: History) -> None:
    processed, (changes,) = plans(services.webhook_events_process, Change)

    assert processed == len(history.orders)
    assert_no_walk(changes)
