"""The dashboard's daily figures (carts.summary): after random sends, deliveries, deferrals, clicks,
attributions and re-attributions, recoveries saved and deleted, a store change, a deleted template, retention
and an erasure, the table equals the figures counted from scratch, and the dashboard built from it equals the
one counted from the sends directly, for any range and store, in UTC and in another time zone."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from carts import dashboard, links, sending, summary
from carts.attribution import attribute_carts, recovery_recompute
from carts.dashboard import Dashboard, Period
from carts.models import (
    Cart,
    EmailState,
    RecoveredBy,
    Recovery,
    RecoveryDay,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
)
from carts.privacy import contact_erase, retention_apply
from carts.services import click
from hubspot_sync import registry
from orders.models import Order

pytestmark = pytest.mark.django_db

STORES = ("Northwind", "Summit Supply", "Harbor Goods")
CURRENCIES = ("USD", "EUR", "GBP", "")
START = datetime(2026, 9, 1, tzinfo=ZoneInfo("UTC"))
DAYS = 30


class Clock:
    def __init__(self) -> None:
        self.at: datetime | None = None

    def now(self) -> datetime:
        return self.at or datetime.now(ZoneInfo("UTC"))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(timezone, "now", found.now)
    return found


def table() -> dict[Any, list[int]]:
    """The daily figures' rows, a deleted template's read as none (as the dashboard reads them)."""
    templates = set(RecoveryTemplate.objects.values_list("pk", flat=True))
    found: dict[Any, list[int]] = {}
    for day, store, step, template, currency, *values in RecoveryDay.objects.values_list(
        "day", "store", "step", "template", "currency", *summary.FIGURES
    ):
        key = (day, store, step, template if template in templates else 0, currency)
        found[key] = [a + b for a, b in zip(found.get(key, [0] * len(values)), values, strict=True)]
    return {key: values for key, values in found.items() if any(values)}


def assert_exact() -> None:
    """The daily figures are what counting every send and recovery again gives."""
    assert table() == summary.computed()


def snapshot(board: Dashboard) -> Any:
    def rows(found: list[dashboard.Row]) -> list[Any]:
        return [
            (
                r.label,
                r.filters,
                r.figures.sent,
                r.figures.delivered,
                r.figures.clicked,
                r.figures.recovered,
                r.figures.rate,
                r.figures.revenue_list(),
            )
            for r in found
        ]

    return (rows([board.total]), rows(board.days), rows(board.steps), rows(board.templates), board.currencies)


def moment(rng: random.Random) -> datetime:
    # Often near midnight, where the site's time zone decides the day.
    base = START + timedelta(days=rng.randrange(DAYS))
    minutes = rng.choice([rng.randrange(24 * 60), 23 * 60 + rng.randrange(60), rng.randrange(60)])
    return base + timedelta(minutes=minutes, seconds=rng.randrange(60))


def scenario(rng: random.Random, clock: Clock, settings: Any, on_commit: Any) -> None:
    settings.CARTS_EMAIL_CAP_HOURS = 0
    templates = [
        RecoveryTemplate.objects.create(name=f"Template {k}", subject="s", html_body="h", text_body="t")
        for k in range(3)
    ]
    carts = []
    for n in range(36):
        carts.append(
            Cart.objects.create(
                hubspot_id=str(700_000 + n),
                name=f"Cart {n}",
                status="abandoned",
                cart_url=f"https://shop.example.com/c/{n}",
                total=Decimal(rng.randint(100, 90_000)) / 100,
                currency=rng.choice(CURRENCIES),
                store=rng.choice(STORES),
                customer_email=f"c{n}@customer.example",
                email_state=EmailState.EMAILED,
                remote_updated_at=START - timedelta(days=1),
            )
        )
    token = iter(range(10**6))
    for cart in carts:
        for step in range(1, rng.randint(1, 3) + 1):
            template = rng.choice([*templates, None])
            when = moment(rng)
            if rng.random() < 0.4:
                # Saved one by one, in any state.
                status = rng.choice(
                    [SendStatus.SENT, SendStatus.SENT, SendStatus.FAILED, SendStatus.UNCERTAIN]
                )
                RecoverySend.objects.create(
                    cart=cart,
                    step=step,
                    template=template,
                    to_email=cart.customer_email,
                    status=status,
                    token=f"s{next(token)}",
                    sending_at=when,
                    sent_at=when if status == SendStatus.SENT else None,
                    clicked_at=when + timedelta(hours=1) if rng.random() < 0.3 else None,
                )
                continue
            # The worker's path: claimed, maybe deferred and claimed again later, then an outcome.
            send = RecoverySend.objects.create(
                cart=cart,
                step=step,
                template=template,
                to_email=cart.customer_email,
                status=SendStatus.QUEUED,
                token=f"w{next(token)}",
            )
            clock.at = when
            assert sending._claim(send, f"<m{send.pk}@deck>") == ""
            if rng.random() < 0.25:
                sending._back_to_queue(send, "The mail server deferred it (451)")
                send.status = SendStatus.QUEUED
                clock.at = when + timedelta(hours=rng.randint(1, 30))
                assert sending._claim(send, f"<n{send.pk}@deck>") == ""
            outcome = rng.random()
            if outcome < 0.75:
                sending._sent(send)
            elif outcome < 0.85:
                sending._uncertain(send)
            else:
                sending._fail(send, "refused", only_from=(SendStatus.SENDING,))
            if rng.random() < 0.3:
                clock.at = (clock.at or when) + timedelta(hours=2)
                click(links.sign(send.token, links.CLICK_SALT))
                click(links.sign(send.token, links.CLICK_SALT))  # a second click counts once
    clock.at = None
    assert_exact()

    # Orders arrive: attributed, then changed (another total, currency, a lost order) and attributed again.
    ordered = rng.sample(carts, 20)
    for n, cart in enumerate(ordered):
        last = RecoverySend.objects.filter(cart=cart, sent_at__isnull=False).order_by("-sent_at").first()
        created = (last.sent_at if last and last.sent_at else START) + timedelta(hours=rng.randint(1, 200))
        Order.objects.create(
            hubspot_id=str(710_000 + n),
            remote_created_at=created,
            total=Decimal(rng.randint(100, 50_000)) / 100 if rng.random() < 0.9 else None,
            currency=rng.choice(CURRENCIES),
        )
        Cart.objects.filter(pk=cart.pk).update(order_hubspot_id=str(710_000 + n))
    completed = rng.sample([c for c in carts if c not in ordered], 3)
    Cart.objects.filter(pk__in=[c.pk for c in completed]).update(status="completed")
    ids = [c.hubspot_id for c in carts]
    attribute_carts(ids)
    assert Recovery.objects.exists()
    attribute_carts(ids)  # idempotent
    assert_exact()
    for order in rng.sample(list(Order.objects.all()), 6):
        Order.objects.filter(pk=order.pk).update(
            total=Decimal(rng.randint(100, 9_000)) / 100, currency=rng.choice(CURRENCIES)
        )
    Cart.objects.filter(pk__in=[c.pk for c in ordered[:3]]).update(order_hubspot_id="")
    attribute_carts(rng.sample(ids, 25))
    attribute_carts(ids)
    assert_exact()

    # A recovery saved and one deleted by hand.
    recovery = Recovery.objects.order_by("?").first()
    assert recovery is not None
    recovery.amount, recovery.currency = Decimal("12.3456"), "CHF"
    recovery.save()
    Recovery.objects.order_by("-pk").first().delete()  # type: ignore[union-attr]
    spare = next(
        c for c in carts if not Recovery.objects.filter(cart=c).exists() and c.recovery_sends.exists()
    )
    Recovery.objects.create(
        cart=spare,
        send=spare.recovery_sends.first(),
        order_hubspot_id="",
        amount=Decimal("7.5"),
        currency="EUR",
        recovered_at=START,
        by=RecoveredBy.SEND,
    )
    assert_exact()

    # A cart's store changes in HubSpot; a template is deleted; a send deleted by hand.
    moved = rng.choice([c for c in carts if c.recovery_sends.exists()])
    Cart.objects.filter(pk=moved.pk).update(store="Moved Store")
    with on_commit(execute=True):  # the sync's transaction commits: its days are counted again after it
        summary.carts_store_changed(registry.get("carts"), [moved.hubspot_id])
    templates[0].delete()
    RecoverySend.objects.filter(sending_at__isnull=False).order_by("?").first().delete()  # type: ignore[union-attr]
    assert_exact()

    # Retention deletes sends requested long ago (with their recoveries); an erasure anonymises an address's.
    old = RecoverySend.objects.filter(sending_at__isnull=False).order_by("?").values_list("pk", flat=True)[:6]
    RecoverySend.objects.filter(pk__in=list(old)).update(created_at=START - timedelta(days=400))
    assert retention_apply()["sends"] == 6
    contact_erase(rng.choice(carts).customer_email)
    assert_exact()


def periods(rng: random.Random) -> list[Period]:
    first = START.date() - timedelta(days=2)
    found = [Period(first, first + timedelta(days=DAYS + 6))]
    for _ in range(6):
        start = first + timedelta(days=rng.randrange(DAYS))
        found.append(Period(start, start + timedelta(days=rng.randrange(12)), rng.choice(["", *STORES])))
    found.append(Period(date(2026, 9, 15), date(2026, 9, 15), "Moved Store"))
    return found


@pytest.mark.parametrize(("seed", "zone"), [(1, "UTC"), (2, "UTC"), (3, "America/New_York")])
def test_the_daily_figures_equal_a_direct_count_on_random_data(
    seed: int, zone: str, clock: Clock, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.TIME_ZONE = zone
    summary.summary_ensure_current()
    rng = random.Random(seed)
    scenario(rng, clock, settings, django_capture_on_commit_callbacks)

    for period in periods(rng):
        assert snapshot(dashboard.build(period)) == snapshot(dashboard.build_direct(period)), period
    # The CSV is the same figures.
    whole = periods(rng)[0]
    assert dashboard.csv_text(dashboard.build(whole)) == dashboard.csv_text(dashboard.build_direct(whole))
    # Recomputing attribution (which drops the recoveries saved by hand) counts every day again.
    recovery_recompute()
    assert_exact()
    assert snapshot(dashboard.build(whole)) == snapshot(dashboard.build_direct(whole))


def test_a_change_of_time_zone_counts_the_days_again(settings: Any) -> None:
    cart = Cart.objects.create(
        hubspot_id="720001", store="Summit Supply", customer_email="tz@customer.example"
    )
    late = datetime(2026, 9, 3, 2, 30, tzinfo=ZoneInfo("UTC"))  # 22:30 the day before in New York
    RecoverySend.objects.create(
        cart=cart,
        step=1,
        to_email="tz@customer.example",
        status=SendStatus.SENT,
        token="tz1",
        sending_at=late,
    )
    summary.summary_ensure_current()
    assert list(RecoveryDay.objects.values_list("day", flat=True)) == [date(2026, 9, 3)]

    settings.TIME_ZONE = "America/New_York"
    board = dashboard.build(Period(date(2026, 9, 2), date(2026, 9, 3)))

    assert list(RecoveryDay.objects.values_list("day", flat=True)) == [date(2026, 9, 2)]
    assert [(row.label, row.figures.sent) for row in board.days] == [("2026-09-02", 1), ("2026-09-03", 0)]
