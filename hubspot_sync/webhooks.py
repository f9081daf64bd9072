"""HubSpot webhook intake: the v3 signature check and reading the event batch (DESIGN.md §6).

Reference: https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
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
    payload: dict[str, Any]  # the event's known fields, each checked by type
    # Every (object type, id) the event names: the object, and both ends of an association change.
    touched: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Batch:
    events: list[Event]
    skipped: list[str]  # why each event that was left out was left out


_TYPE_BY_ID = {"0-1": "contacts", "0-8": "line_items", "0-123": "orders", "0-142": "carts"}
_TYPE_BY_PREFIX = {
    "contact": "contacts",
    "line_item": "line_items",
    "lineitem": "line_items",
    "order": "orders",
    "cart": "carts",
}

# "Each request can contain up to 100 events" (reference §7.2); more is not HubSpot.
MAX_EVENTS = 100
# A text property's value holds up to 65,536 characters in HubSpot; every other text field is short.
MAX_VALUE_CHARS = 65_536
MAX_TEXT_CHARS = 256
MAX_INT = 2**63 - 1  # HubSpot's ids are 64-bit
MAX_ATTEMPT = 1_000  # HubSpot tries a notification up to 10 times
# occurredAt (epoch ms) must fall between HubSpot's beginnings and a day ahead of our clock.
MIN_OCCURRED_MS = 946_684_800_000  # 2000-01-01
MAX_FUTURE_MS = 24 * 3600 * 1000

_SUBSCRIPTION_TYPE = re.compile(r"[A-Za-z_]{1,32}\.[A-Za-z_]{1,32}")
_OBJECT_TYPE_ID = re.compile(r"\d{1,4}-\d{1,12}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ID_TEXT = re.compile(r"[1-9][0-9]{0,18}")

_INTS = ("subscriptionId", "portalId", "appId", "associationTypeId", "numberOfPropertiesMoved")
_IDS = ("objectId", "fromObjectId", "toObjectId", "primaryObjectId", "newObjectId")
_TEXTS = ("changeSource", "sourceId", "changeFlag", "associationType", "associationCategory", "propertyName")
_TYPE_IDS = ("objectTypeId", "fromObjectTypeId", "toObjectTypeId")
_BOOLS = ("associationRemoved", "isPrimaryAssociation")


class BadEvent(ValueError):
    """One event of a batch that is not shaped as HubSpot sends them."""


def _int(name: str, value: Any, low: int = 0, high: int = MAX_INT) -> int:
    # bool is an int to Python, and 1e20 arrives as a float: neither is one of HubSpot's numbers.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadEvent(f"{name} is not a whole number from {low} to {high}")
    return value


def _id(name: str, value: Any) -> str:
    """A record id: a positive 64-bit number, sent as a JSON number (or, leniently, as its digits)."""
    if isinstance(value, str):
        if not _ID_TEXT.fullmatch(value) or int(value) > MAX_INT:
            raise BadEvent(f"{name} is not a record id")
        return value
    return str(_int(name, value, low=1))


def _text(name: str, value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise BadEvent(f"{name} is not text of at most {limit} characters")
    return value


def _type_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _OBJECT_TYPE_ID.fullmatch(value):
        raise BadEvent(f"{name} is not an object type id")
    return value


def _type_of(type_id: str | None, subscription_type: str = "") -> str:
    if type_id:
        return _TYPE_BY_ID.get(type_id, "")
    return _TYPE_BY_PREFIX.get(subscription_type.split(".", 1)[0].lower(), "")


def _clean(item: Any, now_ms: int) -> dict[str, Any]:
    """The event's known fields, each checked by its type; unknown fields are dropped."""
    if not isinstance(item, dict):
        raise BadEvent("an event is not an object")
    present = {key: value for key, value in item.items() if value is not None}
    if "eventId" not in present or "subscriptionType" not in present:
        raise BadEvent("an event has no eventId or subscriptionType")
    event_id = present["eventId"]
    if isinstance(event_id, str):
        if not _EVENT_ID.fullmatch(event_id):
            raise BadEvent("eventId is not an event id")
    else:
        event_id = _int("eventId", event_id)
    subscription_type = present["subscriptionType"]
    if not isinstance(subscription_type, str) or not _SUBSCRIPTION_TYPE.fullmatch(subscription_type):
        raise BadEvent("subscriptionType is not a subscription type")
    clean: dict[str, Any] = {"eventId": event_id, "subscriptionType": subscription_type}
    if "occurredAt" in present:
        clean["occurredAt"] = _int(
            "occurredAt", present["occurredAt"], low=MIN_OCCURRED_MS, high=now_ms + MAX_FUTURE_MS
        )
    clean["attemptNumber"] = _int("attemptNumber", present.get("attemptNumber", 0), high=MAX_ATTEMPT)
    for name in _INTS:
        if name in present:
            clean[name] = _int(name, present[name])
    for name in _IDS:
        if name in present:
            clean[name] = _id(name, present[name])
    for name in _TEXTS:
        if name in present:
            clean[name] = _text(name, present[name])
    if "propertyValue" in present:
        clean["propertyValue"] = _text("propertyValue", present["propertyValue"], MAX_VALUE_CHARS)
    for name in _TYPE_IDS:
        if name in present:
            clean[name] = _type_id(name, present[name])
    for name in _BOOLS:
        if name in present:
            if not isinstance(present[name], bool):
                raise BadEvent(f"{name} is not true or false")
            clean[name] = present[name]
    if "mergedObjectIds" in present:
        merged = present["mergedObjectIds"]
        if not isinstance(merged, list) or len(merged) > MAX_EVENTS:
            raise BadEvent("mergedObjectIds is not a list of record ids")
        clean["mergedObjectIds"] = [_id("mergedObjectIds", value) for value in merged]
    return clean


def _event(item: Any, now_ms: int) -> Event:
    clean = _clean(item, now_ms)
    subscription_type = clean["subscriptionType"]
    object_type = _type_of(clean.get("objectTypeId"), subscription_type)
    object_id = clean.get("objectId", "")
    touched = []
    if object_type and object_id:
        touched.append((object_type, object_id))
    from_type = _type_of(clean.get("fromObjectTypeId")) or object_type
    to_type = _type_of(clean.get("toObjectTypeId"))
    if from_type and clean.get("fromObjectId"):
        touched.append((from_type, clean["fromObjectId"]))
    if to_type and clean.get("toObjectId"):
        touched.append((to_type, clean["toObjectId"]))
    occurred = clean.get("occurredAt")
    return Event(
        event_id=str(clean["eventId"]),
        subscription_type=subscription_type,
        object_type=object_type,
        object_id=object_id,
        occurred_at=datetime.fromtimestamp(occurred / 1000, tz=UTC) if occurred is not None else None,
        attempt_number=clean["attemptNumber"],
        payload=clean,
        touched=tuple(touched),
    )


def parse(body: bytes, *, now_ms: int | None = None) -> Batch:
    """The events of one POST, each checked field by field. An event that is not shaped as HubSpot's are is
    left out (and said why); a body that is not a JSON array of at most 100 events, or whose every event is
    bad, raises InvalidWebhook."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # includes bad UTF-8 and nesting too deep to decode
        raise InvalidWebhook("The body is not JSON.") from exc
    except RecursionError as exc:
        raise InvalidWebhook("The body is nested too deeply.") from exc
    if not isinstance(data, list):
        raise InvalidWebhook("The body is not a JSON array of events.")
    if len(data) > MAX_EVENTS:
        raise InvalidWebhook(f"The body holds {len(data)} events; HubSpot sends at most {MAX_EVENTS}.")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    events, skipped = [], []
    for item in data:
        try:
            events.append(_event(item, now_ms))
        except BadEvent as exc:
            skipped.append(str(exc))
    if skipped and not events:
        raise InvalidWebhook(f"No event of the batch is well-formed ({skipped[0]}).")
    return Batch(events, skipped)
