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
    from hubspot_sync.mirror import MirroredObject

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
# Whether any of these records (type spec, hubspot ids) names a definition the cache does not know yet (an
# order naming a stage made in HubSpot since the last pipelines sync): then the definitions are read again.
NamesUnknown = Callable[["MirrorType", Sequence[str]], bool]
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
    # Properties always read, whatever HubSpot defines (an order's pipeline and stage).
    required_properties: tuple[str, ...] = ()
    # Associations an incremental run does not read again from this side (read from the other type's).
    incremental_skips: tuple[str, ...] = ()
    # Definition syncers (see ``register_definitions``) this type's records depend on, read with it.
    definitions: tuple[str, ...] = ()
    # Run after those definitions were synced, in their transaction (orders attach to new stages).
    after_definitions: tuple[Callable[[], Any], ...] = ()
    names_unknown: NamesUnknown | None = None
    # Copies of the first contact's id, email and name kept on the type's rows (see
    # hubspot_sync.services.denormalize_contact), refreshed when contacts change.
    copies_contact: bool = False

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


# --- what other apps add: definitions, push operations, objects with a sync state ----------------------


@dataclass(frozen=True)
class DefinitionSyncer:
    """Definitions a type's records refer to (an order's pipelines and stages), synced by the app that owns
    them: ``fetch()`` reads them from HubSpot, ``store(fetched)`` caches them and returns how many,
    ``synced_at()`` says when they were last stored (None: never)."""

    name: str
    fetch: Callable[[], Any]
    store: Callable[[Any], int]
    synced_at: Callable[[], datetime | None]


_DEFINITIONS: dict[str, DefinitionSyncer] = {}


def register_definitions(syncer: DefinitionSyncer) -> None:
    _DEFINITIONS[syncer.name] = syncer


def definitions(name: str) -> DefinitionSyncer | None:
    return _DEFINITIONS.get(name)


@dataclass(frozen=True)
class PushOperation:
    """How a phase of the push sends its claims when the phase's kinds of change belong to another app
    (pipelines and stages): ``send(claim) -> settled count``; ``must_wait(row)``, for a change the claim
    would take, whether it waits for earlier work (a stage's delete for the moves out of it)."""

    phase: str
    send: Callable[[Any], int]
    must_wait: Callable[[dict[str, Any]], bool] | None = None


_PUSH: dict[str, PushOperation] = {}


def register_push(operation: PushOperation) -> None:
    _PUSH[operation.phase] = operation


def push_operation(phase: str) -> PushOperation | None:
    return _PUSH.get(phase)


@dataclass(frozen=True)
class ChangeOwner:
    """Kinds of change whose things are not mirrored records (pipelines, stages): which outbox object types
    they use, how to apply (or undo) one on the cache, and which models' rows have a sync state under which
    object type ({model label: object type})."""

    object_types: tuple[str, ...]
    kinds: tuple[str, ...]
    apply_locally: Callable[[Any, bool], None]  # (change, undo)
    models: Mapping[str, str] = field(default_factory=dict)


_OWNERS: list[ChangeOwner] = []


def register_change_owner(owner: ChangeOwner) -> None:
    _OWNERS.append(owner)


def change_owner(kind: str) -> ChangeOwner | None:
    return next((owner for owner in _OWNERS if kind in owner.kinds), None)


def owned_object_types() -> set[str]:
    return {name for owner in _OWNERS for name in owner.object_types}


def object_type_of_model(label: str) -> str | None:
    """The outbox object type of a model that is not a mirrored type ("pipelines.pipeline" -> "pipelines")."""
    for owner in _OWNERS:
        for model_label, name in owner.models.items():
            if model_label.lower() == label.lower():
                return name
    return None


# Labels for the ids some properties hold (a pipeline's or stage's id): (object type) -> (pipelines by id,
# [(pipeline id, stage id, label)] with live stages first).
IdLabels = Callable[[str], tuple[dict[str, str], list[tuple[str, str, str]]]]
_ID_LABELS: list[IdLabels] = []


def register_id_labels(loader: IdLabels) -> None:
    _ID_LABELS.append(loader)


def id_labels(object_type: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    pipelines: dict[str, str] = {}
    stages: list[tuple[str, str, str]] = []
    for loader in _ID_LABELS:
        found_pipelines, found_stages = loader(object_type)
        pipelines.update(found_pipelines)
        stages.extend(found_stages)
    return pipelines, stages


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
