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

from hubspot.constants import DEFAULT_ASSOCIATION_TYPES

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
    )
}
_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id):
        _ALIASES[_alias] = _t.name
# HubSpot's own spelling in some places ("line items" in association keys, "lineitem" in v1-era paths).
_ALIASES["lineitem"] = _ALIASES["lineitems"] = "line_items"


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
# Default HUBSPOT_DEFINED association type ids, both directions (reference §5.3).
# type id -> the type id of the same association seen from the other side
REVERSE_TYPE_IDS: dict[int, int] = {}
for (_from, _to), _type_id in DEFAULT_ASSOCIATION_TYPES.items():
    REVERSE_TYPE_IDS[_type_id] = DEFAULT_ASSOCIATION_TYPES[(_to, _from)]


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
