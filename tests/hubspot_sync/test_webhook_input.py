"""Webhook intake under hostile input: a signed body with bad values is refused (4xx) or its bad events left
out, never a 500, never stored half-parsed; a refused signature says nothing about why."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from hubspot_sync import webhooks
from hubspot_sync.models import WebhookEvent
from tests.hubspot_sync.test_webhooks import SECRET, URL, event, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def secret(settings: Any) -> str:
    settings.HUBSPOT_CLIENT_SECRET = SECRET
    return SECRET


def one(**changes: Any) -> list[dict[str, Any]]:
    """A batch of one otherwise genuine event with some fields replaced."""
    return [{**event(1, "301"), **changes}]


HOSTILE_EVENTS = {
    "attempt-number-text": one(attemptNumber="abc"),
    "attempt-number-huge": one(attemptNumber=10**30),
    "attempt-number-negative": one(attemptNumber=-1),
    "occurred-at-float": one(occurredAt=1e20),
    "occurred-at-huge-int": one(occurredAt=10**20),
    "occurred-at-year-1": one(occurredAt=-62135596800000),
    "occurred-at-text": one(occurredAt="yesterday"),
    "object-id-nested": one(objectId={"id": 301}),
    "object-id-list": one(objectId=[301]),
    "object-id-bool": one(objectId=True),
    "object-id-text": one(objectId="not-a-number"),
    "object-id-too-big": one(objectId=2**64),
    "event-id-nested": one(eventId={"a": 1}),
    "event-id-long": one(eventId="x" * 65),
    "subscription-type-long": one(subscriptionType="object." + "x" * 500),
    "subscription-type-number": one(subscriptionType=5),
    "property-value-100kB": one(propertyValue="x" * 100_000),
    "property-value-nul": one(propertyValue="a\x00b"),
    "property-value-object": one(propertyValue={"nested": True}),
    "property-name-long": one(propertyName="p" * 1000),
    "object-type-id-odd": one(objectTypeId="<script>"),
    "association-removed-text": one(associationRemoved="yes"),
    "portal-id-float": one(portalId=1.5),
    "no-event-id": [{k: v for k, v in event(1, "301").items() if k != "eventId"}],
    "event-not-an-object": ["just text"],
    "events-of-nulls": [None, None],
}

HOSTILE_BODIES = {
    "object": b'{"not": "a list"}',
    "string": b'"events"',
    "number": b"42",
    "null": b"null",
    "not-json": b"<xml/>",
    "bad-utf8": b"[\xff\xfe]",
    "nan": b'[{"eventId": NaN, "subscriptionType": "object.creation"}]',
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "too-many-events": json.dumps([event(i, str(300 + i)) for i in range(1, 102)]).encode(),
    "over-django-upload-limit": b"[" + b" " * 3_000_000 + b"]",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_EVENTS))
def test_a_batch_of_only_bad_events_is_400_and_stores_nothing(client: Any, name: str) -> None:
    response = post(client, HOSTILE_EVENTS[name])
    assert response.status_code == 400, response.content[:200]
    assert response.json() == {"status": "error", "message": "Malformed webhook batch."}
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_body_that_is_not_a_batch_of_events_is_400_and_stores_nothing(client: Any, name: str) -> None:
    response = post(client, None, raw=HOSTILE_BODIES[name])
    assert response.status_code == 400, response.content[:200]
    assert not WebhookEvent.objects.exists()


def test_100_events_are_accepted_and_101_refused(client: Any) -> None:
    hundred = [event(i, str(300 + i)) for i in range(1, 101)]
    assert post(client, hundred).status_code == 200
    assert WebhookEvent.objects.count() == 100
    assert post(client, [*hundred, event(101, "401")]).status_code == 400
    assert WebhookEvent.objects.count() == 100


def test_the_good_events_of_a_partly_bad_batch_are_kept_and_the_bad_ones_left_out(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # HubSpot re-sends a refused batch whole, so refusing it would lose the good events with the bad one.
    response = post(client, [event(1, "301"), {**event(2, "302"), "objectId": {"$ne": 1}}, event(3, "303")])
    assert response.status_code == 200
    assert response.json()["received"] == 2 and response.json()["skipped"] == 1
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["1", "3"]
    assert any("objectId" in r.getMessage() for r in caplog.records)


def test_stored_fields_are_typed_and_unknown_fields_dropped(client: Any) -> None:
    body = [{**event(7, "307", propertyValue="é" * 70), "injected": {"deep": ["x"] * 5}, "objectId": "307"}]
    assert post(client, body).status_code == 200
    stored = WebhookEvent.objects.get()
    assert stored.object_id == "307" and stored.object_type == "orders"
    assert "injected" not in stored.payload
    assert stored.payload["propertyValue"] == "é" * 70
    assert stored.attempt_number == 0 and stored.occurred_at is not None


def test_parse_keeps_a_genuine_sandbox_event_whole() -> None:
    genuine = {
        "objectId": 1246965,
        "changeSource": "CRM",
        "eventId": 3816279340,
        "subscriptionId": 25,
        "portalId": 33,
        "appId": 1160452,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "object.associationChange",
        "objectTypeId": "0-123",
        "associationType": "order_to_contact",
        "associationTypeId": 507,
        "associationCategory": "HUBSPOT_DEFINED",
        "fromObjectTypeId": "0-123",
        "fromObjectId": 1246965,
        "toObjectTypeId": "0-1",
        "toObjectId": 51,
        "associationRemoved": False,
        "isPrimaryAssociation": False,
        "attemptNumber": 2,
    }
    batch = webhooks.parse(json.dumps([genuine]).encode())
    assert not batch.skipped
    (parsed,) = batch.events
    assert parsed.attempt_number == 2
    assert set(parsed.touched) == {("orders", "1246965"), ("contacts", "51")}
    assert set(parsed.payload) == set(genuine)


@pytest.mark.parametrize("how", ["bad-signature", "stale", "missing", "no-secret"])
def test_a_refused_signature_gets_a_generic_401_and_the_reason_only_in_the_log(
    client: Any, settings: Any, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.WARNING)
    if how == "bad-signature":
        response = post(client, one(), secret="not-the-secret")
    elif how == "stale":
        response = post(client, one(), timestamp=int(time.time() * 1000) - 6 * 60 * 1000)
    elif how == "missing":
        response = client.post(URL, data=b"[]", content_type="application/json")
    else:
        settings.HUBSPOT_CLIENT_SECRET = ""
        response = post(client, one())
    assert response.status_code == 401
    assert response.json() == {"status": "error"}
    refused = [r.getMessage() for r in caplog.records if "webhook refused" in r.getMessage()]
    assert refused, "the reason is logged server-side"
    assert all(SECRET not in message for message in caplog.messages)
    assert not WebhookEvent.objects.exists()
