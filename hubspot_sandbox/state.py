"""The sandbox's own state: records, associations, pipelines, property definitions, and change events.

Everything lives in memory behind one re-entrant lock; ``snapshot``/``restore`` (see ``snapshot.py``)
persist it to a file. Nothing here speaks HTTP or imports Django.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# --- object types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectType:
    name: str  # canonical plural path name: "orders"
    singular: str  # "order"
    type_id: str  # "0-123"
    created_property: str  # "hs_createdate" ("createdate" for contacts)
    modified_property: str  # "hs_lastmodifieddate" ("lastmodifieddate" for contacts)
    first_id: int  # ids are numeric strings; each type counts up from its own base


OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType("contacts", "contact", "0-1", "createdate", "lastmodifieddate", 100_001),
        ObjectType("line_items", "line_item", "0-8", "hs_createdate", "hs_lastmodifieddate", 20_000_000_001),
        ObjectType("orders", "order", "0-123", "hs_createdate", "hs_lastmodifieddate", 30_000_000_001),
        ObjectType("carts", "cart", "0-142", "hs_createdate", "hs_lastmodifieddate", 40_000_000_001),
        # HubSpot's other standard objects: every account has them (empty unless a client writes some or
        # the standard seed is asked for). Type ids 0-2/0-3/0-5/0-7/0-14 and the create/modified property
        # names of companies, deals, tickets and products are HubSpot's documented ones; the engagement
        # ids (0-27 tasks, 0-46 notes, 0-47 meetings, 0-48 calls, 0-49 emails), 0-18 communications,
        # 0-116 postal mail, 0-53 invoices, 0-69 subscriptions, 0-101 payments and 0-136 leads are those
        # integrations use; UNCONFIRMED against a live portal.
        ObjectType("companies", "company", "0-2", "createdate", "hs_lastmodifieddate", 50_000_000_001),
        ObjectType("deals", "deal", "0-3", "createdate", "hs_lastmodifieddate", 60_000_000_001),
        ObjectType("tickets", "ticket", "0-5", "createdate", "hs_lastmodifieddate", 70_000_000_001),
        ObjectType("products", "product", "0-7", "createdate", "hs_lastmodifieddate", 80_000_000_001),
        ObjectType("quotes", "quote", "0-14", "hs_createdate", "hs_lastmodifieddate", 90_000_000_001),
        ObjectType("calls", "call", "0-48", "hs_createdate", "hs_lastmodifieddate", 91_000_000_001),
        ObjectType("emails", "email", "0-49", "hs_createdate", "hs_lastmodifieddate", 92_000_000_001),
        ObjectType("meetings", "meeting", "0-47", "hs_createdate", "hs_lastmodifieddate", 93_000_000_001),
        ObjectType("notes", "note", "0-46", "hs_createdate", "hs_lastmodifieddate", 94_000_000_001),
        ObjectType("tasks", "task", "0-27", "hs_createdate", "hs_lastmodifieddate", 95_000_000_001),
        ObjectType(
            "communications", "communication", "0-18", "hs_createdate", "hs_lastmodifieddate", 96_000_000_001
        ),
        ObjectType(
            "postal_mail", "postal_mail", "0-116", "hs_createdate", "hs_lastmodifieddate", 97_000_000_001
        ),
        ObjectType("invoices", "invoice", "0-53", "hs_createdate", "hs_lastmodifieddate", 98_000_000_001),
        ObjectType(
            "subscriptions", "subscription", "0-69", "hs_createdate", "hs_lastmodifieddate", 99_000_000_001
        ),
        ObjectType(
            "commerce_payments",
            "commerce_payment",
            "0-101",
            "hs_createdate",
            "hs_lastmodifieddate",
            99_500_000_001,
        ),
        ObjectType("leads", "lead", "0-136", "hs_createdate", "hs_lastmodifieddate", 99_800_000_001),
    )
}
# The object types the app itself syncs; the rest are served generically (standard.py).
COMMERCE_TYPES: tuple[str, ...] = ("contacts", "line_items", "orders", "carts")
_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id):
        _ALIASES[_alias] = _t.name
# HubSpot's own spelling in some places ("line items" in association keys, "lineitem" in v1-era paths).
_ALIASES["lineitem"] = _ALIASES["lineitems"] = "line_items"
# Other spellings HubSpot accepts in paths ("payments" in association keys of the orders guide).
_ALIASES["payments"] = _ALIASES["payment"] = "commerce_payments"
_ALIASES["postal_mails"] = "postal_mail"


def resolve_type(name: str) -> ObjectType | None:
    """``order``, ``orders`` and ``0-123`` all name the orders type (case-insensitive)."""
    canonical = _ALIASES.get(name.lower())
    return OBJECT_TYPES[canonical] if canonical else None


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: ISO-8601 with milliseconds and a Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --- associations -------------------------------------------------------------------------------------
# Default HUBSPOT_DEFINED association type ids of HubSpot's other standard objects, as pairs
# (from, to, type id, reverse type id). The unlabelled type of each pair is its default; reference §5.3
# gives contact↔company 279/280, deal↔contact 3/4, the order and cart rows and line item→deal/quote
# 20/68. The rest are the Python SDK's ``AssociationType`` values and the associate-records guide's
# table; not in the reference, so UNCONFIRMED here.
_STANDARD_PAIRS: tuple[tuple[str, str, int, int], ...] = (
    ("contacts", "companies", 279, 280),
    ("deals", "contacts", 3, 4),
    ("deals", "companies", 341, 342),  # UNCONFIRMED
    ("contacts", "tickets", 15, 16),  # UNCONFIRMED
    ("tickets", "companies", 339, 340),  # UNCONFIRMED
    ("deals", "line_items", 19, 20),
    ("deals", "tickets", 27, 28),  # UNCONFIRMED
    ("deals", "quotes", 63, 64),  # UNCONFIRMED
    ("quotes", "line_items", 67, 68),
    ("quotes", "contacts", 69, 70),  # UNCONFIRMED
    ("quotes", "companies", 71, 72),  # UNCONFIRMED
    ("quotes", "tasks", 217, 218),  # UNCONFIRMED
    ("orders", "deals", 512, 511),
    ("orders", "companies", 934, 935),  # the newest doc; the older orders guide lists 509 (primary)
    ("orders", "tickets", 525, 526),
    ("orders", "quotes", 730, 731),
    ("orders", "invoices", 518, 517),
    ("orders", "commerce_payments", 523, 524),
    ("orders", "subscriptions", 516, 515),
    ("orders", "tasks", 726, 727),
    ("orders", "calls", 772, 773),
    ("orders", "emails", 776, 777),
    ("orders", "meetings", 768, 769),
    ("orders", "notes", 764, 765),
    ("carts", "deals", 1347, 1346),
    ("carts", "quotes", 732, 733),
    # engagements (UNCONFIRMED: SDK enum)
    ("companies", "calls", 181, 182),
    ("companies", "emails", 185, 186),
    ("companies", "meetings", 187, 188),
    ("companies", "notes", 189, 190),
    ("companies", "tasks", 191, 192),
    ("contacts", "calls", 193, 194),
    ("contacts", "emails", 197, 198),
    ("contacts", "meetings", 199, 200),
    ("contacts", "notes", 201, 202),
    ("contacts", "tasks", 203, 204),
    ("deals", "calls", 205, 206),
    ("deals", "emails", 209, 210),
    ("deals", "meetings", 211, 212),
    ("deals", "notes", 213, 214),
    ("deals", "tasks", 215, 216),
    ("tickets", "calls", 219, 220),
    ("tickets", "emails", 223, 224),
    ("tickets", "meetings", 225, 226),
    ("tickets", "notes", 227, 228),
    ("tickets", "tasks", 229, 230),
    ("calls", "meetings", 399, 400),  # UNCONFIRMED
)
# The commerce objects' pairs (the same ids the integration knows), then the standard ones.
_COMMERCE_PAIRS: tuple[tuple[str, str, int, int], ...] = (
    ("orders", "contacts", 507, 508),
    ("orders", "line_items", 513, 514),
    ("orders", "carts", 593, 592),
    ("carts", "contacts", 586, 587),
    ("carts", "line_items", 590, 591),
)
# (from, to) -> default type id. The sandbox stands alone: it keeps its own copy of these facts.
DEFAULT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {}
for _from, _to, _forward, _backward in _COMMERCE_PAIRS + _STANDARD_PAIRS:
    DEFAULT_ASSOCIATION_TYPES.setdefault((_from, _to), _forward)
    DEFAULT_ASSOCIATION_TYPES.setdefault((_to, _from), _backward)

# HUBSPOT_DEFINED types a pair has besides its default: the "Primary" labels (reference §5.2's v4 batch
# read example shows contact→company 1 "Primary" next to 279). (from, to) -> {type id: label}.
# contact↔company 1/2 is in the reference; deal↔company 5/6 and ticket↔company 26/25 are the SDK's
# PRIMARY_* values (UNCONFIRMED); order→company 509/510 is the older orders guide's "primary company".
DEFINED_LABELS: dict[tuple[str, str], dict[int, str]] = {
    ("contacts", "companies"): {1: "Primary"},
    ("companies", "contacts"): {2: "Primary"},
    ("deals", "companies"): {5: "Primary"},
    ("companies", "deals"): {6: "Primary"},
    ("tickets", "companies"): {26: "Primary"},
    ("companies", "tickets"): {25: "Primary"},
    ("orders", "companies"): {509: "Primary"},
    ("companies", "orders"): {510: "Primary"},
}
_DEFINED_REVERSE: dict[int, int] = {1: 2, 2: 1, 5: 6, 6: 5, 26: 25, 25: 26, 509: 510, 510: 509}

# Default HUBSPOT_DEFINED association type ids, both directions (reference §5.3).
# type id -> the type id of the same association seen from the other side
REVERSE_TYPE_IDS: dict[int, int] = dict(_DEFINED_REVERSE)
for (_from, _to), _type_id in DEFAULT_ASSOCIATION_TYPES.items():
    REVERSE_TYPE_IDS[_type_id] = DEFAULT_ASSOCIATION_TYPES[(_to, _from)]


def is_defined_type(from_type: str, to_type: str, type_id: int) -> bool:
    """Whether ``type_id`` is one of HubSpot's own (HUBSPOT_DEFINED) types from one type to another."""
    return DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type)) == type_id or type_id in DEFINED_LABELS.get(
        (from_type, to_type), {}
    )


# --- records --------------------------------------------------------------------------------------


@dataclass
class Record:
    id: str
    properties: dict[str, str]  # every value a string, as HubSpot serialises them
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    # property name -> list of (value, timestamp ms, source) newest first, for propertiesWithHistory
    history: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)


@dataclass
class ChangeEvent:
    """One thing that changed, in the terms HubSpot's webhooks use."""

    subscription_type: str  # object.creation | object.propertyChange | object.deletion | object.restore |
    # object.associationChange
    object_type_id: str
    object_id: str
    occurred_ms: int
    property_name: str | None = None
    property_value: str | None = None
    change_source: str = "API"
    extra: dict[str, Any] = field(default_factory=dict)  # association fields etc.


Listener = Callable[[ChangeEvent], None]


class SandboxState:
    """All data of one sandbox portal. Hold ``state.lock`` while reading or writing more than one field."""

    def __init__(self, portal_id: int = 62515) -> None:
        self.lock = threading.RLock()
        self.portal_id = portal_id
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECT_TYPES}
        self._ids: dict[str, itertools.count[int]] = {
            name: itertools.count(t.first_id) for name, t in OBJECT_TYPES.items()
        }
        # associations[(from_type, from_id)][(to_type, to_id)] = {(category, type_id), ...}
        # Both directions are always stored; see associations.py for the pairing of type ids.
        self.associations: dict[tuple[str, str], dict[tuple[str, str], set[tuple[str, int]]]] = {}
        # custom association labels: (from_type, to_type) -> {type_id: label}
        self.association_labels: dict[tuple[str, str], dict[int, str]] = {}
        # property definitions: object type name -> property name -> HubSpot property JSON
        self.properties: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECT_TYPES}
        self.property_groups: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECT_TYPES}
        # pipelines: object type name -> pipeline id -> HubSpot pipeline JSON (stages inside)
        self.pipelines: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECT_TYPES}
        # audit entries per (object type, pipeline id), newest last
        self.pipeline_audit: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # objectWriteTraceId -> created record id, so a retried batch create never duplicates
        self.write_traces: dict[tuple[str, str], str] = {}
        self._listeners: list[Listener] = []

    # ids
    def next_id(self, type_name: str) -> str:
        return str(next(self._ids[type_name]))

    def bump_id_counter(self, type_name: str, used_id: str) -> None:
        """After restoring or seeding with explicit ids, keep new ids above every used one."""
        if used_id.isdigit():
            current = next(self._ids[type_name])
            self._ids[type_name] = itertools.count(max(current, int(used_id) + 1))

    # events
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: ChangeEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # associations (both directions always; the API layer emits the webhook events)
    def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        *,
        type_id: int | None = None,
        category: str = "HUBSPOT_DEFINED",
    ) -> tuple[str, int]:
        """Link two records with a typed edge and its reverse; returns the (category, type id) used."""
        if type_id is None:
            type_id = DEFAULT_ASSOCIATION_TYPES[(from_type, to_type)]
        reverse = self.reverse_type_id(from_type, to_type, type_id)
        with self.lock:
            self.associations.setdefault((from_type, from_id), {}).setdefault((to_type, to_id), set()).add(
                (category, type_id)
            )
            self.associations.setdefault((to_type, to_id), {}).setdefault((from_type, from_id), set()).add(
                (category, reverse)
            )
        return category, type_id

    def reverse_type_id(self, from_type: str, to_type: str, type_id: int) -> int:
        """The reverse of a default type is its documented pair; a custom label is its own reverse here."""
        return REVERSE_TYPE_IDS.get(type_id, type_id)

    def dissociate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, *, type_id: int | None = None
    ) -> bool:
        """Remove one typed edge (or, with no type id, every edge) between two records, both directions."""
        with self.lock:
            forward = self.associations.get((from_type, from_id), {})
            backward = self.associations.get((to_type, to_id), {})
            types = forward.get((to_type, to_id))
            if not types:
                return False
            if type_id is None:
                forward.pop((to_type, to_id), None)
                backward.pop((from_type, from_id), None)
                return True
            reverse = self.reverse_type_id(from_type, to_type, type_id)
            removed = {t for t in types if t[1] == type_id}
            if not removed:
                return False
            types -= removed
            back_types = backward.get((from_type, from_id), set())
            back_types -= {t for t in back_types if t[1] == reverse}
            if not types:
                forward.pop((to_type, to_id), None)
            if not back_types:
                backward.pop((from_type, from_id), None)
            return True

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, set[tuple[str, int]]]:
        """to_id -> {(category, type id)} for one record's associations to one type, in id order."""
        edges = self.associations.get((from_type, from_id), {})
        found = {to_id: types for (t, to_id), types in edges.items() if t == to_type}
        return dict(sorted(found.items(), key=lambda item: (len(item[0]), item[0])))

    # reads
    def live(self, type_name: str) -> Iterator[Record]:
        return (r for r in self.records[type_name].values() if not r.archived)

    def get(self, type_name: str, record_id: str, *, archived: bool = False) -> Record | None:
        record = self.records[type_name].get(record_id)
        if record is None or record.archived != archived:
            return None
        return record
