"""`check --deploy` warns when recovery emails would link to a non-https SITE_URL."""

from __future__ import annotations

from typing import Any

from carts.checks import site_url_is_https


def test_a_plain_http_site_url_is_a_deploy_warning(settings: Any) -> None:
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert [m.id for m in site_url_is_https()] == ["carts.W001"]
    settings.SITE_URL = "https://orders.shop.example"
    assert site_url_is_https() == []
