"""The recovery state written back to HubSpot: a property group "OrderDeck" on carts with the recovery
properties, made once through the properties API by a worker (what exists is left alone; 409 "already
exists" is success), and each cart's values sent through the outbox
(``hubspot_sync.outbox.record_change``, which coalesces a record's pending changes) when a send, click,
unsubscribe or recovery changes them.

Services mark carts (``mark_writeback``); the beat task ``recovery_writeback`` makes sure the properties exist
before it records any change, so a push never meets PROPERTY_DOESNT_EXIST.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from carts.models import Cart, CartEvent, EventKind, RecoverySend, RecoveryState, SendStatus, SequenceSettings

logger = logging.getLogger(__name__)

GROUP = "orderdeck"
GROUP_LABEL = "OrderDeck"
STATE = "orderdeck_recovery_state"
LAST_EMAIL_AT = "orderdeck_last_email_at"
LAST_STEP = "orderdeck_last_step"
CLICKED_AT = "orderdeck_clicked_at"
RECOVERED_AT = "orderdeck_recovered_at"

PROPERTIES: tuple[dict[str, Any], ...] = (
    {
        "name": STATE,
        "label": "Recovery state",
        "type": "enumeration",
        "fieldType": "select",
        "description": "How far OrderDeck's recovery emails about this cart got.",
        "options": [
            {"label": str(label), "value": str(value), "displayOrder": index}
            for index, (value, label) in enumerate(RecoveryState.choices)
        ],
    },
    {
        "name": LAST_EMAIL_AT,
        "label": "Last recovery email",
        "type": "datetime",
        "fieldType": "date",
        "description": "When OrderDeck last sent a recovery email about this cart.",
    },
    {
        "name": LAST_STEP,
        "label": "Last recovery step",
        "type": "number",
        "fieldType": "number",
        "description": "The sequence step of the last recovery email sent.",
    },
    {
        "name": CLICKED_AT,
        "label": "Recovery email clicked",
        "type": "datetime",
        "fieldType": "date",
        "description": "When the contact last clicked a recovery email's link.",
    },
    {
        "name": RECOVERED_AT,
        "label": "Recovered",
        "type": "datetime",
        "fieldType": "date",
        "description": "When the cart became an order after a recovery email.",
    },
)


def mark_writeback(carts: Iterable[int] | Q) -> int:
    """Note that these carts' recovery properties changed (cart ids or a filter on carts)."""
    where = carts if isinstance(carts, Q) else Q(pk__in=list(carts))
    return Cart.objects.filter(where).exclude(writeback_due=True).update(writeback_due=True)


def _is_conflict(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 409


def ensure_properties(*, force: bool = False) -> bool:
    """Make the group and the properties in HubSpot when missing (once: the result is remembered). Returns
    whether they exist now. HubSpotError when HubSpot can't be read (the task tries again later)."""
    from hubspot_sync import client, registry, sync

    row, _ = SequenceSettings.objects.get_or_create(pk=1)
    if row.properties_ready_at is not None and not force:
        return True
    groups = {group.name for group in client.list_property_groups("carts") if not group.archived}
    if GROUP not in groups:
        try:
            client.create_property_group("carts", name=GROUP, label=GROUP_LABEL)
        except client.Rejected as exc:
            if not _is_conflict(exc):
                raise
    existing = {prop.name for prop in client.list_properties("carts")}
    for definition in PROPERTIES:
        if definition["name"] in existing:
            continue
        try:
            client.create_property("carts", {**definition, "groupName": GROUP})
        except client.Rejected as exc:
            if not _is_conflict(exc):
                raise
    # The cached definitions name them too, so syncs read them back (and the outbox's bases match HubSpot).
    sync.sync_properties([registry.get("carts")])
    SequenceSettings.objects.filter(pk=1).update(properties_ready_at=timezone.now())
    return True


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cart_values(cart: Cart, state: str) -> dict[str, str]:
    """The recovery properties' values for one cart (``state`` from with_recovery_state)."""
    sends = RecoverySend.objects.filter(cart=cart)
    sent = sends.filter(status=SendStatus.SENT).order_by("-sent_at", "-pk").first()
    clicked = sends.aggregate(at=Max("clicked_at"))["at"]
    recovered = (
        CartEvent.objects.filter(cart=cart, kind=EventKind.STATE_CHANGED, message__startswith="Recovered:")
        .order_by("at")
        .values_list("at", flat=True)
        .first()
    )
    return {
        STATE: state,
        LAST_EMAIL_AT: _iso(sent.sent_at if sent else cart.last_email_at),
        LAST_STEP: str(sent.step) if sent else "",
        CLICKED_AT: _iso(clicked),
        RECOVERED_AT: _iso(recovered) if state == RecoveryState.RECOVERED else "",
    }


def recovery_writeback(*, limit: int = 500) -> int:
    """Record (in the outbox) the recovery properties of carts marked since the last run, after making sure
    the properties exist in HubSpot. Returns how many carts got a change."""
    from hubspot_sync.outbox import record_change

    marked = Cart.objects.filter(writeback_due=True)
    if not marked.exists():
        return 0
    ensure_properties()
    changed = 0
    for cart in marked.with_recovery_state().order_by("pk")[:limit]:
        values = cart_values(cart, str(cart.recovery_state))  # type: ignore[attr-defined]
        with transaction.atomic():
            Cart.objects.filter(pk=cart.pk).update(writeback_due=False)
            current = {name: str(cart.prop(name) or "") for name in values}
            if current != values:
                record_change(obj=cart, properties=values, by=None)
                changed += 1
    return changed
