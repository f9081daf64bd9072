"""The shared rate limiter: several processes on one store never exceed a rate in any window.

Assertions are on the timestamps the store recorded each permit under, not on how long anything took.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hubspot_sync import ratelimit
from hubspot_sync.ratelimit import Limiter, LimiterConfig, LimiterTimeout, Rate

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/15"
RATES = (Rate(8, 400), Rate(3, 100))


def redis_url() -> str:
    """Redis for the tests, or a skip when it is not running here; in CI (CI set) it must be there."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail("Redis must run at 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    return REDIS_URL


def most_in_any_window(stamps: Sequence[int], window_ms: int) -> int:
    """The largest number of permits inside any window (t - window, t]."""
    ordered = sorted(stamps)
    most = 0
    start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window_ms:
            start += 1
        most = max(most, end - start + 1)
    return most


def hammer(
    url: str,
    rates: Sequence[Rate],
    *,
    processes: int = 4,
    threads: int = 2,
    permits: int = 6,
    kind: str = "general",
) -> list[int]:
    """Start worker processes on one store at the same moment; return every permit's timestamp (ms)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    start_at = time.time() + 1.5  # interpreters start in a fraction of that: they all contend from the start
    spec = ",".join(f"{r.limit}/{r.window_ms}" for r in rates)
    command = [
        sys.executable,
        "-m",
        "tests.hubspot_sync.limiter_worker",
        f"--url={url}",
        f"--name={name}",
        f"--rates={spec}",
        f"--kind={kind}",
        f"--permits={permits}",
        f"--threads={threads}",
        f"--start-at={start_at}",
    ]
    workers = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    stamps: list[int] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        stamps.extend(json.loads(out))
    return stamps


def assert_never_over(stamps: Sequence[int], rates: Sequence[Rate], expected_count: int) -> None:
    assert len(stamps) == expected_count
    for rate in rates:
        assert most_in_any_window(stamps, rate.window_ms) <= rate.limit, rate
    # The workers kept the limiter busy: the binding rate was reached, so the check above had work to do.
    assert any(most_in_any_window(stamps, r.window_ms) == r.limit for r in rates)


def test_processes_sharing_the_embedded_store_never_exceed_any_rate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'limiter.sqlite3'}"
    stamps = hammer(url, RATES)
    assert_never_over(stamps, RATES, 4 * 2 * 6)


def test_processes_sharing_redis_never_exceed_any_rate() -> None:
    url = redis_url()
    stamps = hammer(url, RATES)
    assert_never_over(stamps, RATES, 4 * 2 * 6)


def test_search_permits_from_many_processes_keep_their_own_rate(tmp_path: Path) -> None:
    rates = (Rate(5, 300),)
    stamps = hammer(f"sqlite:///{tmp_path / 'limiter.sqlite3'}", rates, processes=3, permits=5, kind="search")
    assert_never_over(stamps, rates, 3 * 2 * 5)


def _forked_worker(limiter: Limiter, permits: int, queue: Any) -> None:
    queue.put([round(limiter.acquire().granted_at * 1000) for _ in range(permits)])


def test_a_limiter_inherited_by_forked_workers_keeps_working(tmp_path: Path) -> None:
    # Celery's prefork pool forks after the parent may have used the limiter: children must open their own
    # connection to the store and still share its windows.
    rates = (Rate(4, 300),)
    limiter = Limiter.from_config(
        LimiterConfig(url=f"sqlite:///{tmp_path / 'limiter.sqlite3'}", name="fork", general=rates, share=1.0)
    )
    parent = [round(limiter.acquire().granted_at * 1000) for _ in range(3)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_forked_worker, args=(limiter, 5, queue)) for _ in range(3)]
    for child in children:
        child.start()
    stamps = parent + [s for _ in children for s in queue.get(timeout=60)]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert_never_over(stamps, rates, 3 + 3 * 5)
    limiter.close()


# --- one process --------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'limiter.sqlite3'}"
    return redis_url()


def make_limiter(url: str, **overrides: Any) -> Limiter:
    options: dict[str, Any] = {
        "url": url,
        "name": f"test-{uuid.uuid4().hex[:8]}",
        "general": (Rate(2, 60_000),),
        "search": (Rate(2, 60_000),),
        "share": 1.0,
    }
    options.update(overrides)
    return Limiter.from_config(LimiterConfig(**options))


@pytest.fixture
def limiter(store_url: str) -> Iterator[Limiter]:
    made = make_limiter(store_url)
    yield made
    made.close()


def test_the_bounded_wait_raises_with_when_to_come_back(limiter: Limiter) -> None:
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(LimiterTimeout) as caught:
        limiter.acquire(max_wait_s=0.05)
    assert 50 < caught.value.retry_after_s <= 60


def test_search_has_its_own_budget(limiter: Limiter) -> None:
    limiter.acquire("general")
    limiter.acquire("general")
    limiter.acquire("search")
    limiter.acquire("search")
    for kind in ("general", "search"):
        with pytest.raises(LimiterTimeout):
            limiter.acquire(kind, max_wait_s=0)


def test_search_can_also_count_toward_the_general_budget(store_url: str) -> None:
    limiter = make_limiter(store_url, search_counts_toward_general=True, search=(Rate(5, 60_000),))
    limiter.acquire("search")
    limiter.acquire("search")
    with pytest.raises(LimiterTimeout):
        limiter.acquire("general", max_wait_s=0)
    with pytest.raises(LimiterTimeout):
        limiter.acquire("search", max_wait_s=0)  # search has room, general has none
    limiter.close()


@pytest.fixture(params=["sqlite", "redis"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'limiter.sqlite3'}"
    return redis_url()


def test_a_hold_stops_every_limiter_on_the_store(shared_store_url: str) -> None:
    store_url = shared_store_url
    name = f"test-{uuid.uuid4().hex[:8]}"
    one = make_limiter(store_url, name=name, general=(Rate(100, 1000),))
    other = make_limiter(store_url, name=name, general=(Rate(100, 1000),))
    held_at = time.time()
    one.hold("general", 0.3)
    permit = other.acquire("general")
    assert permit.granted_at >= held_at + 0.3
    one.close()
    other.close()


def test_a_lowered_limit_binds_and_never_raises_one(limiter: Limiter) -> None:
    limiter.lower_limit("general", Rate(1_000, 1_000))  # higher than configured: changes nothing
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(LimiterTimeout):
        limiter.acquire(max_wait_s=0)
    limiter.lower_limit("search", Rate(1, 60_000))
    limiter.acquire("search")
    with pytest.raises(LimiterTimeout):
        limiter.acquire("search", max_wait_s=0)


def test_a_disabled_limiter_never_waits(store_url: str) -> None:
    limiter = make_limiter(store_url, enabled=False)
    for _ in range(10):
        assert limiter.acquire(max_wait_s=0).waited_s == 0.0
    limiter.close()


def test_an_unreachable_redis_falls_back_to_a_per_process_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hubspot_sync.ratelimit")
    limiter = make_limiter("redis://127.0.0.1:1/0")
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(LimiterTimeout):
        limiter.acquire(max_wait_s=0)
    assert "limiting per process" in caplog.text
    limiter.close()


def test_the_safety_share_stretches_windows() -> None:
    config = LimiterConfig.for_hubspot(url="memory://", per_10s=190, search_per_s=5, share=0.95)
    assert config.stretched(config.general) == (Rate(190, 10_527), Rate(19, 1_053))
    assert config.stretched(config.search) == (Rate(5, 1_053),)


def test_settings_choose_the_store(settings: Any) -> None:
    settings.HUBSPOT_LIMITER_URL = ""
    assert isinstance(ratelimit.get_limiter().backend, ratelimit.SQLiteBackend)
    assert ratelimit.get_limiter().backend.path == Path(settings.DATA_DIR) / "hubspot-ratelimit.sqlite3"  # type: ignore[attr-defined]
    settings.HUBSPOT_LIMITER_URL = "redis://127.0.0.1:6379/15"
    assert isinstance(ratelimit.get_limiter().backend, ratelimit.RedisBackend)
    settings.HUBSPOT_RATE_LIMIT_PER_10S = 100
    settings.HUBSPOT_RATE_LIMIT_SHARE = 1.0
    assert ratelimit.get_limiter().config.stretched(ratelimit.get_limiter().config.general) == (
        Rate(100, 10_000),
        Rate(10, 1_000),
    )
    ratelimit.close_limiters()
