"""Template helpers of the carts console."""

from __future__ import annotations

from typing import Any

from django import template

from carts import queries
from carts.forms import STATE_LABELS

register = template.Library()

# Pill colours of recovery states and send statuses.
_STATE_PILLS = {
    "new": "",
    "emailed": "pill-ok",
    "clicked": "pill-ok",
    "recovered": "pill-ok",
    "unsubscribed": "pill-bad",
    "not_emailable": "pill-warn",
}
_SEND_PILLS = {
    "queued": "pill-warn",
    "sending": "pill-warn",
    "sent": "pill-ok",
    "uncertain": "pill-bad",
    "skipped": "",
    "failed": "pill-bad",
}


@register.filter
def safe_link(url: Any) -> str:
    """The address when it is http(s), else "" (no javascript: or data: link is ever made)."""
    return queries.safe_link("" if url is None else str(url))


@register.filter
def state_label(state: Any) -> str:
    return STATE_LABELS.get(str(state), str(state or ""))


@register.filter
def state_pill(state: Any) -> str:
    return _STATE_PILLS.get(str(state), "")


@register.filter
def send_pill(status: Any) -> str:
    return _SEND_PILLS.get(str(status), "")


@register.simple_tag
def mailbox_enabled() -> bool:
    """Whether the demo's Mailbox page exists (for the navigation)."""
    return queries.mailbox_enabled()
