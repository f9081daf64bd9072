"""A board card's HTML, drawn in Python: a board shows hundreds of cards, and the template engine's cost per
variable made drawing them the slowest part of the page. Every value HubSpot sent is escaped with
html.escape (what Django's own escape does), so its text shows as text, never as markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from hubspot_sync.labels import without_bidi_overrides
from orders.models import Order
from pipelines.models import Pipeline

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _line(order: Order, name: str, label: str) -> str:
    if name == "customer":
        value = order.customer_name or order.customer_email or "—"
        return (
            f'<div><dt class="visually-hidden">{escape(label)}</dt><dd><bdi>{escape(value)}</bdi></dd></div>'
        )
    if name == "hs_total_price":
        total = f"{order.total:,.2f} {order.currency}" if order.total is not None else "—"
        return (
            f'<div><dt class="visually-hidden">{escape(label)}</dt>'
            f'<dd class="money">{escape(total)}</dd></div>'
        )
    return f"<div><dt>{escape(label)}</dt><dd><bdi>{escape(order.prop(name) or '—')}</bdi></dd></div>"


def card_head(
    order: Order,
    *,
    pipeline: Pipeline | None,
    card_fields: list[tuple[str, str]],
    sync: Any,
    request: Any = None,
) -> SafeString:
    """Selection box, name (opening the drawer), the pipeline's card lines, days in stage, sync state."""
    name = escape(without_bidi_overrides(order.name or "(no name)"))
    hubspot_id = escape(order.hubspot_id)
    url = escape(order.drawer_url)
    days = order.days_in_stage
    foot = ""
    if days is not None:
        stale = pipeline is not None and order.is_stale(pipeline)
        foot = (
            f'<span class="days{" days-stale" if stale else ""}" title="Days in this stage">'
            f"{days} day{'' if days == 1 else 's'}{' · stale' if stale else ''}</span>"
        )
    state = ""
    if sync is not None and sync.state != "settled":
        # Cards don't poll one by one: the board's version poll redraws them when anything changes.
        state = render_to_string(
            "hubspot/record.html#record-state", {"sync": sync, "poll": False}, request=request
        )
    lines = "".join(_line(order, n, label) for n, label in card_fields)
    return mark_safe(  # noqa: S308 - every value above is escaped; the sync state comes from a template
        f'<input type="checkbox" class="select-card" name="selected" value="{hubspot_id}" form="bulk-form" '
        f'aria-label="Select {name}">'
        f'<h3 class="order-name"><a href="{url}" hx-get="{url}" hx-target="#drawer" hx-swap="innerHTML" '
        f'hx-push-url="true"><bdi>{name}</bdi></a></h3>'
        f'<dl class="card-lines">{lines}</dl>'
        f'<p class="card-foot">{foot}<span class="sync-slot" data-sync-for="{hubspot_id}">{state}</span></p>'
    )


def card_item(
    order: Order,
    *,
    pipeline: Pipeline | None,
    card_fields: list[tuple[str, str]],
    sync: Any,
    query: str,
    request: Any = None,
    refused: bool = False,
    extra: str = "",
) -> SafeString:
    """The whole card: head, then ``extra`` (a refusal's reason or the required-values prompt, already
    rendered), then the "Move to…" menu."""
    hubspot_id = escape(order.hubspot_id)
    stale = pipeline is not None and order.is_stale(pipeline)
    # Where the card sorts in its column (newest first, then the id), so a live update can put a card in
    # its place without drawing the column again.
    created = (
        (order.remote_created_at - _EPOCH) // timedelta(microseconds=1) if order.remote_created_at else -1
    )
    head = card_head(order, pipeline=pipeline, card_fields=card_fields, sync=sync, request=request)
    return mark_safe(  # noqa: S308 - every value is escaped; head, menu and extra are safe strings
        f'<li class="card-item{" card-refused" if refused else ""}" id="order-{hubspot_id}" '
        f'data-order="{hubspot_id}" data-stage="{escape(str(order.stage_id))}" '
        f'data-created="{created}" data-pk="{order.pk}" '
        f'data-move-url="{escape(order.move_url)}" tabindex="-1">'
        f'<article class="order-card{" order-stale" if stale else ""}">'
        f"{head}{extra}{card_menu(order, query=query)}</article></li>"
    )


def card_menu(order: Order, *, query: str) -> SafeString:
    """The keyboard path: "Move to…", whose form loads when it opens (few of a board's menus ever are)."""
    url = escape(f"{order.move_url}?filters={quote(query)}")
    name = escape(without_bidi_overrides(order.name or "this order"))
    return mark_safe(  # noqa: S308 - escaped above
        f'<details class="move-menu" hx-get="{url}" hx-trigger="toggle once" hx-target="find .move-form" '
        # The accessible name starts with the visible text (WCAG 2.5.3), and says which order.
        f'hx-swap="innerHTML"><summary>Move to…<span class="visually-hidden"> (order {name})</span></summary>'
        f'<div class="move-form"><a href="{url}">Choose a stage…</a></div></details>'
    )
