"""`benchmark sync`: a full sync against a seeded sandbox at the 190-per-10 s tier with real-network latency,
then incremental runs; and the ingest rate on SQLite and on PostgreSQL with the limiter and latency off.

Figures are ratios measured in one run: API calls against the minimum the documented page and batch
sizes allow, and wall time against the rate-limit lower bound (minimum calls ÷ 19 per second).
The syncs write to a throwaway database (Django's test-database machinery), never to the app's own.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from hubspot_sync import client, sync
from hubspot_sync.benchmarks import Result, register
from hubspot_sync.benchmarks.sandbox import TOKEN, SandboxProcess
from hubspot_sync.models import SyncKind, SyncStatus

TIER_PER_10S = 190
LATENCY_MS, JITTER_MS = 150, 50


def sizes(quick: bool) -> dict[str, int]:
    orders = 2_000 if quick else 100_000
    return {"orders": orders, "carts": orders // 2, "contacts": orders // 5}


def start_sandbox(n: dict[str, int], *, latency: bool, rate_limited: bool, log: Path) -> SandboxProcess:
    # Professional: 190 requests per rolling 10 s.
    extra: list[str] = ["--tier", "professional"] if rate_limited else ["--no-rate-limits"]
    if latency:
        extra += ["--latency-ms", str(LATENCY_MS), "--jitter-ms", str(JITTER_MS)]
    sb = SandboxProcess(orders=n["orders"], contacts=n["contacts"], carts=n["carts"], log=log, extra=extra)
    sb.wait_ready()
    return sb


def minimum_calls(sb: SandboxProcess) -> tuple[int, dict[str, int]]:
    """The fewest calls a full sync can make: every record once at the largest page/batch size, plus the
    property definitions of each type and the order pipelines."""
    counts: dict[str, int] = {}
    for object_type in ("orders", "carts", "contacts", "line_items"):
        body = sb.session.post(
            f"{sb.url}/crm/v3/objects/{object_type}/search", json={"limit": 1}, timeout=60
        ).json()
        counts[object_type] = int(body["total"])
        time.sleep(0.25)  # the sandbox's search limit applies to us too
    pages = sum(math.ceil(c / 100) for c in counts.values())
    return pages + 4 + 1, counts


def change_orders(sb: SandboxProcess, count: int) -> None:
    """Change `count` orders remotely (batch updates sent straight to the sandbox, not through our client)."""
    ids: list[str] = []
    after: str | None = None
    while len(ids) < count:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["after"] = after
        body = sb.session.get(f"{sb.url}/crm/v3/objects/orders", params=params, timeout=60).json()
        ids += [r["id"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
    for start in range(0, count, 100):
        inputs = [
            {"id": i, "properties": {"hs_shipping_tracking_number": f"BENCH{i}"}}
            for i in ids[start : start + 100]
        ]
        sb.session.post(f"{sb.url}/crm/v3/objects/orders/batch/update", json={"inputs": inputs}, timeout=60)


def with_test_database(fn: Any) -> Any:
    """Run fn against a fresh throwaway database, created and dropped around it. On PostgreSQL its name
    carries the process id, so two benchmarks (or a benchmark and a test run) on one server never drop each
    other's (SQLite's test file is per process already, see config.settings)."""
    old_name = connection.settings_dict["NAME"]
    test = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql" and not test.get("NAME"):
        test["NAME"] = f"test_{old_name}_bench_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        return fn()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def timed_full_sync() -> tuple[float, Any]:
    client.reset_stats()
    started = time.perf_counter()
    run = sync.run_sync(SyncKind.FULL, manual=True)
    elapsed = time.perf_counter() - started
    if run.status != SyncStatus.SUCCEEDED:
        raise RuntimeError(f"the full sync failed: {run.error_message} {run.error_detail}")
    return elapsed, run


def host_speed_s() -> float:
    """Seconds a fixed pure-Python loop takes here and now: an ingest rate is CPU-bound, and a shared host's
    speed varies from minute to minute, so the figure is given with the rate it was measured at."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return round(time.perf_counter() - started, 3)


def ingest_child(quick: bool) -> dict[str, Any]:
    """In a child process (one per database): full sync with the limiter and latency off."""
    n = sizes(quick)
    speed_before = host_speed_s()
    log = Path(settings.DATA_DIR) / f"bench-sync-ingest-{connection.vendor}.log"
    sb = start_sandbox(n, latency=False, rate_limited=False, log=log)
    try:
        with override_settings(
            HUBSPOT_API_BASE=sb.url, HUBSPOT_ACCESS_TOKEN=TOKEN, HUBSPOT_LIMITER_ENABLED=False
        ):
            elapsed, run = with_test_database(timed_full_sync)
    finally:
        sb.stop()
    return {
        "vendor": connection.vendor,
        "objects": run.objects_written,
        "seconds": elapsed,
        "objects_per_s": run.objects_written / elapsed,
        "host_loop_s": [speed_before, host_speed_s()],
    }


def run_ingest(quick: bool, database_url: str) -> dict[str, Any] | None:
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERDECK_BENCH_INGEST": "1"}
    out = Path(settings.DATA_DIR) / "bench-sync-ingest.json"
    args = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "benchmark",
        "sync-ingest",
        "--out",
        str(out),
    ]
    if quick:
        args.append("--quick")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        return None
    return dict(json.loads(out.read_text()))


def postgres_url() -> str:
    if connection.vendor == "postgresql":
        return str(os.environ.get("DATABASE_URL"))
    return os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@register("sync-ingest", internal=True)
def ingest(quick: bool) -> Result:
    """(Used by `benchmark sync`.) The ingest rate on the configured database."""
    figures = ingest_child(quick)
    return Result(figures, [(f"ingest on {figures['vendor']}", f"{figures['objects_per_s']:,.0f} objects/s")])


@register("sync")
def run(quick: bool) -> Result:
    n = sizes(quick)
    log = Path(settings.DATA_DIR) / "bench-sync.log"
    sb = start_sandbox(n, latency=True, rate_limited=True, log=log)
    try:
        min_calls, counts = minimum_calls(sb)
        time.sleep(1.0)
        with override_settings(
            HUBSPOT_API_BASE=sb.url, HUBSPOT_ACCESS_TOKEN=TOKEN, HUBSPOT_RATE_LIMIT_PER_10S=TIER_PER_10S
        ):

            def measure() -> dict[str, Any]:
                wall, full = timed_full_sync()
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                stats = client.stats()
                change_orders(sb, min(1000, n["orders"]))
                # Changes become searchable after the search lag; a run sooner would leave them to the next.
                time.sleep(settings.HUBSPOT_SEARCH_LAG_S + 0.5)
                client.reset_stats()
                started = time.perf_counter()
                incremental = sync.run_sync(SyncKind.INCREMENTAL, manual=True)
                incremental_s = time.perf_counter() - started
                noop = sync.run_sync(SyncKind.INCREMENTAL, manual=True)
                return {
                    "wall": wall,
                    "full": full,
                    "peak": peak,
                    "stats": stats,
                    "incremental": incremental,
                    "incremental_s": incremental_s,
                    "noop": noop,
                }

            m = with_test_database(measure)
    finally:
        sb.stop()
    sqlite = run_ingest(quick, f"sqlite:///{Path(settings.DATA_DIR) / 'bench-ingest.sqlite3'}")
    postgresql = run_ingest(quick, postgres_url())
    bound_s = min_calls / (TIER_PER_10S / 10)
    full = m["full"]
    figures: dict[str, Any] = {
        "seeded": counts,
        "tier_per_10s": TIER_PER_10S,
        "latency_ms": f"{LATENCY_MS}±{JITTER_MS}",
        "api_calls": full.api_calls,
        "api_calls_min": min_calls,
        "api_calls_ratio": round(full.api_calls / min_calls, 3),
        "wall_s": round(m["wall"], 1),
        "bound_s": round(bound_s, 1),
        "wall_vs_bound": round(m["wall"] / bound_s, 3),
        "http_429": m["stats"].http_429,
        "retries": m["stats"].retries,
        "objects_written": full.objects_written,
        "peak_rss_mb": round(m["peak"], 1),
        "incremental_changes": min(1000, n["orders"]),
        "incremental_calls": m["incremental"].api_calls,
        "incremental_s": round(m["incremental_s"], 2),
        "noop_calls": m["noop"].api_calls,
        "noop_object_types": 4,
        "ingest_per_s_sqlite": round(sqlite["objects_per_s"]) if sqlite else None,
        "ingest_per_s_postgresql": round(postgresql["objects_per_s"]) if postgresql else None,
        # host_speed_s() before and after each ingest run: the same rate on a host twice as slow halves.
        "ingest_host_loop_s": {
            "sqlite": sqlite["host_loop_s"] if sqlite else None,
            "postgresql": postgresql["host_loop_s"] if postgresql else None,
        },
    }
    rows = [
        ("seeded", ", ".join(f"{k} {v:,}" for k, v in counts.items())),
        (
            "API calls",
            f"{full.api_calls:,} for a minimum of {min_calls:,} ({full.api_calls / min_calls:.3f}×)",
        ),
        ("wall time", f"{m['wall']:.1f} s against a bound of {bound_s:.1f} s ({m['wall'] / bound_s:.2f}×)"),
        ("429s received", str(m["stats"].http_429)),
        ("peak memory", f"{m['peak']:.0f} MB"),
        ("incremental, 1,000 changed", f"{m['incremental'].api_calls} calls in {m['incremental_s']:.2f} s"),
        ("incremental, nothing changed", f"{m['noop'].api_calls} calls for 4 object types"),
        ("ingest, SQLite", f"{figures['ingest_per_s_sqlite'] or 'failed'} objects/s"),
        ("ingest, PostgreSQL", f"{figures['ingest_per_s_postgresql'] or 'unavailable'} objects/s"),
        ("host speed (loop s)", json.dumps(figures["ingest_host_loop_s"])),
    ]
    return Result(figures, rows)
