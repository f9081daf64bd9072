"""`benchmark board`: server time and queries per request for the board's pages at two cache sizes.

Orders are written straight into a throwaway database (the board reads only the cache), spread over the
stages of one pipeline and a second one, with realistic currencies, stores and customers. Each page is
requested through Django's test client, so the time is the server's: middleware, queries, templates.
The board and the drawer at the large size are measured before and after a year of history is added
(100,000 applied Changes and 100,000 processed webhook events; 20,000 with --quick): they must cost the same
with it as without.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from config.permissions import GROUPS
from hubspot_sync.benchmarks import Result, register
from hubspot_sync.benchmarks.board import STAGES, add_history, measure
from hubspot_sync.benchmarks.sync import with_test_database
from orders import board as boards
from orders.models import Order
from pipelines.models import Pipeline, Stage, StageState

OWN_HISTORY = 50  # changes and webhook events of the order the drawer shows
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP", "CAD")
STORES = ("Northwind Outfitters", "Summit Supply", "Harbor Goods")


def seed(n: int) -> tuple[Any, list[Any]]:
    pipeline = Pipeline.objects.create(hubspot_id="bench-pipeline", label="Online orders", display_order=0)
    other = Pipeline.objects.create(hubspot_id="bench-returns", label="Returns", display_order=1)
    stages = [
        Stage.objects.create(
            pipeline=pipeline,
            hubspot_id=f"bench-stage-{i}",
            label=label,
            display_order=i,
            state=StageState.CLOSED if label in ("Delivered", "Cancelled", "Refunded") else "OPEN",
        )
        for i, label in enumerate(STAGES)
    ]
    Stage.objects.create(pipeline=other, hubspot_id="bench-return-1", label="Requested", display_order=0)
    rng = random.Random(42)
    now = timezone.now()
    # Twenty orders per customer at every size, so the filtered board (one customer's orders in one store)
    # is measured on as many matches at both sizes and compares the search's cost, not its result's size.
    customers = max(n // 20, 10)
    batch: list[Order] = []
    for i in range(n):
        stage = stages[min(int(rng.expovariate(0.45)), len(stages) - 1)]
        currency = rng.choice(CURRENCIES)
        total = Decimal(rng.randint(500, 90000)) / 100
        name = f"#{100000 + i}"
        batch.append(
            Order(
                hubspot_id=str(30_000_000_000 + i),
                name=name,
                pipeline=pipeline,
                stage=stage,
                total=total,
                currency=currency,
                store=rng.choice(STORES),
                fulfillment_status="Unfulfilled",
                customer_name=f"Customer {i % customers}",
                customer_email=f"customer{i % customers}@shop.example",
                tracking_number=f"1Z{i:08d}",
                external_id=f"EXT-{i}",
                remote_created_at=now - timedelta(minutes=i),
                remote_updated_at=now - timedelta(minutes=i),
                stage_entered_at=now - timedelta(hours=rng.randint(1, 400)),
                synced_at=now,
                properties={
                    "hs_order_name": name,
                    "hs_pipeline": pipeline.hubspot_id,
                    "hs_pipeline_stage": stage.hubspot_id,
                    "hs_total_price": str(total),
                    "hs_currency_code": currency,
                },
            )
        )
        if len(batch) == 5000:
            Order.objects.bulk_create(batch)
            batch = []
    Order.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE orders_order")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return pipeline, stages


def run_size(n: int, history: int = 0) -> dict[str, Any]:
    pipeline, stages = seed(n)
    user = User.objects.create_user("bench", password="bench-password-123")  # noqa: S106
    user.groups.add(*Group.objects.filter(name__in=GROUPS))
    client = Client()
    client.force_login(user)
    htmx = {"HX-Request": "true"}
    board_url = f"/boards/{pipeline.pk}/"
    paid = stages[1]
    second_page = boards.column_page(boards.filtered(pipeline, {}), paid, None)[1] or ""
    some = Order.objects.filter(stage=stages[0]).order_by("-remote_created_at").first()
    assert some is not None
    targets = [stages[0], stages[1]]
    moves = {"n": 0}

    def move() -> Any:
        moves["n"] += 1
        order = Order.objects.get(pk=some.pk)
        target = targets[moves["n"] % 2]
        return client.post(
            f"/boards/orders/{order.hubspot_id}/move/",
            {"stage": target.pk, "from_stage": order.stage_id, "filters": ""},
            headers=htmx,
        )

    def drawer() -> Any:
        return client.get(f"/boards/orders/{some.hubspot_id}/", headers=htmx)

    before: dict[str, Any] = {}
    if history:
        # The drawer's order has a busy past of its own (its timeline shows it) before anything is measured;
        # then the same pages are measured before and after every other order's history is added.
        own = [some.hubspot_id] * OWN_HISTORY
        add_history(own, "own")
        before = {"board": measure(lambda: client.get(board_url)), "drawer": measure(drawer)}
        rng = random.Random(11)
        others = [str(30_000_000_000 + rng.randrange(n)) for _ in range(history - OWN_HISTORY)]
        add_history(others, "bench")
    # The drawer goes before the moves: they leave its order with dozens of unsettled changes to show.
    results: dict[str, Any] = {
        "board": measure(lambda: client.get(board_url)),
        "drawer": measure(drawer),
        "column": measure(
            lambda: client.get(
                f"/boards/{pipeline.pk}/columns/{paid.pk}/", {"after": second_page}, headers=htmx
            )
        ),
        "move": measure(move),
        "filtered": measure(lambda: client.get(board_url, {"q": "customer7@", "store": "Summit Supply"})),
    }
    started = time.perf_counter()
    response = client.get(f"/boards/{pipeline.pk}/export.csv")
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1  # type: ignore[attr-defined]
    return {
        **results,
        "export_rows_per_s": round(rows / (time.perf_counter() - started)),
        "export_rows": rows,
        "without_history": before,
    }


@register("board")
def run(quick: bool) -> Result:
    small, large = (200, 5_000) if quick else (1_000, 100_000)
    # The large size also carries a year of history: applied Changes (the audit log) and processed webhook
    # events, which no board or drawer query may walk (fewer with --quick, to stay near a minute).
    history = 20_000 if quick else 100_000
    # Moves queue a push; the benchmark has no worker, so they go to a queue of its own, dropped afterwards.
    with override_settings(CELERY_TASK_DEFAULT_QUEUE="benchmark-board"):
        from config.celery import app

        previous = app.conf.task_default_queue
        app.conf.task_default_queue = "benchmark-board"
        try:
            measured = {
                "small": with_test_database(lambda: run_size(small)),
                "large": with_test_database(lambda: run_size(large, history)),
            }
        finally:
            app.conf.task_default_queue = previous
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge("benchmark-board")  # type: ignore[attr-defined]
    figures: dict[str, Any] = {
        "sizes": {"small": small, "large": large},
        "history_changes": history,
        "history_webhook_events": history,
    }
    rows = []
    for page in ("board", "column", "move", "drawer", "filtered"):
        s, l_ = measured["small"][page], measured["large"][page]
        ratio = round(l_["p95_ms"] / s["p95_ms"], 2) if s["p95_ms"] else None
        figures[page] = {"small": s, "large": l_, "p95_ratio_large_vs_small": ratio}
        rows.append(
            (
                page,
                f"p50 {l_['p50_ms']} ms, p95 {l_['p95_ms']} ms, {l_['queries']} queries at {large:,}; "
                f"{s['queries']} queries, p95 {s['p95_ms']} ms at {small:,} (ratio {ratio})",
            )
        )
    for page in ("board", "drawer"):
        without, with_ = measured["large"]["without_history"][page], measured["large"][page]
        ratio = round(with_["p95_ms"] / without["p95_ms"], 2) if without["p95_ms"] else None
        figures[page]["large_without_history"] = without
        figures[page]["p95_ratio_with_vs_without_history"] = ratio
        figures[page]["cpu_p95_ratio_with_vs_without_history"] = (
            round(with_["cpu_p95_ms"] / without["cpu_p95_ms"], 2) if without["cpu_p95_ms"] else None
        )
        rows.append(
            (
                f"{page}, history",
                f"at {large:,} with {history:,} applied changes and {history:,} webhook events: "
                f"p95 {with_['p95_ms']} ms (CPU {with_['cpu_p95_ms']} ms), {with_['queries']} queries; "
                f"without: p95 {without['p95_ms']} ms (CPU {without['cpu_p95_ms']} ms), "
                f"{without['queries']} queries (ratio {ratio})",
            )
        )
    figures["export_rows_per_s"] = measured["large"]["export_rows_per_s"]
    figures["export_rows"] = measured["large"]["export_rows"]
    rows.append(("CSV export", f"{figures['export_rows_per_s']:,} rows/s ({figures['export_rows']:,} rows)"))
    return Result(figures, rows)
