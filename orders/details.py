"""What the order drawer shows: properties labelled and grouped from HubSpot's definitions, line items, the
customer, the cart, and the timeline. Reads only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from carts.models import Cart
from hubspot_sync.labels import PropertyLabels
from hubspot_sync.models import Association, Contact, LineItem, PropertyDefinition, WebhookEvent
from hubspot_sync.registry import parse_datetime
from hubspot_sync.templatetags.hubspot_labels import change_lines
from hubspot_sync.values import parse_property_value
from orders.models import Order

# Moves go through the board, where the pipeline's rules apply; the drawer shows these but doesn't edit them.
MOVED_ON_THE_BOARD = {"hs_pipeline", "hs_pipeline_stage"}


def version_of(*parts: Any) -> str:
    """A short fingerprint of what a region of the drawer shows."""
    return hashlib.blake2s(repr(parts).encode(), digest_size=6).hexdigest()


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
    def row_id(self) -> str:
        return f"property-{self.name}"

    @property
    def version(self) -> str:
        """Changes when anything the row shows does: a refresh swaps only rows whose version moved."""
        return version_of(self.label, self.value, self.editable, self.type, self.options)

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


# What support reads first, in this order, whatever HubSpot group they are in: the order's state and money.
STATUS_PROPERTIES = (
    "hs_fulfillment_status",
    "hs_payment_status",
    "hs_external_order_status",
    "hs_total_price",
    "hs_currency_code",
    "hs_order_date",
    "hs_source_store",
    "hs_external_order_id",
)
# Group names HubSpot uses for orders, labelled as staff say them; others are labelled from their names.
GROUP_LABELS = {
    "orderinformation": "Order details",
    "order_information": "Order details",
    "order_shipping": "Shipping",
    "order_billing": "Billing",
    "other": "Other",
}


@dataclass
class Group:
    """A group of the drawer's properties: those with a value are shown, the empty ones wait behind
    "Show empty"."""

    key: str  # stable across orders, for element ids and the remembered open/closed state
    label: str
    fields: list[Field]

    @property
    def filled(self) -> list[Field]:
        return [f for f in self.fields if f.value != ""]

    @property
    def empty(self) -> list[Field]:
        return [f for f in self.fields if f.value == ""]


def property_groups(order: Order) -> list[Group]:
    """Every defined property, grouped, in the order support reads them: status first, then shipping, then
    HubSpot's other groups; values HubSpot sent for undefined properties go under "Other". Each property is
    in one group only (its row's id is unique on the page)."""
    definitions = PropertyDefinition.objects.filter(object_type="orders", archived=False).order_by(
        "group_name", "display_order", "label"
    )
    status: dict[str, Field] = {}
    shipping: list[Field] = []
    groups: dict[str, list[Field]] = {}
    known: set[str] = set()
    for definition in definitions:
        known.add(definition.name)
        if definition.name in MOVED_ON_THE_BOARD:
            continue  # shown as the stage, with "Move to…"
        if definition.hidden and not order.properties.get(definition.name):
            continue
        f = _field(order, definition)
        if f.name in STATUS_PROPERTIES:
            status[f.name] = f
        elif "shipping" in f.group or f.name.startswith("hs_shipping"):
            shipping.append(f)
        else:
            groups.setdefault(f.group, []).append(f)
    for name in sorted(set(order.properties) - known - MOVED_ON_THE_BOARD):
        groups.setdefault("other", []).append(
            Field(
                name=name, label=name, type="string", field_type="text", group="other", value=order.prop(name)
            )
        )
    ordered = [
        Group("status", "Status", [status[n] for n in STATUS_PROPERTIES if n in status]),
        Group("shipping", "Shipping", shipping),
    ]
    rank = {name: n for n, name in enumerate(GROUP_LABELS)}
    rest = sorted(groups.items(), key=lambda item: (rank.get(item[0], len(rank) - 1), item[0]))
    ordered += [Group(name, _group_label(name), fields) for name, fields in rest]
    return ordered


def _group_label(name: str) -> str:
    if name in GROUP_LABELS:
        return GROUP_LABELS[name]
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


@dataclass(frozen=True)
class RemoteChange:
    """What HubSpot told us of (a webhook event): a property set, a link, a creation…, labelled."""

    text: str  # the whole sentence, for anything that isn't a property change
    label: str = ""  # a property change: its label…
    value: str = ""  # …and the value it was set to, as people read it
    is_property: bool = False

    def __str__(self) -> str:
        return f"{self.label} set to “{self.value}”" if self.is_property else self.text


def timeline(order: Order, changes: Iterable[Any], limit: int = 50) -> list[dict[str, Any]]:
    """Staff changes with their outcome, and the changes HubSpot told us of, newest first; properties by
    their labels, stages and options by their names."""
    labels = PropertyLabels("orders")
    pipeline_id = order.pipeline.hubspot_id if order.pipeline else ""
    entries: list[dict[str, Any]] = [
        {
            "at": change.created_at,
            "who": change.created_by_name or "Someone",
            "change": change,
            "lines": change_lines(change, labels, pipeline_id=pipeline_id),
        }
        for change in changes
    ]
    events = WebhookEvent.objects.filter(object_type="orders", object_id=order.hubspot_id).order_by(
        "-received_at"
    )
    for event in events[:limit]:
        entries.append(
            {
                "at": event.occurred_at or event.received_at,
                "who": "HubSpot",
                "remote": _describe(event, labels, pipeline_id=pipeline_id),
            }
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


def _describe(event: WebhookEvent, labels: PropertyLabels, *, pipeline_id: str = "") -> RemoteChange:
    kind = event.subscription_type.rsplit(".", 1)[-1]
    payload = event.payload if isinstance(event.payload, dict) else {}
    if kind == "propertyChange":
        name = str(payload.get("propertyName") or "")
        if not name:
            return RemoteChange("a property changed")
        value = labels.value(name, payload.get("propertyValue", ""), pipeline_id=pipeline_id)
        return RemoteChange("", label=labels.label(name), value=value, is_property=True)
    if kind == "associationChange":
        removed = "unlinked from" if payload.get("associationRemoved") else "linked to"
        what = str(payload.get("associationType") or "a record").replace("_", " ").lower()
        return RemoteChange(f"{removed} {what}")
    return RemoteChange(
        {"creation": "created", "deletion": "deleted", "restore": "restored", "merge": "merged"}.get(
            kind, kind
        )
    )


# --- the drawer's refresh: only the regions and rows that changed ------------------------------------------

# Element ids a refresh may name (HubSpot property names are letters, digits and underscores).
_REGION_ID = re.compile(r"^(drawer-[a-z-]+|property-[A-Za-z0-9_]+)$")


def region_versions(context: dict[str, Any]) -> dict[str, str]:
    """The version of each region and property row of a drawer, by element id, from what it shows."""
    order: Order = context["order"]
    person = context.get("customer")
    items = context["line_items"]
    versions = {
        "drawer-head": version_of(order.name, order.archived, order.remote_updated_at, order.pipeline_id),
        "drawer-stage": version_of(order.stage_id, order.pipeline_id, order.archived, len(context["stages"])),
        "drawer-customer": version_of(
            person and (person.pk, person.full_name, person.email, person.prop("phone")),
            [(c.pk, c.name, c.status, c.total, c.currency) for c in context["carts"]],
        ),
        "drawer-line-items": version_of(
            [(i.pk, i.name, i.sku, i.quantity, i.price, i.amount) for i in items["items"]], items["total"]
        ),
        "drawer-timeline": version_of(
            [
                (e["change"].pk, e["change"].status, e["change"].error, e["change"].resolution)
                if "change" in e
                else (str(e["remote"]), e["at"])
                for e in context["timeline"]
            ]
        ),
    }
    for group in context["groups"]:
        for f in group.fields:
            versions[f"property-{f.name}"] = f.version
    return versions


def changed_regions(versions: dict[str, str], seen: str) -> set[str]:
    """The ids whose version differs from what the page has (``seen``: "id:version,…"); ids the page
    doesn't have are left out, since there is nothing there to swap."""
    had: dict[str, str] = {}
    for pair in seen[:50_000].split(","):
        element_id, _, version = pair.partition(":")
        if _REGION_ID.match(element_id):
            had[element_id] = version
    return {element_id for element_id, v in versions.items() if element_id in had and had[element_id] != v}
