"""Attribution: which carts a recovery email recovered, and the revenue it brought back.

A cart is recovered when it gains an order (or a completed status) within CARTS_ATTRIBUTION_DAYS after a
recovery email went out (was accepted by the mail server). The order's total, in its currency, is the
recovered revenue; it is credited to the last email clicked before the order, else the last one sent.

Everything here is computed from what the cache holds (the sends, the cart, its order), so it is idempotent
and can be recomputed at any time: ``attribute_carts`` for some carts (the sync's hooks call it when carts or
orders arrive), ``recovery_recompute`` for all of them (and the ``recovery_recompute`` command).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carts import summary
from carts.models import (
    Cart,
    EmailState,
    RecoveredBy,
    Recovery,
    RecoverySend,
    SendStatus,
    completed_statuses,
)
from hubspot_sync.cache import chunks
from hubspot_sync.models import Association
from hubspot_sync.registry import MirrorType

CHUNK = 500


def window() -> timedelta:
    return timedelta(days=max(int(getattr(settings, "CARTS_ATTRIBUTION_DAYS", 7)), 0))


@dataclass(frozen=True)
class SentEmail:
    pk: int
    sent_at: datetime
    clicked_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """What made a cart recovered: its order (or "" for a completed status), when, and for how much."""

    order_hubspot_id: str
    at: datetime
    amount: Decimal | None
    currency: str


def credited(sends: Iterable[SentEmail], recovered_at: datetime, span: timedelta) -> tuple[int, str] | None:
    """The send credited with a recovery at ``recovered_at``: the last one clicked before it, else the last
    one sent, among those sent in the window before it (both ends included); None when none was."""
    eligible = [s for s in sends if recovered_at - span <= s.sent_at <= recovered_at]
    if not eligible:
        return None
    clicked = [s for s in eligible if s.clicked_at is not None and s.clicked_at <= recovered_at]
    if clicked:
        best = max(clicked, key=lambda s: (s.clicked_at, s.pk))
        return best.pk, RecoveredBy.CLICK.value
    best = max(eligible, key=lambda s: (s.sent_at, s.pk))
    return best.pk, RecoveredBy.SEND.value


def _outcomes(carts: list[dict[str, Any]]) -> dict[int, Outcome]:
    """Each cart's order (read from the orders cache when it is there) or completed status."""
    from orders.models import Order

    order_ids = [c["order_hubspot_id"] for c in carts if c["order_hubspot_id"]]
    orders = {
        o["hubspot_id"]: o
        for o in Order.objects.filter(hubspot_id__in=order_ids).values(
            "hubspot_id", "remote_created_at", "total", "currency"
        )
    }
    done = set(completed_statuses())
    found: dict[int, Outcome] = {}
    for cart in carts:
        order = orders.get(cart["order_hubspot_id"]) if cart["order_hubspot_id"] else None
        if order is not None:
            at = order["remote_created_at"] or cart["remote_updated_at"]
            amount = order["total"] if order["total"] is not None else cart["total"]
            currency = order["currency"] or cart["currency"]
        elif cart["order_hubspot_id"] or cart["status"] in done:
            # An order the cache has not read yet counts with the cart's own figures until it arrives.
            at, amount, currency = cart["remote_updated_at"], cart["total"], cart["currency"]
        else:
            continue
        if at is not None:
            found[cart["pk"]] = Outcome(cart["order_hubspot_id"], at, amount, currency)
    return found


def _attribute_chunk(carts: list[dict[str, Any]], now: datetime) -> list[Recovery]:
    outcomes = _outcomes(carts)
    sends: dict[int, list[SentEmail]] = {}
    rows = RecoverySend.objects.filter(
        cart_id__in=list(outcomes), status=SendStatus.SENT, sent_at__isnull=False
    ).values_list("pk", "cart_id", "sent_at", "clicked_at")
    for pk, cart_id, sent_at, clicked_at in rows:
        if sent_at is None:
            continue
        sends.setdefault(cart_id, []).append(SentEmail(pk, sent_at, clicked_at))
    span = window()
    recoveries = []
    for cart_pk, outcome in outcomes.items():
        found = credited(sends.get(cart_pk, ()), outcome.at, span)
        if found is None:
            continue
        send_pk, by = found
        recoveries.append(
            Recovery(
                cart_id=cart_pk,
                order_hubspot_id=outcome.order_hubspot_id,
                send_id=send_pk,
                amount=outcome.amount,
                currency=outcome.currency[:8],
                recovered_at=outcome.at,
                by=by,
                computed_at=now,
            )
        )
    Recovery.objects.bulk_create(
        recoveries,
        update_conflicts=True,
        unique_fields=["cart"],
        update_fields=["order_hubspot_id", "send", "amount", "currency", "recovered_at", "by", "computed_at"],
    )
    return recoveries


CART_VALUES = ("pk", "order_hubspot_id", "status", "remote_updated_at", "total", "currency")


def _candidates() -> Any:
    """Carts that were emailed and have an order or a completed status."""
    return Cart.objects.exclude(email_state=EmailState.NEW).filter(
        ~Q(order_hubspot_id="") | Q(status__in=completed_statuses())
    )


def attribute_carts(hubspot_ids: Sequence[str] | None = None, *, now: datetime | None = None) -> int:
    """Work out again whether the named carts (HubSpot ids; None: every cart) were recovered, keeping one
    Recovery per recovered cart and none for the others. Returns how many of them are recovered."""
    now = now or timezone.now()
    if hubspot_ids is None:
        return recovery_recompute(now=now)
    recovered = 0
    for chunk in chunks(list(hubspot_ids), CHUNK):
        with transaction.atomic():
            # The dashboard's daily figures follow by the difference, the carts locked while it is taken.
            summary.lock_carts_named(chunk)
            before = summary.recoveries_of(Q(cart__hubspot_id__in=chunk))
            carts = list(_candidates().filter(hubspot_id__in=chunk).values(*CART_VALUES))
            written = _attribute_chunk(carts, now)
            kept = {r.cart_id for r in written}
            Recovery.objects.filter(cart__hubspot_id__in=chunk).exclude(cart_id__in=kept).delete()
            # What the chunk's carts have now: what was written, the others' deleted.
            summary.count_recoveries(before, [(r.send_id, r.currency, r.amount) for r in written])
        recovered += len(kept)
    return recovered


def recovery_recompute(*, now: datetime | None = None) -> int:
    """Every cart's attribution from scratch (after a change of CARTS_ATTRIBUTION_DAYS, or to check). The
    dashboard's daily figures follow by the difference, a chunk of carts at a time (the command
    ``recovery_recompute`` also counts every day again)."""
    now = now or timezone.now()
    recovered = 0
    with transaction.atomic():
        kept: set[int] = set()
        last = 0
        while True:
            carts = list(_candidates().filter(pk__gt=last).order_by("pk").values(*CART_VALUES)[:CHUNK])
            if not carts:
                break
            last = carts[-1]["pk"]
            cart_ids = [cart["pk"] for cart in carts]
            summary.lock_carts(cart_ids)
            before = summary.recoveries_of(cart_ids)
            kept |= {r.cart_id for r in _attribute_chunk(carts, now)}
            summary.count_recoveries(before, summary.recoveries_of(cart_ids))
        stale = sorted(pk for pk in Recovery.objects.values_list("cart_id", flat=True) if pk not in kept)
        for part in chunks(stale, CHUNK):
            summary.lock_carts(part)
            before = summary.recoveries_of(part)
            Recovery.objects.filter(cart_id__in=part).delete()
            summary.count_recoveries(before, [])
        recovered = len(kept)
    return recovered


# --- the sync's hook for orders -----------------------------------------------------------------------------


def _orders_whole_table(spec: MirrorType) -> None:
    """A full run attributes every cart at its end (the carts' whole-table hook, through
    carts.services.carts_log_recoveries), so the orders' pages need nothing more."""


def carts_orders_arrived(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """After orders are written (sync, webhook, refresh): the carts that became them are linked to them and
    attributed, so an order is credited to its recovery email when it arrives. Other types pass through."""
    if spec.name != "orders" or not hubspot_ids:
        return
    from carts.services import carts_refresh_links
    from hubspot_sync import registry

    for chunk in chunks(list(hubspot_ids), CHUNK):
        linked = set(Cart.objects.filter(order_hubspot_id__in=chunk).values_list("hubspot_id", flat=True))
        edges = set(
            Association.objects.filter(from_type="orders", from_id__in=chunk, to_type="carts").values_list(
                "to_id", flat=True
            )
        )
        if unlinked := sorted(edges - linked):
            # Links the order and logs the recovery; carts_log_recoveries attributes them.
            carts_refresh_links(registry.get("carts"), unlinked)
        if linked:
            attribute_carts(sorted(linked))


def register_hooks() -> None:
    """From carts' AppConfig.ready: orders arriving by any path are attributed when they arrive."""
    from hubspot_sync import registry

    registry.whole_table(_orders_whole_table)(carts_orders_arrived)
    registry.add_hook_to_every_type(after_upsert=carts_orders_arrived)
