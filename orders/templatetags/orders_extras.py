"""Template helpers for boards and cards."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.template.context import Context
from django.utils.safestring import SafeString

from orders.models import Order
from pipelines.models import Pipeline

register = template.Library()


@register.filter
def money(value: Any) -> str:
    """1234.5 → "1,234.50" (HubSpot sends amounts as strings; the cache keeps them as decimals)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return f"{amount:,.2f}"


@register.filter
def stale_on(order: Order, pipeline: Pipeline | None) -> bool:
    return bool(pipeline) and order.is_stale(pipeline)  # type: ignore[arg-type]


@register.filter
def prop(obj: Any, name: str) -> str:
    """A HubSpot property of a cached record, as text (autoescaped by the template)."""
    return obj.prop(name) if hasattr(obj, "prop") else ""


@register.simple_tag(takes_context=True)
def sync_badge(context: Context, obj: Any) -> SafeString | str:
    """The record's sync state (pending, pushed, failed, conflict), from the outbox: the self-updating
    component (the drawer, the table)."""
    from hubspot.outbox import render_sync_state

    return render_sync_state(obj, request=context.get("request"))


@register.simple_tag(takes_context=True)
def sync_state_of(context: Context, obj: Any) -> Any:
    """The record's sync state, for a card to include the component with (read once per request)."""
    from hubspot.outbox import sync_state_for

    return sync_state_for(obj, request=context.get("request"))


@register.filter
def getlist(querydict: Any, key: str) -> list[str]:
    return list(querydict.getlist(key)) if hasattr(querydict, "getlist") else []


@register.simple_tag(takes_context=True)
def order_card_head(context: Context, order: Order) -> SafeString:
    from hubspot.outbox import sync_state_for
    from orders.cards import card_head

    request = context.get("request")
    return card_head(
        order,
        pipeline=context.get("pipeline"),
        card_fields=context.get("card_fields") or [],
        sync=sync_state_for(order, request=request),
        request=request,
    )


@register.simple_tag(takes_context=True)
def order_card_menu(context: Context, order: Order) -> SafeString:
    from orders.cards import card_menu

    return card_menu(order, query=context.get("query") or "")
