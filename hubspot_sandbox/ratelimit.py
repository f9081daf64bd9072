"""HubSpot's rate limits for private apps: a rolling 10-second window per token, a daily budget per
account, and a separate per-second limit for search (reference §3).

``RateLimiter.check`` either admits a request (and returns the headers to send with its response) or
raises the 429 HubSpot would answer.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hubspot_sandbox.http import HubSpotError

# Per 10 seconds per private app, and per day per account (reference §3 table). The Professional
# daily figure is 625,000 in the docs table and 650,000 in the changelog: UNCONFIRMED, configurable.
TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
    # "With API Limit Increase (any tier)": 250 per 10 s, +1,000,000 a day per increase.
    "increase": (250, 2_000_000),
}
# Public (OAuth) apps get 110 per 10 s per installing account and no daily limit (reference §3): set
# ``ten_second_limit=110`` to play one (the daily headers are still sent).


@dataclass
class RateLimitConfig:
    tier: str = "professional"
    ten_second_limit: int | None = None  # overrides the tier's figure
    daily_limit: int | None = None  # overrides the tier's figure
    window_ms: int = 10_000
    search_per_s: int = 5  # "rate limited to five requests per second" (reference §1.5)
    search_window_ms: int = 1_000
    # Does search also use up the 10-second window? UNCONFIRMED (sync-performance §8 item 1); no by
    # default. Search does count against the daily budget.
    search_counts_in_window: bool = False
    enforce: bool = True  # off: headers are still sent, nothing is refused
    # Retry-After on 429s is UNCONFIRMED (reference §3, §11 item 4): off by default, so clients learn to
    # cope without it; on, it carries the seconds until the window frees a slot.
    retry_after: bool = False
    utc_offset_minutes: int = 0  # "The daily limit resets at midnight based on your time zone setting"

    def limits(self) -> tuple[int, int]:
        per_window, per_day = TIERS.get(self.tier.lower(), TIERS["professional"])
        return self.ten_second_limit or per_window, self.daily_limit or per_day


class RateLimiter:
    def __init__(self, config: RateLimitConfig, portal_id: int = 62515) -> None:
        self.config = config
        self.portal_id = portal_id
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._search: dict[str, deque[float]] = {}
        self._day = ""
        self._daily_used = 0

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._search.clear()
            self._daily_used = 0

    @property
    def daily_used(self) -> int:
        return self._daily_used

    def _today(self, now: float) -> str:
        local = datetime.fromtimestamp(now, tz=UTC) + timedelta(minutes=self.config.utc_offset_minutes)
        return local.strftime("%Y-%m-%d")

    def _seconds_to_midnight(self, now: float) -> int:
        local = datetime.fromtimestamp(now, tz=UTC) + timedelta(minutes=self.config.utc_offset_minutes)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1, math.ceil((midnight - local).total_seconds()))

    @staticmethod
    def _trim(window: deque[float], now: float, span_s: float) -> None:
        while window and window[0] <= now - span_s:
            window.popleft()

    def check(self, token: str, *, search: bool) -> dict[str, str]:
        """Count one request; return the rate-limit headers for its response, or raise the 429.

        Search responses carry no rate-limit headers (reference §1.5, §3), so for search the dict is
        empty. A refused request is not counted.
        """
        cfg = self.config
        per_window, per_day = cfg.limits()
        now = time.time()
        window_s = cfg.window_ms / 1000
        with self._lock:
            today = self._today(now)
            if today != self._day:
                self._day, self._daily_used = today, 0
            window = self._windows.setdefault(token, deque())
            self._trim(window, now, window_s)
            if cfg.enforce and self._daily_used >= per_day:
                raise self._daily_error(now, per_window, per_day, len(window), search=search)
            if search:
                searches = self._search.setdefault(token, deque())
                self._trim(searches, now, cfg.search_window_ms / 1000)
                if cfg.enforce and len(searches) >= cfg.search_per_s:
                    raise self._search_error(now, searches)
                if cfg.search_counts_in_window:
                    if cfg.enforce and len(window) >= per_window:
                        raise self._window_error(now, window, per_window, per_day, search=True)
                    window.append(now)
                searches.append(now)
                self._daily_used += 1
                return {}
            if cfg.enforce and len(window) >= per_window:
                raise self._window_error(now, window, per_window, per_day, search=False)
            window.append(now)
            self._daily_used += 1
            return self._headers(now, window, per_window, per_day)

    def storm_headers(self, policy: str, *, search: bool) -> dict[str, str]:
        """Headers for a 429 a fault rule sends: as if the named limit were used up (a co-tenant on the
        same app, say), with Retry-After when switched on."""
        per_window, per_day = self.config.limits()
        headers: dict[str, str] = {}
        if not search and policy != "SECONDLY":
            headers = {
                "X-HubSpot-RateLimit-Daily": str(per_day),
                "X-HubSpot-RateLimit-Daily-Remaining": "0"
                if policy == "DAILY"
                else str(per_day - self._daily_used),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.config.window_ms),
                "X-HubSpot-RateLimit-Max": str(per_window),
                "X-HubSpot-RateLimit-Remaining": "0",
            }
        now = time.time()
        if policy == "DAILY":
            headers.update(self._retry_after(self._seconds_to_midnight(now)))
        elif policy == "SECONDLY":
            headers.update(self._retry_after(self.config.search_window_ms / 1000))
        else:
            headers.update(self._retry_after(self.config.window_ms / 1000))
        return headers

    def _headers(self, now: float, window: deque[float], per_window: int, per_day: int) -> dict[str, str]:
        """The X-HubSpot-RateLimit-* headers (reference §3 table). The secondly pair is "still included
        ... but ... no longer enforced and ... deprecated": a tenth of the window, over the last second."""
        secondly = max(1, per_window // 10)
        last_second = sum(1 for t in window if t > now - 1)
        return {
            "X-HubSpot-RateLimit-Daily": str(per_day),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, per_day - self._daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.config.window_ms),
            "X-HubSpot-RateLimit-Max": str(per_window),
            "X-HubSpot-RateLimit-Remaining": str(max(0, per_window - len(window))),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - last_second)),
        }

    def _retry_after(self, seconds: float) -> dict[str, str]:
        if not self.config.retry_after:
            return {}
        return {"Retry-After": str(max(1, math.ceil(seconds)))}

    def _window_error(
        self, now: float, window: deque[float], per_window: int, per_day: int, *, search: bool
    ) -> HubSpotError:
        headers = {} if search else self._headers(now, window, per_window, per_day)
        headers.update(self._retry_after(window[0] + self.config.window_ms / 1000 - now))
        return ten_secondly_error(self.portal_id, headers)

    def _daily_error(
        self, now: float, per_window: int, per_day: int, in_window: int, *, search: bool
    ) -> HubSpotError:
        headers: dict[str, str] = {}
        if not search:
            headers = {
                "X-HubSpot-RateLimit-Daily": str(per_day),
                "X-HubSpot-RateLimit-Daily-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.config.window_ms),
                "X-HubSpot-RateLimit-Max": str(per_window),
                "X-HubSpot-RateLimit-Remaining": str(max(0, per_window - in_window)),
            }
        headers.update(self._retry_after(self._seconds_to_midnight(now)))
        return daily_error(headers)

    def _search_error(self, now: float, searches: deque[float]) -> HubSpotError:
        headers = self._retry_after(searches[0] + self.config.search_window_ms / 1000 - now)
        return secondly_error(self.portal_id, headers)


def ten_secondly_error(portal_id: int, headers: dict[str, str] | None = None) -> HubSpotError:
    """The 10-second window's 429, as a real one reads (reference §3, quoted from a HubSpot SDK issue)."""
    return HubSpotError(
        429,
        None,
        "You have reached your ten_secondly_rolling limit.",
        headers=headers,
        extra={
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": f"publicapi:hapikey-api-calls-ten-secondly:{portal_id}",
        },
    )


def daily_error(headers: dict[str, str] | None = None) -> HubSpotError:
    """The daily budget's 429 (reference §3, the documented example)."""
    return HubSpotError(
        429,
        None,
        "You have reached your daily limit.",
        headers=headers,
        extra={"errorType": "RATE_LIMIT", "policyName": "DAILY", "requestId": str(uuid.uuid4())},
    )


def secondly_error(portal_id: int, headers: dict[str, str] | None = None) -> HubSpotError:
    """Search's 429. The message is the one HubSpot's Node SDK retries on (reference §3); the
    policyName "SECONDLY" is UNCONFIRMED."""
    return HubSpotError(
        429,
        None,
        "You have reached your secondly limit.",
        headers=headers,
        extra={
            "errorType": "RATE_LIMIT",
            "policyName": "SECONDLY",
            "groupName": f"publicapi:hapikey-api-calls-secondly:{portal_id}",
        },
    )
