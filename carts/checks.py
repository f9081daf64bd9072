"""System checks of the carts app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def site_url_is_https(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Recovery emails link to SITE_URL: in production it must be the public https address."""
    if settings.SITE_URL.startswith("https://"):
        return []
    return [
        Warning(
            f"SITE_URL is {settings.SITE_URL!r}: the links in recovery emails (click tracking, unsubscribe) "
            "should use the site's public https address.",
            hint="Set SITE_URL, e.g. https://orders.shop.example",
            id="carts.W001",
        )
    ]
