"""The carts list's rows, drawn in Python: a page shows fifty carts of nine cells each, and the template
engine's cost per variable, filter and tag made drawing them most of the page's time. What each cell shows is
what the list's template showed; every value is escaped with html.escape (what Django's own escape does), so
HubSpot's text shows as text, never as markup."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timezone import is_aware, localtime
from django.utils.translation import pgettext

from carts import queries
from carts.models import Cart
from carts.templatetags.carts_extras import state_label, state_pill
from hubspot_sync.labels import without_bidi_overrides

NEVER = '<span class="muted">Never</span>'
LINK_CHARS = 44  # the recovery link is shown cut to this many characters (the whole link is copied)


class _Page:
    """What every row of one page shares: the cart page's address prefix and the truncation mark, looked up
    once (each costs a URL resolver or translation lookup per call)."""

    def __init__(self) -> None:
        self.cart_prefix = reverse("carts:cart", args=["0"]).removesuffix("0/")
        self.truncated = pgettext("String to return when truncating text", "%(truncated_text)s…")

    def cart_url(self, hubspot_id: str) -> str:
        if hubspot_id.isascii() and hubspot_id.isdigit():
            return f"{self.cart_prefix}{hubspot_id}/"
        try:
            return reverse("carts:cart", args=[hubspot_id])
        except NoReverseMatch:
            return ""


def _plain(value: Any) -> str:
    return without_bidi_overrides("" if value is None else str(value))


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return ""


def _time(value: datetime | None, empty: str) -> str:
    if not value:
        return empty
    # As the date filter shows it: in the current time zone (an aware value), ISO 8601.
    local = localtime(value) if settings.USE_TZ and is_aware(value) else value
    return f'<time datetime="{escape(local.isoformat())}">{escape(str(naturaltime(value)))}</time>'


def _customer(cart: Cart) -> str:
    name = f"<bdi>{escape(_plain(cart.customer_name))}</bdi><br>" if cart.customer_name else ""
    if cart.customer_email:
        email = f'<span class="muted"><bdi>{escape(_plain(cart.customer_email))}</bdi></span>'
    elif not cart.customer_name:
        email = '<span class="muted">No contact</span>'
    else:
        email = ""
    return f"{name}\n          {email}"


def _recovery(cart: Cart) -> str:
    state = getattr(cart, "recovery_state", "")
    why = ""
    if state == "not_emailable":
        why = f'<span class="cart-why">{escape(str(getattr(cart, "why", "") or ""))}</span>'
    elif state == "unsubscribed":
        why = '<span class="cart-why">Unsubscribed</span>'
    return (
        f'<span class="pill {escape(state_pill(state))}">{escape(state_label(state))}</span>\n          {why}'
    )


def _link(cart: Cart, page: _Page, hubspot_id: str) -> str:
    url = queries.safe_link("" if cart.cart_url is None else str(cart.cart_url))
    if not url:
        return '<span class="muted">No link</span>'
    shown = Truncator(url).chars(LINK_CHARS, truncate=page.truncated)
    return (
        f'\n          <a href="{escape(url)}" target="_blank" rel="noopener noreferrer" class="cart-link">'
        f"<bdi>{escape(shown)}</bdi></a>\n"
        f'          <button type="button" class="button copy" data-copy="{escape(url)}">Copy'
        f'<span class="visually-hidden"> the recovery link of cart {hubspot_id}</span></button>\n          '
    )


def cart_row(cart: Cart, page: _Page) -> str:
    hubspot_id = escape(cart.hubspot_id)
    url = escape(page.cart_url(cart.hubspot_id))
    name = _plain(cart.name)
    value = (
        f'{escape(_money(cart.total))} <span class="muted">{escape(cart.currency)}</span>'
        if cart.total is not None
        else "—"
    )
    return (
        f'\n    <tr id="cart-row-{hubspot_id}" data-cart="{hubspot_id}" '
        f'data-state="{escape(str(getattr(cart, "recovery_state", "")))}">\n'
        f'      <td class="tick"><input type="checkbox" name="selected" value="{hubspot_id}" '
        f'form="bulk-form" data-tick\n             aria-label="Tick {escape(name or "cart")} ({hubspot_id})">'
        "</td>\n"
        f'      <td data-label="Cart"><a class="cart-open" href="{url}"\n'
        f'             hx-get="{url}" hx-target="#cart-drawer-body" hx-swap="innerHTML" hx-push-url="false"\n'
        f"             data-open-drawer><bdi>{escape(name or '(no name)')}</bdi></a>\n"
        f'          <span class="muted cart-id">#{hubspot_id}</span></td>\n'
        f'      <td data-label="Customer">{_customer(cart)}</td>\n'
        f'      <td data-label="Recovery">{_recovery(cart)}</td>\n'
        f'      <td data-label="Value" class="num">{value}</td>\n'
        f'      <td data-label="Store"><bdi>{escape(_plain(cart.store) or "—")}</bdi></td>\n'
        f'      <td data-label="Changed">{_time(cart.remote_updated_at, "—")}</td>\n'
        f'      <td data-label="Last email">{_time(cart.last_email_at, NEVER)}</td>\n'
        f'      <td data-label="Recovery link" class="link-cell">{_link(cart, page, hubspot_id)}</td>\n'
        f"    </tr>\n    "
    )


def cart_rows(carts: Iterable[Cart]) -> SafeString:
    """The table rows of a page of carts (``explain_rows`` has set ``why`` on the not-emailable ones)."""
    page = _Page()
    return mark_safe("".join(cart_row(cart, page) for cart in carts))  # noqa: S308 - every value is escaped
