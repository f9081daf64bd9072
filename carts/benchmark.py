"""`benchmark carts`: the carts list's server time and queries at two cache sizes, and a bulk send through a
real SMTP server with a real worker.

The list: carts are written straight into a throwaway database (the list reads only the cache) with realistic
stores, currencies, totals, ages, customers (three carts each), recovery progress and a suppression list; the
unfiltered list, a filtered one (state, store, value range), a search by a whole address and one by part of
an address are requested through
Django's test client, so the time is the server's: middleware, queries, templates. The query count must be the
same at both sizes.

The bulk send: a HubSpot sandbox holds the carts and their contacts (one each, so the per-contact cap skips
none), a full sync caches them, and a bulk send of all of them is confirmed. A worker process refreshes each
cart from the sandbox (under the shared rate limiter, as in production), applies the guards and sends it
through the demo's SMTP server. Reported: the time the confirmation takes (queue), until every message has
arrived (deliver), the messages received and any address that got more than one (duplicates).
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from config.permissions import GROUPS
from hubspot_sync.benchmarks import Result, register
from hubspot_sync.benchmarks.board import analyze, insert_rows
from hubspot_sync.benchmarks.sync import with_test_database

REPEAT = 40
QUICK_REPEAT = 20
STORES = ("Northwind Outfitters", "Summit Supply", "Harbor Goods", "Harbor Goods Wholesale")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP", "CAD")
CARTS_PER_CUSTOMER = 3


def seed_list(n: int) -> None:
    """n carts of every kind the list shows, and a suppression list of 1 % of the customers."""
    from carts.models import Cart, EmailState, Suppression, SuppressionSource, email_hash

    rng = random.Random(42)
    now = timezone.now()
    customers = max(n // CARTS_PER_CUSTOMER, 10)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        customer = i % customers
        emailed = rng.random() < 0.25
        rows.append(
            {
                "hubspot_id": str(50_000_000_000 + i),
                "name": f"Cart #{200000 + i}",
                "external_id": f"c{i}",
                "status": rng.choice(("abandoned", "pending", "pending", "completed")),
                "cart_url": "" if rng.random() < 0.05 else f"https://shop.example.com/cart/recover/{i:08x}",
                "total": Decimal(rng.randint(500, 90000)) / 100,
                "currency": rng.choice(CURRENCIES),
                "store": rng.choice(STORES),
                "contact_hubspot_id": str(60_000_000_000 + customer),
                "customer_name": f"Customer {customer}",
                "customer_email": "" if rng.random() < 0.03 else f"customer{customer}@shop.example",
                "order_hubspot_id": str(70_000_000_000 + i) if rng.random() < 0.1 else "",
                "email_state": rng.choice((EmailState.EMAILED, EmailState.CLICKED))
                if emailed
                else EmailState.NEW,
                "last_email_at": now - timedelta(hours=rng.randint(1, 400)) if emailed else None,
                "remote_created_at": now - timedelta(minutes=rng.randint(90, 90 * 24 * 60)),
                "remote_updated_at": (changed := now - timedelta(minutes=rng.randint(61, 60 * 24 * 60))),
                # The customer's last change, which "abandoned" counts from (the sync keeps it): here the same
                # as the cart's last change in HubSpot, as for a cart whose recovery properties were never
                # written back.
                "customer_changed_at": changed,
                "synced_at": now,
                "properties": {},
            }
        )
    insert_rows(Cart, rows)
    Suppression.objects.bulk_create(
        [
            Suppression(
                email=f"customer{c}@shop.example",
                email_hash=email_hash(f"customer{c}@shop.example"),
                source=SuppressionSource.UNSUBSCRIBE,
            )
            for c in range(0, customers, 100)
        ]
    )
    # The rows went in raw: their stored recovery state, as the services keep it.
    from carts.recovery_state import recovery_state_refresh

    recovery_state_refresh()
    analyze()


def measure(call: Callable[[], Any], repeat: int = REPEAT) -> dict[str, float]:
    call()  # warm caches and templates
    times, cpu, queries = [], [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = call()
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        assert response.status_code == 200, response.status_code
        times.append(elapsed * 1000)
        cpu.append(elapsed_cpu * 1000)
        queries.append(len(captured.captured_queries))
    times.sort()
    cpu.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        # This process's CPU time (the server's work, SQLite's included): what a busy shared machine's
        # waiting for a core leaves out of the wall-clock figures.
        "cpu_p95_ms": round(cpu[int(len(cpu) * 0.95) - 1], 2),
        "queries": max(queries),
    }


def list_size(n: int, repeat: int = REPEAT) -> dict[str, Any]:
    seed_list(n)
    user = User.objects.create_user("bench", password="bench-password-123")  # noqa: S106
    user.groups.add(*Group.objects.filter(name__in=GROUPS))
    client = Client()
    client.force_login(user)
    return {
        "list": measure(lambda: client.get("/carts/"), repeat),
        "filtered": measure(
            lambda: client.get(
                "/carts/", {"state": "new", "store": "Summit Supply", "min_total": "100", "max_total": "600"}
            ),
            repeat,
        ),
        "search": measure(lambda: client.get("/carts/", {"q": "customer7@shop.example"}), repeat),
        # Part of an address or a name: every listed cart is read.
        "search_partial": measure(lambda: client.get("/carts/", {"q": "customer7@"}), repeat),
    }


# --- the bulk send ------------------------------------------------------------------------------------------


def _sandbox_carts(sandbox: Any, n: int) -> None:
    """n carts in the sandbox, each with a contact of its own, a recovery link, a line item, unchanged for two
    hours (abandoned)."""
    from hubspot_sandbox.state import Record

    state = sandbox.state
    now_ms = int(time.time() * 1000)
    then_ms = now_ms - 2 * 3600 * 1000
    stamp = timezone.now() - timedelta(hours=2)
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def add(type_name: str, props: dict[str, str]) -> str:
        rid = state.next_id(type_name)
        created, modified = (
            ("createdate", "lastmodifieddate")
            if type_name == "contacts"
            else ("hs_createdate", "hs_lastmodifieddate")
        )
        props = {**props, "hs_object_id": rid, created: iso, modified: iso}
        state.records[type_name][rid] = Record(
            id=rid, properties=props, created_ms=then_ms, updated_ms=then_ms
        )
        return rid

    for i in range(n):
        contact = add(
            "contacts", {"email": f"buyer{i}@bulk.example", "firstname": f"Buyer{i}", "lastname": "Bench"}
        )
        item = add(
            "line_items",
            {"name": f"Mug {i}", "quantity": "2", "price": "12.50", "amount": "25.00", "hs_sku": f"MUG-{i}"},
        )
        cart = add(
            "carts",
            {
                "hs_cart_name": f"Cart #{i}",
                "hs_external_status": "abandoned",
                "hs_cart_url": f"https://shop.example.com/cart/recover/{i:08x}",
                "hs_total_price": "25.00",
                "hs_currency_code": "USD",
                "hs_source_store": "Northwind Outfitters",
            },
        )
        state.associate("carts", cart, "contacts", contact)
        state.associate("carts", cart, "line_items", item)


def bulk_send(n: int, folder: Path) -> dict[str, Any]:
    from carts.mailbox import Mailbox, MailServer
    from carts.models import Cart, RecoverySend, SendStatus
    from carts.services import carts_bulk_send
    from config.celery import app
    from hubspot_sandbox.testing import start_sandbox
    from hubspot_sync import ratelimit, sync
    from hubspot_sync.models import SyncKind, SyncStatus
    from hubspot_sync.worker import CeleryProcess, database_url, process_env

    sandbox = start_sandbox(empty=True, rate_limits=False)
    mail = MailServer(folder / "mailbox", port=0)
    mail.start()
    queue = f"bench-carts-{uuid.uuid4().hex[:8]}"
    env = {
        "HUBSPOT_API_BASE": sandbox.url,
        "HUBSPOT_ACCESS_TOKEN": str(sandbox.config.token),
        "HUBSPOT_LIMITER_URL": f"sqlite:///{folder / 'ratelimit.sqlite3'}",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(mail.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "MAILBOX_DIR": str(folder / "mailbox"),
        "HUBSPOT_SYNC_INTERVAL_S": "86400",
    }
    overrides = {
        "HUBSPOT_API_BASE": sandbox.url,
        "HUBSPOT_ACCESS_TOKEN": str(sandbox.config.token),
        "HUBSPOT_LIMITER_URL": env["HUBSPOT_LIMITER_URL"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    previous_queue = app.conf.task_default_queue
    worker = None
    try:
        with override_settings(**overrides):
            app.conf.task_default_queue = queue
            _sandbox_carts(sandbox, n)
            run = sync.run_sync(SyncKind.FULL, manual=True)
            if run.status != SyncStatus.SUCCEEDED:
                raise RuntimeError(f"the sync before the bulk send failed: {run.error_message}")
            worker = CeleryProcess.worker(
                hostname=f"bench-carts-{uuid.uuid4().hex[:6]}@{socket.gethostname()}",
                queue=queue,
                concurrency=4,
                env=process_env(base={**os.environ, **env}, database_url=database_url(), queue=queue),
                log_path=folder / "worker.log",
                loglevel="WARNING",
            ).start()
            worker.wait_ready()
            user = User.objects.create_user("bench-bulk", password="bench-password-123")  # noqa: S106
            carts = Cart.objects.abandoned()
            started = time.perf_counter()
            bulk = carts_bulk_send(carts_qs=carts, by=user, filters={"benchmark": "all"})
            queue_s = time.perf_counter() - started
            box = Mailbox(folder / "mailbox")
            deadline = time.monotonic() + max(600, n * 2)
            open_statuses = (SendStatus.QUEUED, SendStatus.SENDING)
            while time.monotonic() < deadline:
                if not RecoverySend.objects.filter(bulk=bulk, status__in=open_statuses).exists():
                    break
                time.sleep(0.2)
            deliver_s = time.perf_counter() - started
            time.sleep(1)  # a message still on its way would show as received (or as a duplicate)
            received = box.list()
            per_address = Counter(to for message in received for to in message.to)
            statuses = Counter(RecoverySend.objects.filter(bulk=bulk).values_list("status", flat=True))
    finally:
        app.conf.task_default_queue = previous_queue
        if worker is not None:
            worker.stop()
        mail.stop()
        sandbox.stop(save_snapshot=False)
        ratelimit.close_limiters()
    return {
        "carts": n,
        "queued": bulk.queued,
        "skipped": bulk.skipped,
        "queue_s": round(queue_s, 3),
        "deliver_s": round(deliver_s, 2),
        "received": len(received),
        "duplicates": sum(count - 1 for count in per_address.values() if count > 1),
        "statuses": dict(statuses),
    }


@register("carts")
def run(quick: bool) -> Result:
    small, large = (200, 5_000) if quick else (1_000, 50_000)
    sends = 100 if quick else 1_000
    repeat = QUICK_REPEAT if quick else REPEAT
    measured = {
        "small": with_test_database(lambda: list_size(small, repeat)),
        "large": with_test_database(lambda: list_size(large, repeat)),
    }
    with tempfile.TemporaryDirectory(prefix="bench-carts-") as tmp:
        bulk = with_test_database(lambda: bulk_send(sends, Path(tmp)))
    figures: dict[str, Any] = {"sizes": {"small": small, "large": large}}
    rows = []
    for page in ("list", "filtered", "search", "search_partial"):
        s, l_ = measured["small"][page], measured["large"][page]
        figures[page] = {"small": s, "large": l_}
        rows.append(
            (
                page,
                f"p50 {l_['p50_ms']} ms, p95 {l_['p95_ms']} ms (CPU {l_['cpu_p95_ms']}), "
                f"{l_['queries']} queries at {large:,}; p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms "
                f"(CPU {s['cpu_p95_ms']}), {s['queries']} queries at {small:,}",
            )
        )
    figures["bulk_send"] = bulk
    rows.append(
        (
            "bulk send",
            f"{bulk['carts']:,} carts: queued in {bulk['queue_s']} s, delivered in {bulk['deliver_s']} s, "
            f"{bulk['received']:,} received, {bulk['duplicates']} duplicates ({bulk['statuses']})",
        )
    )
    notes = [
        "Delivery includes each send's refresh of the cart from HubSpot under the shared rate limiter "
        f"({settings.HUBSPOT_RATE_LIMIT_PER_10S} calls per 10 s), as in production."
    ]
    return Result(figures, rows, notes)


# `benchmark recovery` (the sequence tick, the recovery dashboard, attribution) registers beside it.
from carts import benchmark_recovery as benchmark_recovery  # noqa: E402
