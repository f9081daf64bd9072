"""Webhooks from the sandbox to a local receiver that checks signatures on its own (reference §7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hubspot_sandbox.state import ChangeEvent, SandboxState
from hubspot_sandbox.webhooks import WebhookSender, sign_v3

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
APP_ID = 1_160_452
FAST_RETRIES = (0.01, 0.01, 0.02)

# The receiver's own copy of the decode table (reference §7.1 step 2), not the sender's.
DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def expected_signature(method: str, uri: str, body: bytes, timestamp: str) -> str:
    decoded = re.sub("%[0-9A-Fa-f]{2}", lambda m: DECODE.get(m.group(0).upper(), m.group(0)), uri)
    message = (method + decoded).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    events: list[dict[str, Any]]
    signature_ok: bool
    v1_ok: bool
    fresh: bool
    status: int


@dataclass
class Receiver:
    """A webhook endpoint: records every POST, checks both signatures, answers what ``answer`` says."""

    answer: Callable[[int], int | tuple[int, float]] = lambda n: 200
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                uri = f"http://{self.headers['Host']}{self.path}"
                timestamp = self.headers.get("X-HubSpot-Request-Timestamp", "0")
                with receiver.lock:
                    number = len(receiver.deliveries)
                    answer = receiver.answer(number)
                    status, delay = answer if isinstance(answer, tuple) else (answer, 0.0)
                    receiver.deliveries.append(
                        Delivery(
                            path=self.path,
                            headers=dict(self.headers.items()),
                            body=body,
                            events=json.loads(body),
                            signature_ok=hmac.compare_digest(
                                expected_signature("POST", uri, body, timestamp),
                                self.headers.get("X-HubSpot-Signature-v3", ""),
                            ),
                            v1_ok=self.headers.get("X-HubSpot-Signature")
                            == hashlib.sha256(SECRET.encode() + body).hexdigest(),
                            fresh=abs(time.time() * 1000 - int(timestamp)) < 300_000,
                            status=status,
                        )
                    )
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def url(self, path: str = "/hubspot/webhooks/") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self, *, ok_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [e for d in self.deliveries if d.status < 300 or not ok_only for e in d.events]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError("the receiver did not get what was expected")
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def sender_factory() -> Iterator[Callable[..., WebhookSender]]:
    senders: list[WebhookSender] = []

    def make(state: SandboxState, url: str, **options: Any) -> WebhookSender:
        options.setdefault("retry_delays_s", FAST_RETRIES)
        options.setdefault("jitter", 0.0)
        options.setdefault("linger_s", 0.01)
        sender = WebhookSender(state, url=url, client_secret=SECRET, app_id=APP_ID, **options)
        senders.append(sender.start())
        return sender

    yield make
    for sender in senders:
        sender.stop()


def emit(state: SandboxState, count: int = 1, *, object_type_id: str = "0-123", **fields: Any) -> None:
    for i in range(count):
        values = {
            "subscription_type": "object.propertyChange",
            "object_type_id": object_type_id,
            "object_id": str(30_000_000_001 + i),
            "occurred_ms": 1_700_000_000_000 + i,
            "property_name": "hs_fulfillment_status",
            "property_value": "Shipped",
        }
        values.update(fields)
        state.emit(ChangeEvent(**values))


def test_the_documented_known_answer_vector() -> None:
    # reference §7.1, from the official SDK's tests
    signature = sign_v3(
        SECRET,
        "POST",
        "https://www.example.com/webhook_uri",
        b"{'example_field':'example_value'}",
        1693657560000,
    )
    assert signature == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


class TestOverHttp:
    def test_an_order_created_through_the_api_arrives_signed(
        self, sandbox: Any, sandbox_api: Any, receiver: Receiver
    ) -> None:
        sandbox.set_webhook(receiver.url(), SECRET, APP_ID)
        created = sandbox_api.post(
            "/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#W1", "hs_source_store": "Web"}}
        )
        order_id = int(created.json()["id"])
        receiver.wait_for(lambda r: any(e["subscriptionType"] == "object.creation" for e in r.events()))
        sandbox.webhooks.flush(10)
        delivery = receiver.deliveries[0]
        assert delivery.signature_ok and delivery.v1_ok and delivery.fresh
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-HubSpot-Request-Timestamp"].isdigit()
        events = receiver.events()
        creation = next(e for e in events if e["subscriptionType"] == "object.creation")
        assert creation["objectId"] == order_id
        assert creation["objectTypeId"] == "0-123"
        assert creation["portalId"] == sandbox.state.portal_id
        assert creation["appId"] == APP_ID
        assert creation["attemptNumber"] == 0
        assert creation["changeSource"] == "API"
        assert isinstance(creation["eventId"], int) and isinstance(creation["subscriptionId"], int)
        assert isinstance(creation["occurredAt"], int) and creation["occurredAt"] > 1_600_000_000_000
        changes = {
            e["propertyName"]: e["propertyValue"]
            for e in events
            if e["subscriptionType"] == "object.propertyChange"
        }
        assert changes["hs_order_name"] == "#W1"
        assert "hs_lastmodifieddate" not in changes  # excluded from propertyChange (reference §7.2)
        assert len({e["eventId"] for e in events}) == len(events)

    def test_association_changes_carry_both_ends(
        self, sandbox: Any, sandbox_api: Any, receiver: Receiver
    ) -> None:
        contact_id = next(iter(sandbox.state.records["contacts"]))
        sandbox.set_webhook(receiver.url(), SECRET, APP_ID)
        body = {
            "properties": {"hs_order_name": "#W2"},
            "associations": [
                {
                    "to": {"id": contact_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 507}],
                }
            ],
        }
        order_id = int(sandbox_api.post("/crm/v3/objects/orders", json=body).json()["id"])
        receiver.wait_for(
            lambda r: sum(e["subscriptionType"].endswith("associationChange") for e in r.events()) >= 2
        )
        changes = [e for e in receiver.events() if e["subscriptionType"].endswith("associationChange")]
        by_side = {e["subscriptionType"]: e for e in changes}
        # Generic for the order; the classic contact.* name for the contact side.
        assert by_side["object.associationChange"]["fromObjectId"] == order_id
        assert by_side["object.associationChange"]["toObjectId"] == int(contact_id)
        assert by_side["object.associationChange"]["associationRemoved"] is False
        assert by_side["contact.associationChange"]["objectId"] == int(contact_id)
        assert "objectTypeId" not in by_side["contact.associationChange"]

    def test_the_target_can_change_at_runtime(
        self, sandbox: Any, sandbox_api: Any, receiver: Receiver
    ) -> None:
        second = Receiver().start()
        try:
            sandbox.set_webhook(receiver.url(), SECRET, APP_ID)
            sandbox_api.post("/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#first"}})
            receiver.wait_for(lambda r: bool(r.events()))
            sandbox.webhooks.flush(10)
            sandbox.webhooks.set_url(second.url("/other"))
            sandbox_api.post("/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#second"}})
            second.wait_for(lambda r: any(e.get("propertyValue") == "#second" for e in r.events()))
            assert all(d.signature_ok for d in second.deliveries)
            assert all(e.get("propertyValue") != "#second" for e in receiver.events())
        finally:
            second.stop()


class TestDelivery:
    def test_batches_hold_at_most_100_events_and_all_arrive_once(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url(), linger_s=0.2)
        emit(state, 250)
        assert sender.flush(15)
        sizes = [len(d.events) for d in receiver.deliveries]
        assert max(sizes) <= 100
        assert sum(sizes) == 250
        assert len(sizes) >= 3
        assert len({e["eventId"] for e in receiver.events()}) == 250
        assert all(d.signature_ok for d in receiver.deliveries)

    def test_a_smaller_max_batch_is_honoured(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url(), max_batch=7, linger_s=0.2)
        emit(state, 30)
        assert sender.flush(15)
        assert max(len(d.events) for d in receiver.deliveries) <= 7

    def test_failures_are_retried_with_a_rising_attempt_number(
        self, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        receiver = Receiver(answer=lambda n: 500 if n < 2 else 200).start()
        try:
            state = SandboxState()
            sender = sender_factory(state, receiver.url())
            emit(state, 3)
            assert sender.flush(15)
            attempts = [
                (d.status, sorted({e["attemptNumber"] for e in d.events})) for d in receiver.deliveries
            ]
            assert attempts == [(500, [0]), (500, [1]), (200, [2])]
            ids = [sorted(e["eventId"] for e in d.events) for d in receiver.deliveries]
            assert ids[0] == ids[1] == ids[2]  # the same events, sent again
            assert all(d.signature_ok for d in receiver.deliveries)
            assert sender.stats()["delivered_events"] == 3
        finally:
            receiver.stop()

    def test_4xx_is_retried_too(self, sender_factory: Callable[..., WebhookSender]) -> None:
        receiver = Receiver(answer=lambda n: 404 if n == 0 else 204).start()
        try:
            state = SandboxState()
            sender = sender_factory(state, receiver.url())
            emit(state)
            assert sender.flush(15)
            assert [d.status for d in receiver.deliveries] == [404, 204]
            assert receiver.deliveries[1].events[0]["attemptNumber"] == 1
        finally:
            receiver.stop()

    def test_a_slow_answer_counts_as_a_failure(self, sender_factory: Callable[..., WebhookSender]) -> None:
        receiver = Receiver(answer=lambda n: (200, 1.0) if n == 0 else 200).start()
        try:
            state = SandboxState()
            sender = sender_factory(state, receiver.url(), timeout_s=0.2)
            emit(state)
            assert sender.flush(15)
            assert [d.events[0]["attemptNumber"] for d in receiver.deliveries] == [0, 1]
            assert sender.stats()["failed_attempts"] == 1
        finally:
            receiver.stop()

    def test_gives_up_after_max_attempts(self, sender_factory: Callable[..., WebhookSender]) -> None:
        receiver = Receiver(answer=lambda n: 503).start()
        try:
            state = SandboxState()
            sender = sender_factory(state, receiver.url(), max_attempts=4)
            emit(state, 2)
            assert sender.flush(15)
            assert [d.events[0]["attemptNumber"] for d in receiver.deliveries] == [0, 1, 2, 3]
            assert sender.stats()["dropped_events"] == 2
        finally:
            receiver.stop()

    def test_ten_attempts_by_default(self, sender_factory: Callable[..., WebhookSender]) -> None:
        receiver = Receiver(answer=lambda n: 500).start()
        try:
            state = SandboxState()
            sender = sender_factory(state, receiver.url(), retry_delays_s=(0.001,))
            emit(state)
            assert sender.flush(15)
            assert [d.events[0]["attemptNumber"] for d in receiver.deliveries] == list(range(10))
        finally:
            receiver.stop()

    def test_an_unreachable_endpoint_is_retried(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        dead = Receiver().start()
        dead_url = dead.url()
        dead.stop()
        sender = sender_factory(state, dead_url, retry_delays_s=(0.05,))
        emit(state)
        receiver.wait_for(lambda r: sender.stats()["failed_attempts"] >= 1)
        sender.set_url(receiver.url())
        assert sender.flush(15)
        assert receiver.events()[0]["attemptNumber"] >= 1
        assert sender.stats()["failed_attempts"] >= 1

    def test_the_signature_uses_the_decoded_uri(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url("/hooks/%3Aorders%40deck?next=%2Fboard%2C1&x=%7E"))
        emit(state)
        assert sender.flush(15)
        delivery = receiver.deliveries[0]
        # The reserved escapes arrive as they were; requests turns %7E into "~", and the signature
        # follows what is actually sent.
        assert delivery.path.startswith("/hooks/%3Aorders%40deck?next=%2Fboard%2C1&x=")
        assert delivery.signature_ok

    def test_excluded_properties_are_not_sent(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url())
        emit(state, property_name="hs_lastmodifieddate")
        emit(state, property_name="num_unique_conversion_events")
        emit(state, property_name="hs_tax", property_value="1.00")
        assert sender.flush(15)
        assert [e["propertyName"] for e in receiver.events()] == ["hs_tax"]

    def test_naming_per_object_type(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url())
        emit(state, subscription_type="object.creation", object_type_id="0-142", object_id="40000000001")
        emit(state, subscription_type="object.deletion", object_type_id="0-8", object_id="20000000001")
        emit(state, subscription_type="object.creation", object_type_id="0-1", object_id="100001")
        assert sender.flush(15)
        events = {e["objectId"]: e for e in receiver.events()}
        cart = events[40000000001]
        assert cart["subscriptionType"] == "object.creation" and cart["objectTypeId"] == "0-142"
        assert cart["changeFlag"] == "NEW"
        assert "propertyName" not in cart
        assert events[20000000001]["subscriptionType"] == "object.deletion"
        assert events[20000000001]["objectTypeId"] == "0-8"
        contact = events[100001]
        assert contact["subscriptionType"] == "contact.creation" and "objectTypeId" not in contact
        assert len({e["subscriptionId"] for e in events.values()}) == 3

    def test_generic_contact_names_on_request(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url(), legacy_contact_subscriptions=False)
        emit(state, subscription_type="object.creation", object_type_id="0-1", object_id="100001")
        assert sender.flush(15)
        event = receiver.events()[0]
        assert event["subscriptionType"] == "object.creation" and event["objectTypeId"] == "0-1"

    def test_stop_ends_the_thread_and_later_events_are_not_sent(
        self, receiver: Receiver, sender_factory: Callable[..., WebhookSender]
    ) -> None:
        state = SandboxState()
        sender = sender_factory(state, receiver.url())
        emit(state)
        assert sender.flush(15)
        sender.stop()
        emit(state)
        assert sender.flush(1)
        assert len(receiver.events()) == 1
