"""A logging filter that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re

from django.conf import settings

# Bearer tokens in headers or URLs, and HubSpot's private-app token shape (pat-<region>-<uuid>).
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+"),
    re.compile(r"pat-[a-z0-9]{2,4}-[0-9a-f-]{20,}"),
    re.compile(r"(?i)(hapikey=)[^&\s]+"),
]


class RedactSecrets(logging.Filter):
    """Replace configured secrets and token-shaped strings by '[redacted]' in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def redact(text: str) -> str:
    for secret in _configured_secrets():
        text = text.replace(secret, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


def _configured_secrets() -> list[str]:
    names = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET", "EMAIL_HOST_PASSWORD", "SECRET_KEY")
    # Short values would redact ordinary words; real secrets are long.
    return [value for name in names if len(value := str(getattr(settings, name, "") or "")) >= 8]
