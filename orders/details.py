"""What the order drawer shows: properties labelled and grouped from HubSpot's definitions, line items, the
customer, the cart, and the timeline. Reads only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from carts.models import Cart
from hubspot.models import Association, Contact, LineItem, PropertyDefinition, WebhookEvent
from hubspot.registry import parse_datetime
from hubspot.values import parse_property_value
from orders.models import Order

# Moves go through the board, where the pipeline's rules apply; the drawer shows these but doesn't edit them.
MOVED_ON_THE_BOARD = {"hs_pipeline", "hs_pipeline_stage"}


@dataclass
class Field:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    value: str
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label), hidden ones left out
    editable: bool = False
    description: str = ""

    @property
    def display(self) -> str:
        if self.value == "":
            return ""
        if self.options:
            labels = dict(self.options)
            return ", ".join(labels.get(v, v) for v in self.value.split(";"))
        if self.type == "datetime":
            moment = parse_datetime(self.value)
            return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else self.value
        if self.type == "bool":
            return {"true": "Yes", "false": "No"}.get(self.value.lower(), self.value)
        return self.value

    @property
    def input_value(self) -> str:
        """The value as the form input expects it (dates as YYYY-MM-DD, datetimes as local datetime)."""
        if self.type in ("date", "datetime") and self.value:
            moment = parse_datetime(self.value)
            if moment:
                return (
                    moment.strftime("%Y-%m-%d") if self.type == "date" else moment.strftime("%Y-%m-%dT%H:%M")
                )
        return self.value


def _field(order: Order, definition: PropertyDefinition) -> Field:
    return Field(
        name=definition.name,
        label=definition.label or definition.name,
        type=definition.type,
        field_type=definition.field_type,
        group=definition.group_name or "other",
        value=order.prop(definition.name),
        options=[
            (str(o.get("value", "")), str(o.get("label", o.get("value", ""))))
            for o in definition.options or []
            if not o.get("hidden")
        ],
        editable=definition.editable and not definition.hidden and definition.name not in MOVED_ON_THE_BOARD,
        description=definition.description,
    )


def property_groups(order: Order) -> list[tuple[str, list[Field]]]:
    """Every defined property, grouped; values HubSpot sent for undefined properties go under "other"."""
    definitions = PropertyDefinition.objects.filter(object_type="orders", archived=False).order_by(
        "group_name", "display_order", "label"
    )
    groups: dict[str, list[Field]] = {}
    known: set[str] = set()
    for definition in definitions:
        known.add(definition.name)
        if definition.hidden and not order.properties.get(definition.name):
            continue
        f = _field(order, definition)
        groups.setdefault(f.group, []).append(f)
    for name in sorted(set(order.properties) - known):
        groups.setdefault("other", []).append(
            Field(
                name=name, label=name, type="string", field_type="text", group="other", value=order.prop(name)
            )
        )
    return [(_group_label(name), fields) for name, fields in groups.items()]


def _group_label(name: str) -> str:
    return name.replace("_", " ").replace("information", "").strip().capitalize() or "Other"


def field_for(order: Order, name: str) -> Field | None:
    definition = PropertyDefinition.objects.filter(object_type="orders", name=name, archived=False).first()
    return _field(order, definition) if definition else None


def clean_value(f: Field, raw: str) -> tuple[str, str]:
    """(value to send, error message): the value in HubSpot's string form, checked against the type (the
    same parser checks the values a move asks for and a retry's corrections)."""
    options = [v for v, _ in f.options] if f.options or f.type == "enumeration" else None
    return parse_property_value(raw, type=f.type, field_type=f.field_type, options=options, label=f.label)


def associated(order: Order) -> dict[str, list[str]]:
    """The ids of the order's line items, contacts and carts, by type, in one query."""
    found: dict[str, list[str]] = {"line_items": [], "contacts": [], "carts": []}
    edges = (
        Association.objects.filter(from_type="orders", from_id=order.hubspot_id, to_type__in=list(found))
        .values_list("to_type", "to_id")
        .distinct()
        .order_by("to_type", "to_id")
    )
    for to_type, to_id in edges:
        found[to_type].append(to_id)
    return found


def line_items(ids: list[str]) -> dict[str, Any]:
    items = list(LineItem.objects.filter(hubspot_id__in=ids, archived=False).order_by("name")) if ids else []
    total = sum((item.amount or (item.quantity or 0) * (item.price or 0) for item in items), Decimal(0))
    return {"items": items, "total": total}


def customer(order: Order, ids: list[str]) -> Contact | None:
    if order.contact_hubspot_id:
        ids = [order.contact_hubspot_id, *ids]
    return Contact.objects.filter(hubspot_id__in=ids, archived=False).first() if ids else None


def carts(ids: list[str]) -> list[Cart]:
    return list(Cart.objects.filter(hubspot_id__in=ids)) if ids else []


def timeline(order: Order, changes: Iterable[Any], limit: int = 50) -> list[dict[str, Any]]:
    """Staff changes with their outcome, and the changes HubSpot told us of, newest first."""
    entries: list[dict[str, Any]] = [
        {"at": change.created_at, "who": change.created_by_name or "Someone", "change": change}
        for change in changes
    ]
    events = WebhookEvent.objects.filter(object_type="orders", object_id=order.hubspot_id).order_by(
        "-received_at"
    )
    for event in events[:limit]:
        entries.append(
            {"at": event.occurred_at or event.received_at, "who": "HubSpot", "remote": _describe(event)}
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


def _describe(event: WebhookEvent) -> str:
    kind = event.subscription_type.rsplit(".", 1)[-1]
    payload = event.payload
    if kind == "propertyChange":
        return f"{payload.get('propertyName', 'a property')} set to “{payload.get('propertyValue', '')}”"
    if kind == "associationChange":
        removed = "unlinked from" if payload.get("associationRemoved") else "linked to"
        return f"{removed} {payload.get('associationType', 'a record')}"
    return {"creation": "created", "deletion": "deleted", "restore": "restored", "merge": "merged"}.get(
        kind, kind
    )
