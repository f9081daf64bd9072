"""The Pipelines and Abandoned carts pages show what the cache holds, escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from carts.models import Cart
from tests import factories

pytestmark = pytest.mark.django_db


def test_pipelines_list_stages_rules_and_order_counts(client: Any) -> None:
    client.force_login(factories.pipeline_admin())
    pipeline = factories.pipeline_with_stages(label="Online <orders>")
    paid = pipeline.stages.get(label="Paid")
    paid.required_properties = ["hs_payment_status"]
    paid.save()
    for _ in range(3):
        factories.OrderFactory(stage=paid)
    html = client.get("/pipelines/").content.decode()
    assert "Online &lt;orders&gt;" in html
    assert "hs_payment_status" in html
    assert f'id="stage-{paid.pk}"' in html
    assert response_count(html, paid.pk) == "3"


def response_count(html: str, stage_pk: int) -> str:
    """The order count the stage's row shows."""
    import re

    row = html.split(f'id="stage-{stage_pk}"', 1)[1]
    found = re.search(r'class="stage-count num"><span class="visually-hidden">Orders: </span>([\d,]+)<', row)
    assert found, row[:2000]
    return found[1]


def test_abandoned_carts_lists_carts_without_an_order(support_client: Any) -> None:
    # Abandoned: unchanged for CARTS_ABANDONED_AFTER_MIN (60) minutes.
    old = timezone.now() - timedelta(hours=2)
    Cart.objects.create(
        hubspot_id="1",
        name="<b>Cart A</b>",
        cart_url="javascript:alert(1)",
        status="abandoned",
        remote_updated_at=old,
    )
    Cart.objects.create(hubspot_id="2", name="Converted", order_hubspot_id="77", remote_updated_at=old)
    html = support_client.get("/carts/").content.decode()
    assert "&lt;b&gt;Cart A&lt;/b&gt;" in html and "Converted" not in html
    assert 'href="javascript' not in html
