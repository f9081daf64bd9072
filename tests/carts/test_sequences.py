"""The recovery sequence: steps a delay after abandonment, run by the beat tick on a clock the test controls,
sent by a real worker to a real SMTP server through the same guards as a manual send; the store's sending
window; a manual send counting as its step."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from carts import sending, sequences
from carts.models import Cart, RecoverySend, RecoveryTemplate, SendStatus, SequenceSettings
from carts.services import cart_send_request
from hubspot_sync import sync
from tests.carts.conftest import Portal, SmtpServer, _set, emailable_cart
from tests.conftest import WorkerProcess, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sequence_on(default_template: RecoveryTemplate) -> dict[int, RecoveryTemplate]:
    """The sequence switched on, a template of its own for steps 2 and 3. The sandbox's other carts count as
    abandoned long ago (no step of theirs is due), so a test sees only its own carts' sends."""
    SequenceSettings.objects.update_or_create(pk=1, defaults={"enabled": True})
    Cart.objects.update(abandoned_at=datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
    templates = {1: default_template}
    for step in (2, 3):
        templates[step] = RecoveryTemplate.objects.create(
            name=f"Reminder {step}",
            step=step,
            subject=f"Step {step}: your cart is waiting",
            html_body="<p>Hi {{ first_name }}, <a href='{{ recovery_link }}'>back to your cart</a></p>",
            text_body="Hi {{ first_name }}: {{ recovery_link }}",
        )
    return templates


# A send the worker has not finished with (queued, or "sending" while it talks to the mail server).
_ON_ITS_WAY = (SendStatus.QUEUED, SendStatus.SENDING)


def _subjects(smtp: SmtpServer) -> list[str]:
    return [message.subject for message in reversed(smtp.mailbox.list())]


@pytest.fixture
def open_all_day_uncapped(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Always within the window, and no frequency cap (the worker's clock is the real one, the tick's is the
    test's), here and in a worker started after it."""
    _set(settings, monkeypatch, {"CARTS_SEND_WINDOW": "00:00-23:59", "CARTS_EMAIL_CAP_HOURS": "0"})


def test_a_cart_gets_step_1_after_an_hour_step_2_after_a_day_and_nothing_once_ordered(
    open_all_day_uncapped: None,
    portal: Portal,
    smtp_server: SmtpServer,
    sequence_on: dict[int, RecoveryTemplate],
    celery_worker_process: WorkerProcess,
) -> None:
    cart = emailable_cart(portal, "sequence@example.com", "Seq")
    Cart.objects.filter(pk=cart.pk).update(abandoned_at=None)
    assert cart.remote_updated_at is not None
    t0 = cart.remote_updated_at

    assert sequences.sequence_tick(now=t0 + timedelta(minutes=59)) == 0
    cart.refresh_from_db()
    assert cart.abandoned_at is None  # not abandoned yet

    assert sequences.sequence_tick(now=t0 + timedelta(hours=1)) == 1
    cart.refresh_from_db()
    assert cart.abandoned_at == t0
    wait_until(lambda: len(smtp_server.mailbox.list()) == 1, timeout_s=60)
    # The same step is never requested twice, however often the tick runs.
    assert sequences.sequence_tick(now=t0 + timedelta(hours=2)) == 0
    assert sequences.sequence_tick(now=t0 + timedelta(hours=23, minutes=59)) == 0

    assert sequences.sequence_tick(now=t0 + timedelta(hours=24)) == 1
    step2 = RecoverySend.objects.get(cart=cart, step=2)
    wait_until(lambda: RecoverySend.objects.get(pk=step2.pk).status not in _ON_ITS_WAY, timeout_s=60)
    step2.refresh_from_db()
    assert (step2.status, step2.reason) == (SendStatus.SENT, "")
    wait_until(lambda: len(smtp_server.mailbox.list()) == 2, timeout_s=10)
    assert _subjects(smtp_server)[1] == "Step 2: your cart is waiting"
    assert smtp_server.mailbox.list()[0].to == ["sequence@example.com"]

    # Ordered in HubSpot (not yet synced here): the worker's re-check finds it and step 3 does not go.
    portal.associate("carts", cart.hubspot_id, "orders", portal.any_order_id())
    assert sequences.sequence_tick(now=t0 + timedelta(hours=72)) == 1
    step3 = RecoverySend.objects.get(cart=cart, step=3)
    wait_until(lambda: RecoverySend.objects.get(pk=step3.pk).status not in _ON_ITS_WAY, timeout_s=60)
    step3.refresh_from_db()
    assert step3.status == SendStatus.SKIPPED and step3.reason == sending.ORDERED_SINCE
    assert len(smtp_server.mailbox.list()) == 2
    # Now known here: the sequence has stopped.
    assert sequences.sequence_tick(now=t0 + timedelta(hours=80)) == 0
    lines = {line.step: line for line in sequences.cart_steps(cart, now=t0 + timedelta(hours=80))}
    assert lines[1].state == "sent" and lines[2].state == "sent"
    assert lines[3].state == "skipped" and lines[3].why == sending.ORDERED_SINCE


def _night_cart(portal: Portal, email: str, anchor: datetime) -> Any:
    cart = emailable_cart(portal, email)
    portal.patch_cart(cart.hubspot_id, {"hs_source_store": "Paris shop"})
    sync.refresh_records("carts", [cart.hubspot_id])
    cart.refresh_from_db()
    cart.abandoned_at = anchor
    cart.save(update_fields=["abandoned_at"])
    return cart


def test_a_step_due_at_3_am_store_time_goes_out_at_8(
    portal: Portal,
    smtp_server: SmtpServer,
    sequence_on: dict[int, RecoveryTemplate],
    queued_tasks: list[tuple[str, Any]],
    settings: Any,
) -> None:
    settings.CARTS_STORE_TIMEZONES = "Paris shop=Europe/Paris"
    settings.CARTS_DEFAULT_TIMEZONE = "America/New_York"
    paris = ZoneInfo("Europe/Paris")
    day = datetime.now(paris).date() - timedelta(days=1)
    anchor = datetime(day.year, day.month, day.day, 2, 0, tzinfo=paris)
    cart = _night_cart(portal, "night@example.com", anchor)

    three = anchor + timedelta(hours=1)
    assert sequences.sequence_tick(now=three) == 0
    line = sequences.cart_steps(cart, now=three)[0]
    eight = datetime(day.year, day.month, day.day, 8, 0, tzinfo=paris)
    assert line.state == "due" and line.when == eight and "sending window" in line.why
    assert sequences.sequence_tick(now=eight - timedelta(minutes=1)) == 0
    assert sequences.sequence_tick(now=eight) == 1

    send = RecoverySend.objects.get(cart=cart, step=1)
    assert [name for name, _ in queued_tasks] == ["carts.tasks.recovery_send_batch_task"]
    assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
    assert [m.to for m in smtp_server.mailbox.list()] == [["night@example.com"]]


def test_a_manual_send_counts_as_its_step(
    portal: Portal,
    smtp_server: SmtpServer,
    sequence_on: dict[int, RecoveryTemplate],
    settings: Any,
) -> None:
    settings.CARTS_SEND_WINDOW = "00:00-23:59"
    settings.CARTS_EMAIL_CAP_HOURS = 0
    t0 = datetime.now(ZoneInfo("UTC")) - timedelta(minutes=90)
    cart = _night_cart(portal, "manual@example.com", t0)
    staff = get_user_model().objects.create_user("support", password="x")

    manual = cart_send_request(cart=cart, step=1, by=staff)
    assert sending.recovery_send_deliver(send_id=manual.pk) == SendStatus.SENT

    assert sequences.sequence_tick(now=t0 + timedelta(hours=1)) == 0
    assert sequences.sequence_tick(now=t0 + timedelta(hours=3)) == 0
    assert RecoverySend.objects.filter(cart=cart, step=1).count() == 1
    first = sequences.cart_steps(cart, now=t0 + timedelta(hours=3))[0]
    assert first.state == "sent" and first.manual
    # The next step counts from abandonment as usual.
    assert sequences.sequence_tick(now=t0 + timedelta(hours=24)) == 1
    assert RecoverySend.objects.get(cart=cart, step=2).requested_by is None


def test_a_sequence_stops_at_an_unsubscribe_or_a_changed_contact(
    portal: Portal, smtp_server: SmtpServer, sequence_on: dict[int, RecoveryTemplate], settings: Any
) -> None:
    from carts.services import suppression_add

    settings.CARTS_SEND_WINDOW = "00:00-23:59"
    settings.CARTS_EMAIL_CAP_HOURS = 0
    t0 = datetime.now(ZoneInfo("UTC")) - timedelta(hours=2)
    leaving = _night_cart(portal, "leaving@example.com", t0)
    moved = _night_cart(portal, "moved@example.com", t0)
    assert sequences.sequence_tick(now=t0 + timedelta(hours=1)) == 2
    for send in RecoverySend.objects.filter(cart__in=[leaving, moved]):
        assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT

    suppression_add(email="leaving@example.com", reason="asked", source="staff")
    other = portal.create_contact("someone-else@example.com", "Other")
    portal.dissociate("carts", moved.hubspot_id, "contacts", moved.contact_hubspot_id)
    portal.associate("carts", moved.hubspot_id, "contacts", other)
    sync.refresh_records("contacts", [other])
    sync.refresh_records("carts", [moved.hubspot_id])

    assert sequences.sequence_tick(now=t0 + timedelta(hours=24)) == 0
    assert not RecoverySend.objects.filter(step=2).exists()
    moved.refresh_from_db()
    assert sequences.cart_steps(moved, now=t0 + timedelta(hours=24))[1].state == "stopped"
    assert sequences.cart_steps(moved, now=t0 + timedelta(hours=24))[1].why == sending.CONTACT_CHANGED
    leaving.refresh_from_db()
    assert sequences.cart_steps(leaving, now=t0 + timedelta(hours=24))[1].why == "Unsubscribed"


class Clock:
    """The time the tick and the worker's path read (django.utils.timezone.now), set by the test."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def now(self) -> datetime:
        return self.at or datetime.now(ZoneInfo("UTC"))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    found = Clock()
    monkeypatch.setattr(timezone, "now", found.now)
    return found


def test_the_cap_counts_other_carts_only_so_step_2_goes_at_exactly_24_hours(
    portal: Portal,
    smtp_server: SmtpServer,
    sequence_on: dict[int, RecoveryTemplate],
    settings: Any,
    clock: Clock,
) -> None:
    settings.CARTS_SEND_WINDOW = "00:00-23:59"
    settings.CARTS_EMAIL_CAP_HOURS = 24
    day = datetime.now(ZoneInfo("UTC")).date() - timedelta(days=3)
    t0 = datetime(day.year, day.month, day.day, 10, 0, tzinfo=ZoneInfo("UTC"))
    alone = _night_cart(portal, "alone@example.com", t0)
    # Two carts of one contact: one of them is emailed by hand; the other is abandoned later.
    shared = _night_cart(portal, "shared@example.com", t0 + timedelta(hours=23))
    other = emailable_cart(portal, "shared@example.com", contact_id=shared.contact_hubspot_id)

    clock.at = t0 + timedelta(hours=1)
    assert sequences.sequence_tick(now=clock.at) == 1
    first = RecoverySend.objects.get(cart=alone, step=1)
    assert sending.recovery_send_deliver(send_id=first.pk) == SendStatus.SENT
    clock.at = t0 + timedelta(hours=10)
    by_hand = cart_send_request(cart=other, step=1, by=None)
    assert sending.recovery_send_deliver(send_id=by_hand.pk) == SendStatus.SENT

    clock.at = t0 + timedelta(hours=23, minutes=59)
    assert sequences.sequence_tick(now=clock.at) == 0
    # At +24 h the cart's own step 1 (23 h ago) does not hold its step 2; the other cart's email (14 h ago)
    # holds the shared contact's step 1.
    clock.at = t0 + timedelta(hours=24)
    assert sequences.sequence_tick(now=clock.at) == 1
    second = RecoverySend.objects.get(cart=alone, step=2)
    assert second.queued_at == t0 + timedelta(hours=24)
    assert not RecoverySend.objects.filter(cart=shared).exists()
    assert sending.recovery_send_deliver(send_id=second.pk) == SendStatus.SENT
    second.refresh_from_db()
    assert second.sending_at == t0 + timedelta(hours=24)
    assert [m.to for m in smtp_server.mailbox.list()].count(["alone@example.com"]) == 2

    # The other cart's email holds the contact for 24 h, to the minute.
    clock.at = t0 + timedelta(hours=34)
    assert sequences.sequence_tick(now=clock.at) == 0
    clock.at = t0 + timedelta(hours=34, minutes=1)
    assert sequences.sequence_tick(now=clock.at) == 1
    waited = RecoverySend.objects.get(cart=shared)
    assert waited.step == 1
    assert sending.recovery_send_deliver(send_id=waited.pk) == SendStatus.SENT
    # And the worker's claim applies the same rule: another cart of the contact, asked for by hand now, waits.
    clock.at = t0 + timedelta(hours=35)
    third = cart_send_request(cart=other, step=2, by=None)
    assert sending.recovery_send_deliver(send_id=third.pk) == SendStatus.SKIPPED
    third.refresh_from_db()
    assert third.reason == "This contact got a recovery email in the last 24 h"


def test_the_tick_is_off_until_switched_on(portal: Portal, default_template: RecoveryTemplate) -> None:
    cart = _night_cart(portal, "off@example.com", datetime.now(ZoneInfo("UTC")) - timedelta(hours=2))
    assert sequences.sequence_tick(now=cart.abandoned_at + timedelta(hours=1)) == 0
    assert not RecoverySend.objects.filter(cart=cart).exists()
    assert {line.state for line in sequences.cart_steps(cart)} == {"off"}


def test_the_tick_makes_the_same_number_of_queries_for_more_carts(
    portal: Portal, sequence_on: dict[int, RecoveryTemplate], settings: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.CARTS_SEND_WINDOW = "00:00-23:59"
    settings.CARTS_SEQUENCE_BATCH = 2
    now = datetime.now(ZoneInfo("UTC"))
    sequences.sequence_tick(now=now)  # the default steps are made on the first tick
    counts = []
    for index in range(2):
        _night_cart(portal, f"count{index}a@example.com", now - timedelta(hours=2))
        _night_cart(portal, f"count{index}b@example.com", now - timedelta(hours=2))
        with CaptureQueriesContext(connection) as queries:
            sequences.sequence_tick(now=now)
        counts.append(len(queries))
        assert RecoverySend.objects.filter(to_email__startswith=f"count{index}").count() == 2
    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=False)
def test_the_tick_makes_the_same_queries_whether_no_some_or_many_carts_are_due(
    default_template: RecoveryTemplate, settings: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.CARTS_SEND_WINDOW = "00:00-23:59"
    settings.CARTS_SEQUENCE_BATCH = 500
    SequenceSettings.objects.update_or_create(pk=1, defaults={"enabled": True})
    sequences.sequence_steps()
    now = datetime(2026, 11, 2, 12, 0, tzinfo=ZoneInfo("UTC"))
    made = iter(range(10**6))

    def carts(count: int, hours_ago: int) -> None:
        rows = []
        for _ in range(count):
            n = next(made)
            rows.append(
                Cart(
                    hubspot_id=f"55{n:06d}",
                    cart_url=f"https://shop.example.com/cart/{n}",
                    customer_email=f"due{n}@customer.example",
                    contact_hubspot_id=f"66{n:06d}",
                    status="abandoned",
                    remote_updated_at=now - timedelta(hours=hours_ago),
                    abandoned_at=now - timedelta(hours=hours_ago),
                )
            )
        Cart.objects.bulk_create(rows)

    def tick() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            requested = sequences.sequence_tick(now=now)
        return len(queries), requested

    none_due = tick()
    carts(3, hours_ago=2)  # step 1 only
    some_due = tick()
    for hours in (2, 30, 80):  # every step, more rows than one statement's parameters would hold
        carts(150, hours_ago=hours)
    many_due = tick()

    assert (none_due[1], some_due[1], many_due[1]) == (0, 3, 450)
    assert none_due[0] == some_due[0] == many_due[0]
    assert RecoverySend.objects.filter(status=SendStatus.QUEUED, queued_at=now).count() == 453
    assert set(RecoverySend.objects.values_list("step", flat=True)) == {1, 2, 3}


# --- the settings page and the drawer's block -------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
class TestSettingsPage:
    def test_a_pipeline_admin_changes_the_steps_and_switches_it_on(self, client: Any) -> None:
        from carts.models import SequenceStep
        from tests import factories

        client.force_login(factories.pipeline_admin())
        page = client.get("/carts/sequence/")
        assert page.status_code == 200 and b'name="delay_2"' in page.content
        form = {"enabled": "on", "delay_1": "2", "on_1": "on", "delay_2": "30", "delay_3": "96", "on_3": "on"}
        saved = client.post("/carts/sequence/", form)
        assert saved.status_code == 302
        assert SequenceSettings.objects.get(pk=1).enabled
        steps = {s.step: (s.delay_minutes, s.enabled) for s in SequenceStep.objects.all()}
        assert steps == {1: (120, True), 2: (1800, False), 3: (5760, True)}

    def test_steps_out_of_order_or_hostile_input_are_refused_without_a_500(self, client: Any) -> None:
        from tests import factories

        client.force_login(factories.pipeline_admin())
        client.get("/carts/sequence/")
        for form in (
            {"delay_1": "30", "delay_2": "2", "delay_3": "96"},
            {"delay_1": "-1", "delay_2": "2", "delay_3": "96"},
            {"delay_1": "1\x00", "delay_2": "99999999999", "delay_3": "x", "template_1": "nope"},
        ):
            answer = client.post("/carts/sequence/", form)
            assert answer.status_code == 200
        assert not SequenceSettings.objects.get(pk=1).enabled

    def test_support_reads_it_but_may_not_change_it(self, support_client: Any) -> None:
        page = support_client.get("/carts/sequence/")
        assert page.status_code == 200 and b"disabled" in page.content and b"Save" not in page.content
        assert support_client.post("/carts/sequence/", {"enabled": "on"}).status_code == 403
        assert not SequenceSettings.objects.get(pk=1).enabled

    def test_the_drawer_shows_each_step(self, support_client: Any) -> None:
        from django.utils import timezone

        cart = Cart.objects.create(
            hubspot_id="77001",
            name="Drawer cart",
            cart_url="https://shop.example/cart/1",
            customer_email="drawer@example.com",
            remote_updated_at=timezone.now() - timedelta(hours=3),
            abandoned_at=timezone.now() - timedelta(hours=3),
        )
        RecoverySend.objects.create(
            cart=cart,
            step=1,
            to_email="drawer@example.com",
            status=SendStatus.SKIPPED,
            reason="Test reason",
            token="t-drawer",
        )
        page = support_client.get(f"/carts/{cart.hubspot_id}/")
        assert page.status_code == 200
        assert b'data-step-state="skipped"' in page.content and b"Test reason" in page.content
        assert b'data-step-state="off"' in page.content
