"""`benchmark sandbox`: objects per second the sandbox serves on list and search pages at 100,000 orders.

The sandbox runs as its own process (as in the demo), seeded, with rate limits off; one client on a
keep-alive connection pages through it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from hubspot_sync.benchmarks import Result, register

TOKEN = "benchmark-token"  # noqa: S105 - a local sandbox's made-up token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    def __init__(
        self, *, orders: int, contacts: int, carts: int, log: Path, extra: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(settings.BASE_DIR / "manage.py"),
                "sandbox",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--orders",
                str(orders),
                "--contacts",
                str(contacts),
                "--carts",
                str(carts),
                *(extra or []),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def wait_ready(self, timeout_s: float = 900) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError("the sandbox stopped before it served")
            try:
                if self.session.get(f"{self.url}/crm/v3/objects/orders?limit=1", timeout=2).ok:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the sandbox did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _list_rate(
    sb: SandboxProcess, properties: list[str], pages: int, associations: str = ""
) -> tuple[float, int]:
    after: str | None = None
    served = 0
    started = time.perf_counter()
    for _ in range(pages):
        params: dict[str, Any] = {"limit": 100, "properties": ",".join(properties)}
        if associations:
            params["associations"] = associations
        if after:
            params["after"] = after
        body = sb.session.get(f"{sb.url}/crm/v3/objects/orders", params=params, timeout=60).json()
        served += len(body["results"])
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    return served / (time.perf_counter() - started), served


def _search_rate(sb: SandboxProcess, properties: list[str], pages: int) -> tuple[float, int]:
    last_id = 0
    served = 0
    started = time.perf_counter()
    for _ in range(pages):
        body = sb.session.post(
            f"{sb.url}/crm/v3/objects/orders/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
                            {"propertyName": "hs_currency_code", "operator": "HAS_PROPERTY"},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties,
                "limit": 200,
            },
            timeout=60,
        ).json()
        results = body["results"]
        served += len(results)
        if len(results) < 200:
            break
        last_id = int(results[-1]["id"])
    return served / (time.perf_counter() - started), served


@register("sandbox")
def run(quick: bool) -> Result:
    orders = 5_000 if quick else 100_000
    pages = 30 if quick else 200
    log = Path(settings.DATA_DIR) / "bench-sandbox.log"
    sb = SandboxProcess(
        orders=orders, contacts=max(orders // 5, 10), carts=orders // 2, log=log, extra=["--no-rate-limits"]
    )
    try:
        ready_s = sb.wait_ready()
        definitions = sb.session.get(f"{sb.url}/crm/v3/properties/orders", timeout=30).json()["results"]
        properties = [d["name"] for d in definitions]
        list_rate, list_served = _list_rate(sb, properties, pages)
        assoc_rate, _ = _list_rate(sb, properties, pages, associations="contacts,line_items")
        search_rate, search_served = _search_rate(sb, properties, pages // 2)
    finally:
        sb.stop()
    goal = 2000
    figures = {
        "orders_seeded": orders,
        "seed_and_start_s": round(ready_s, 1),
        "properties_per_object": len(properties),
        "list_objects_per_s": round(list_rate),
        "list_with_associations_objects_per_s": round(assoc_rate),
        "search_objects_per_s": round(search_rate),
        "list_objects_served": list_served,
        "search_objects_served": search_served,
        "goal_objects_per_s": goal,
        "list_vs_goal": round(list_rate / goal, 2),
        "search_vs_goal": round(search_rate / goal, 2),
    }
    rows = [
        ("orders seeded", f"{orders:,} (ready in {ready_s:.1f} s)"),
        ("properties per object", str(len(properties))),
        ("list pages of 100", f"{list_rate:,.0f} objects/s ({list_rate / goal:.1f}× the 2,000/s goal)"),
        ("list + associations", f"{assoc_rate:,.0f} objects/s"),
        ("search pages of 200", f"{search_rate:,.0f} objects/s ({search_rate / goal:.1f}× the goal)"),
    ]
    return Result(figures, rows)
