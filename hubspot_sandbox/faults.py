"""Fault injection: the bad days a client of HubSpot must survive (reference §2 status table).

Rules add latency (fixed ± jitter), answer a share of requests with 5xx, hang requests past client
timeouts, drop connections, send 429 storms or 423 locks. Each rule can be scoped to a path regex and a
method, fires with a probability (seeded, so a run can be repeated), and can be limited in count or
time (``duration_s``, and ``period_s`` for storms that come back).
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hubspot_sandbox.http import HubSpotError
from hubspot_sandbox.ratelimit import daily_error, secondly_error, ten_secondly_error

KINDS = ("latency", "error", "hang", "drop", "storm", "lock")
# The 5xx HubSpot's error-handling page names (reference §2): 502/504 processing limits, 503 unavailable.
DEFAULT_ERROR_STATUSES = (500, 502, 503, 504)
_ERROR_MESSAGES = {
    500: "internal error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class FaultRule:
    kind: str
    probability: float = 1.0
    path: str | None = None  # a regex searched for in the request path
    method: str | None = None
    latency_ms: float = 0.0  # latency: fixed part
    jitter_ms: float = 0.0  # latency: ± uniform
    status: int | None = None  # error: None picks one of DEFAULT_ERROR_STATUSES
    hang_s: float = 30.0  # hang: how long before the request is processed (or dropped)
    apply: bool = True  # hang: process the request after the hang (a write a timed-out client never saw)
    policy: str = "TEN_SECONDLY_ROLLING"  # storm: TEN_SECONDLY_ROLLING | DAILY | SECONDLY
    duration_s: float | None = None  # active for this long after being set (per period with period_s)
    period_s: float | None = None  # storm every period_s seconds, each lasting duration_s
    count: int | None = None  # fire at most this many times
    started: float = field(default_factory=time.monotonic, repr=False)
    fired: int = field(default=0, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        self._pattern = re.compile(self.path) if self.path else None
        if self.method:
            self.method = self.method.upper()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "kind",
            "probability",
            "path",
            "method",
            "latency_ms",
            "jitter_ms",
            "status",
            "hang_s",
            "apply",
            "policy",
            "duration_s",
            "period_s",
            "count",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "probability": self.probability,
            "path": self.path,
            "method": self.method,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "status": self.status,
            "hang_s": self.hang_s,
            "apply": self.apply,
            "policy": self.policy,
            "duration_s": self.duration_s,
            "period_s": self.period_s,
            "count": self.count,
            "fired": self.fired,
        }

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.method and self.method != method:
            return False
        if self._pattern is not None and not self._pattern.search(path):
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        if self.duration_s is not None:
            elapsed = now - self.started
            if self.period_s:
                elapsed %= self.period_s
            if elapsed >= self.duration_s:
                return False
        return True


@dataclass
class FaultDecision:
    """What to do to one request: sleep first, then maybe replace or drop it."""

    latency_s: float = 0.0
    rule: FaultRule | None = None  # the rule that decides the outcome (error, hang, drop, storm, lock)


class Faults:
    """The active rules; thread-safe, with one seeded random source for every decision."""

    def __init__(self, rules: list[FaultRule] | None = None, *, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules or [])
        self._seed = seed
        self._random = random.Random(seed)
        self._stopping = threading.Event()
        self.fired: dict[str, int] = {}

    # configuration
    def set(self, rules: list[FaultRule], *, seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._seed = seed
            self._random = random.Random(self._seed)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set([])

    def json(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self._seed, "rules": [r.json() for r in self._rules], "fired": dict(self.fired)}

    # decisions
    def decide(self, method: str, path: str) -> FaultDecision:
        decision = FaultDecision()
        if not self._rules:
            return decision
        now = time.monotonic()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, now) or self._random.random() >= rule.probability:
                    continue
                if rule.kind == "latency":
                    jitter = self._random.uniform(-rule.jitter_ms, rule.jitter_ms) if rule.jitter_ms else 0.0
                    decision.latency_s += max(0.0, rule.latency_ms + jitter) / 1000
                    self._count(rule)
                elif decision.rule is None:
                    decision.rule = rule
                    self._count(rule)
            return decision

    def _count(self, rule: FaultRule) -> None:
        rule.fired += 1
        self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1

    def error_status(self, rule: FaultRule) -> int:
        if rule.status:
            return rule.status
        with self._lock:
            return self._random.choice(DEFAULT_ERROR_STATUSES)

    # sleeping that the server's stop cuts short
    def sleep(self, seconds: float) -> bool:
        """Sleep; False when the sandbox is stopping (the caller should give up on the request)."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def stop(self) -> None:
        self._stopping.set()

    def restart(self) -> None:
        self._stopping.clear()


def fault_error(rule: FaultRule, status: int, portal_id: int) -> HubSpotError:
    """The response a failing rule answers with, in HubSpot's error shape (reference §2)."""
    if rule.kind == "storm":
        if rule.policy == "DAILY":
            return daily_error()
        if rule.policy == "SECONDLY":
            return secondly_error(portal_id)
        return ten_secondly_error(portal_id)
    if rule.kind == "lock":
        # "Locks will last for 2 seconds ... include a delay of at least 2 seconds" (reference §2). The
        # body HubSpot sends with a 423 is UNCONFIRMED.
        return HubSpotError(
            423, "LOCKED", "The record is locked while a sync is in progress; retry after at least 2 seconds."
        )
    # The bodies of HubSpot's 5xx are UNCONFIRMED; the shape is the common error body.
    return HubSpotError(status, "INTERNAL_ERROR", _ERROR_MESSAGES.get(status, "internal error"))
