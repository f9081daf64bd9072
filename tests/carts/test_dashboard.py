"""The recovery dashboard: exact figures on a known dataset, the date range's validation, the CSV, and
links that lead to the carts behind each figure."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from carts import dashboard
from carts.dashboard import Period
from carts.models import Cart, EmailState, RecoveredBy, Recovery, RecoverySend, RecoveryTemplate, SendStatus
from config.permissions import PIPELINE_ADMIN
from tests import factories

pytestmark = pytest.mark.django_db
_ids = itertools.count(800_000)
RANGE = {"start": "2026-10-01", "end": "2026-10-10"}


def at(day: int, hour: int = 10, month: int = 10) -> datetime:
    return datetime.fromisoformat(f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+00:00")


def cart(store: str = "Summit Supply") -> Cart:
    n = next(_ids)
    return Cart.objects.create(
        hubspot_id=str(n),
        name=f"Cart {n}",
        status="abandoned",
        cart_url=f"https://shop.example.com/c/{n}",
        total=Decimal("10"),
        currency="USD",
        store=store,
        customer_email=f"c{n}@customer.example",
        email_state=EmailState.EMAILED,
        remote_updated_at=at(1, month=9),
    )


def send(
    c: Cart,
    step: int,
    template: RecoveryTemplate | None,
    when: datetime | None,
    status: str = SendStatus.SENT,
    clicked: bool = False,
) -> RecoverySend:
    return RecoverySend.objects.create(
        cart=c,
        step=step,
        template=template,
        to_email=c.customer_email,
        status=status,
        token=f"d{next(_ids)}",
        sending_at=when,
        sent_at=when if status == SendStatus.SENT else None,
        clicked_at=when + timedelta(hours=1) if clicked and when else None,
    )


def recover(s: RecoverySend, amount: str, currency: str, by: str = RecoveredBy.SEND) -> None:
    assert s.sending_at is not None
    Recovery.objects.create(
        cart=s.cart,
        send=s,
        order_hubspot_id=str(next(_ids)),
        amount=Decimal(amount),
        currency=currency,
        recovered_at=s.sending_at + timedelta(days=1),
        by=by,
    )


@pytest.fixture
def dataset() -> dict[str, Any]:
    first = RecoveryTemplate.objects.create(
        name="Reminder", step=None, subject="s", html_body="h", text_body="t"
    )
    second = RecoveryTemplate.objects.create(
        name="=HYPERLINK(1)", step=None, subject="s", html_body="h", text_body="t"
    )
    c1, c2, c3, c4, c5, c6 = cart(), cart(), cart(), cart(), cart(), cart(store="Harbor Goods")
    recover(send(c1, 1, first, at(2), clicked=True), "100", "USD", RecoveredBy.CLICK)
    send(c2, 1, first, at(2, 11))
    recover(send(c2, 2, second, at(4), clicked=True), "50", "EUR", RecoveredBy.CLICK)
    send(c3, 1, first, at(3), status=SendStatus.FAILED)  # went to the server, refused
    send(c4, 1, first, at(4, 23))
    recover(send(c5, 1, first, at(20, month=9)), "999", "USD")  # before the range
    send(c6, 1, first, at(5))
    send(cart(), 1, first, None, status=SendStatus.QUEUED)  # not gone out: not counted
    return {"carts": [c1, c2, c3, c4, c5, c6], "first": first, "second": second}


def figures(row: dashboard.Row) -> tuple[Any, ...]:
    f = row.figures
    return (f.sent, f.delivered, f.clicked, f.recovered, f.rate, dict(f.revenue_list()))


def test_the_figures_are_exact_by_day_step_template_and_store(dataset: dict[str, Any]) -> None:
    board = dashboard.build(Period(date(2026, 10, 1), date(2026, 10, 10)))

    usd, eur = Decimal("100.00"), Decimal("50.00")
    assert figures(board.total) == (6, 5, 2, 2, Decimal("40.0"), {"EUR": eur, "USD": usd})
    days = {row.label: figures(row) for row in board.days}
    assert len(days) == 10
    assert days["2026-10-02"] == (2, 2, 1, 1, Decimal("50.0"), {"USD": usd})
    assert days["2026-10-03"] == (1, 0, 0, 0, None, {})
    assert days["2026-10-04"] == (2, 2, 1, 1, Decimal("50.0"), {"EUR": eur})
    assert days["2026-10-05"] == (1, 1, 0, 0, Decimal("0.0"), {})
    assert days["2026-10-06"] == (0, 0, 0, 0, None, {})
    assert [(r.label, figures(r)) for r in board.steps] == [
        ("Step 1", (5, 4, 1, 1, Decimal("25.0"), {"USD": usd})),
        ("Step 2", (1, 1, 1, 1, Decimal("100.0"), {"EUR": eur})),
    ]
    assert [r.label for r in board.templates] == ["=HYPERLINK(1)", "Reminder"]
    assert board.currencies == ["EUR", "USD"]

    summit = dashboard.build(Period(date(2026, 10, 1), date(2026, 10, 10), "Summit Supply"))
    assert figures(summit.total)[:4] == (5, 4, 2, 2)


def test_the_page_shows_the_figures_and_a_chart_without_inline_style(
    dataset: dict[str, Any], support_client: Client
) -> None:
    response = support_client.get("/carts/recovery/", RANGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-figure="total-sent">6<', html)
    assert re.search(r'data-figure="total-recovered">2<', html)
    assert "100.00 USD" in html and "50.00 EUR" in html
    assert html.count('class="bar-sent"') == 10
    assert " style=" not in html and "<script>" not in html


def test_the_default_range_is_the_last_30_days(support_client: Client) -> None:
    response = support_client.get("/carts/recovery/")

    assert response.status_code == 200
    period = response.context["period"]
    assert period.days == 30 and period.end == dashboard.default_period().end


@pytest.mark.parametrize(
    "query",
    [
        {"start": "2026-10-10", "end": "2026-10-01"},  # backwards
        {"start": "2025-01-01", "end": "2026-10-01"},  # over a year
        {"start": "yesterday"},
        {"start": "1900-01-01", "end": "1900-01-02"},
        {"store": "a\x00b"},
    ],
)
def test_a_bad_range_is_refused_with_a_message(query: dict[str, str], support_client: Client) -> None:
    response = support_client.get("/carts/recovery/", query)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert support_client.get("/carts/recovery/export.csv", query).status_code == 400


def test_a_year_is_allowed(support_client: Client) -> None:
    assert (
        support_client.get("/carts/recovery/", {"start": "2025-10-01", "end": "2026-09-30"}).status_code
        == 200
    )


def _listed(client: Client, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200
    return set(re.findall(r'data-cart="(\d+)"', response.content.decode()))


def test_each_figure_links_to_the_carts_behind_it(dataset: dict[str, Any], support_client: Client) -> None:
    c1, c2, c3, c4, _c5, c6 = (c.hubspot_id for c in dataset["carts"])
    board = dashboard.build(Period(date(2026, 10, 1), date(2026, 10, 10)))
    days = {row.label: row for row in board.days}
    steps = {row.label: row for row in board.steps}
    templates = {row.label: row for row in board.templates}

    assert _listed(support_client, board.total.link("sent")) == {c1, c2, c3, c4, c6}
    assert _listed(support_client, board.total.link("delivered")) == {c1, c2, c4, c6}
    assert _listed(support_client, board.total.link("clicked")) == {c1, c2}
    assert _listed(support_client, board.total.link("recovered")) == {c1, c2}
    assert _listed(support_client, days["2026-10-03"].link("sent")) == {c3}
    assert _listed(support_client, days["2026-10-04"].link("sent")) == {c2, c4}
    assert _listed(support_client, steps["Step 2"].link("recovered")) == {c2}
    assert _listed(support_client, steps["Step 1"].link("recovered")) == {c1}
    assert _listed(support_client, templates["Reminder"].link("clicked")) == {c1}

    # The page's own links are these.
    html = support_client.get("/carts/recovery/", RANGE).content.decode()
    link = re.search(r'href="([^"]+)" data-figure="total-recovered"', html)
    assert link is not None
    assert _listed(support_client, link.group(1).replace("&amp;", "&")) == {c1, c2}


def test_the_carts_list_refuses_a_bad_recovery_filter(support_client: Client) -> None:
    for query in ({"sent_from": "2026-10-05", "sent_to": "2026-10-01"}, {"step": "0"}, {"outcome": "x"}):
        response = support_client.get("/carts/", query)
        assert response.status_code == 200
        assert response.context["filters"] == {"invalid": True}


def test_the_csv_has_the_same_figures_is_not_stored_and_is_formula_safe(
    dataset: dict[str, Any], support_client: Client
) -> None:
    response = support_client.get("/carts/recovery/export.csv", RANGE)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "group",
        "label",
        "sent",
        "delivered",
        "clicked",
        "recovered",
        "recovery_rate_pct",
        "revenue_EUR",
        "revenue_USD",
    ]
    assert rows[1] == ["total", "All", "6", "5", "2", "2", "40.0", "50.00", "100.00"]
    templates = [r for r in rows if r[0] == "template"]
    assert templates[0][1] == "'=HYPERLINK(1)"
    assert len([r for r in rows if r[0] == "day"]) == 10


def test_support_and_pipeline_admins_see_it_others_do_not(client: Client) -> None:
    client.force_login(factories.UserFactory(groups=[PIPELINE_ADMIN]))
    response = client.get("/carts/recovery/")
    assert response.status_code == 200
    # The carts list is Support's: the figures are not links for a Pipeline admin alone.
    assert 'href="/carts/?' not in response.content.decode()
    client.force_login(factories.UserFactory())
    assert client.get("/carts/recovery/").status_code == 403
    assert client.get("/carts/recovery/export.csv").status_code == 403
