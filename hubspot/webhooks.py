"""HubSpot webhook intake: the v3 signature check and reading the event batch (DESIGN.md §6).

Reference: https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_AGE_MS = 5 * 60 * 1000  # "Reject the request if the timestamp is older than 5 minutes."

# The characters HubSpot decodes in the request URI before signing (and only these).
_URI_DECODE = {
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


class InvalidWebhook(Exception):
    """A request that is not a genuine, fresh, well-formed HubSpot webhook."""


def decode_uri(uri: str) -> str:
    for encoded, char in _URI_DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + decode_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int | None = None,
) -> None:
    """Raise InvalidWebhook unless the v3 signature matches and the timestamp is within five minutes."""
    if not secret:
        raise InvalidWebhook("HUBSPOT_CLIENT_SECRET is not set, so no webhook can be verified.")
    if not signature or not timestamp:
        raise InvalidWebhook("The X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header is missing.")
    if not timestamp.isdigit():
        raise InvalidWebhook("The request timestamp is not a number.")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
        raise InvalidWebhook("The request timestamp is more than five minutes away from now.")
    expected = signature_v3(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidWebhook("The signature does not match.")


@dataclass(frozen=True)
class Event:
    event_id: str
    subscription_type: str
    object_type: str  # our name ("orders"), or "" when the event names a type we don't mirror
    object_id: str
    occurred_at: datetime | None
    attempt_number: int
    payload: dict[str, Any]
    # Every (object type, id) the event names: the object, and both ends of an association change.
    touched: tuple[tuple[str, str], ...]


_TYPE_BY_ID = {"0-1": "contacts", "0-8": "line_items", "0-123": "orders", "0-142": "carts"}
_TYPE_BY_PREFIX = {
    "contact": "contacts",
    "line_item": "line_items",
    "lineitem": "line_items",
    "order": "orders",
    "cart": "carts",
}


def _type_of(type_id: Any, subscription_type: str = "") -> str:
    if type_id:
        return _TYPE_BY_ID.get(str(type_id), "")
    return _TYPE_BY_PREFIX.get(subscription_type.split(".", 1)[0].lower(), "")


def parse(body: bytes) -> list[Event]:
    """The events of one POST; a body that is not a JSON array of event objects raises InvalidWebhook."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidWebhook("The body is not JSON.") from exc
    if not isinstance(data, list):
        raise InvalidWebhook("The body is not a JSON array of events.")
    events = []
    for item in data:
        if not isinstance(item, dict) or "eventId" not in item or "subscriptionType" not in item:
            raise InvalidWebhook("An event has no eventId or subscriptionType.")
        subscription_type = str(item["subscriptionType"])
        object_type = _type_of(item.get("objectTypeId"), subscription_type)
        object_id = str(item.get("objectId", "") or "")
        touched = []
        if object_type and object_id:
            touched.append((object_type, object_id))
        from_type = _type_of(item.get("fromObjectTypeId")) or object_type
        to_type = _type_of(item.get("toObjectTypeId"))
        if from_type and item.get("fromObjectId"):
            touched.append((from_type, str(item["fromObjectId"])))
        if to_type and item.get("toObjectId"):
            touched.append((to_type, str(item["toObjectId"])))
        occurred = item.get("occurredAt")
        events.append(
            Event(
                event_id=str(item["eventId"]),
                subscription_type=subscription_type,
                object_type=object_type,
                object_id=object_id,
                occurred_at=datetime.fromtimestamp(int(str(occurred)) / 1000, tz=UTC)
                if str(occurred).isdigit()
                else None,
                attempt_number=int(item.get("attemptNumber") or 0),
                payload=item,
                touched=tuple(touched),
            )
        )
    return events
