"""What the page benchmarks share (`benchmark board` in orders.benchmarks.board, `benchmark carts`): rows
written fast into a throwaway database, a year of history (applied Changes and processed webhook events),
and a page measured through Django's test client (wall and CPU time, queries).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, WebhookEvent, WebhookOutcome, uuid_hex

REPEAT = 40
# The benchmark pipeline's stages (ids bench-stage-0, 1, ...): the history moves orders between them.
STAGES = ("New", "Paid", "Packing", "Shipped", "Out for delivery", "Delivered", "Cancelled", "Refunded")


def add_history(object_ids: Sequence[str], prefix: str) -> None:
    """What months of use leave behind: an applied Change (the audit log) and a processed webhook event for
    each id given, spread over a year."""
    rng = random.Random(7)
    now = timezone.now()
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, object_id in enumerate(object_ids):
        at = now - timedelta(minutes=rng.randint(60, 365 * 24 * 60))
        stage = f"bench-stage-{rng.randrange(len(STAGES))}"
        changes.append(
            {
                "kind": ChangeKind.UPDATE,
                "status": ChangeStatus.APPLIED,
                "object_type": "orders",
                "object_id": object_id,
                "base": {"hs_pipeline_stage": "bench-stage-0"},
                "new": {"hs_pipeline_stage": stage},
                "trace_id": uuid_hex(),
                "created_by_name": "History",
                "created_at": at,
                "updated_at": at,
                "pushed_at": at,
                "applied_at": at,
                "settled_at": at,
            }
        )
        events.append(
            {
                "event_id": f"{prefix}-{i}",
                "subscription_type": "object.propertyChange",
                "object_type": "orders",
                "object_id": object_id,
                "occurred_at": at,
                "received_at": at,
                "payload": {
                    "eventId": i,
                    "subscriptionType": "object.propertyChange",
                    "objectId": object_id,
                    "propertyName": "hs_pipeline_stage",
                    "propertyValue": stage,
                    "_touched": [["orders", object_id]],
                },
                "processed_at": at,
                "outcome": WebhookOutcome.REFRESHED,
            }
        )
    insert_rows(Change, changes)
    insert_rows(WebhookEvent, events)
    analyze()


def insert_rows(model: type[Model], rows: Sequence[dict[str, Any]], batch: int = 5000) -> None:
    """Insert rows fast: every other column takes its default, prepared once; the given values are prepared by
    their fields (Django's bulk_create spends most of its time building SQL at 100,000 rows). Nothing is set
    on save (auto_now), so history keeps its own dates."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    blank = model()
    defaults = {f.name: f.get_db_prep_save(f.pre_save(blank, add=True), connection) for f in fields}
    given = {f.name: f for f in fields if f.name in rows[0]}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)  # the model's own names; values go as parameters
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            params = []
            for row in rows[start : start + batch]:
                prepared = {
                    name: field.get_db_prep_save(row[name], connection) for name, field in given.items()
                }
                params.append([prepared.get(f.name, defaults[f.name]) for f in fields])
            cursor.executemany(sql, params)


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else "VACUUM ANALYZE")


def measure(call: Callable[[], Any]) -> dict[str, float]:
    """Wall time, and this process's CPU time (server and SQLite alike): on a shared host the wall time also
    counts waiting for a core, which the CPU time does not."""
    call()  # warm caches and templates
    times, cpu, queries = [], [], []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = call()
            elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        assert response.status_code in (200, 204), response.status_code
        times.append(elapsed * 1000)
        cpu.append(cpu_elapsed * 1000)
        queries.append(len(captured.captured_queries))
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": p95(times),
        "cpu_p95_ms": p95(cpu),
        "queries": max(queries),
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[int(len(ordered) * 0.95) - 1], 2)
