"""Template helpers for boards and cards."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.template.context import Context
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from hubspot_sync.sync_state import sync_state_for
from hubspot_sync.templatetags.hubspot_sync import render_sync_state
from orders.cards import card_item
from orders.models import Order

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
def prop(obj: Any, name: str) -> str:
    """A HubSpot property of a cached record, as text (autoescaped by the template)."""
    return obj.prop(name) if hasattr(obj, "prop") else ""


@register.simple_tag(takes_context=True)
def sync_badge(context: Context, obj: Any) -> SafeString | str:
    """The record's sync state (pending, pushed, failed, conflict), from the outbox: the self-updating
    component (the drawer, the table); the same as hubspot_sync's, for templates that load these helpers."""
    return render_sync_state(obj, request=context.get("request"))


@register.filter
def getlist(querydict: Any, key: str) -> list[str]:
    return list(querydict.getlist(key)) if hasattr(querydict, "getlist") else []


def _card(context: Context, order: Order, extra: str = "", *, alone: bool = False) -> SafeString:
    request = context.get("request")
    return card_item(
        order,
        pipeline=context.get("pipeline"),
        card_fields=context.get("card_fields") or [],
        # A card drawn alone reads its own sync state; a column's cards share the page's (read once).
        sync=sync_state_for(order, request=None if alone else request),
        query=context.get("query") or "",
        request=request,
        refused=bool(context.get("refusal")),
        extra=extra,
    )


@register.simple_tag(takes_context=True)
def order_cards(context: Context, cards: list[Order]) -> SafeString:
    """A column's cards, drawn in Python (a board draws hundreds; see orders.cards)."""
    return mark_safe("".join(_card(context, order) for order in cards))  # noqa: S308 - each card is safe


@register.simple_tag(takes_context=True)
def order_card(context: Context, order: Order) -> SafeString:
    """One card, with the refusal's reason or the required-values prompt when the context has one."""
    extra = ""
    if context.get("refusal") or context.get("prompt_stage") or context.get("notice"):
        values: dict[str, Any] = context.flatten()  # type: ignore[assignment]
        extra = render_to_string("orders/board.html#card-extra", values, request=context.get("request"))
    return _card(context, order, extra, alone=True)
