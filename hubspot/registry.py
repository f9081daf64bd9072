"""The object-type registry: which HubSpot object types are mirrored, into which model, with which columns.

Sync and push are generic over it, so a new object type is a model plus one ``register`` call in its
app's ``AppConfig.ready``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from django.apps import apps

if TYPE_CHECKING:
    from hubspot.mirror import MirroredObject

ColumnKind = Literal["str", "decimal", "datetime"]


@dataclass(frozen=True)
class Column:
    """A typed model column filled from one HubSpot property."""

    field: str
    property: str
    kind: ColumnKind = "str"
    max_length: int | None = None


# A hook run after a page of records is written: (type spec, hubspot ids written) -> None.
AfterUpsert = Callable[["MirrorType", Sequence[str]], None]
# A hook that adds derived column values to rows before they are written: (rows, existing) -> None.
DeriveRows = Callable[[list[dict[str, Any]]], None]
# Around the statement that writes a page of records, in its transaction: (type spec, hubspot ids) -> a
# context manager. For work a database would otherwise do row by row in triggers, done once for the page
# instead (the orders' text-search index on SQLite: see orders.search).
AroundWrite = Callable[["MirrorType", Sequence[str]], AbstractContextManager[None]]
# The whole-table version of an after-upsert hook: (type spec) -> None, see ``whole_table``.
WholeTableHook = Callable[["MirrorType"], None]
# Its rows version: fills the columns the hook would set on a full run's rows before they are written, from
# the records' inline edges: (type spec, rows, {hubspot id: {associated type: ids}}) -> None.
RowsHook = Callable[["MirrorType", list[dict[str, Any]], Mapping[str, Mapping[str, Sequence[str]]]], None]


@dataclass(frozen=True)
class MirrorType:
    name: str  # HubSpot's plural path name: "orders"
    type_id: str  # "0-123"
    model_label: str  # "orders.Order"
    columns: tuple[Column, ...]
    # Association types read together with this type, from its side (the reverse edge is stored too).
    associations: tuple[str, ...] = ()
    created_property: str = "hs_createdate"
    modified_property: str = "hs_lastmodifieddate"
    # Fetched by batch read of the ids other types reference, not listed (line items: see sync.py).
    fetched_by_reference: bool = False
    derive: tuple[DeriveRows, ...] = field(default=())
    after_upsert: tuple[AfterUpsert, ...] = field(default=())
    around_write: tuple[AroundWrite, ...] = field(default=())

    @property
    def model(self) -> type[MirroredObject]:
        return apps.get_model(self.model_label)  # type: ignore[return-value]

    def column_values(self, properties: dict[str, Any]) -> dict[str, Any]:
        """Typed column values for one record's HubSpot properties; bad values become empty, never errors."""
        values: dict[str, Any] = {}
        for column in self.columns:
            value = properties.get(column.property)
            # What convert() makes of a string, without the call for the common kinds: sync converts millions.
            if type(value) is not str or not value:
                values[column.field] = convert(value, column)
            elif column.kind == "str":
                values[column.field] = value[: column.max_length] if column.max_length else value
            elif column.kind == "decimal":
                values[column.field] = _decimal(value)
            else:
                values[column.field] = convert(value, column)
        return values


_TYPES: dict[str, MirrorType] = {}
_ALIASES: dict[str, str] = {}


# Hooks every type gets, including types registered later (apps register theirs after the hubspot app's
# ready()): (derive factory, after-upsert hook). Their derives run before the type's own, so the type's
# derives see what they changed (the outbox puts pending edits back on top of what a sync brings).
DeriveFactory = Callable[[MirrorType], DeriveRows]
_EVERY_TYPE: list[tuple[DeriveFactory | None, AfterUpsert | None]] = []


def _with_hooks(
    spec: MirrorType, derive: DeriveFactory | None, after_upsert: AfterUpsert | None
) -> MirrorType:
    return MirrorType(
        **{
            **spec.__dict__,
            "derive": ((derive(spec),) if derive else ()) + spec.derive,
            "after_upsert": spec.after_upsert + ((after_upsert,) if after_upsert else ()),
        }
    )


def add_hook_to_every_type(
    *, derive: DeriveFactory | None = None, after_upsert: AfterUpsert | None = None
) -> None:
    """Hook into the writes of every type, those registered later too; ``derive(spec)`` makes the type's
    derive function, which runs before the type's own."""
    _EVERY_TYPE.append((derive, after_upsert))
    for name, spec in list(_TYPES.items()):
        _TYPES[name] = _with_hooks(spec, derive, after_upsert)


def register(spec: MirrorType, *aliases: str) -> None:
    for derive, after_upsert in _EVERY_TYPE:
        spec = _with_hooks(spec, derive, after_upsert)
    _TYPES[spec.name] = spec
    for alias in (spec.name, spec.type_id, *aliases):
        _ALIASES[alias.lower()] = spec.name


def get(name: str) -> MirrorType:
    """The spec for ``orders``, ``order`` or ``0-123``; KeyError for a type that is not mirrored."""
    return _TYPES[_ALIASES[name.lower()]]


def find(name: str) -> MirrorType | None:
    canonical = _ALIASES.get(name.lower())
    return _TYPES[canonical] if canonical else None


def all_types() -> list[MirrorType]:
    return list(_TYPES.values())


def add_hook(name: str, *, derive: DeriveRows | None = None, after_upsert: AfterUpsert | None = None) -> None:
    """Let another app hook into a type's writes (e.g. the outbox keeps pending edits on top)."""
    spec = _TYPES[name]
    _TYPES[name] = MirrorType(
        **{
            **spec.__dict__,
            "derive": spec.derive + ((derive,) if derive else ()),
            "after_upsert": spec.after_upsert + ((after_upsert,) if after_upsert else ()),
        }
    )


_WHOLE_TABLE: dict[AfterUpsert, tuple[WholeTableHook, RowsHook | None]] = {}


def whole_table(
    version: WholeTableHook, *, rows: RowsHook | None = None
) -> Callable[[AfterUpsert], AfterUpsert]:
    """Give an after-upsert hook a whole-table version, which a full run calls once at its end instead of
    calling the hook after every page; and optionally a rows version, which fills the same columns on the
    run's rows before they are written, from what the pages brought.

    For hooks that copy values between records (a contact's name onto its orders): the rows version makes
    the copy part of the page's own write, and the whole-table pass, a few set-based statements, writes only
    what changed since (a contact read after its orders). Incremental runs, refreshes and archiving still
    call the hook itself."""

    def mark(hook: AfterUpsert) -> AfterUpsert:
        _WHOLE_TABLE[hook] = (version, rows)
        return hook

    return mark


def whole_table_version(hook: AfterUpsert) -> WholeTableHook | None:
    found = _WHOLE_TABLE.get(hook)
    return found[0] if found else None


def rows_version(hook: AfterUpsert) -> RowsHook | None:
    found = _WHOLE_TABLE.get(hook)
    return found[1] if found else None


_DECIMAL_LIMIT = Decimal("1e14")


@functools.lru_cache(maxsize=8192)
def _decimal(text: str) -> Decimal | None:
    """A money or quantity column's value. Cached: a shop's prices and quantities repeat across its line
    items, and Decimal is immutable, so a full sync reads each distinct text once."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) < _DECIMAL_LIMIT else None


def convert(value: Any, column: Column) -> Any:
    if value is None or value == "":
        return None if column.kind != "str" else ""
    if column.kind == "decimal":
        return _decimal(str(value))
    if column.kind == "datetime":
        return parse_datetime(str(value))
    text = str(value)
    return text[: column.max_length] if column.max_length else text


def parse_datetime(value: str) -> datetime | None:
    """HubSpot datetimes: ISO-8601 with Z, or epoch milliseconds (older APIs and some properties)."""
    from datetime import UTC

    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
