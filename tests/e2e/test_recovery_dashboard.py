"""The recovery dashboard in Chromium: it opens on the last 30 days, a wider date range brings in older
emails, and a figure opens the carts behind it in the carts list."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from carts.models import RecoveredBy, RecoveryTemplate
from tests import factories
from tests.carts.test_dashboard import cart, recover, send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def days_ago(n: int) -> datetime:
    return datetime.combine(
        timezone.localdate() - timedelta(days=n), time(10), tzinfo=timezone.get_current_timezone()
    )


def test_change_the_range_and_follow_a_figure_to_its_carts(page: Any, live_server: Any) -> None:
    template = RecoveryTemplate.objects.create(
        name="Browser reminder", step=None, subject="s", html_body="h", text_body="t"
    )
    recent, older, plain = cart(), cart(), cart()
    recover(send(recent, 1, template, days_ago(3), clicked=True), "80", "USD", RecoveredBy.CLICK)
    recover(send(older, 1, template, days_ago(45)), "30", "EUR")
    send(plain, 1, template, days_ago(2))
    user = factories.support_user()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

    page.goto(f"{live_server.url}/login/?next=/carts/recovery/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/carts/recovery/$"))

    # The last 30 days: two emails, one recovered.
    assert page.locator('[data-figure="total-sent"]').inner_text() == "2"
    assert page.locator('[data-figure="total-recovered"]').inner_text() == "1"
    assert page.locator(".recovery-chart rect.bar-sent").count() == 30

    # Sixty days back: the older email and its recovery come in, in both currencies.
    start = (timezone.localdate() - timedelta(days=60)).isoformat()
    page.locator("#id_start").fill(start)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"start=" + start))
    assert page.locator('[data-figure="total-sent"]').inner_text() == "3"
    assert page.locator('[data-figure="total-recovered"]').inner_text() == "2"
    assert page.locator('[data-figure="total-revenue-EUR"]').inner_text() == "30.00 EUR"
    assert page.locator(".recovery-chart rect.bar-sent").count() == 61

    # The recovered figure opens the carts list with those two carts, and only them.
    page.locator('[data-figure="total-recovered"]').click()
    page.wait_for_url(re.compile(r"/carts/\?.*outcome=recovered"))
    rows = page.locator("tr[data-cart]")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.cart)")) == sorted(
        [recent.hubspot_id, older.hubspot_id]
    )
    assert page.locator("#recovery-filter-note").is_visible()
    assert blocked == []
