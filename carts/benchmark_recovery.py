"""`benchmark recovery`: one recovery sequence tick at two cache sizes, the recovery dashboard over 90 days,
and attribution of newly arrived orders.

- ``tick.small`` / ``tick.large``: 5,000 and 50,000 abandoned carts (a tenth with ``--quick``) anchored
  over the last four days, the sequence on with its default steps; one ``carts.sequences.sequence_tick`` at
  noon (the sending window open) is timed and its queries counted (queuing the worker tasks is left out).
- ``dashboard``: 50,000 carts, 100,000 sends over 180 days (two steps per cart, three templates), 20,000
  of them clicked and a recovery for one cart in ten, their daily figures counted once (carts.summary);
  ``/carts/recovery/`` for a 90-day range through Django's test client (middleware, queries, template), p50
  and p95 over repeated requests. Goal: p95 ≤ 100 ms.
- ``attribution_per_s``: 10,000 orders (a tenth with ``--quick``) arrive for emailed carts, with their
  order ↔ cart edges, and the orders' after-upsert hooks run on them in pages of 100, as a sync or webhook
  batch runs them: each cart is linked to its order and credited to its email, and the dashboard's daily
  figures follow.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.permissions import GROUPS
from hubspot_sync.benchmarks import Result, register
from hubspot_sync.benchmarks.board import analyze, insert_rows
from hubspot_sync.benchmarks.sync import with_test_database

STORES = ("Northwind Outfitters", "Summit Supply", "Harbor Goods")
CURRENCIES = ("USD", "USD", "EUR", "GBP")
REPEAT = 40
QUICK_REPEAT = 20
PAGE = 100


def _noon() -> datetime:
    today = timezone.now().astimezone(timezone.get_current_timezone()).date()
    return datetime.combine(today, datetime.min.time(), tzinfo=timezone.get_current_timezone()) + timedelta(
        hours=12
    )


def seed_carts(n: int, now: datetime, *, emailed: bool, rng: random.Random) -> None:
    """n live carts with an address and a link; emailed ones have email_state "emailed"."""
    from carts.models import Cart, EmailState

    rows: list[dict[str, Any]] = []
    for i in range(n):
        abandoned = now - timedelta(minutes=rng.randint(61, 4 * 24 * 60))
        rows.append(
            {
                "hubspot_id": str(40_000_000_000 + i),
                "name": f"Cart #{i}",
                "status": "abandoned",
                "cart_url": f"https://shop.example.com/cart/recover/{i:08x}",
                "total": Decimal(rng.randint(500, 90000)) / 100,
                "currency": rng.choice(CURRENCIES),
                "store": rng.choice(STORES),
                "contact_hubspot_id": str(41_000_000_000 + i),
                "customer_name": f"Customer {i}",
                "customer_email": f"customer{i}@shop.example",
                "email_state": EmailState.EMAILED if emailed else EmailState.NEW,
                "remote_created_at": abandoned - timedelta(hours=1),
                "remote_updated_at": abandoned,
                "customer_changed_at": abandoned,
                "synced_at": now,
                "properties": {},
            }
        )
    insert_rows(Cart, rows)


# --- the sequence tick --------------------------------------------------------------------------------------


def tick_size(n: int) -> dict[str, Any]:
    from carts import sequences
    from carts.models import SequenceSettings

    now = _noon()
    seed_carts(n, now, emailed=False, rng=random.Random(7))
    settings_row = sequences.sequence_settings()
    SequenceSettings.objects.filter(pk=settings_row.pk).update(enabled=True)
    sequences.sequence_steps()
    sequences.anchor_abandoned(now)
    analyze()
    with mock.patch("carts.tasks.queue_in_batches"), CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        requested = sequences.sequence_tick(now=now)
        elapsed = time.perf_counter() - started
    return {
        "carts": n,
        "s": round(elapsed, 4),
        "queries": len(captured.captured_queries),
        "requested": requested,
    }


# --- the dashboard and attribution --------------------------------------------------------------------------


def seed_history(carts: int, sends: int, clicks: int, now: datetime) -> None:
    """Sends over the last 180 days (steps 1 and 2 of each cart), clicks and recoveries."""
    from carts.models import Cart, RecoveredBy, Recovery, RecoverySend, RecoveryTemplate, SendStatus
    from carts.summary import summary_rebuild

    rng = random.Random(11)
    seed_carts(carts, now, emailed=True, rng=rng)
    templates = [
        RecoveryTemplate.objects.create(name=f"Reminder {k}", subject="s", html_body="h", text_body="t").pk
        for k in range(3)
    ]
    cart_ids = list(Cart.objects.order_by("pk").values_list("pk", flat=True))
    rows: list[dict[str, Any]] = []
    clicked = set(rng.sample(range(sends), clicks))
    for i in range(sends):
        cart_id = cart_ids[(i // 2) % len(cart_ids)]
        step = 1 + i % 2
        sending = now - timedelta(minutes=rng.randint(0, 180 * 24 * 60))
        status = SendStatus.SENT if rng.random() < 0.95 else SendStatus.FAILED
        rows.append(
            {
                "cart": cart_id,
                "step": step,
                "template": templates[rng.randrange(3)],
                "to_email": f"customer{cart_id}@shop.example",
                "status": status,
                "token": f"b{i}",
                "created_at": sending,
                "queued_at": sending,
                "sending_at": sending,
                "sent_at": sending if status == SendStatus.SENT else None,
                "clicked_at": sending + timedelta(hours=2) if i in clicked else None,
                "updated_at": sending,
            }
        )
    insert_rows(RecoverySend, rows)
    recovered = []
    firsts = RecoverySend.objects.filter(step=1, status=SendStatus.SENT).order_by("pk")
    for pk, cart_id, sending_at, clicked_at in firsts.values_list(
        "pk", "cart_id", "sending_at", "clicked_at"
    )[: carts // 10]:
        assert sending_at is not None
        recovered.append(
            Recovery(
                cart_id=cart_id,
                send_id=pk,
                order_hubspot_id=str(42_000_000_000 + cart_id),
                amount=Decimal(rng.randint(500, 40000)) / 100,
                currency=rng.choice(CURRENCIES),
                recovered_at=sending_at + timedelta(days=1),
                by=RecoveredBy.CLICK if clicked_at else RecoveredBy.SEND,
            )
        )
    Recovery.objects.bulk_create(recovered, batch_size=2000)
    # Inserted raw: the dashboard's daily figures are counted from them once (carts.summary).
    summary_rebuild()
    analyze()


def measure_dashboard(repeat: int) -> dict[str, Any]:
    user = User.objects.create_user("bench", password="bench-password-123")  # noqa: S106
    user.groups.add(*Group.objects.filter(name__in=GROUPS))
    client = Client()
    client.force_login(user)
    today = timezone.localdate()
    query = {"start": (today - timedelta(days=89)).isoformat(), "end": today.isoformat()}
    client.get("/carts/recovery/", query)  # warm caches and templates
    times, queries = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/carts/recovery/", query)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        times.append(elapsed * 1000)
        queries.append(len(captured.captured_queries))
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(int(len(times) * 0.95) - 1, 0)], 2),
        "queries": max(queries),
        "goal_p95_ms": 100,
    }


def measure_attribution(orders: int, now: datetime) -> dict[str, Any]:
    """``orders`` new orders for emailed carts without one, with their edges; the orders' hooks run."""
    from carts.models import Cart, Recovery, RecoverySend
    from hubspot_sync import registry
    from hubspot_sync.cache import run_after_upsert
    from hubspot_sync.models import Association
    from orders.models import Order

    rng = random.Random(5)
    carts = list(
        Cart.objects.filter(order_hubspot_id="")
        .exclude(recovery__isnull=False)
        .order_by("pk")
        .values_list("hubspot_id", flat=True)[:orders]
    )
    # Most orders come within the attribution window after the cart's last email, some later.
    last_sent = dict(
        RecoverySend.objects.filter(cart__hubspot_id__in=carts, sent_at__isnull=False)
        .values("cart__hubspot_id")
        .annotate(last=Max("sent_at"))
        .order_by()
        .values_list("cart__hubspot_id", "last")
    )
    order_rows: list[dict[str, Any]] = []
    edges = []
    for n, cart_id in enumerate(carts):
        order_id = str(43_000_000_000 + n)
        sent = last_sent.get(cart_id)
        created = sent + timedelta(hours=rng.randint(1, 9 * 24)) if sent else now
        order_rows.append(
            {
                "hubspot_id": order_id,
                "name": f"Order {n}",
                "total": Decimal(rng.randint(500, 40000)) / 100,
                "currency": rng.choice(CURRENCIES),
                "remote_created_at": created,
                "remote_updated_at": now,
                "synced_at": now,
                "properties": {},
            }
        )
        edges.append(
            Association(from_type="orders", from_id=order_id, to_type="carts", to_id=cart_id, type_id=593)
        )
        edges.append(
            Association(from_type="carts", from_id=cart_id, to_type="orders", to_id=order_id, type_id=592)
        )
    insert_rows(Order, order_rows)
    Association.objects.bulk_create(edges, batch_size=5000)
    analyze()
    before = Recovery.objects.count()
    spec = registry.get("orders")
    ids = [str(row["hubspot_id"]) for row in order_rows]
    started = time.perf_counter()
    for start in range(0, len(ids), PAGE):
        run_after_upsert(spec, ids[start : start + PAGE])
    elapsed = time.perf_counter() - started
    attributed = Recovery.objects.count() - before
    linked = Cart.objects.filter(order_hubspot_id__in=ids).count()
    return {
        "orders": len(ids),
        "s": round(elapsed, 3),
        "per_s": round(len(ids) / elapsed, 1) if elapsed else None,
        "linked": linked,
        "attributed": attributed,
    }


def history(carts: int, sends: int, clicks: int, orders: int, repeat: int) -> dict[str, Any]:
    now = timezone.now()
    seed_history(carts, sends, clicks, now)
    return {"dashboard": measure_dashboard(repeat), "attribution": measure_attribution(orders, now)}


@register("recovery")
def run(quick: bool) -> Result:
    scale = 10 if quick else 1
    small, large = 5_000 // scale, 50_000 // scale
    carts, sends, clicks, orders = 50_000 // scale, 100_000 // scale, 20_000 // scale, 10_000 // scale
    repeat = QUICK_REPEAT if quick else REPEAT
    tick = {
        "small": with_test_database(lambda: tick_size(small)),
        "large": with_test_database(lambda: tick_size(large)),
    }
    measured = with_test_database(lambda: history(carts, sends, clicks, orders, repeat))
    board, attribution = measured["dashboard"], measured["attribution"]
    figures: dict[str, Any] = {
        "sizes": {"carts": carts, "sends": sends, "clicks": clicks, "orders": orders},
        "tick": tick,
        "dashboard": board,
        "attribution": attribution,
        "attribution_per_s": attribution["per_s"],
    }
    rows = [
        ("tick.small", f"{tick['small']['s']} s, {tick['small']['queries']} queries at {small:,} carts"),
        ("tick.large", f"{tick['large']['s']} s, {tick['large']['queries']} queries at {large:,} carts"),
        (
            "dashboard (90 days)",
            f"p50 {board['p50_ms']} ms, p95 {board['p95_ms']} ms, {board['queries']} queries "
            f"({sends:,} sends, {clicks:,} clicks; goal p95 ≤ 100 ms)",
        ),
        (
            "attribution",
            f"{attribution['per_s']} orders/s ({attribution['orders']:,} orders in {attribution['s']} s, "
            f"{attribution['attributed']:,} credited)",
        ),
    ]
    return Result(figures, rows, [])
