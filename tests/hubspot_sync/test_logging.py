"""Secrets never reach the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hubspot_sync.logging import RedactSecrets, redact


def test_configured_token_and_bearer_headers_are_redacted(settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
    text = redact(f"GET /crm/v3/objects/orders Authorization: Bearer {settings.HUBSPOT_ACCESS_TOKEN}")
    assert settings.HUBSPOT_ACCESS_TOKEN not in text
    assert "[redacted]" in text


def test_token_shapes_are_redacted_even_when_not_configured() -> None:
    text = redact("retrying with token pat-eu1-abcdefab-cdef-abcd-efab-cdefabcdefab after 429")
    assert "abcdefab-cdef" not in text


@pytest.mark.parametrize("secret_setting", ["HUBSPOT_CLIENT_SECRET", "EMAIL_HOST_PASSWORD"])
def test_filter_rewrites_log_records(settings: Any, secret_setting: str, caplog: Any) -> None:
    setattr(settings, secret_setting, "s3cr3t-value-that-is-long")
    logger = logging.getLogger("orderdeck.test")
    logger.addFilter(RedactSecrets())
    try:
        with caplog.at_level(logging.INFO, logger="orderdeck.test"):
            logger.info("signing with %s", "s3cr3t-value-that-is-long")
    finally:
        logger.filters.clear()
    assert "s3cr3t-value-that-is-long" not in caplog.text
    assert "[redacted]" in caplog.text
