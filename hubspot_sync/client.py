"""HubSpot's CRM API: the only code in OrderDeck that speaks HTTP to HubSpot.

One typed function per HubSpot operation. Each returns small frozen dataclasses of its own (never model
instances) and raises the errors below; nothing here touches the database. Callers import the module
(``from hubspot_sync import client``) so tests can replace it in one place.

Every call:

- reads the base URL, token, timeouts and retry policy from Django settings at call time (tests override
  settings per test);
- takes a permit from the shared rate limiter (``hubspot_sync.ratelimit``) before each attempt: ``search``
  calls from the search budget, everything else from the 10-second one;
- runs on a ``requests.Session`` of its own thread (sessions are not documented as thread-safe; the sync
  keeps several requests in flight from a thread pool), with keep-alive, so a sync reuses connections;
- is retried in one explicit loop (not urllib3's ``Retry``, which neither retries POSTs nor knows HubSpot's
  rate-limit policies) with full-jitter exponential backoff: 429s, 423s, 5xx, timeouts and connection
  errors; a DAILY 429 is never retried. A request that may already have changed something in HubSpot
  (5xx or read timeout) is only retried when repeating it cannot change more: reads, read-only POSTs
  (search, batch read), writes of absolute values (PATCH, batch update, upsert), associations, archives,
  and creates that carry an ``objectWriteTraceId``;
- is logged as method, path, status and duration; the token is never logged nor put in an error.

Path names: the CRM object endpoints take the plural names (``/crm/v3/objects/orders``); HubSpot's guides
use the singular for properties and pipelines (``/crm/v3/properties/order``), so each family has its own
column below. The path prefixes sit in one place too: HubSpot's date-versioned paths
(``/crm/objects/2026-03/...``) may replace ``/crm/v3`` one day.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import math
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode

import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from hubspot_sync import ratelimit

logger = logging.getLogger(__name__)

# --- object types and paths ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _TypeNames:
    objects: str  # /crm/v3/objects/{objects}, /crm/v4/associations/{objects}/...
    schema: str  # /crm/v3/properties/{schema}, /crm/v3/pipelines/{schema}
    type_id: str


# Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
# (object type ids: contacts 0-1, line items 0-8, orders 0-123, carts 0-142).
_TYPES: dict[str, _TypeNames] = {
    "orders": _TypeNames("orders", "order", "0-123"),
    "carts": _TypeNames("carts", "cart", "0-142"),
    "line_items": _TypeNames("line_items", "line_item", "0-8"),
    "contacts": _TypeNames("contacts", "contacts", "0-1"),
}
OBJECT_TYPES: tuple[str, ...] = tuple(_TYPES)

# How HubSpot names another type inside a response's ``associations``: the line-item key is observed as
# "line items" with a space (UNCONFIRMED), so every spelling maps back to our canonical plural.
_ASSOCIATION_KEYS: dict[str, str] = {}
for _canonical, _spellings in _TYPES.items():
    for _alias in (
        _canonical,
        _spellings.schema,
        _spellings.type_id,
        _canonical.replace("_", " "),
        _canonical.rstrip("s"),
    ):
        _ASSOCIATION_KEYS[_alias] = _canonical
_ASSOCIATION_KEYS.update({"lineitem": "line_items", "lineitems": "line_items", "line item": "line_items"})

_OBJECTS = "/crm/v3/objects"
_PROPERTIES = "/crm/v3/properties"
_PIPELINES = "/crm/v3/pipelines"
_ASSOCIATIONS_V4 = "/crm/v4/associations"
_OBJECTS_V4 = "/crm/v4/objects"

# "Batch requests to CRM object endpoints are limited to 100 records per request."
# Reference: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
BATCH_SIZE = 100
# List pages hold at most 100 records. Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
LIST_PAGE_MAX = 100
# Search pages hold at most 200. Reference: https://developers.hubspot.com/docs/api-reference/search/guide
SEARCH_PAGE_MAX = 200
# v4 batch read: "may not exceed 1000 IDs per request body" (since 2025-02-10).
# Reference: https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api
ASSOCIATION_READ_BATCH = 1000
# v4 batch create takes 2,000 inputs (associate-records guide); the limits of associate/default, archive
# and labels/archive are not documented (UNCONFIRMED), so those stay at the object batch size.
ASSOCIATION_CREATE_BATCH = 2000
ASSOCIATION_WRITE_BATCH = 100


def _names(object_type: str) -> _TypeNames:
    try:
        return _TYPES[object_type]
    except KeyError:
        raise ValueError(f"unknown object type {object_type!r}; one of {', '.join(OBJECT_TYPES)}") from None


# --- values returned ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiObject:
    """One CRM record as HubSpot sent it: every property value a string (or null)."""

    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None
    # to-type (canonical plural) -> associated ids, from ``associations=`` on list and get; deduplicated
    associations: dict[str, list[str]] = field(default_factory=dict)
    # to-types whose inline list had more than one page: read those with read_associations (v4)
    truncated_associations: frozenset[str] = frozenset()
    # batch create/update/upsert echo the input's trace id, which is how results map back to inputs
    object_write_trace_id: str | None = None
    # batch upsert: whether the record was created
    new: bool | None = None


@dataclass(frozen=True)
class ObjectPage:
    results: list[ApiObject]
    next_after: str | None  # None on the last page


@dataclass(frozen=True)
class SearchPage:
    total: int
    results: list[ApiObject]
    next_after: str | None


@dataclass(frozen=True)
class BatchError:
    """One failed input of a batch (an item of a 207's ``errors``, split per input it names)."""

    category: str
    message: str
    sub_category: str | None = None
    context: dict[str, list[str]] = field(default_factory=dict)
    input_id: str | None = None  # the record id (or idProperty value) the error is about, when known
    trace_id: str | None = None  # the input's objectWriteTraceId, when it had one


@dataclass(frozen=True)
class BatchResult:
    results: list[ApiObject]
    missing: list[str] = field(default_factory=list)  # ids HubSpot has no (live) record for
    errors: list[BatchError] = field(default_factory=list)


@dataclass(frozen=True)
class ApiAssociation:
    to_id: str
    type_ids: tuple[int, ...]
    labels: tuple[str, ...]  # only the labelled types; HubSpot's default types have a null label


@dataclass(frozen=True)
class ApiStage:
    id: str
    label: str
    display_order: int
    metadata: dict[str, str]
    archived: bool = False


@dataclass(frozen=True)
class ApiPipeline:
    id: str
    label: str
    display_order: int
    archived: bool
    created_at: datetime | None
    updated_at: datetime | None
    stages: list[ApiStage]


@dataclass(frozen=True)
class ApiOption:
    label: str
    value: str
    display_order: int | None
    hidden: bool


@dataclass(frozen=True)
class ApiProperty:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str
    options: list[ApiOption]
    read_only_value: bool
    read_only_definition: bool
    calculated: bool
    hidden: bool
    has_unique_value: bool


@dataclass(frozen=True)
class ApiPropertyGroup:
    name: str
    label: str
    display_order: int | None
    archived: bool


# --- inputs ------------------------------------------------------------------------------------------------

PropertyValue = str | int | float | bool | None


@dataclass(frozen=True)
class AssociationSpec:
    """An association made with a create: to a record, by association type id (e.g. order → contact 507)."""

    to_id: str
    type_id: int
    category: str = "HUBSPOT_DEFINED"


@dataclass(frozen=True)
class CreateInput:
    properties: Mapping[str, PropertyValue]
    associations: Sequence[AssociationSpec] = ()


@dataclass(frozen=True)
class UpdateInput:
    id: str
    properties: Mapping[str, PropertyValue]
    id_property: str | None = None


@dataclass(frozen=True)
class UpsertInput:
    id: str  # the value of the call's id_property
    properties: Mapping[str, PropertyValue]


@dataclass(frozen=True)
class StageInput:
    label: str
    display_order: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    stage_id: str | None = None


# --- errors ----------------------------------------------------------------------------------------------


class HubSpotError(Exception):
    """Anything that went wrong talking to HubSpot. Messages never contain the access token."""

    def __init__(self, message: str, *, status: int | None = None, correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.correlation_id = correlation_id
        # How many times the request was sent before giving up, for messages in plain words.
        self.attempts = 1
        # HubSpot's error body as it came (the token redacted), shown to staff on demand.
        self.body: dict[str, Any] = {}


class RateLimited(HubSpotError):
    """A 429 (or our own limiter's bounded wait ran out: policy ``LOCAL_LIMITER``). Worth trying later."""

    def __init__(
        self,
        message: str,
        *,
        policy_name: str,
        retry_after_s: float | None = None,
        daily: bool = False,
        status: int | None = 429,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, correlation_id=correlation_id)
        self.policy_name = policy_name
        self.retry_after_s = retry_after_s
        self.daily = daily


class DailyLimitReached(RateLimited):
    """The account's daily budget is spent: never retried; calls fail until it resets (local midnight)."""

    def __init__(
        self,
        message: str,
        *,
        resets_at: datetime | None = None,
        retry_after_s: float | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            policy_name="DAILY",
            retry_after_s=retry_after_s,
            daily=True,
            correlation_id=correlation_id,
        )
        self.resets_at = resets_at


class Retryable(HubSpotError):
    """5xx, 423, timeouts and connection errors that outlasted the retries: try again later.

    ``maybe_applied`` is True when a write that is not safe to repeat may have reached HubSpot (a 5xx or a
    read timeout on a create without trace id): look before sending it again.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        maybe_applied: bool = False,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, correlation_id=correlation_id)
        self.retry_after_s = retry_after_s
        self.maybe_applied = maybe_applied


class Rejected(HubSpotError):
    """HubSpot refused the request (400, 409, other 4xx): sending it again will not help."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        category: str | None = None,
        sub_category: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, correlation_id=correlation_id)
        self.category = category
        self.sub_category = sub_category
        self.errors = errors or []
        self.context = context or {}


class NotFound(Rejected):
    """404: the record, pipeline or stage is not there (or is archived)."""


class AuthFailed(HubSpotError):
    """401/403: the token is wrong, expired or lacks a scope."""


# --- stats -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientStats:
    """What this process asked of HubSpot since the last reset (all threads)."""

    calls: int  # HTTP requests sent, retries included
    calls_by_operation: dict[str, int]  # the same, by client function ("list_objects", "batch_read", ...)
    retries: int
    http_429: int  # 429s received
    limiter_wait_s: float  # time spent waiting for permits of the shared limiter
    retry_wait_s: float  # time spent sleeping between retries
    daily_remaining: int | None  # X-HubSpot-RateLimit-Daily-Remaining, last seen


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: dict[str, int] = {}
            self.retries = 0
            self.http_429 = 0
            self.limiter_wait_s = 0.0
            self.retry_wait_s = 0.0
            self.daily_remaining: int | None = None

    def call(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def set_daily_remaining(self, value: int) -> None:
        with self._lock:
            self.daily_remaining = value

    def snapshot(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                calls=sum(self.calls.values()),
                calls_by_operation=dict(self.calls),
                retries=self.retries,
                http_429=self.http_429,
                limiter_wait_s=self.limiter_wait_s,
                retry_wait_s=self.retry_wait_s,
                daily_remaining=self.daily_remaining,
            )


_stats = _Stats()


def stats() -> ClientStats:
    """Calls, retries, 429s and waiting of this process since the last ``reset_stats()``."""
    return _stats.snapshot()


def reset_stats() -> None:
    _stats.reset()


# --- configuration, read per call -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Config:
    base_url: str
    token: str = field(repr=False)  # never in a repr, a traceback's locals or a log line
    connect_timeout_s: float
    read_timeout_s: float
    max_retries: int
    retry_max_wait_s: float
    retry_base_s: float
    retry_cap_s: float
    ten_secondly_wait_s: float
    retry_traced_creates: bool
    max_url_length: int
    rate_limit_per_10s: int


def _config() -> _Config:
    return _Config(
        base_url=str(settings.HUBSPOT_API_BASE).rstrip("/"),
        token=str(settings.HUBSPOT_ACCESS_TOKEN or ""),
        connect_timeout_s=float(getattr(settings, "HUBSPOT_CONNECT_TIMEOUT_S", 5.0)),
        read_timeout_s=float(getattr(settings, "HUBSPOT_READ_TIMEOUT_S", 30.0)),
        max_retries=int(getattr(settings, "HUBSPOT_MAX_RETRIES", 5)),
        retry_max_wait_s=float(getattr(settings, "HUBSPOT_RETRY_MAX_WAIT_S", 60.0)),
        retry_base_s=float(getattr(settings, "HUBSPOT_RETRY_BASE_S", 0.5)),
        retry_cap_s=float(getattr(settings, "HUBSPOT_RETRY_CAP_S", 20.0)),
        ten_secondly_wait_s=float(getattr(settings, "HUBSPOT_RETRY_429_WAIT_S", 10.0)),
        retry_traced_creates=bool(getattr(settings, "HUBSPOT_RETRY_TRACED_CREATES", True)),
        max_url_length=int(getattr(settings, "HUBSPOT_MAX_URL_LENGTH", 8000)),
        rate_limit_per_10s=int(getattr(settings, "HUBSPOT_RATE_LIMIT_PER_10S", 190)),
    )


# --- sessions --------------------------------------------------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    """This thread's session (a forked worker makes its own: sockets must not be shared across fork)."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None or getattr(_local, "pid", None) != os.getpid():
        session = requests.Session()
        # One thread has one request in flight; a few connections cover HubSpot plus a redirect host.
        # max_retries=0: retries happen in _send, where HubSpot's policies are known.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=2, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update({"Accept": "application/json", "User-Agent": "OrderDeck/1.0"})
        # The environment's proxy and CA settings are read once per API host (_environment), not on every
        # request: requests' per-request reading walks os.environ several times and opens ~/.netrc, which
        # cost a full sync's fetcher threads seconds of CPU. The token is sent in our own header, so .netrc
        # has nothing to add.
        session.trust_env = False
        _local.session = session
        _local.pid = os.getpid()
    return session


@functools.lru_cache(maxsize=16)
def _environment(base_url: str) -> dict[str, Any]:
    """What requests would take from the environment for this host: proxies (HTTPS_PROXY, NO_PROXY, …) and
    a CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)."""
    found: dict[str, Any] = {"proxies": requests.utils.get_environ_proxies(base_url)}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        found["verify"] = bundle
    return found


# --- the request loop ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


def _redact(text: str, token: str) -> str:
    return text.replace(token, "[redacted]") if token else text


def _url(base_url: str, path: str, params: Mapping[str, str] | None) -> str:
    # Commas stay literal: ``properties=a,b,c`` is what HubSpot documents, and %2C would triple its length.
    query = urlencode(params, safe=",") if params else ""
    return f"{base_url}{path}?{query}" if query else f"{base_url}{path}"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds or as an HTTP date (HubSpot's is seconds where it sends one: 477, some 429s)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_for(reply: _Reply, token: str) -> HubSpotError:
    """The typed error for a non-2xx reply. "The fields in the example response above should all be
    treated as optional in any error parsing."
    Reference: https://developers.hubspot.com/docs/api-reference/error-handling
    """
    body = reply.body if isinstance(reply.body, dict) else {}
    status = reply.status
    message = _redact(str(body.get("message") or f"HTTP {status}"), token)
    category = body.get("category")
    correlation_id = body.get("correlationId")
    if status == 429:
        policy = str(body.get("policyName") or "")
        retry_after = _retry_after(reply.headers)
        lowered = message.lower()
        if policy == "DAILY" or (not policy and "daily limit" in lowered):
            resets_at = (
                datetime.now(UTC) + timedelta(seconds=retry_after) if retry_after is not None else None
            )
            return DailyLimitReached(
                f"HubSpot's daily API limit is reached: {message}",
                resets_at=resets_at,
                retry_after_s=retry_after,
                correlation_id=correlation_id,
            )
        if not policy:
            # Search's 429 reads "You have reached your secondly limit."; its policyName is UNCONFIRMED.
            policy = (
                "SECONDLY"
                if "secondly" in lowered and "ten_secondly" not in lowered
                else "TEN_SECONDLY_ROLLING"
            )
        return RateLimited(
            f"HubSpot rate limit ({policy}): {message}",
            policy_name=policy,
            retry_after_s=retry_after,
            correlation_id=correlation_id,
        )
    if status in (401, 403):
        return AuthFailed(
            f"HubSpot refused the access token (HTTP {status}, {category or 'no category'}): it is wrong, "
            f"expired or missing a scope. {message}",
            status=status,
            correlation_id=correlation_id,
        )
    if status == 423 or status == 477 or status >= 500:
        # 423: "Locks will last for 2 seconds"; 477: migration in progress, with Retry-After.
        return Retryable(
            f"HubSpot answered {status}: {message}",
            status=status,
            retry_after_s=_retry_after(reply.headers),
            correlation_id=correlation_id,
        )
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    errors = body.get("errors") if isinstance(body.get("errors"), list) else None
    kind = NotFound if status == 404 else Rejected
    return kind(
        message,
        status=status,
        category=category,
        sub_category=body.get("subCategory"),
        errors=errors,
        context=context,
        correlation_id=correlation_id,
    )


def _not_sent(exc: requests.RequestException) -> bool:
    """Whether a connection error happened before the request could reach HubSpot (safe to resend)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # urllib3 wraps "connection refused" and DNS failures in NewConnectionError / NameResolutionError.
        if type(current).__name__ in {"NewConnectionError", "NameResolutionError", "ConnectTimeoutError"}:
            return True
        pending.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            nested = getattr(current, attr, None)
            if isinstance(nested, BaseException):
                pending.append(nested)
    return False


def _backoff(attempt: int, cfg: _Config) -> float:
    """Full jitter: uniform(0, min(cap, base * 2^(attempt-1)))."""
    return random.uniform(0, min(cfg.retry_cap_s, cfg.retry_base_s * 2 ** (attempt - 1)))


def _delay_for(error: HubSpotError, attempt: int, cfg: _Config, headers: Mapping[str, str]) -> float:
    if isinstance(error, RateLimited):
        if error.retry_after_s is not None:
            # Never earlier than HubSpot asked; the spread keeps processes from returning all at once.
            return error.retry_after_s + random.uniform(0, 0.25 + error.retry_after_s * 0.1)
        if error.policy_name == "SECONDLY":
            # Search's per-second limit: about a second, as HubSpot's own SDK waits (1 s x attempt).
            return random.uniform(1.0, 1.5) * min(attempt, 4)
        # TEN_SECONDLY_ROLLING without Retry-After (HubSpot does not always send it): wait for the window,
        # whose length the headers may give. A whole window is safe; how soon a slot frees is UNCONFIRMED.
        interval = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        window = interval / 1000 if interval else cfg.ten_secondly_wait_s
        return window * random.uniform(1.0, 1.25)
    if isinstance(error, Retryable):
        if error.retry_after_s is not None:
            return error.retry_after_s + random.uniform(0, 0.25)
        if error.status == 423:
            # "include a delay of at least 2 seconds"
            return 2.0 + _backoff(attempt, cfg)
    return _backoff(attempt, cfg)


# (limiter, limit, interval) -> when it was last written to the limiter's store (monotonic seconds)
_learnt_limits: dict[tuple[ratelimit.LimiterConfig, int, int], float] = {}


def _adapt_to_headers(headers: Mapping[str, str], cfg: _Config) -> None:
    """Follow HubSpot's X-HubSpot-RateLimit-* headers down, never up.
    Reference: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
    """
    daily_remaining = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
    if daily_remaining is not None:
        _stats.set_daily_remaining(daily_remaining)
    limit = _int_header(headers, "X-HubSpot-RateLimit-Max")
    interval = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if not limit or not interval or limit <= 0 or interval <= 0:
        return
    if limit * 10_000 / interval < cfg.rate_limit_per_10s:
        # A lower tier than configured (Starter's 100, a public app's 110): share the lower limit with every
        # process for a while. Written when first seen and refreshed well before it expires.
        limiter = ratelimit.get_limiter()
        key = (limiter.config, limit, interval)
        now = time.monotonic()
        if now - _learnt_limits.get(key, -math.inf) > ratelimit.CAP_TTL_MS / 2000:
            _learnt_limits[key] = now
            logger.info("HubSpot allows %d calls per %d ms: limiting to that", limit, interval)
            limiter.lower_limit(ratelimit.GENERAL, ratelimit.Rate(limit, interval))
    remaining = _int_header(headers, "X-HubSpot-RateLimit-Remaining")
    if remaining is not None and remaining <= 0:
        # Our own count says there is room, HubSpot's says not: something else spends this app's budget.
        # Pause everyone briefly rather than collect the 429s.
        ratelimit.get_limiter().hold(ratelimit.GENERAL, min(1.0, interval / 1000))


def _send(
    operation: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    kind: str = ratelimit.GENERAL,
    repeatable: bool,
    not_found_ok_after_retry: bool = False,
) -> _Reply:
    """One HubSpot call with the shared limiter and retries.

    ``repeatable``: sending it twice cannot change more than sending it once, so it may be retried after
    HubSpot might have acted on it (5xx, read timeout). 429s, 423s and connections that never reached
    HubSpot are retried for every call: HubSpot did nothing with those.
    ``not_found_ok_after_retry``: for deletes, a 404 after a retry means the first attempt did it.
    """
    cfg = _config()
    if not cfg.token:
        raise AuthFailed("No HubSpot access token is configured (HUBSPOT_ACCESS_TOKEN).")
    url = _url(cfg.base_url, path, params)
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {cfg.token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    limiter = ratelimit.get_limiter()
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            permit = limiter.acquire(kind)
        except ratelimit.LimiterTimeout as exc:
            raise RateLimited(
                f"HubSpot call not sent: {exc}",
                policy_name="LOCAL_LIMITER",
                retry_after_s=exc.retry_after_s,
                status=None,
            ) from None
        _stats.add(limiter_wait_s=permit.waited_s)
        _stats.call(operation)
        started = time.monotonic()
        reply_headers: Mapping[str, str] = {}
        try:
            response = _session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(cfg.connect_timeout_s, cfg.read_timeout_s),
                **_environment(cfg.base_url),
            )
        except requests.RequestException as exc:
            elapsed_ms = (time.monotonic() - started) * 1000
            sent = not _not_sent(exc)
            what = "timed out" if isinstance(exc, requests.Timeout) else "failed"
            logger.info(
                "HubSpot %s %s %s after %.0f ms: %s", method, path, what, elapsed_ms, type(exc).__name__
            )
            # The cause is dropped (from None): requests' exceptions carry the request and its headers.
            error: HubSpotError = Retryable(
                f"HubSpot {method} {path} {what}: {type(exc).__name__}: {_redact(str(exc), cfg.token)}",
                maybe_applied=sent and not repeatable,
            )
            error.attempts = attempt
            retry_allowed = repeatable or not sent
        else:
            elapsed_ms = (time.monotonic() - started) * 1000
            reply_headers = response.headers
            status = response.status_code
            logger.debug("HubSpot %s %s -> %d in %.0f ms", method, path, status, elapsed_ms)
            try:
                parsed = _json_body(response.content) if response.content else None
            except ValueError:
                parsed = None
                if 200 <= status < 300:
                    raise Retryable(
                        f"HubSpot {method} {path} answered {status} with a body that is not JSON",
                        status=status,
                    ) from None
            if kind != ratelimit.SEARCH:
                _adapt_to_headers(reply_headers, cfg)
            if 200 <= status < 300:
                return _Reply(status, parsed, reply_headers)
            reply = _Reply(status, parsed, reply_headers)
            if status == 404 and not_found_ok_after_retry and attempt > 1:
                return reply
            error = _error_for(reply, cfg.token)
            error.attempts = attempt
            if isinstance(parsed, dict):
                error.body = json.loads(_redact(json.dumps(parsed), cfg.token))
            if isinstance(error, RateLimited):
                _stats.add(http_429=1)
            if isinstance(error, DailyLimitReached):
                logger.warning("HubSpot %s %s: daily limit reached", method, path)
                raise error
            if isinstance(error, (RateLimited,)) or error.status == 423:
                retry_allowed = True  # refused before HubSpot did anything
            elif isinstance(error, Retryable):
                retry_allowed = repeatable
                if not repeatable:
                    error.maybe_applied = True
            else:
                raise error
        if not retry_allowed or attempt > cfg.max_retries:
            raise error
        delay = _delay_for(error, attempt, cfg, reply_headers)
        if waited + delay > cfg.retry_max_wait_s:
            if isinstance(error, (RateLimited, Retryable)) and error.retry_after_s is None:
                error.retry_after_s = delay
            raise error
        if isinstance(error, RateLimited):
            # Everyone else would hit the same wall: hold the shared limiter for as long as we wait.
            limiter.hold(kind, delay)
        logger.info(
            "HubSpot %s %s: %s; retry %d in %.1f s", method, path, error.message[:200], attempt, delay
        )
        _stats.add(retries=1, retry_wait_s=delay)
        waited += delay
        time.sleep(delay)


# --- parsing ---------------------------------------------------------------------------------------------


def _json_body(content: bytes) -> Any:
    """A reply's JSON. orjson reads a page of records several times faster than the standard library, which
    matters on the fetcher threads of a full sync; what it declines (an integer past 64 bits, say) goes to
    the standard library, and what neither reads raises ValueError."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _datetime(value: Any) -> datetime | None:
    """HubSpot's timestamps: ISO-8601 with a Z, or epoch milliseconds ("default pipelines will have
    createdAt = 0")."""
    if value is None or value == "":
        return None
    if type(value) is str and value[-1:] == "Z":
        # The usual form, "2026-01-02T03:04:05.678Z", which fromisoformat reads as UTC itself (3.11+): a
        # full sync reads three per record.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_STR_OR_NONE = frozenset({str, type(None)})


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _association_key(key: str) -> str:
    lowered = key.strip().lower()
    return _ASSOCIATION_KEYS.get(lowered, lowered.replace(" ", "_"))


def _parse_object(raw: Mapping[str, Any]) -> ApiObject:
    """A ``SimplePublicObject[WithAssociations]``: all property values strings.
    Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    """
    raw_properties = raw.get("properties") or {}
    # HubSpot sends every value as a string or null (and JSON's keys are strings): then the dict is taken
    # as it is, at half the cost (a full sync parses millions of values); anything else is made a string.
    if {type(v) for v in raw_properties.values()} <= _STR_OR_NONE:
        properties = dict(raw_properties)
    else:
        properties = {str(k): _str_or_none(v) for k, v in raw_properties.items()}
    associations: dict[str, list[str]] = {}
    truncated: set[str] = set()
    for key, collection in (raw.get("associations") or {}).items():
        name = _association_key(str(key))
        ids = associations.setdefault(name, [])
        seen = set(ids)
        # A record appears once per association type (e.g. a labelled and the default type): ids once.
        for item in (collection or {}).get("results") or []:
            to_id = str(item.get("id"))
            if to_id not in seen:
                seen.add(to_id)
                ids.append(to_id)
        # Inline association lists page at 100; the rest needs the associations API.
        # Reference: https://developers.hubspot.com/changelog/announcing-a-change-to-how-v3-crm-apis-return-association-data
        if ((collection or {}).get("paging") or {}).get("next"):
            truncated.add(name)
    # createdAt/updatedAt are required by HubSpot's schema; the properties carry the same dates otherwise.
    created = (
        _datetime(raw.get("createdAt"))
        or _datetime(properties.get("hs_createdate"))
        or _datetime(properties.get("createdate"))
        or _EPOCH
    )
    updated = (
        _datetime(raw.get("updatedAt"))
        or _datetime(properties.get("hs_lastmodifieddate"))
        or _datetime(properties.get("lastmodifieddate"))
        or created
    )
    new = raw.get("new")
    return ApiObject(
        id=str(raw.get("id")),
        properties=properties,
        created_at=created,
        updated_at=updated,
        archived=bool(raw.get("archived", False)),
        archived_at=_datetime(raw.get("archivedAt")),
        associations=associations,
        truncated_associations=frozenset(truncated),
        object_write_trace_id=_str_or_none(raw.get("objectWriteTraceId")),
        new=bool(new) if new is not None else None,
    )


def _context(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        out[str(key)] = [str(v) for v in values]
    return out


def _batch_errors(
    body: Any, token: str, trace_to_id: Mapping[str, str] | None = None
) -> tuple[list[str], list[BatchError]]:
    """The ``errors`` of a 207, split per input: (ids not found, other errors).

    Items name their inputs in ``context``: ``ids`` for missing records, ``objectWriteTraceId`` for a failing
    input of a write that carried trace ids.
    Reference: https://developers.hubspot.com/docs/api-reference/error-handling (multi-status example)
    """
    missing: list[str] = []
    errors: list[BatchError] = []
    for item in (body or {}).get("errors") or [] if isinstance(body, dict) else []:
        if not isinstance(item, dict):
            continue
        context = _context(item.get("context"))
        category = str(item.get("category") or "")
        message = _redact(str(item.get("message") or ""), token)
        sub_category = _str_or_none(item.get("subCategory"))
        ids = context.get("ids", [])
        traces = context.get("objectWriteTraceId", [])
        if category == "OBJECT_NOT_FOUND" and ids and not traces:
            missing.extend(i for i in ids if i not in missing)
            continue
        targets: list[tuple[str | None, str | None]] = (
            [((trace_to_id or {}).get(t), t) for t in traces] or [(i, None) for i in ids] or [(None, None)]
        )
        for input_id, trace_id in targets:
            errors.append(
                BatchError(
                    category=category,
                    message=message,
                    sub_category=sub_category,
                    context=context,
                    input_id=input_id,
                    trace_id=trace_id,
                )
            )
    return missing, errors


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def _wire(properties: Mapping[str, PropertyValue]) -> dict[str, str]:
    """Property values as HubSpot takes them: strings; None clears ("clear ... by passing an empty
    string"), booleans are "true"/"false"."""
    out: dict[str, str] = {}
    for name, value in properties.items():
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _input_mapping(item: Any, kind: Literal["create", "update", "upsert"]) -> dict[str, Any]:
    """A batch input as HubSpot's JSON: our dataclasses, or mappings already in HubSpot's shape."""
    if isinstance(item, CreateInput):
        out: dict[str, Any] = {"properties": _wire(item.properties)}
        if item.associations:
            out["associations"] = [_association_json(spec) for spec in item.associations]
        return out
    if isinstance(item, UpdateInput):
        out = {"id": str(item.id), "properties": _wire(item.properties)}
        if item.id_property:
            out["idProperty"] = item.id_property
        return out
    if isinstance(item, UpsertInput):
        return {"id": str(item.id), "properties": _wire(item.properties)}
    if isinstance(item, Mapping):
        out = dict(item)
        if "properties" in out:
            out["properties"] = _wire(out["properties"])
        if "id" in out:
            out["id"] = str(out["id"])
        return out
    raise TypeError(f"a {kind} input must be a {kind.title()}Input or a mapping, not {type(item).__name__}")


def _association_json(spec: AssociationSpec) -> dict[str, Any]:
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/orders/guide
    return {
        "to": {"id": str(spec.to_id)},
        "types": [{"associationCategory": spec.category, "associationTypeId": int(spec.type_id)}],
    }


def _results(body: Any) -> list[Any]:
    return list((body or {}).get("results") or []) if isinstance(body, dict) else []


def _next_after(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


# --- properties on the URL -------------------------------------------------------------------------------


def _fit_properties(
    base_url: str, path: str, params: Mapping[str, str], properties: Sequence[str], max_length: int
) -> tuple[list[str], list[str]]:
    """Split ``properties`` into those that fit on the URL and the rest (read by batch read instead).

    HubSpot answers 414 to long URIs; its limit is UNCONFIRMED (it sits behind Cloudflare, whose limit is
    16 KB), so HUBSPOT_MAX_URL_LENGTH keeps well under it. Batch read takes its properties in the body.
    """
    if not properties:
        return [], []
    fixed = len(_url(base_url, path, {**params, "properties": ""}))
    room = max_length - fixed
    fitting: list[str] = []
    used = 0
    for index, name in enumerate(properties):
        cost = len(quote(name, safe="")) + (1 if fitting else 0)
        if used + cost > room:
            return fitting, list(properties[index:])
        fitting.append(name)
        used += cost
    return fitting, []


def _get_with_properties(
    operation: str,
    path: str,
    params: dict[str, str],
    properties: Sequence[str],
    cfg: _Config,
) -> tuple[_Reply, list[str]]:
    """GET with as many properties as fit on the URL; returns the reply and the properties left over.
    A 414 despite the estimate (HubSpot's limit is lower than configured) retries at half that URL's
    length, down to no properties on the URL at all."""
    max_length = cfg.max_url_length
    while True:
        inline, rest = _fit_properties(cfg.base_url, path, params, properties, max_length)
        query = dict(params)
        if inline:
            query["properties"] = ",".join(inline)
        try:
            return _send(operation, "GET", path, params=query, repeatable=True), rest
        except Rejected as exc:
            if exc.status != 414 or not inline:
                raise
            max_length = len(_url(cfg.base_url, path, query)) // 2
            logger.warning("HubSpot refused a %d-character URL (414); trying %d", max_length * 2, max_length)


def _merge_properties(objects: list[ApiObject], extra: BatchResult) -> list[ApiObject]:
    by_id = {obj.id: obj for obj in extra.results}
    merged = []
    for obj in objects:
        more = by_id.get(obj.id)
        if more is None:
            merged.append(obj)
            continue
        properties = dict(obj.properties)
        properties.update(more.properties)
        merged.append(
            ApiObject(
                id=obj.id,
                properties=properties,
                created_at=obj.created_at,
                updated_at=max(obj.updated_at, more.updated_at),
                archived=obj.archived,
                archived_at=obj.archived_at,
                associations=obj.associations,
                truncated_associations=obj.truncated_associations,
                object_write_trace_id=obj.object_write_trace_id,
                new=obj.new,
            )
        )
    return merged


# --- objects ---------------------------------------------------------------------------------------------


def list_objects(
    object_type: str,
    *,
    properties: Sequence[str],
    associations: Sequence[str] = (),
    after: str | None = None,
    limit: int = 100,
    archived: bool = False,
) -> ObjectPage:
    """One page of records in id order, with their properties and associated ids.

    Properties that do not fit on the URL are read for the page's ids by one batch read (POST body) and
    merged; that costs one extra call per page, instead of one list scan per chunk of properties.
    """
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirks: ``limit`` is at most 100 (default 10); ``paging`` is absent on the last page; ``after`` is an
    # opaque cursor; requested properties a record has no value for may be left out; unknown properties
    # and association types are ignored; ``archived=true`` returns only archived records.
    names = _names(object_type)
    cfg = _config()
    path = f"{_OBJECTS}/{names.objects}"
    params = {"limit": str(max(1, min(limit, LIST_PAGE_MAX))), "archived": "true" if archived else "false"}
    if associations:
        params["associations"] = ",".join(_names(a).objects for a in associations)
    if after:
        params["after"] = after
    reply, rest = _get_with_properties("list_objects", path, params, properties, cfg)
    objects = [_parse_object(raw) for raw in _results(reply.body)]
    if rest and objects:
        extra = batch_read(object_type, [o.id for o in objects], properties=rest, archived=archived)
        objects = _merge_properties(objects, extra)
    return ObjectPage(results=objects, next_after=_next_after(reply.body))


def iter_objects(
    object_type: str,
    *,
    properties: Sequence[str],
    associations: Sequence[str] = (),
    archived: bool = False,
    after: str | None = None,
) -> Iterator[ObjectPage]:
    """Every page of ``list_objects`` to the end (each page says where the next begins)."""
    while True:
        page = list_objects(
            object_type, properties=properties, associations=associations, after=after, archived=archived
        )
        yield page
        if page.next_after is None:
            return
        after = page.next_after


def get_object(
    object_type: str, object_id: str, *, properties: Sequence[str], associations: Sequence[str] = ()
) -> ApiObject:
    """One record by id; NotFound when there is none (or it is archived)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    names = _names(object_type)
    cfg = _config()
    path = f"{_OBJECTS}/{names.objects}/{quote(str(object_id), safe='')}"
    params: dict[str, str] = {}
    if associations:
        params["associations"] = ",".join(_names(a).objects for a in associations)
    reply, rest = _get_with_properties("get_object", path, params, properties, cfg)
    obj = _parse_object(reply.body or {})
    if rest:
        obj = _merge_properties([obj], batch_read(object_type, [obj.id], properties=rest))[0]
    return obj


def search_objects(
    object_type: str,
    *,
    filter_groups: Sequence[Mapping[str, Any]],
    sorts: Sequence[Mapping[str, Any] | str],
    properties: Sequence[str],
    after: str | None = None,
    limit: int = 200,
    query: str | None = None,
) -> SearchPage:
    """One page of a CRM search (its own 5-a-second budget).

    ``filter_groups`` are HubSpot's JSON: ``[{"filters": [{"propertyName": ..., "operator": "GTE",
    "value": ...}]}]`` (groups OR'ed, filters in a group AND'ed).
    """
    # Reference: https://developers.hubspot.com/docs/api-reference/search/guide
    # Quirks: at most 200 a page and 10,000 results per query (paging past that is a 400: restart the query
    # from the last hs_object_id instead); at most 5 groups x 6 filters, 18 in all; one sort; "after" is an
    # integer offset sent as a string; archived records never appear; results lag writes "a few moments";
    # no X-HubSpot-RateLimit-* headers on search responses; 5 requests a second per account.
    names = _names(object_type)
    body: dict[str, Any] = {
        "filterGroups": [dict(g) for g in filter_groups],
        "sorts": [s if isinstance(s, str) else dict(s) for s in sorts],
        "properties": list(properties),
        "limit": max(1, min(limit, SEARCH_PAGE_MAX)),
    }
    if after is not None:
        body["after"] = str(after)
    if query:
        body["query"] = query
    reply = _send(
        "search_objects",
        "POST",
        f"{_OBJECTS}/{names.objects}/search",
        body=body,
        kind=ratelimit.SEARCH,
        repeatable=True,  # read-only
    )
    payload = reply.body if isinstance(reply.body, dict) else {}
    results = [_parse_object(raw) for raw in _results(payload)]
    return SearchPage(total=int(payload.get("total") or 0), results=results, next_after=_next_after(payload))


def batch_read(
    object_type: str,
    ids: Sequence[str],
    *,
    properties: Sequence[str],
    id_property: str | None = None,
    archived: bool = False,
) -> BatchResult:
    """Records by id (or by a unique ``id_property``), 100 a call; unknown ids come back in ``missing``."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirks: 100 inputs a call; no ``associations`` here ("not supported in the batch read endpoint");
    # ids that do not exist make a 207 with one OBJECT_NOT_FOUND item listing them in context.ids;
    # ``archived=true`` reads archived records only.
    names = _names(object_type)
    token = _config().token
    results: list[ApiObject] = []
    missing: list[str] = []
    errors: list[BatchError] = []
    for chunk in _chunks(_unique(ids), BATCH_SIZE):
        body: dict[str, Any] = {"properties": list(properties), "inputs": [{"id": i} for i in chunk]}
        if id_property:
            body["idProperty"] = id_property
        reply = _send(
            "batch_read",
            "POST",
            f"{_OBJECTS}/{names.objects}/batch/read",
            params={"archived": "true" if archived else "false"},
            body=body,
            repeatable=True,  # read-only
        )
        results.extend(_parse_object(raw) for raw in _results(reply.body))
        chunk_missing, chunk_errors = _batch_errors(reply.body, token)
        missing.extend(chunk_missing)
        errors.extend(chunk_errors)
    return BatchResult(results=results, missing=missing, errors=errors)


def _traced_write(
    operation: str,
    object_type: str,
    endpoint: str,
    inputs: Sequence[Mapping[str, Any]],
    *,
    repeatable: bool,
) -> BatchResult:
    """A batch write whose inputs all carry an objectWriteTraceId, 100 a call; errors map back to inputs."""
    names = _names(object_type)
    token = _config().token
    results: list[ApiObject] = []
    missing: list[str] = []
    errors: list[BatchError] = []
    for chunk in _chunks(list(inputs), BATCH_SIZE):
        trace_to_id = {
            str(i["objectWriteTraceId"]): str(i["id"])
            for i in chunk
            if "objectWriteTraceId" in i and "id" in i
        }
        reply = _send(
            operation,
            "POST",
            f"{_OBJECTS}/{names.objects}/batch/{endpoint}",
            body={"inputs": list(chunk)},
            repeatable=repeatable,
        )
        results.extend(_parse_object(raw) for raw in _results(reply.body))
        chunk_missing, chunk_errors = _batch_errors(reply.body, token, trace_to_id)
        missing.extend(chunk_missing)
        errors.extend(chunk_errors)
    return BatchResult(results=results, missing=missing, errors=errors)


def _with_traces(inputs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every input a trace id of its own unless it has one: with trace ids on every input HubSpot
    answers a failing input with a 207 item instead of failing the whole batch."""
    out = []
    for item in inputs:
        if not item.get("objectWriteTraceId"):
            item = {**item, "objectWriteTraceId": uuid.uuid4().hex}
        out.append(item)
    return out


def batch_create(
    object_type: str,
    inputs: Sequence[CreateInput | Mapping[str, Any]],
    *,
    object_write_trace_ids: Sequence[str] | None = None,
) -> BatchResult:
    """Create records, 100 a call. Results carry their input's trace id (``object_write_trace_id``).

    With ``object_write_trace_ids`` (one per input, unique) a failing input is a ``BatchError`` and the rest
    are created (207), and the call is retried after a timeout or 5xx (HUBSPOT_RETRY_TRACED_CREATES).
    Without them, one bad input fails the whole call (Rejected) and nothing is retried once it may have
    reached HubSpot: a retry could create the records twice.
    """
    # Reference: https://developers.hubspot.com/docs/api-reference/error-handling ("include a unique
    # objectWriteTraceId value for each input" for partial results); 201, or 207 with errors.
    # That HubSpot also refuses to create a second record for a trace id it has seen is UNCONFIRMED,
    # hence the setting.
    bodies = [_input_mapping(item, "create") for item in inputs]
    traced = object_write_trace_ids is not None
    if object_write_trace_ids is not None:
        if len(object_write_trace_ids) != len(bodies):
            raise ValueError("object_write_trace_ids needs one trace id per input")
        if len(set(object_write_trace_ids)) != len(object_write_trace_ids):
            raise ValueError("object_write_trace_ids must be unique")
        bodies = [
            {**b, "objectWriteTraceId": str(t)} for b, t in zip(bodies, object_write_trace_ids, strict=True)
        ]
    return _traced_write(
        "batch_create", object_type, "create", bodies, repeatable=traced and _config().retry_traced_creates
    )


def batch_update(object_type: str, inputs: Sequence[UpdateInput | Mapping[str, Any]]) -> BatchResult:
    """Set properties on records by id, 100 a call; a failing input is a ``BatchError`` with its id, and
    ids HubSpot does not have come back in ``missing``. Retried: the values are absolute."""
    # Reference: https://developers.hubspot.com/changelog/simplifying-batch-update-response-codes-for-crm-v3-apis
    # Quirks: 200, or 207 on partial failure (it used to be 204); read-only or unknown properties fail the
    # input; an empty string clears a value. Every input gets a trace id so one bad input does not fail the
    # others. HubSpot refuses a batch that names one record twice.
    bodies = _with_traces(_input_mapping(item, "update") for item in inputs)
    return _traced_write("batch_update", object_type, "update", bodies, repeatable=True)


def batch_upsert(
    object_type: str, inputs: Sequence[UpsertInput | Mapping[str, Any]], *, id_property: str
) -> BatchResult:
    """Create or update records by a unique property (``id_property``), 100 a call; results say ``new``.
    Retried: an upsert by a unique value cannot duplicate."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirks: results are SimplePublicUpsertObject (a record plus "new"); the idProperty must be a property
    # with hasUniqueValue; 200 or 207.
    bodies = _with_traces({**_input_mapping(item, "upsert"), "idProperty": id_property} for item in inputs)
    return _traced_write("batch_upsert", object_type, "upsert", bodies, repeatable=True)


def batch_archive(object_type: str, ids: Sequence[str]) -> BatchResult:
    """Move records to the recycling bin, 100 a call (ids that are not there are ignored)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirk: 204 with no body, so there are no per-input results to report.
    names = _names(object_type)
    for chunk in _chunks(_unique(ids), BATCH_SIZE):
        _send(
            "batch_archive",
            "POST",
            f"{_OBJECTS}/{names.objects}/batch/archive",
            body={"inputs": [{"id": i} for i in chunk]},
            repeatable=True,  # archiving twice archives once
        )
    return BatchResult(results=[])


def create_object(
    object_type: str,
    properties: Mapping[str, PropertyValue],
    *,
    associations: Sequence[AssociationSpec] = (),
    object_write_trace_id: str | None = None,
) -> ApiObject:
    """Create one record (201). Retried after a timeout or 5xx only with an ``object_write_trace_id``."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirk: orders need hs_order_name; associations on create take association type ids.
    names = _names(object_type)
    body: dict[str, Any] = {"properties": _wire(properties)}
    if associations:
        body["associations"] = [_association_json(spec) for spec in associations]
    if object_write_trace_id:
        body["objectWriteTraceId"] = object_write_trace_id
    reply = _send(
        "create_object",
        "POST",
        f"{_OBJECTS}/{names.objects}",
        body=body,
        repeatable=bool(object_write_trace_id) and _config().retry_traced_creates,
    )
    return _parse_object(reply.body or {})


def update_object(
    object_type: str,
    object_id: str,
    properties: Mapping[str, PropertyValue],
    *,
    id_property: str | None = None,
) -> ApiObject:
    """Set properties on one record (PATCH: absolute values, so retried)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    # Quirks: "Read-only and non-existent properties will result in an error"; an empty string clears.
    names = _names(object_type)
    reply = _send(
        "update_object",
        "PATCH",
        f"{_OBJECTS}/{names.objects}/{quote(str(object_id), safe='')}",
        params={"idProperty": id_property} if id_property else None,
        body={"properties": _wire(properties)},
        repeatable=True,
    )
    return _parse_object(reply.body or {})


def archive_object(object_type: str, object_id: str) -> None:
    """Move one record to the recycling bin (204)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
    names = _names(object_type)
    _send(
        "archive_object",
        "DELETE",
        f"{_OBJECTS}/{names.objects}/{quote(str(object_id), safe='')}",
        repeatable=True,
        not_found_ok_after_retry=True,
    )


# --- associations (v4) -----------------------------------------------------------------------------------


def _association_types(raw: Any) -> tuple[tuple[int, ...], tuple[str, ...]]:
    type_ids: list[int] = []
    labels: list[str] = []
    for spec in raw or []:
        type_id = spec.get("typeId", spec.get("associationTypeId"))
        if type_id is not None and int(type_id) not in type_ids:
            type_ids.append(int(type_id))
        if spec.get("label"):
            labels.append(str(spec["label"]))
    return tuple(type_ids), tuple(labels)


def _ids_named(item: Mapping[str, Any], wanted: set[str]) -> list[str]:
    """The requested ids a batch error item is about: from its context, else from its message."""
    found = [v for values in _context(item.get("context")).values() for v in values if v in wanted]
    if not found:
        found = [v for v in re.findall(r"\d+", str(item.get("message") or "")) if v in wanted]
    return _unique(found)


def read_associations(from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[ApiAssociation]]:
    """Every association of each record to ``to_type``, 1,000 records a call, each list paged to its end.

    Every id with no associations maps to an empty list; an id HubSpot answered with another error is
    left out (so a caller never mistakes "could not read" for "has none") and logged.
    """
    # Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
    # Quirks: 1,000 inputs a call; each result pages on its own (``paging.next.after``, sent back as the
    # input's ``after``); a record without associations is a 207 error item with subCategory
    # crm.associations.NO_ASSOCIATIONS_FOUND (UNCONFIRMED officially) rather than an empty result;
    # toObjectId is a number; the default type has a null label.
    f, t = _names(from_type), _names(to_type)
    path = f"{_ASSOCIATIONS_V4}/{f.objects}/{t.objects}/batch/read"
    token = _config().token
    requested = _unique(ids)
    out: dict[str, list[ApiAssociation]] = {}
    failed: set[str] = set()
    pending: list[tuple[str, str | None]] = [(i, None) for i in requested]
    while pending:
        chunk, pending = pending[:ASSOCIATION_READ_BATCH], pending[ASSOCIATION_READ_BATCH:]
        wanted = {i for i, _ in chunk}
        inputs = [{"id": i, "after": a} if a else {"id": i} for i, a in chunk]
        reply = _send("read_associations", "POST", path, body={"inputs": inputs}, repeatable=True)
        for result in _results(reply.body):
            from_id = str((result.get("from") or {}).get("id"))
            targets = out.setdefault(from_id, [])
            for item in result.get("to") or []:
                type_ids, labels = _association_types(item.get("associationTypes"))
                targets.append(
                    ApiAssociation(to_id=str(item.get("toObjectId")), type_ids=type_ids, labels=labels)
                )
            after = _next_after(result)
            if after:
                pending.append((from_id, after))
        for item in (reply.body or {}).get("errors") or [] if isinstance(reply.body, dict) else []:
            named = _ids_named(item, wanted)
            if str(item.get("subCategory") or "").endswith("NO_ASSOCIATIONS_FOUND"):
                for from_id in named:
                    out.setdefault(from_id, [])
            else:
                failed.update(named)
                logger.warning(
                    "HubSpot could not read %s associations of %d %s: %s",
                    to_type,
                    len(named),
                    from_type,
                    _redact(str(item.get("message") or item.get("category")), token)[:200],
                )
    for from_id in failed:
        out.pop(from_id, None)
    return {i: out[i] for i in requested if i in out}


def associate(
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    *,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
) -> None:
    """Associate two records: HubSpot's default type, or the given type id (a label: ``USER_DEFINED``)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
    # Quirks: the default association is PUT .../associations/default/{toType}/{toId} (200, no body to
    # send); a labelled one is PUT .../associations/{toType}/{toId} with [{associationCategory,
    # associationTypeId}] (201). Both are idempotent. Use the typeId of the right direction.
    f, t = _names(from_type), _names(to_type)
    from_part = f"{_OBJECTS_V4}/{f.objects}/{quote(str(from_id), safe='')}/associations"
    to_part = f"{t.objects}/{quote(str(to_id), safe='')}"
    if type_id is None:
        _send("associate", "PUT", f"{from_part}/default/{to_part}", repeatable=True)
    else:
        _send(
            "associate",
            "PUT",
            f"{from_part}/{to_part}",
            body=[{"associationCategory": category, "associationTypeId": int(type_id)}],
            repeatable=True,
        )


def dissociate(
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    *,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
) -> None:
    """Remove every association between two records, or only the given type (label)."""
    # Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
    # Quirks: DELETE .../associations/{toType}/{toId} removes *all* types between the pair (204); one
    # label goes by batch/labels/archive, and "deleting an unlabeled association will also delete all
    # labeled associations".
    f, t = _names(from_type), _names(to_type)
    if type_id is None:
        _send(
            "dissociate",
            "DELETE",
            f"{_OBJECTS_V4}/{f.objects}/{quote(str(from_id), safe='')}/associations/"
            f"{t.objects}/{quote(str(to_id), safe='')}",
            repeatable=True,
            not_found_ok_after_retry=True,
        )
    else:
        dissociate_batch(from_type, to_type, [(from_id, to_id)], type_id=type_id, category=category)


def associate_batch(
    from_type: str,
    to_type: str,
    pairs: Sequence[tuple[str, str]],
    *,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
) -> BatchResult:
    """Associate many (from id, to id) pairs: HubSpot's default type, or the given type id."""
    # Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
    # Quirks: batch/associate/default (200) takes no types; batch/create (201) takes 2,000 inputs; both
    # answer 207 with OBJECT_NOT_FOUND items naming missing records. Idempotent, so retried.
    f, t = _names(from_type), _names(to_type)
    token = _config().token
    if type_id is None:
        endpoint, size = "associate/default", ASSOCIATION_WRITE_BATCH
    else:
        endpoint, size = "create", ASSOCIATION_CREATE_BATCH
    missing: list[str] = []
    errors: list[BatchError] = []
    unique_pairs = list(dict.fromkeys((str(a), str(b)) for a, b in pairs))
    for chunk in _chunks(unique_pairs, size):
        inputs: list[dict[str, Any]] = []
        for from_id, to_id in chunk:
            item: dict[str, Any] = {"from": {"id": from_id}, "to": {"id": to_id}}
            if type_id is not None:
                item["types"] = [{"associationCategory": category, "associationTypeId": int(type_id)}]
            inputs.append(item)
        reply = _send(
            "associate_batch",
            "POST",
            f"{_ASSOCIATIONS_V4}/{f.objects}/{t.objects}/batch/{endpoint}",
            body={"inputs": inputs},
            repeatable=True,
        )
        chunk_missing, chunk_errors = _batch_errors(reply.body, token)
        missing.extend(chunk_missing)
        errors.extend(chunk_errors)
    return BatchResult(results=[], missing=missing, errors=errors)


def dissociate_batch(
    from_type: str,
    to_type: str,
    pairs: Sequence[tuple[str, str]],
    *,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
) -> BatchResult:
    """Remove associations between many pairs: every type between each pair, or only ``type_id``."""
    # Reference: https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
    # Quirks: batch/archive takes {from:{id}, to:[{id}, ...]} per record and removes every type (204);
    # batch/labels/archive removes the given types (204). Idempotent, so retried.
    f, t = _names(from_type), _names(to_type)
    unique_pairs = list(dict.fromkeys((str(a), str(b)) for a, b in pairs))
    base = f"{_ASSOCIATIONS_V4}/{f.objects}/{t.objects}/batch"
    inputs: list[dict[str, Any]]
    if type_id is None:
        grouped: dict[str, list[str]] = {}
        for from_id, to_id in unique_pairs:
            grouped.setdefault(from_id, []).append(to_id)
        inputs = [{"from": {"id": k}, "to": [{"id": v} for v in vs]} for k, vs in grouped.items()]
        endpoint = "archive"
    else:
        spec = {"associationCategory": category, "associationTypeId": int(type_id)}
        inputs = [{"from": {"id": a}, "to": {"id": b}, "types": [spec]} for a, b in unique_pairs]
        endpoint = "labels/archive"
    for chunk in _chunks(inputs, ASSOCIATION_WRITE_BATCH):
        _send("dissociate_batch", "POST", f"{base}/{endpoint}", body={"inputs": list(chunk)}, repeatable=True)
    return BatchResult(results=[])


# --- pipelines -------------------------------------------------------------------------------------------


def _parse_stage(raw: Mapping[str, Any]) -> ApiStage:
    metadata = {str(k): str(v) for k, v in (raw.get("metadata") or {}).items() if v is not None}
    return ApiStage(
        id=str(raw.get("id")),
        label=str(raw.get("label") or ""),
        display_order=int(raw.get("displayOrder") or 0),
        metadata=metadata,
        archived=bool(raw.get("archived", False)),
    )


def _parse_pipeline(raw: Mapping[str, Any]) -> ApiPipeline:
    # "Equal displayOrder values sort alphabetically by label."
    stages = sorted(
        (_parse_stage(s) for s in raw.get("stages") or []), key=lambda s: (s.display_order, s.label)
    )
    return ApiPipeline(
        id=str(raw.get("id")),
        label=str(raw.get("label") or ""),
        display_order=int(raw.get("displayOrder") or 0),
        archived=bool(raw.get("archived", False)),
        created_at=_datetime(raw.get("createdAt")),
        updated_at=_datetime(raw.get("updatedAt")),
        stages=stages,
    )


def _pipeline_path(object_type: str, *parts: str) -> str:
    path = f"{_PIPELINES}/{_names(object_type).schema}"
    for part in parts:
        path += "/" + quote(str(part), safe="")
    return path


def list_pipelines(object_type: str) -> list[ApiPipeline]:
    """Every pipeline of an object type with its stages, in display order."""
    # Reference: https://developers.hubspot.com/docs/api/crm/pipelines
    # Quirks: no paging; "the default pipelines will have createdAt = 0"; carts have no pipelines
    # (UNCONFIRMED: not among the supported objects).
    reply = _send("list_pipelines", "GET", _pipeline_path(object_type), repeatable=True)
    pipelines = [_parse_pipeline(raw) for raw in _results(reply.body)]
    return sorted(pipelines, key=lambda p: (p.display_order, p.label))


def get_pipeline(object_type: str, pipeline_id: str) -> ApiPipeline:
    # Reference: https://developers.hubspot.com/docs/api/crm/pipelines ("a missing or archived pipelineId
    # returns 404")
    reply = _send("get_pipeline", "GET", _pipeline_path(object_type, pipeline_id), repeatable=True)
    return _parse_pipeline(reply.body or {})


def _stage_json(stage: StageInput) -> dict[str, Any]:
    body: dict[str, Any] = {
        "label": stage.label,
        "displayOrder": stage.display_order,
        "metadata": dict(stage.metadata),
    }
    if stage.stage_id:
        body["stageId"] = stage.stage_id
    return body


def create_pipeline(
    object_type: str,
    *,
    label: str,
    display_order: int,
    stages: Sequence[StageInput],
    pipeline_id: str | None = None,
) -> ApiPipeline:
    """Create a pipeline with its stages (201). Not retried once it may have reached HubSpot."""
    # Reference: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/orders/guide
    # Quirks: order stages carry metadata {"state": "OPEN" | "CLOSED"}; order pipelines take at most 30
    # stages; stage labels must be unique within a pipeline.
    body: dict[str, Any] = {
        "label": label,
        "displayOrder": display_order,
        "stages": [_stage_json(s) for s in stages],
    }
    if pipeline_id:
        body["pipelineId"] = pipeline_id
    reply = _send("create_pipeline", "POST", _pipeline_path(object_type), body=body, repeatable=False)
    return _parse_pipeline(reply.body or {})


def update_pipeline(
    object_type: str,
    pipeline_id: str,
    *,
    label: str | None = None,
    display_order: int | None = None,
    restore: bool = False,
) -> ApiPipeline:
    """Rename or reorder a pipeline (PATCH); ``restore`` brings back one deleted in HubSpot."""
    # Reference: https://developers.hubspot.com/docs/api/crm/pipelines
    # Quirk: "archived" may only be sent to restore an archived pipeline (a 400 otherwise), so only then.
    body: dict[str, Any] = {"archived": False} if restore else {}
    if label is not None:
        body["label"] = label
    if display_order is not None:
        body["displayOrder"] = display_order
    reply = _send(
        "update_pipeline", "PATCH", _pipeline_path(object_type, pipeline_id), body=body, repeatable=True
    )
    return _parse_pipeline(reply.body or {})


def delete_pipeline(object_type: str, pipeline_id: str, *, validate_references: bool = True) -> None:
    """Delete a pipeline; with ``validate_references`` HubSpot refuses while records use its stages."""
    # Reference: https://developers.hubspot.com/changelog/pipeline-stage-validation-true
    # Quirks: in v3 records are only checked with validateReferencesBeforeDelete=true (default false; the
    # date-versioned API defaults it to true); the refusal is VALIDATION_ERROR with subCategory
    # PipelineError.STAGE_ID_IN_USE (its status, 400 or 404, is UNCONFIRMED).
    _send(
        "delete_pipeline",
        "DELETE",
        _pipeline_path(object_type, pipeline_id),
        params={"validateReferencesBeforeDelete": "true" if validate_references else "false"},
        repeatable=True,
        not_found_ok_after_retry=True,
    )


def create_stage(
    object_type: str,
    pipeline_id: str,
    *,
    label: str,
    display_order: int,
    metadata: Mapping[str, str],
    stage_id: str | None = None,
) -> ApiStage:
    """Add a stage to a pipeline (201). Not retried once it may have reached HubSpot."""
    # Reference: https://developers.hubspot.com/docs/api/crm/pipelines
    # Quirks: labels unique within the pipeline; 30 stages at most on order pipelines.
    body = _stage_json(
        StageInput(label=label, display_order=display_order, metadata=metadata, stage_id=stage_id)
    )
    reply = _send(
        "create_stage",
        "POST",
        _pipeline_path(object_type, pipeline_id, "stages"),
        body=body,
        repeatable=False,
    )
    return _parse_stage(reply.body or {})


def update_stage(
    object_type: str,
    pipeline_id: str,
    stage_id: str,
    *,
    metadata: Mapping[str, str],
    label: str | None = None,
    display_order: int | None = None,
    restore: bool = False,
) -> ApiStage:
    """Change a stage (PATCH). HubSpot requires ``metadata`` on every stage update: send it whole.
    ``restore`` brings back a stage deleted in HubSpot."""
    # Reference: https://developers.hubspot.com/docs/api/crm/pipelines (PipelineStagePatchInput: metadata
    # required, label and displayOrder optional; archived only to restore)
    body: dict[str, Any] = {"metadata": dict(metadata)}
    if restore:
        body["archived"] = False
    if label is not None:
        body["label"] = label
    if display_order is not None:
        body["displayOrder"] = display_order
    reply = _send(
        "update_stage",
        "PATCH",
        _pipeline_path(object_type, pipeline_id, "stages", stage_id),
        body=body,
        repeatable=True,
    )
    return _parse_stage(reply.body or {})


def delete_stage(
    object_type: str, pipeline_id: str, stage_id: str, *, validate_references: bool = True
) -> None:
    """Delete a stage; with ``validate_references`` HubSpot refuses while records are in it."""
    # Reference: https://developers.hubspot.com/changelog/pipeline-stage-validation-true
    _send(
        "delete_stage",
        "DELETE",
        _pipeline_path(object_type, pipeline_id, "stages", stage_id),
        params={"validateReferencesBeforeDelete": "true" if validate_references else "false"},
        repeatable=True,
        not_found_ok_after_retry=True,
    )


# --- properties ------------------------------------------------------------------------------------------


def _parse_property(raw: Mapping[str, Any]) -> ApiProperty:
    modification = raw.get("modificationMetadata") or {}
    options = [
        ApiOption(
            label=str(o.get("label") or ""),
            value=str(o.get("value") or ""),
            display_order=int(o["displayOrder"]) if o.get("displayOrder") is not None else None,
            hidden=bool(o.get("hidden", False)),
        )
        for o in raw.get("options") or []
    ]
    return ApiProperty(
        name=str(raw.get("name")),
        label=str(raw.get("label") or ""),
        type=str(raw.get("type") or ""),
        field_type=str(raw.get("fieldType") or ""),
        group_name=str(raw.get("groupName") or ""),
        description=str(raw.get("description") or ""),
        options=options,
        read_only_value=bool(modification.get("readOnlyValue", False)),
        read_only_definition=bool(modification.get("readOnlyDefinition", False)),
        calculated=bool(raw.get("calculated", False)),
        hidden=bool(raw.get("hidden", False)),
        has_unique_value=bool(raw.get("hasUniqueValue", False)),
    )


def list_properties(object_type: str, *, archived: bool = False) -> list[ApiProperty]:
    """Every property definition of an object type."""
    # Reference: https://developers.hubspot.com/docs/api/crm/properties
    # Quirks: no paging; the guides name the types order, cart, line_item, contacts; read-only-ness is in
    # modificationMetadata (readOnlyValue, readOnlyDefinition).
    reply = _send(
        "list_properties",
        "GET",
        f"{_PROPERTIES}/{_names(object_type).schema}",
        params={"archived": "true" if archived else "false"},
        repeatable=True,
    )
    return [_parse_property(raw) for raw in _results(reply.body)]


def list_property_groups(object_type: str) -> list[ApiPropertyGroup]:
    """Every property group of an object type."""
    # Reference: https://developers.hubspot.com/docs/api/crm/properties
    reply = _send(
        "list_property_groups", "GET", f"{_PROPERTIES}/{_names(object_type).schema}/groups", repeatable=True
    )
    return [
        ApiPropertyGroup(
            name=str(raw.get("name")),
            label=str(raw.get("label") or ""),
            display_order=int(raw["displayOrder"]) if raw.get("displayOrder") is not None else None,
            archived=bool(raw.get("archived", False)),
        )
        for raw in _results(reply.body)
    ]


def create_property_group(object_type: str, *, name: str, label: str, display_order: int = -1) -> None:
    """Create a property group (Rejected with status 409 when it exists already)."""
    # Reference: https://developers.hubspot.com/docs/api/crm/properties (POST /{objectType}/groups)
    _send(
        "create_property_group",
        "POST",
        f"{_PROPERTIES}/{_names(object_type).schema}/groups",
        body={"name": name, "label": label, "displayOrder": display_order},
        repeatable=False,
    )


def create_property(object_type: str, definition: Mapping[str, Any]) -> ApiProperty:
    """Create a property from a PropertyCreate body (name, label, type, fieldType, groupName, options...);
    Rejected with status 409 when a property of that name exists already."""
    # Reference: https://developers.hubspot.com/docs/api/crm/properties (POST /{objectType})
    reply = _send(
        "create_property",
        "POST",
        f"{_PROPERTIES}/{_names(object_type).schema}",
        body=dict(definition),
        repeatable=False,
    )
    return _parse_property(reply.body if isinstance(reply.body, Mapping) else {})
