"""The sync-state component: where a record (or a pipeline or stage) stands with HubSpot, drawn from the
outbox's reads (``hubspot_sync.sync_state``) with the ``record-state`` partial of hubspot/record.html. It
keeps itself up to date until settled; any page can embed it with ``{% sync_badge obj %}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.template.context import Context
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from hubspot_sync.sync_state import sync_state_for

register = template.Library()


def render_sync_state(obj: Any, *, request: HttpRequest | None = None) -> SafeString:
    """The record's sync-state component (pending, in HubSpot, failed with HubSpot's message, conflict with
    the choices); with the request, every record of its type is read once per request."""
    state = sync_state_for(obj, request=request)
    return render_to_string("hubspot/record.html#record-state", {"sync": state}, request=request)


@register.simple_tag(takes_context=True)
def sync_badge(context: Context, obj: Any) -> SafeString:
    """The record's sync state (pending, pushed, failed, conflict): the self-updating component."""
    return render_sync_state(obj, request=context.get("request"))
