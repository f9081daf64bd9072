"""Webhooks: the sandbox's change events sent to a URL the way HubSpot sends them (reference §7).

A ``WebhookSender`` listens to ``state`` events, turns each ``ChangeEvent`` into HubSpot's event JSON,
and a background thread POSTs them as JSON arrays of at most 100, signed with ``X-HubSpot-Signature-v3``.
A batch that fails (non-2xx, a connection error, or no answer within the timeout) is sent again later
with ``attemptNumber`` one higher, on a schedule that tests can shrink.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from hubspot_sandbox.state import OBJECT_TYPES, ChangeEvent, SandboxState, now_ms

logger = logging.getLogger(__name__)

# "Each request can contain up to 100 events" (reference §7.2).
MAX_BATCH = 100
# "HubSpot will attempt to re-send failed notifications up to 10 times", "spread out over the next 24
# hours", with randomisation (reference §7.2). The exact schedule is UNCONFIRMED; these ten delays add
# up to just under a day.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 28800)
# A delivery counts as failed when the endpoint takes longer than five seconds (reference §7.2).
DEFAULT_TIMEOUT_S = 5.0
# Never sent as propertyChange events (reference §7.2 "Excluded from propertyChange").
EXCLUDED_PROPERTIES = frozenset({"num_unique_conversion_events", "hs_lastmodifieddate", "lastmodifieddate"})
# Characters a receiver decodes in the request URI before checking a v3 signature (reference §7.1 step 2).
URI_DECODE_TABLE: dict[str, str] = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_DECODE_RE = re.compile("|".join(URI_DECODE_TABLE), re.IGNORECASE)
_SUBSCRIPTION_KINDS = ("creation", "deletion", "propertyChange", "associationChange", "restore", "merge")
_TYPE_IDS = tuple(t.type_id for t in OBJECT_TYPES.values())
_BY_TYPE_ID = {t.type_id: t for t in OBJECT_TYPES.values()}


def signature_uri(url: str) -> str:
    """The URI as it enters the v3 signature: the decode table applied (reference §7.1)."""
    return _DECODE_RE.sub(lambda m: URI_DECODE_TABLE[m.group(0).upper()], url)


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """``base64(HMAC-SHA256(secret, method + uri + body + timestamp))`` (reference §7.1)."""
    message = method.encode() + signature_uri(uri).encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_v1(client_secret: str, body: bytes) -> str:
    """The legacy v1 signature HubSpot still sends with CRM object events: hex SHA-256 of secret + body."""
    return hashlib.sha256(client_secret.encode() + body).hexdigest()


def default_subscription_id(subscription_type: str, object_type_id: str | None) -> int:
    """A stable id per subscription, as if the app had one subscription per event kind and object."""
    kind = subscription_type.split(".", 1)[1]
    kind_index = _SUBSCRIPTION_KINDS.index(kind) if kind in _SUBSCRIPTION_KINDS else len(_SUBSCRIPTION_KINDS)
    type_index = _TYPE_IDS.index(object_type_id) if object_type_id in _TYPE_IDS else len(_TYPE_IDS)
    return 3_100_000 + type_index * 100 + kind_index


@dataclass
class _Batch:
    events: list[dict[str, Any]]
    attempt: int = 0
    due: float = 0.0  # time.monotonic() when it may be sent
    seq: int = field(default_factory=itertools.count().__next__)


class WebhookSender:
    """Deliver the state's change events to ``url``, signed, batched and retried as HubSpot does.

    ``max_attempts`` counts every delivery of a batch, the first included (``attemptNumber`` runs from 0
    to ``max_attempts - 1``); HubSpot's "re-send up to 10 times" may mean 11 in all (UNCONFIRMED).
    ``retry_delays_s[n]`` is the wait before attempt ``n + 1`` (the last one repeats), each stretched or
    shrunk by up to ``jitter``. Contacts use the classic ``contact.*`` subscription names when
    ``legacy_contact_subscriptions`` is set; other types use the generic ``object.*`` names with
    ``objectTypeId`` (reference §7.2 "Generic subscriptions").
    """

    def __init__(
        self,
        state: SandboxState,
        *,
        url: str,
        client_secret: str,
        app_id: int,
        max_batch: int = MAX_BATCH,
        max_attempts: int = 10,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_delays_s: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
        jitter: float = 0.2,
        linger_s: float = 0.05,
        legacy_contact_subscriptions: bool = True,
        subscription_ids: Mapping[str, int] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be between 1 and {MAX_BATCH}")
        if max_attempts < 1 or not retry_delays_s:
            raise ValueError("max_attempts must be at least 1 and retry_delays_s not empty")
        self.state = state
        self.client_secret = client_secret
        self.app_id = app_id
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.retry_delays_s = tuple(retry_delays_s)
        self.jitter = jitter
        self.linger_s = linger_s
        self.legacy_contact_subscriptions = legacy_contact_subscriptions
        self.subscription_ids = dict(subscription_ids or {})
        self._session = session or requests.Session()
        self._url = url
        self._cond = threading.Condition()
        self._pending: deque[dict[str, Any]] = deque()
        self._first_pending_at = 0.0
        self._retries: list[_Batch] = []
        self._in_flight = 0
        self._stopping = False
        self._subscribed = False
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        # Event ids only have to differ from the ones an earlier run sent (a receiver records each once),
        # so they continue from the clock rather than from 1.
        self._event_ids = itertools.count(now_ms() * 100)
        self.delivered_events = 0
        self.delivered_batches = 0
        self.failed_attempts = 0
        self.dropped_events = 0
        self.last_error: str | None = None

    # --- configuration ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        with self._cond:
            return self._url

    @url.setter
    def url(self, value: str) -> None:
        self.set_url(value)

    def set_url(self, url: str) -> None:
        """Send to another URL from now on; retries of earlier batches go there too."""
        with self._cond:
            self._url = url

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> WebhookSender:
        with self._cond:
            if self._thread is not None:
                return self
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        if not self._subscribed:
            self.state.subscribe(self.on_event)
            self._subscribed = True
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop sending; events not yet delivered are dropped (and counted as dropped)."""
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout_s)
        with self._cond:
            self._thread = None
            self.dropped_events += len(self._pending) + sum(len(b.events) for b in self._retries)
            self._pending.clear()
            self._retries.clear()
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event has been delivered or given up on; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._retries or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "pending": len(self._pending),
                "retrying": sum(len(b.events) for b in self._retries),
                "delivered_events": self.delivered_events,
                "delivered_batches": self.delivered_batches,
                "failed_attempts": self.failed_attempts,
                "dropped_events": self.dropped_events,
                "last_error": self.last_error,
            }

    # --- events -----------------------------------------------------------------------------------

    def on_event(self, event: ChangeEvent) -> None:
        """The state listener: called on the writer's thread, so it only converts and queues."""
        if self._stopping:
            return
        payload = self.event_json(event)
        if payload is None:
            return
        with self._cond:
            if not self._pending:
                self._first_pending_at = time.monotonic()
            self._pending.append(payload)
            self._cond.notify_all()

    def event_json(self, event: ChangeEvent) -> dict[str, Any] | None:
        """HubSpot's webhook event for one change (reference §7.2), without ``attemptNumber``."""
        if event.subscription_type == "object.propertyChange" and event.property_name in EXCLUDED_PROPERTIES:
            return None
        object_type = _BY_TYPE_ID.get(event.object_type_id)
        legacy = (
            self.legacy_contact_subscriptions and object_type is not None and object_type.name == "contacts"
        )
        kind = event.subscription_type.split(".", 1)[1]
        subscription_type = f"contact.{kind}" if legacy else event.subscription_type
        payload: dict[str, Any] = {"objectId": _number(event.object_id)}
        if kind == "propertyChange":
            payload["propertyName"] = event.property_name
            payload["propertyValue"] = event.property_value if event.property_value is not None else ""
        payload["changeSource"] = event.change_source
        payload["eventId"] = next(self._event_ids)
        payload["subscriptionId"] = self.subscription_ids.get(
            subscription_type, default_subscription_id(subscription_type, event.object_type_id)
        )
        payload["portalId"] = self.state.portal_id
        payload["appId"] = self.app_id
        payload["occurredAt"] = event.occurred_ms
        payload["subscriptionType"] = subscription_type
        if not legacy:
            # "Creation, deletion, merge, restore, and property change events will now include
            # objectTypeId" (reference §7.2); association events carry it too (fields UNCONFIRMED).
            payload["objectTypeId"] = event.object_type_id
        if kind == "creation":
            payload["changeFlag"] = "NEW"
        for key, value in event.extra.items():
            payload.setdefault(key, value)
        return payload

    # --- delivery ---------------------------------------------------------------------------------

    def _next_batch(self) -> _Batch | None:
        """Under the lock: a due retry, else a new batch once it is full or has lingered; None to wait."""
        now = time.monotonic()
        due = [b for b in self._retries if b.due <= now]
        if due:
            batch = min(due, key=lambda b: (b.due, b.seq))
            self._retries.remove(batch)
            return batch
        if self._pending and (
            len(self._pending) >= self.max_batch
            or now - self._first_pending_at >= self.linger_s
            or self._stopping
        ):
            events = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            self._first_pending_at = now
            return _Batch(events)
        return None

    def _wait_time(self) -> float:
        now = time.monotonic()
        waits = [b.due - now for b in self._retries]
        if self._pending:
            waits.append(self._first_pending_at + self.linger_s - now)
        return max(0.001, min(waits)) if waits else 1.0

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = None
                while not self._stopping:
                    batch = self._next_batch()
                    if batch is not None:
                        break
                    self._cond.wait(self._wait_time())
                if self._stopping:
                    return
                assert batch is not None
                self._in_flight += 1
                url = self._url
            try:
                ok, error = self._post(url, batch)
            except Exception as exc:  # a bug must not kill the sender thread; the batch is retried
                logger.exception("webhook delivery failed")
                ok, error = False, f"{type(exc).__name__}: {exc}"
            # One critical section for "no longer in flight" and "queued for retry", so flush() never
            # sees a moment where a failed batch is in neither place.
            with self._cond:
                self._in_flight -= 1
                if ok:
                    self.delivered_batches += 1
                    self.delivered_events += len(batch.events)
                else:
                    self.failed_attempts += 1
                    self.last_error = error
                    if batch.attempt + 1 < self.max_attempts:
                        delay = self.retry_delays_s[min(batch.attempt, len(self.retry_delays_s) - 1)]
                        delay *= 1 + self._random.uniform(-self.jitter, self.jitter)
                        batch.attempt += 1
                        batch.due = time.monotonic() + max(0.0, delay)
                        self._retries.append(batch)
                    else:
                        self.dropped_events += len(batch.events)
                        logger.warning(
                            "webhook batch of %d events dropped after %d attempts: %s",
                            len(batch.events),
                            batch.attempt + 1,
                            error,
                        )
                self._cond.notify_all()

    def _post(self, url: str, batch: _Batch) -> tuple[bool, str | None]:
        body = json.dumps(
            [{**event, "attemptNumber": batch.attempt} for event in batch.events], separators=(",", ":")
        ).encode()
        timestamp = now_ms()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
            "X-HubSpot-Signature": sign_v1(self.client_secret, body),
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Request-Timestamp": str(timestamp),
        }
        try:
            prepared = self._session.prepare_request(
                requests.Request("POST", url, data=body, headers=headers)
            )
            # Sign the URL as it goes on the wire: requests normalises percent-escapes of unreserved
            # characters (%7E becomes ~), and the receiver checks against what it received.
            prepared.headers["X-HubSpot-Signature-v3"] = sign_v3(
                self.client_secret, "POST", prepared.url or url, body, timestamp
            )
            response = self._session.send(prepared, timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return True, None
        # "any HTTP status code (4xx or 5xx)" is retried (reference §7.2).
        return False, f"HTTP {response.status_code}"


def _number(value: str) -> int | str:
    """HubSpot's event ids are JSON numbers (``"objectId":1246965`` in reference §7.2)."""
    return int(value) if value.isdigit() else value
