"""The guards a worker applies at send time, after reading the cart again from HubSpot (the sandbox, over
HTTP): each skips the send with its reason in the cart's log, and nothing reaches the SMTP server."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from carts import sending
from carts.models import (
    NO_CONSENT,
    UNSUBSCRIBED,
    Cart,
    CartEvent,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    Suppression,
)
from carts.services import STEP_TAKEN, cart_send_request, suppression_add
from hubspot_sandbox import objects as remote
from tests.carts.conftest import Portal, SmtpServer, emailable_cart

pytestmark = pytest.mark.django_db(transaction=True)


def _skipped_with(send: RecoverySend, reason: str, smtp_server: SmtpServer) -> None:
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SKIPPED
    send.refresh_from_db()
    assert send.status == SendStatus.SKIPPED
    assert send.reason == reason
    assert smtp_server.mailbox.count() == 0
    event = CartEvent.objects.filter(cart_id=send.cart_id, send=send).order_by("-pk").first()
    assert event is not None and event.kind == EventKind.SKIPPED and event.message == reason


@pytest.fixture
def ready(
    portal: Portal, smtp_server: SmtpServer, default_template: RecoveryTemplate, support_user: Any
) -> tuple[Portal, SmtpServer, Any]:
    return portal, smtp_server, support_user


def test_a_cart_ordered_in_hubspot_between_the_list_and_the_send_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "ordered@customer.example")
    assert cart in Cart.objects.abandoned(now=timezone.now() + timedelta(days=400))
    send = cart_send_request(cart=cart, by=user)
    assert send.status == SendStatus.QUEUED

    # The customer completes the checkout: HubSpot associates an order with the cart.
    portal.associate("carts", cart.hubspot_id, "orders", portal.any_order_id())

    _skipped_with(send, sending.ORDERED_SINCE, smtp_server)
    cart.refresh_from_db()
    assert cart.order_hubspot_id, "the worker's refresh brought the order"


def test_a_cart_completed_in_hubspot_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "completed@customer.example")
    send = cart_send_request(cart=cart, by=user)
    portal.patch_cart(cart.hubspot_id, {"hs_external_status": "checkout_completed"})
    _skipped_with(send, "Completed", smtp_server)


def test_a_cart_whose_contact_changed_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "first.owner@customer.example")
    send = cart_send_request(cart=cart, by=user)
    other = portal.create_contact("second.owner@customer.example", "Bea")
    portal.dissociate("carts", cart.hubspot_id, "contacts", cart.contact_hubspot_id)
    portal.associate("carts", cart.hubspot_id, "contacts", other)
    _skipped_with(send, sending.CONTACT_CHANGED, smtp_server)


def test_a_contact_whose_address_changed_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "old.address@customer.example")
    send = cart_send_request(cart=cart, by=user)
    portal.patch_contact(cart.contact_hubspot_id, {"email": "new.address@customer.example"})
    _skipped_with(send, sending.CONTACT_CHANGED, smtp_server)


def test_a_cart_that_lost_its_link_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "lost.link@customer.example")
    send = cart_send_request(cart=cart, by=user)
    portal.patch_cart(cart.hubspot_id, {"hs_cart_url": ""})
    _skipped_with(send, sending.LINK_LOST, smtp_server)


def test_a_cart_deleted_in_hubspot_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "deleted@customer.example")
    send = cart_send_request(cart=cart, by=user)
    response = portal.http.delete(portal.url(f"/crm/v3/objects/carts/{cart.hubspot_id}"), timeout=10)
    assert response.status_code == 204
    _skipped_with(send, sending.DELETED, smtp_server)


def test_an_address_suppressed_between_request_and_send_is_skipped(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "Suppressed@Customer.example")
    send = cart_send_request(cart=cart, by=user)
    suppression_add(email="suppressed@customer.example", reason="asked by phone", source="staff", by=user)
    _skipped_with(send, UNSUBSCRIBED, smtp_server)
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "unsubscribed"


def test_the_consent_policy_reads_the_contact_again(ready: Any, settings: Any) -> None:
    portal, smtp_server, user = ready
    settings.CARTS_CONSENT_POLICY = "marketing"
    cart = emailable_cart(portal, "consent@customer.example")
    # A contact without the property has not accepted marketing: skipped at once.
    refused = cart_send_request(cart=cart, by=user)
    assert refused.status == SendStatus.SKIPPED and refused.reason == NO_CONSENT
    assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "not_emailable"

    # HubSpot marks the contact marketable (a read-only property HubSpot computes), then not any more.
    _set_remote(portal, "contacts", cart.contact_hubspot_id, "hs_marketable_status", "true")
    from hubspot_sync.sync import refresh_records

    refresh_records("contacts", [cart.contact_hubspot_id])
    send = cart_send_request(cart=cart, by=user)
    assert send.status == SendStatus.QUEUED, send.reason
    _set_remote(portal, "contacts", cart.contact_hubspot_id, "hs_marketable_status", "false")
    _skipped_with(send, NO_CONSENT, smtp_server)


def test_the_same_step_is_never_sent_twice_to_one_cart(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "one.step@customer.example")
    first = cart_send_request(cart=cart, by=user)
    second = cart_send_request(cart=cart, by=user)
    assert second.status == SendStatus.SKIPPED and second.reason == STEP_TAKEN.format(step=1)
    assert sending.recovery_send_deliver(send_id=first.pk) == SendStatus.SENT
    third = cart_send_request(cart=cart, by=user)
    assert third.status == SendStatus.SKIPPED
    assert smtp_server.mailbox.count() == 1
    # The database refuses a second live send of the step whatever the code path.
    with pytest.raises(IntegrityError), transaction.atomic():
        RecoverySend.objects.create(cart=cart, step=1, token="another-token", status=SendStatus.QUEUED)


def test_one_email_per_contact_per_cap_across_carts(ready: Any) -> None:
    portal, smtp_server, user = ready
    first_cart = emailable_cart(portal, "two.carts@customer.example")
    second_cart = emailable_cart(
        portal, "two.carts@customer.example", contact_id=first_cart.contact_hubspot_id
    )
    first = cart_send_request(cart=first_cart, by=user)
    second = cart_send_request(cart=second_cart, by=user)
    assert second.status == SendStatus.QUEUED, "both carts are emailable when asked"
    assert sending.recovery_send_deliver(send_id=first.pk) == SendStatus.SENT
    _skipped_with_mail(second, "This contact got a recovery email in the last 24 h", smtp_server)


def _skipped_with_mail(send: RecoverySend, reason: str, smtp_server: SmtpServer) -> None:
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SKIPPED
    send.refresh_from_db()
    assert send.reason == reason
    assert smtp_server.mailbox.count() == 1
    assert CartEvent.objects.filter(send=send, kind=EventKind.SKIPPED, message=reason).exists()


def test_hubspot_unreachable_means_no_send_yet(ready: Any, settings: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "unreachable@customer.example")
    send = cart_send_request(cart=cart, by=user)
    portal.sandbox.stop(save_snapshot=False)
    settings.HUBSPOT_READ_TIMEOUT_S = 1
    with pytest.raises(sending.RetryLater):
        sending.recovery_send_deliver(send_id=send.pk)
    send.refresh_from_db()
    assert send.status == SendStatus.QUEUED
    assert smtp_server.mailbox.count() == 0


def test_a_permanent_smtp_refusal_suppresses_the_address(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "reject-5xx@customer.example")
    send = cart_send_request(cart=cart, by=user)
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.FAILED
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED and "550" in send.reason
    suppression = Suppression.objects.get(email="reject-5xx@customer.example")
    assert suppression.source == "smtp_bounce" and "550" in suppression.reason
    kinds = set(CartEvent.objects.filter(cart=cart).values_list("kind", flat=True))
    assert {EventKind.FAILED, EventKind.UNSUBSCRIBED} <= kinds
    assert smtp_server.mailbox.count() == 0


def test_a_temporary_smtp_refusal_is_retried_later(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "reject-4xx@customer.example")
    send = cart_send_request(cart=cart, by=user)
    with pytest.raises(sending.RetryLater, match="451"):
        sending.recovery_send_deliver(send_id=send.pk)
    send.refresh_from_db()
    assert send.status == SendStatus.QUEUED and "451" in send.reason
    assert not Suppression.objects.exists()
    # After the last retry it fails, and it never reached anyone.
    assert sending.recovery_send_gave_up(send_id=send.pk, why="451 try later") == SendStatus.FAILED
    assert smtp_server.mailbox.count() == 0


def test_an_unreachable_mail_server_is_retried_and_nothing_is_lost(ready: Any, settings: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "server.down@customer.example")
    send = cart_send_request(cart=cart, by=user)
    smtp_server.server.stop()
    with pytest.raises(sending.RetryLater):
        sending.recovery_send_deliver(send_id=send.pk)
    send.refresh_from_db()
    assert send.status == SendStatus.QUEUED
    smtp_server.restart()
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert smtp_server.mailbox.count() == 1


def test_a_send_found_sending_becomes_uncertain_and_is_not_sent(ready: Any) -> None:
    portal, smtp_server, user = ready
    cart = emailable_cart(portal, "uncertain@customer.example")
    send = cart_send_request(cart=cart, by=user)
    # A worker recorded "sending" and died before it recorded "sent".
    RecoverySend.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, sending_at=timezone.now())
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.UNCERTAIN
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.UNCERTAIN
    assert smtp_server.mailbox.count() == 0
    assert CartEvent.objects.filter(send=send, kind=EventKind.UNCERTAIN).count() == 1
    # The uncertain send still holds the step: asking again is refused.
    assert cart_send_request(cart=cart, by=user).status == SendStatus.SKIPPED


def test_the_resume_sweep_marks_stale_sending_uncertain_and_requeues_lost_sends(
    ready: Any, settings: Any
) -> None:
    portal, smtp_server, user = ready
    settings.CARTS_SEND_REQUEUE_S = 60
    settings.CARTS_SENDING_STALE_S = 10
    stuck_cart = emailable_cart(portal, "stuck@customer.example")
    lost_cart = emailable_cart(portal, "lost.task@customer.example")
    stuck = cart_send_request(cart=stuck_cart, by=user)
    lost = cart_send_request(cart=lost_cart, by=user)
    long_ago = timezone.now() - timedelta(minutes=10)
    RecoverySend.objects.filter(pk=stuck.pk).update(
        status=SendStatus.SENDING, sending_at=long_ago, updated_at=long_ago
    )
    RecoverySend.objects.filter(pk=lost.pk).update(queued_at=long_ago, updated_at=long_ago)

    ids, uncertain = sending.recovery_sends_resume()

    assert uncertain == 1 and RecoverySend.objects.get(pk=stuck.pk).status == SendStatus.UNCERTAIN
    # Marking one uncertain is progress: the lost one waits for the next sweep, which finds it.
    assert ids == []
    RecoverySend.objects.exclude(status=SendStatus.QUEUED).update(updated_at=long_ago)
    ids, uncertain = sending.recovery_sends_resume()
    assert ids == [lost.pk] and uncertain == 0
    # Its task may now run: it sends once.
    assert sending.recovery_send_deliver(send_id=lost.pk) == SendStatus.SENT
    assert smtp_server.mailbox.count() == 1


def _set_remote(portal: Portal, object_type: str, record_id: str, name: str, value: str) -> None:
    """Change a value the way HubSpot itself does (a property the API may not write)."""
    state = portal.sandbox.state
    with state.lock:
        record = state.get(remote.object_type(object_type).name, record_id)
        assert record is not None
        record.properties[name] = value
        record.updated_ms = int(time.time() * 1000)
