"""`benchmark push`: staff edits reach HubSpot once, under fire, and how soon they get there.

Chaos: 10,000 edits over 2,000 orders (``--quick``: 500 over 500) from concurrent writers, while the sandbox
answers 10 % of requests with a 5xx, hangs 5 % past the client's timeout (and applies them later, as a
server whose answer was lost may), sends 429 bursts, and the worker is killed with SIGKILL three times
(``--quick``: once) and started again. Then HubSpot's state is read back and compared with what the
writers intended: edits lost, duplicate writes or creates, properties that differ, API calls per edit.

Latency: with no faults, edits at a steady pace and the time from each edit to HubSpot's confirmation, on
Redis and on the embedded (filesystem) broker.

Each part runs in a child process of its own (``benchmark push-part``) with a data folder of its own
(database, broker folders, rate limiter), real Celery worker and beat processes and a sandbox process; the
parent only starts them and gathers the figures. The database is a throwaway test database.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Count

from hubspot_sync import outbox, sync
from hubspot_sync.benchmarks import Result, register
from hubspot_sync.benchmarks.sandbox import TOKEN, SandboxProcess
from hubspot_sync.benchmarks.sync import with_test_database
from hubspot_sync.models import (
    Change,
    ChangeKind,
    ChangeStatus,
    PropertyDefinition,
    SyncKind,
    SyncStatus,
)
from hubspot_sync.registry import parse_datetime
from hubspot_sync.worker import CeleryProcess, process_env
from orders.models import Order
from pipelines.models import Stage

PART_ENV = "ORDERDECK_BENCH_PUSH"
# The latency part's pace: a busy support team's, well below the bulk-edit rate at which batches wait to fill.
LATENCY_RATE_PER_S = 10.0
REDIS_URL = "redis://127.0.0.1:6379/5"
# The faults of the chaos part (sandbox fault rules, applied in this order to each request).
FAULTS = [
    {"kind": "error", "probability": 0.10},
    # 5 % of all requests: 0.0556 of the 90 % that got past the 5xx rule. Applied after the hang: a write the
    # client gave up on lands anyway.
    {"kind": "hang", "probability": 0.0556, "hang_s": 3.0},
]
# Client and push settings for the chaos part: a timeout shorter than the hang, leases and the late-write
# window short enough that a killed worker's edits come back within seconds, the sweep every 2 s.
CHAOS_ENV = {
    "HUBSPOT_READ_TIMEOUT_S": "2",
    "HUBSPOT_PUSH_LEASE_S": "5",
    "HUBSPOT_PUSH_GHOST_WINDOW_S": "5",
    "HUBSPOT_PUSH_RETRY_BASE_S": "1",
    "HUBSPOT_PUSH_RETRY_CAP_S": "10",
    "HUBSPOT_PUSH_SWEEP_S": "2",
}


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "orders": 500,
            "edits": 500,
            "creates": 10,
            "kills": 1,
            "storm_period_s": 600,
            "latency_edits": 40,
        }
    return {
        "orders": 2000,
        "edits": 10_000,
        "creates": 50,
        "kills": 3,
        "storm_period_s": 30,
        "latency_edits": 300,
    }


# --- the parent: start the sandbox and the parts ---------------------------------------------------------


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:  # any failure means "no Redis here"; the figures say so
        return False


def _run_part(part: str, broker: str, sandbox_url: str, quick: bool) -> dict[str, Any] | None:
    folder = Path(settings.DATA_DIR) / "bench-push" / part
    shutil.rmtree(folder, ignore_errors=True)  # what an earlier run left: its database, broker files, logs
    folder.mkdir(parents=True)
    out = folder / "result.json"
    out.unlink(missing_ok=True)
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        PART_ENV: json.dumps({"part": part, "sandbox": sandbox_url}),
        "ORDERDECK_DATA_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / 'push.sqlite3'}",
        "CELERY_BROKER_URL": broker,
        "ORDERDECK_QUEUE": f"bench-push-{run_id}",
        "HUBSPOT_API_BASE": sandbox_url,
        "HUBSPOT_ACCESS_TOKEN": TOKEN,
        "HUBSPOT_LIMITER_URL": broker if broker.startswith("redis") else "",
        "HUBSPOT_LIMITER_NAME": f"bench-push-{run_id}",
        # No scheduled syncs during the run: every call the sandbox counts is a push.
        "HUBSPOT_SYNC_INTERVAL_S": "86400",
        "LOG_LEVEL": "WARNING",
        **(CHAOS_ENV if part == "chaos" else {}),
    }
    args = [sys.executable, str(settings.BASE_DIR / "manage.py"), "benchmark", "push-part", "--out", str(out)]
    if quick:
        args.append("--quick")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=7200, check=False)
    if done.returncode != 0 or not out.exists():
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        return None
    return dict(json.loads(out.read_text()))


@register("push")
def run(quick: bool) -> Result:
    n = sizes(quick)
    log = Path(settings.DATA_DIR) / "bench-push-sandbox.log"
    sb = SandboxProcess(orders=n["orders"], contacts=max(20, n["orders"] // 10), carts=10, log=log)
    notes: list[str] = []
    try:
        sb.wait_ready()
        chaos = _run_part("chaos", "filesystem://", sb.url, quick)
        # Latency on each broker in a fresh part of its own: nothing left over from the chaos (a rate-limit
        # hold after a 429 burst, records waiting out late writes) may count as latency.
        embedded = _run_part("latency-embedded", "filesystem://", sb.url, quick)
        redis = _run_part("latency-redis", REDIS_URL, sb.url, quick) if _redis_up() else None
    finally:
        sb.stop()
    if chaos is None or embedded is None:
        raise RuntimeError("a part of the benchmark failed; its output is above")
    if redis is None:
        notes.append(f"no Redis answered at {REDIS_URL}: the Redis latency is not measured")
    # What the command adds to every result (name, date, machine) is the parent's to say.
    own = {"benchmark", "quick", "ran_at", "seconds", "machine"}
    figures: dict[str, Any] = {
        **{k: v for k, v in chaos.items() if k not in own},
        "latency_edits": embedded["latency_edits"],
        "latency_rate_per_s": LATENCY_RATE_PER_S,
        "latency_p50_s_redis": redis["latency_p50_s"] if redis else None,
        "latency_p95_s_redis": redis["latency_p95_s"] if redis else None,
        "latency_p50_s_embedded": embedded["latency_p50_s"],
        "latency_p95_s_embedded": embedded["latency_p95_s"],
        "latency_slow": {
            "redis": redis["latency_slow"] if redis else None,
            "embedded": embedded["latency_slow"],
        },
        "goals": {
            "lost": 0,
            "duplicates": 0,
            "mismatched_properties": 0,
            "api_calls_per_edit": 0.05,
            "latency_p95_s_redis": 1.0,
            "latency_p95_s_embedded": 2.0,
        },
    }

    def seconds(value: float | None) -> str:
        return "not measured" if value is None else f"{value:.2f} s"

    rows = [
        ("edits", f"{figures['edits']:,} over {figures['orders']:,} orders, {figures['writers']} writers"),
        ("creates", f"{figures['creates']} new orders"),
        (
            "faults",
            f"5xx {figures['faults_fired'].get('error', 0)}, hung {figures['faults_fired'].get('hang', 0)}, "
            f"429 {figures['http_429']}, worker killed {figures['worker_kills']}×",
        ),
        ("lost", str(figures["lost"])),
        (
            "duplicates",
            f"{figures['duplicates']} (creates {figures['duplicate_creates']}, "
            f"late writes over newer {figures['regressed_writes']})",
        ),
        ("mismatched properties", f"{figures['mismatched_properties']} of {figures['properties_checked']:,}"),
        ("API calls per edit", f"{figures['api_calls_per_edit']:.4f} ({figures['api_calls']:,} calls)"),
        ("settled after writes", f"{figures['settle_s']:.1f} s"),
        (
            "latency, Redis",
            f"p50 {seconds(figures['latency_p50_s_redis'])}, p95 {seconds(figures['latency_p95_s_redis'])}",
        ),
        (
            "latency, embedded",
            f"p50 {seconds(figures['latency_p50_s_embedded'])}, "
            f"p95 {seconds(figures['latency_p95_s_embedded'])}",
        ),
    ]
    return Result(figures, rows, notes)


# --- a part: in a child process with its own data folder and broker ---------------------------------------


def _worker(name: str, database_url: str, *, beat: bool = False, concurrency: int = 4) -> CeleryProcess:
    """A real `celery worker` (or beat) process on this part's broker, database and queue, started."""
    folder = Path(settings.DATA_DIR)
    env = process_env(database_url=database_url)
    if beat:
        return CeleryProcess.beat(
            schedule=folder / "celerybeat-schedule",
            env=env,
            log_path=folder / f"{name}.log",
            loglevel="WARNING",
        ).start()
    return CeleryProcess.worker(
        hostname=f"{name}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}",
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        concurrency=concurrency,
        env=env,
        log_path=folder / f"{name}.log",
    ).start()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _edit_for(
    order: Any, rng: random.Random, options: list[str], stages: dict[int, list[Any]]
) -> dict[str, str]:
    kind = rng.random()
    if kind < 0.35 and order.pipeline_id in stages:
        stage = rng.choice(stages[order.pipeline_id])
        return {"hs_pipeline": stage.pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id}
    if kind < 0.6 and options:
        return {"hs_fulfillment_status": rng.choice(options)}
    if kind < 0.8:
        return {"hs_shipping_tracking_number": f"TRK{rng.randrange(10**9)}"}
    return {"hs_order_name": f"Order {rng.randrange(10**6)}"}


def _write_edits(count: int, writers: int, creates: int, seed: int, progress: list[int]) -> int:
    """``count`` edits of random orders from ``writers`` threads, and ``creates`` new orders; returns how many
    edits failed."""

    definition = PropertyDefinition.objects.filter(object_type="orders", name="hs_fulfillment_status").first()
    options = [o["value"] for o in (definition.options if definition else []) if not o.get("hidden")]
    stages: dict[int, list[Any]] = {}
    for stage in Stage.objects.filter(archived=False).select_related("pipeline"):
        stages.setdefault(stage.pipeline_id, []).append(stage)
    ids = list(Order.objects.filter(archived=False).values_list("pk", flat=True))
    failures = [0]
    lock = threading.Lock()
    per_writer = [count // writers + (1 if i < count % writers else 0) for i in range(writers)]

    def writer(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        try:
            for made in range(per_writer[index]):
                order = Order.objects.select_related("pipeline").get(pk=rng.choice(ids))
                try:
                    outbox.record_change(
                        obj=order, properties=_edit_for(order, rng, options, stages), by=None
                    )
                except Exception:  # counted: an edit the writer could not make is a lost edit
                    with lock:
                        failures[0] += 1
                with lock:
                    progress[0] += 1
                if index == 0 and made < creates:
                    outbox.record_create(
                        object_type="orders",
                        properties={
                            "hs_order_name": f"Bench order {made}",
                            "hs_currency_code": "EUR",
                            "hs_external_order_id": f"BENCH-{seed}-{made}",
                        },
                        by=None,
                    )
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,), name=f"writer-{i}") for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures[0]


def _sandbox(url: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def _wait_settled(timeout_s: float) -> bool:

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Change.objects.filter(status__in=(ChangeStatus.PENDING, ChangeStatus.PUSHING)).exists():
            return True
        time.sleep(0.5)
    return False


def _verify(url: str, started_ms: int, seed: int) -> dict[str, Any]:
    """HubSpot's state and history against the writers' intentions (the changes, in the order made)."""

    intended: dict[str, dict[str, list[str]]] = {}
    for object_id, values in (
        Change.objects.filter(kind=ChangeKind.UPDATE, object_type="orders")
        .order_by("pk")
        .values_list("object_id", "new")
    ):
        for name, value in values.items():
            intended.setdefault(object_id, {}).setdefault(name, []).append(value)
    names = sorted({name for props in intended.values() for name in props})
    session = _sandbox(url)
    mismatched = regressed = checked = 0
    samples: list[dict[str, Any]] = []
    ids = sorted(intended)
    for start in range(0, len(ids), 50):
        chunk = ids[start : start + 50]
        body = {"inputs": [{"id": i} for i in chunk], "properties": names, "propertiesWithHistory": names}
        reply = session.post(f"{url}/crm/v3/objects/orders/batch/read", json=body, timeout=60)
        reply.raise_for_status()
        for record in reply.json()["results"]:
            for name, values in intended[record["id"]].items():
                checked += 1
                if (record["properties"].get(name) or "") != (values[-1] or ""):
                    mismatched += 1
                    if len(samples) < 5:
                        samples.append(
                            {
                                "id": record["id"],
                                "property": name,
                                "hubspot": record["properties"].get(name),
                                "intended": values,
                            }
                        )
                written = [
                    h["value"]
                    for h in reversed(record.get("propertiesWithHistory", {}).get(name, []))
                    if _ms(h["timestamp"]) >= started_ms
                ]
                late = _out_of_order(written, values)
                regressed += late
                if late and len(samples) < 10:
                    samples.append(
                        {"id": record["id"], "property": name, "written": written, "intended": values}
                    )
    creates = Change.objects.filter(kind=ChangeKind.CREATE)
    made: dict[str, int] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, "properties": "hs_external_order_id"}
        if after:
            params["after"] = after
        page = session.get(f"{url}/crm/v3/objects/orders", params=params, timeout=60).json()
        for record in page["results"]:
            external = record["properties"].get("hs_external_order_id") or ""
            if external.startswith(f"BENCH-{seed}-"):
                made[external] = made.get(external, 0) + 1
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    duplicate_creates = sum(n - 1 for n in made.values())
    missing_creates = sum(1 for c in creates if c.new.get("hs_external_order_id") not in made)
    unsettled = Change.objects.exclude(status=ChangeStatus.APPLIED)
    return {
        "lost": unsettled.count() + missing_creates,
        "lost_by_status": dict(
            unsettled.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        ),
        "duplicates": duplicate_creates + regressed,
        "duplicate_creates": duplicate_creates,
        "regressed_writes": regressed,
        "mismatched_properties": mismatched,
        "properties_checked": checked,
        "samples": samples,
        "unsettled_samples": [
            {"id": c.object_id, "status": c.status, "error": c.error, "new": c.new, "remote": c.remote}
            for c in unsettled[:5]
        ],
    }


def _ms(stamp: str) -> int:

    parsed = parse_datetime(stamp)
    return int(parsed.timestamp() * 1000) if parsed else 0


def _out_of_order(written: list[str], intended: list[str]) -> int:
    """Values HubSpot took that are not in the order they were intended in (an older edit landing over a
    newer one, i.e. a write applied twice); coalescing may skip values, never reorder them."""
    bad = position = 0
    for value in written:
        try:
            position = intended.index(value, position)
        except ValueError:
            bad += 1
    return bad


def _latency(count: int, rate_per_s: float, seed: int) -> dict[str, Any]:
    """Edits at a steady pace with no faults; seconds from each edit to HubSpot's confirmation."""

    rng = random.Random(seed)
    orders = list(Order.objects.filter(archived=False).order_by("?")[:count])
    first = Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for order in orders:
        outbox.record_change(
            obj=order, properties={"hs_shipping_tracking_number": f"L{rng.randrange(10**9)}"}, by=None
        )
        time.sleep(1 / rate_per_s)
    _wait_settled(120)
    rows = list(
        Change.objects.filter(pk__gt=first, status=ChangeStatus.APPLIED).values_list(
            "created_at", "pushed_at", "applied_at", "attempts", "object_id"
        )
    )
    latencies = [(applied - created).total_seconds() for created, _, applied, _, _ in rows if applied]
    began = min((created for created, *_ in rows), default=None)
    slow = [
        {
            "object_id": object_id,
            "made_s": round((created - began).total_seconds(), 2),
            "claimed_s": round((pushed - began).total_seconds(), 2) if pushed else None,
            "applied_s": round((applied - began).total_seconds(), 2),
            "attempts": attempts,
        }
        for created, pushed, applied, attempts, object_id in rows
        if began and applied and (applied - created).total_seconds() > 1.0
    ]
    return {
        "latency_edits": len(orders),
        "latency_applied": len(latencies),
        "latency_slow": slow[:20],
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(_percentile(latencies, 0.95), 3) if latencies else None,
    }


def _part(quick: bool) -> dict[str, Any]:

    config = json.loads(os.environ[PART_ENV])
    url = config["sandbox"]
    n = sizes(quick)
    admin = _sandbox(url)
    admin.delete(f"{url}/_sandbox/faults", timeout=10)
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 1)
        mark = now

    run = sync.run_sync(SyncKind.FULL, ["orders"], manual=True)
    if run.status != SyncStatus.SUCCEEDED:
        raise RuntimeError(f"the sync before the benchmark failed: {run.error_message} {run.error_detail}")
    lap("sync_s")
    database_url = f"sqlite:///{connection.settings_dict['NAME']}"
    seed = random.randrange(10**6)
    workers = [_worker("worker", database_url)]
    beat = _worker("beat", database_url, beat=True)
    figures: dict[str, Any] = {}
    try:
        # Until the worker runs tasks (a cold start takes seconds, which are not the push's).
        workers[0].wait_ready()
        lap("worker_start_s")
        if config["part"] == "chaos":
            figures.update(_chaos(url, n, seed, workers, database_url))
            lap("chaos_s")
        else:
            figures.update(_latency(n["latency_edits"], LATENCY_RATE_PER_S, seed))
            lap("latency_s")
    finally:
        beat.stop()
        for worker in workers:
            worker.stop(timeout_s=30)
        lap("stop_s")
    return {**figures, "timings": timings}


def _chaos(
    url: str, n: dict[str, Any], seed: int, workers: list[CeleryProcess], database_url: str
) -> dict[str, Any]:

    admin = _sandbox(url)
    writers = 8
    # 429 bursts: a second of them once the writers are a fifth through (pushes are under way by then), and
    # again every storm period.
    storm = {"kind": "storm", "duration_s": 1.0, "period_s": float(n["storm_period_s"])}
    rules = [*FAULTS, storm]
    admin.delete(f"{url}/_sandbox/stats", timeout=10)
    started_ms = int(time.time() * 1000)
    admin.put(f"{url}/_sandbox/faults", json={"rules": FAULTS, "seed": seed}, timeout=10).raise_for_status()
    storming = False
    progress = [0]
    failures: list[int] = []
    writing = threading.Thread(
        target=lambda: failures.append(_write_edits(n["edits"], writers, n["creates"], seed, progress)),
        name="writers",
    )
    started = time.perf_counter()
    writing.start()
    kills = 0
    # Kill the worker while it sends, when the writers are a quarter, half and three quarters through.
    marks = [(k + 1) * n["edits"] // (n["kills"] + 1) for k in range(n["kills"])]
    while True:
        close_old_connections()
        alive = writing.is_alive()
        if not storming and progress[0] >= n["edits"] // 5:
            admin.post(f"{url}/_sandbox/faults", json=storm, timeout=10).raise_for_status()
            storming = True
        due = kills < len(marks) and (progress[0] >= marks[kills] or not alive)
        if due and _in_flight(ChangeStatus.PUSHING):
            workers[-1].kill()
            kills += 1
            workers.append(_worker("worker", database_url))
        elif not alive and (
            kills >= len(marks) or not _in_flight(ChangeStatus.PENDING, ChangeStatus.PUSHING)
        ):
            break
        time.sleep(0.05)
    writing.join()
    written_s = time.perf_counter() - started
    settled = _wait_settled(1800 if n["edits"] > 1000 else 300)
    settle_s = time.perf_counter() - started - written_s
    stats = admin.get(f"{url}/_sandbox/stats", timeout=10).json()
    fired = admin.get(f"{url}/_sandbox/faults", timeout=10).json().get("fired", {})
    admin.delete(f"{url}/_sandbox/faults", timeout=10)
    verified = _verify(url, started_ms, seed)
    edits = n["edits"]
    return {
        "edits": edits,
        "orders": n["orders"],
        "writers": writers,
        "creates": n["creates"],
        "writer_failures": failures[0] if failures else None,
        "worker_kills": kills,
        "faults": rules,
        "faults_fired": fired,
        "http_429": stats.get("rate_limited", 0),
        "api_calls": stats["requests"],
        "api_calls_by_route": stats["by_route"],
        "api_calls_per_edit": round(stats["requests"] / edits, 4),
        "all_settled": settled,
        "write_s": round(written_s, 1),
        "settle_s": round(settle_s, 1),
        **{**verified, "lost": verified["lost"] + (failures[0] if failures else 0)},
    }


def _in_flight(*statuses: str) -> bool:

    return Change.objects.filter(status__in=statuses).exists()


@register("push-part", internal=True)
def part(quick: bool) -> Result:
    """(Used by `benchmark push`.) One part, in this process's data folder and broker."""
    figures = with_test_database(lambda: _part(quick))
    return Result(figures, [(k, str(v)) for k, v in figures.items() if not isinstance(v, (dict, list))])
