"""Reads of the carts console that the models' QuerySet methods don't already name: the list under its
filters, the tab counts, the filter choices, and what a cart's drawer shows. Reads only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import CharField, Count, F, Func, QuerySet
from django.utils import timezone

from carts import search
from carts.forms import STATES
from carts.models import (
    Cart,
    CartEvent,
    CartQuerySet,
    EmailState,
    RecoverySend,
    completed_statuses,
    looks_like_email,
)
from hubspot_sync.models import Association, Contact, LineItem

AGE_BOUNDS: dict[str, tuple[timedelta | None, timedelta | None]] = {
    # (newer than, older than) the cart's last change
    "day": (timedelta(days=1), None),
    "week": (timedelta(days=7), timedelta(days=1)),
    "month": (timedelta(days=30), timedelta(days=7)),
    "older": (None, timedelta(days=30)),
}
# Newest and oldest read a page in the order of the (remote_updated_at, id) index; a listed cart always has
# a last change (abandoned means unchanged since a time), so where nulls sort doesn't matter there.
ORDERINGS: dict[str, tuple[Any, ...]] = {
    "newest": ("-remote_updated_at", "-pk"),
    "oldest": ("remote_updated_at", "pk"),
    "value_high": (F("total").desc(nulls_last=True), "-pk"),
    "value_low": (F("total").asc(nulls_last=True), "pk"),
    "last_email": (F("last_email_at").desc(nulls_last=True), "-pk"),
}


def console_carts(now: datetime | None = None) -> CartQuerySet:
    """The carts the console lists: abandoned ones, and those that were emailed whatever became of them
    (a recovered cart has an order and is no longer abandoned, but staff want to see it)."""
    abandoned = Cart.objects.abandoned(now=now)
    emailed = Cart.objects.live().exclude(email_state=EmailState.NEW)
    return (abandoned | emailed).with_recovery_state()


def filtered(
    carts: CartQuerySet, filters: dict[str, Any], *, now: datetime | None = None, narrow: bool = True
) -> CartQuerySet:
    """The carts under every filter but the state (the tabs count each state under the rest). ``narrow``: a
    search goes through the substring index's candidates (the same carts either way)."""
    if filters.get("invalid"):
        return carts.none()
    now = now or timezone.now()
    if age := filters.get("age"):
        newer, older = AGE_BOUNDS[age]
        if newer is not None:
            carts = carts.filter(remote_updated_at__gte=now - newer)
        if older is not None:
            carts = carts.filter(remote_updated_at__lt=now - older)
    if (low := filters.get("min_total")) is not None:
        carts = carts.filter(total__gte=low)
    if (high := filters.get("max_total")) is not None:
        carts = carts.filter(total__lte=high)
    if store := filters.get("store"):
        carts = carts.filter(store=store)
    if currency := filters.get("currency"):
        carts = carts.filter(currency=currency)
    # The carts behind a recovery dashboard figure (sent in a range, step, template, outcome).
    from carts.dashboard import carts_behind

    carts = carts_behind(carts, filters)
    if q := filters.get("q"):
        carts = _search(carts, q, narrow=narrow)
    return carts


def _search(carts: CartQuerySet, q: str, *, narrow: bool) -> CartQuerySet:
    """A whole email address is that customer's carts, found through the address's index (the question support
    gets most); anything else is searched in addresses, names and ids, among the carts the substring index
    (carts.search) says may contain it."""
    if looks_like_email(q) and " " not in q:
        return carts.filter(customer_email__in=sorted({q, q.lower()}))
    return (search.candidates(carts, q) if narrow else carts).search(q)


def in_state(carts: CartQuerySet, filters: dict[str, Any]) -> CartQuerySet:
    if state := filters.get("state"):
        return carts.filter(recovery_state=state)  # type: ignore[misc]  # annotated by with_recovery_state()
    return carts


def ordered(carts: CartQuerySet, sort: str) -> CartQuerySet:
    return carts.order_by(*ORDERINGS.get(sort, ORDERINGS["newest"]))


def state_counts(carts: CartQuerySet) -> dict[str, int]:
    """Each state's count (and the total) under the filters, in one grouped query (the state is worked out
    once per cart)."""
    counts = dict.fromkeys([state for state, _ in STATES], 0)
    # recovery_state is annotated by with_recovery_state(), which the type checker can't see.
    by_state = carts.order_by().values("recovery_state")  # type: ignore[misc]
    grouped = by_state.annotate(n=Count("*")).values_list("recovery_state", "n")
    for state, n in grouped:
        counts[state] = counts.get(state, 0) + int(n)
    counts["all"] = sum(counts.values())
    return counts


class _Unindexed(Func):
    """A column SQLite's planner won't read through an index (unary +, a no-op on any value): its documented
    hint. https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_"""

    template = "+%(expressions)s"
    output_field = CharField()


class IdsFirst:
    """A list's pages read in two steps within one query: the page's ids from an index that holds every column
    the filters and the order need, then those carts' rows."""

    ordered = True  # for the paginator: the pages come in the list's order

    def __init__(self, ids: QuerySet[Cart, Any], rows: CartQuerySet) -> None:
        self.ids, self.rows = ids, rows

    def __getitem__(self, page: slice) -> list[Cart]:
        return list(self.rows.filter(pk__in=self.ids[page]))


# A search matching at least this many carts fills its page sooner by reading carts in the list's order than
# by reading every candidate the substring index gives and sorting them.
DENSE_SEARCH = 1000


def page_source(
    console: CartQuerySet, filters: dict[str, Any], sort: str, *, matches: int, now: datetime
) -> CartQuerySet | IdsFirst:
    """The list's carts in order (``matches`` of them, as the tabs counted), for its paginator to take a page
    from.

    A search matching many carts reads carts in the list's order rather than through the substring index
    (the page fills within the first few hundred); the tabs' counts went through the index.

    Under a value range, in the order of the last change, SQLite's planner picks an index on the value (with
    the state's, when one is chosen) and then reads and sorts every cart in the range: its statistics can't
    tell how many there are. The range's entries in cart_filter_cover hold the state, the change time and the
    id too, so the page's ids come from that index alone and only the page's rows are read; the unary + hint
    keeps the state's index out of it."""
    narrow = matches < DENSE_SEARCH
    matching = filtered(console, filters, now=now, narrow=narrow)
    carts = ordered(in_state(matching, filters), sort)
    value_range = filters.get("min_total") is not None or filters.get("max_total") is not None
    if connection.vendor != "sqlite" or not value_range or sort not in ("newest", "oldest"):
        return carts
    ids = matching
    if state := filters.get("state"):
        ids = ids.alias(state_unindexed=_Unindexed(F("recovery_state"))).filter(state_unindexed=state)
    return IdsFirst(ordered(ids, sort).values("pk"), ordered(Cart.objects.all(), sort))


def explain_rows(rows: list[Cart]) -> list[Cart]:
    """Set ``why`` on the page's not-emailable rows: the reason, with the contacts' consent read in one query
    (only under the "marketing" policy). Such a row is never suppressed (that row would be unsubscribed)."""
    unexplained = [cart for cart in rows if getattr(cart, "recovery_state", "") == "not_emailable"]
    consent: dict[str, str] = {}
    if unexplained and settings.CARTS_CONSENT_POLICY == "marketing":
        ids = {cart.contact_hubspot_id for cart in unexplained if cart.contact_hubspot_id}
        for contact in Contact.objects.filter(hubspot_id__in=ids):
            consent[contact.hubspot_id] = contact.prop(settings.CARTS_CONSENT_PROPERTY)
    for cart in unexplained:
        cart.why = cart.emailable_reason_given(  # type: ignore[attr-defined]
            suppressed=False, consent=consent.get(cart.contact_hubspot_id, "")
        )
    return rows


# The distinct (store, currency) pairs of live carts, read as a loose index scan of cart_store_currency: each
# step seeks the next currency of the same store, else the next store and its first currency, so the cost
# grows with the pairs, not with the carts (a DISTINCT reads every cart's entry). Each seek is ORDER BY ...
# LIMIT 1, which both databases answer from the index's first entry (SQLite reads a whole range for MIN()
# under a range condition).
def _next(column: str, where: str) -> str:
    return f"(SELECT {column} FROM carts_cart WHERE archived = %s AND {where} ORDER BY {column} LIMIT 1)"  # noqa: S608


_NEXT_CURRENCY = _next("currency", "store = p.store AND currency > p.currency")
_NEXT_STORE = _next("store", "store > p.store")
_CHOICES = f"""
WITH RECURSIVE pairs (store, currency) AS (
    SELECT * FROM (
        SELECT store, currency FROM carts_cart WHERE archived = %s ORDER BY store, currency LIMIT 1
    ) AS first_pair
    UNION ALL
    SELECT CASE WHEN {_NEXT_CURRENCY} IS NULL THEN {_NEXT_STORE} ELSE p.store END,
           COALESCE({_NEXT_CURRENCY}, {_next("currency", "store = " + _NEXT_STORE)})
    FROM pairs AS p WHERE {_NEXT_CURRENCY} IS NOT NULL OR {_NEXT_STORE} IS NOT NULL
)
SELECT store, currency FROM pairs LIMIT %s
"""  # noqa: S608 - built from the constants above, never from input
MAX_CHOICES = 2000


def filter_choices() -> dict[str, list[str]]:
    """The stores and currencies carts have, for the filters' lists (one query, a seek per pair)."""
    with connection.cursor() as cursor:
        cursor.execute(_CHOICES, [False] * _CHOICES.count("archived = %s") + [MAX_CHOICES])
        pairs = cursor.fetchall()
    stores: set[str] = set()
    currencies: set[str] = set()
    for store, currency in pairs:
        if store:
            stores.add(store)
        if currency:
            currencies.add(currency)
    return {"stores": sorted(stores), "currencies": sorted(currencies)}


def definitions() -> dict[str, Any]:
    """What "abandoned" and "emailable" mean here, from the settings, as the list states them."""
    return {
        "abandoned_after_min": settings.CARTS_ABANDONED_AFTER_MIN,
        "completed": completed_statuses(),
        "consent_policy": settings.CARTS_CONSENT_POLICY,
        "consent_property": settings.CARTS_CONSENT_PROPERTY,
        "cap_hours": settings.CARTS_EMAIL_CAP_HOURS,
    }


# --- one cart ---------------------------------------------------------------------------------------------


@dataclass
class CartItems:
    items: list[LineItem]
    total: Decimal


def line_items(cart: Cart) -> CartItems:
    """The cart's line items (its edges to line items in the cache), with the sum of their amounts."""
    ids = Association.objects.from_record("carts", cart.hubspot_id, "line_items").values("to_id")
    items = list(LineItem.objects.filter(hubspot_id__in=ids, archived=False).order_by("name", "pk"))
    total = sum((item.amount or (item.quantity or 0) * (item.price or 0) for item in items), Decimal(0))
    return CartItems(items, Decimal(total))


def contact(cart: Cart) -> Contact | None:
    """The cart's contact: the one copied onto it, else its first contact edge."""
    if cart.contact_hubspot_id:
        found = Contact.objects.filter(hubspot_id=cart.contact_hubspot_id).first()
        if found:
            return found
    ids = Association.objects.from_record("carts", cart.hubspot_id, "contacts").values("to_id")
    return Contact.objects.filter(hubspot_id__in=ids, archived=False).order_by("hubspot_id").first()


def log(cart: Cart, limit: int = 200) -> list[CartEvent]:
    """The cart's whole log, newest first: every send asked for, sent, skipped (with why), click, state
    change."""
    return list(
        CartEvent.objects.filter(cart=cart).select_related("by", "send").order_by("-at", "-pk")[:limit]
    )


def sends(cart: Cart) -> list[RecoverySend]:
    return list(
        RecoverySend.objects.filter(cart=cart)
        .select_related("requested_by", "template")
        .order_by("-created_at")
    )


PENDING_SEND_STATUSES = ("queued", "sending")


def has_pending_send(send_list: list[RecoverySend]) -> bool:
    return any(s.status in PENDING_SEND_STATUSES for s in send_list)


def recent_carts(limit: int = 25) -> list[Cart]:
    """Carts to preview a template against (the most recently changed ones with a contact)."""
    return list(
        Cart.objects.live()
        .exclude(customer_email="")
        .order_by(F("remote_updated_at").desc(nulls_last=True))[:limit]
    )


def safe_link(url: str) -> str:
    """The recovery link when it is an http(s) address (anything else, such as javascript:, is no link)."""
    url = (url or "").strip()
    return url if url.lower().startswith(("https://", "http://")) and len(url) <= 2000 else ""


def reason_counts(reasons: Any) -> list[tuple[str, int]]:
    """The skip reasons of a bulk preview as (reason, count), most frequent first, whatever shape they come
    in (a mapping of reason to count, or pairs)."""
    pairs = reasons.items() if hasattr(reasons, "items") else reasons or []
    counted = [(str(reason), int(count)) for reason, count in pairs]
    return sorted(counted, key=lambda pair: (-pair[1], pair[0]))


# --- the demo Mailbox ------------------------------------------------------------------------------------


def mailbox_enabled() -> bool:
    """The Mailbox page exists where a local SMTP server stores what it receives (the demo), never in
    production."""
    return bool(getattr(settings, "MAILBOX_DIR", "")) and not getattr(settings, "PRODUCTION", False)


def mail_part(message: Any, kind: str) -> str:
    """A message's HTML or text part, from what the Mailbox reader gives."""
    value = getattr(message, kind, None)
    if value is None:
        value = getattr(message, f"{kind}_body", None)
    return str(value or "")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


def mail_links(message: Any, limit: int = 50) -> list[tuple[str, str]]:
    """The http(s) links of a message's HTML part (or its text part), as (address, text): listed beside the
    sandboxed view so they can be followed from our page too."""
    found: list[tuple[str, str]] = []
    parser = _Links()
    parser.feed(mail_part(message, "html"))
    found = [(href, text) for href, text in parser.links if safe_link(href)]
    if not found:
        found = [(url, "") for url in re.findall(r"https?://[^\s<>\"']+", mail_part(message, "text"))]
    unique: list[tuple[str, str]] = []
    for href, text in found:
        if href not in [h for h, _ in unique]:
            unique.append((href, text))
    return unique[:limit]
