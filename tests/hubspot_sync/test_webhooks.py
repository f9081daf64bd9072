"""Webhook intake: the v3 signature, storing each event once, and refreshing the named records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hubspot_sandbox import objects as remote
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import services, sync, webhooks
from hubspot_sync.models import SyncKind, WebhookEvent
from orders.models import Order

URL = "/hubspot/webhooks/"
SECRET = "test-client-secret-0123456789"


def test_signature_matches_hubspots_known_answer() -> None:
    # The known-answer vector of HubSpot's own SDK tests (reference §7.1).
    signature = webhooks.signature_v3(
        "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        "POST",
        "https://www.example.com/webhook_uri",
        b"{'example_field':'example_value'}",
        "1693657560000",
    )
    assert signature == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_the_uri_is_decoded_as_hubspot_signs_it() -> None:
    assert webhooks.decode_uri("https://h/p%3Fa%3Db%2Cc%40d") == "https://h/p?a%3Db,c@d"


def post(
    client: Any, events: Any, *, secret: str = SECRET, timestamp: int | None = None, raw: bytes | None = None
) -> Any:
    body = raw if raw is not None else json.dumps(events).encode()
    ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
    signature = webhooks.signature_v3(secret, "POST", "http://testserver" + URL, body, ts)
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts},
    )


def event(event_id: int, object_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": 62515,
        "appId": 1,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-123",
        "objectId": int(object_id),
        "propertyName": "hs_order_name",
        "propertyValue": "x",
        "changeSource": "API",
        "attemptNumber": 0,
        **extra,
    }


@pytest.fixture
def secret(settings: Any) -> str:
    settings.HUBSPOT_CLIENT_SECRET = SECRET
    return SECRET


@pytest.mark.django_db
class TestIntake:
    def test_a_signed_batch_is_stored_once_per_event_id(
        self, client: Any, secret: str, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            first = post(client, [event(1, "301"), event(2, "302")])
            again = post(client, [event(1, "301"), event(3, "303", attemptNumber=1)])
        assert first.status_code == 200 and first.json()["new"] == 2
        assert again.status_code == 200 and again.json()["new"] == 1
        assert WebhookEvent.objects.count() == 3
        assert set(WebhookEvent.objects.values_list("object_type", flat=True)) == {"orders"}
        assert len(callbacks) == 2  # a refresh is queued after each commit that stored something new

    @pytest.mark.parametrize(
        ("how", "message"),
        [("bad-signature", "does not match"), ("stale", "five minutes"), ("missing", "missing")],
    )
    def test_bad_or_stale_signatures_get_401_and_store_nothing(
        self, client: Any, secret: str, how: str, message: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        if how == "bad-signature":
            response = post(client, [event(1, "301")], secret="not-the-secret")
        elif how == "stale":
            response = post(client, [event(1, "301")], timestamp=int(time.time() * 1000) - 6 * 60 * 1000)
        else:
            response = client.post(URL, data=b"[]", content_type="application/json")
        assert response.status_code == 401
        # The reason is logged for us; the caller is told nothing it could tune a forgery by.
        assert response.json() == {"status": "error"}
        assert any(message in r.getMessage() for r in caplog.records)
        assert not WebhookEvent.objects.exists()

    def test_a_malformed_body_with_a_good_signature_is_400(self, client: Any, secret: str) -> None:
        response = post(client, None, raw=b'{"not": "a list"}')
        assert response.status_code == 400
        assert not WebhookEvent.objects.exists()

    def test_needs_no_csrf_token_or_login(self, secret: str) -> None:
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        assert post(strict, [event(9, "309")]).status_code == 200


@pytest.fixture
def portal(settings: Any) -> Iterator[Sandbox]:
    sandbox = start_sandbox(seed_contacts=5, seed_orders=8, seed_carts=2)
    settings.HUBSPOT_API_BASE = sandbox.url
    settings.HUBSPOT_ACCESS_TOKEN = sandbox.config.token
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


@pytest.mark.django_db(transaction=True)
def test_duplicate_and_out_of_order_events_leave_the_newest_state(
    client: Any, secret: str, portal: Sandbox
) -> None:
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    order_id = next(iter(portal.state.live("orders"))).id
    remote.update_record(portal.state, "orders", order_id, {"hs_order_name": "First rename"})
    remote.update_record(portal.state, "orders", order_id, {"hs_order_name": "Second rename"})
    newer = event(11, order_id, propertyValue="Second rename", occurredAt=int(time.time() * 1000))
    older = event(10, order_id, propertyValue="First rename", occurredAt=int(time.time() * 1000) - 5000)
    # Newest first, then the older one, then the newest again (a retry).
    for batch in ([newer], [older], [{**newer, "attemptNumber": 1}]):
        assert post(client, batch).status_code == 200

    services.webhook_events_process()
    assert Order.objects.get(hubspot_id=order_id).name == "Second rename"
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0

    remote.archive_record(portal.state, "orders", order_id)
    post(client, [event(12, order_id, subscriptionType="object.deletion")])
    services.webhook_events_process()
    assert Order.objects.get(hubspot_id=order_id).archived
