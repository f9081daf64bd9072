"""Pending edits in the local cache: writing them onto records, keeping them on top of what a sync brings,
and swapping temporary ids for HubSpot's once HubSpot has created a record (a pipeline's or stage's in
``pipelines.push``, on the helpers here).

Used by the outbox services (``hubspot_sync.outbox``) and the push (``hubspot_sync.push``); nothing here
calls HubSpot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from hubspot_sync import registry
from hubspot_sync.cache import chunks
from hubspot_sync.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot_sync.models import OVERLAID, TEMP_ID_PREFIX, Association, Change, ChangeKind, ChangeStatus
from hubspot_sync.registry import DeriveRows, MirrorType

if TYPE_CHECKING:
    from hubspot_sync.mirror import MirroredObject

# Kinds whose ``new`` holds property values of the record they name.
VALUE_KINDS = (ChangeKind.UPDATE, ChangeKind.CREATE)
LINK_KINDS = (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE)
# Row keys that describe HubSpot's copy of a record, not values an edit changes.
_REMOTE_KEYS = {"hubspot_id", "remote_created_at", "remote_updated_at", "archived", "synced_at", "updated_at"}


def new_temp_id() -> str:
    """A local id for something HubSpot has not created yet (fits every hubspot_id column)."""
    return f"{TEMP_ID_PREFIX}{uuid.uuid4().hex[:16]}"


def is_temp(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TEMP_ID_PREFIX)


def temp_ids_in(*values: Any) -> list[str]:
    """Every temporary id among the values (nested lists and dicts included), once each, in order."""
    found: list[str] = []
    pending: list[Any] = list(values)
    while pending:
        value = pending.pop(0)
        if isinstance(value, Mapping):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif is_temp(value) and value not in found:
            found.append(value)
    return found


def wire(value: Any) -> str:
    """A property value as HubSpot stores it: a string; None clears (an empty string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spec_for(obj: MirroredObject | type[MirroredObject]) -> MirrorType:
    """The registry entry of a cached record's model."""
    label = obj._meta.label_lower
    for spec in registry.all_types():
        if spec.model_label.lower() == label:
            return spec
    raise LookupError(f"{label} is not a mirrored HubSpot type")


# --- pending values -------------------------------------------------------------------------------------


def pending_values(object_type: str, hubspot_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """For each record with unsettled edits, the values they set (the latest edit of a property wins)."""
    out: dict[str, dict[str, str]] = {}
    for chunk in chunks(list(dict.fromkeys(hubspot_ids)), 500):
        rows = (
            Change.objects.filter(
                object_type=object_type, object_id__in=chunk, status__in=OVERLAID, kind__in=VALUE_KINDS
            )
            .order_by("pk")
            .values_list("object_id", "new")
        )
        for object_id, values in rows:
            out.setdefault(object_id, {}).update(values)
    return out


def _any_overlaid() -> bool:
    """Whether any edit is unsettled: asked once or twice per page a sync writes, so a plain statement on the
    (status, …) index rather than a query built by the ORM, which cost a full sync several seconds."""
    table = connection.ops.quote_name(Change._meta.db_table)
    marks = ", ".join(["%s"] * len(OVERLAID))
    with connection.cursor() as cursor:
        # The table name comes from the model's meta; the statuses are parameters.
        cursor.execute(f"SELECT 1 FROM {table} WHERE status IN ({marks}) LIMIT 1", list(OVERLAID))  # noqa: S608
        return cursor.fetchone() is not None


def overlay_factory(spec: MirrorType) -> DeriveRows:
    """The derive hook that puts unsettled edits back on top of the values a sync brings, so a card never
    jumps back while its push is under way; it runs before the type's own derives (a pending stage move is
    what the order's stage column is derived from)."""

    def overlay_pending_edits(rows: list[dict[str, Any]]) -> None:
        if not _any_overlaid():
            return  # the usual case during a big sync: one cheap query per page
        values = pending_values(spec.name, [row["hubspot_id"] for row in rows])
        if not values:
            return
        for row in rows:
            mine = values.get(row["hubspot_id"])
            if mine:
                row["properties"] = {**row["properties"], **mine}
                row.update(spec.column_values(row["properties"]))

    return overlay_pending_edits


def reapply_pending(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """After-upsert hook: a sync whose rows were built before an edit committed may have written over it;
    put unsettled edits and links back (the derive hook covers everything else)."""
    if not _any_overlaid():
        return
    values = pending_values(spec.name, hubspot_ids)
    if values:
        stale = [
            record
            for record in spec.model._default_manager.filter(hubspot_id__in=list(values))
            if any(
                (record.properties.get(k) or "") != (v or "") for k, v in values[record.hubspot_id].items()
            )
        ]
        if stale:
            write_values_many(spec, [(record, {}) for record in stale])
    ids = list(hubspot_ids)
    for chunk in chunks(ids, 500):
        links = Change.objects.filter(kind__in=LINK_KINDS, status__in=OVERLAID).filter(
            Q(object_type=spec.name, object_id__in=chunk) | Q(to_type=spec.name, to_id__in=chunk)
        )
        for change in links.order_by("pk"):
            link_locally(change, add=change.kind == ChangeKind.ASSOCIATE)


# --- writing values onto cached records -------------------------------------------------------------------


def write_values(spec: MirrorType, record: MirroredObject, values: Mapping[str, str | None]) -> None:
    write_values_many(spec, [(record, values)])


def write_values_many(
    spec: MirrorType,
    items: Sequence[tuple[MirroredObject, Mapping[str, str | None]]],
    *,
    fresh: bool = False,
) -> None:
    """Set property values on cached records with their typed and derived columns (an order's stage), the
    way a sync would, so the page shows them at once. Unsettled edits stay on top (the derive hook).

    ``fresh``: the records were read under lock in this transaction, so a column that already holds its new
    value in every one of them is left out of the UPDATE (and fires no trigger: a move rewrites neither an
    order's search text nor its totals' other columns)."""
    if not items:
        return
    model = spec.model
    fields = {f.attname: f for f in model._meta.concrete_fields}
    fields.update({f.name: f for f in model._meta.concrete_fields})
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for record, values in items:
        properties = {**record.properties, **values}
        rows.append(
            {
                "hubspot_id": record.hubspot_id,
                "properties": properties,
                "remote_created_at": record.remote_created_at,
                # A local move entered its stage now (orders derive stage_entered_at from this).
                "remote_updated_at": now,
                "archived": record.archived,
                "synced_at": now,
                "updated_at": now,
                **spec.column_values(properties),
            }
        )
    for derive in spec.derive:
        derive(rows)
    changed: set[str] = set()
    for (record, _), row in zip(items, rows, strict=True):
        for key, value in row.items():
            if key in _REMOTE_KEYS or key not in fields:
                continue
            field = fields[key]
            if fresh and getattr(record, field.attname) == value:
                continue
            setattr(record, field.attname, value)
            changed.add(field.name)
        # Written below without save(), so no auto_now; pages that poll for "anything new?" read updated_at.
        record.updated_at = now
    update_rows(model, [record for record, _ in items], sorted(changed | {"updated_at"}))


def update_rows(model: type[models.Model], records: Sequence[models.Model], names: Sequence[str]) -> None:
    """Write the named fields of each record. Django's bulk_update builds a CASE expression per row and
    field, which takes seconds for a few thousand rows (a stage's orders moved out before it is deleted).
    On PostgreSQL this is one UPDATE from arrays of the new values, so a statement trigger (the board's
    totals) runs once for the lot; SQLite takes one UPDATE per row, sent together (executemany)."""
    if not records:
        return
    fields = [f for f in model._meta.concrete_fields if f.name in names or f.attname in names]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    table, key = quote(model._meta.db_table), quote(str(pk.column))
    preps = [_prep_for(f) for f in fields]
    pk_prep = _prep_for(pk)
    rows = [
        [prep(getattr(r, f.attname)) for f, prep in zip(fields, preps, strict=True)] + [pk_prep(r.pk)]
        for r in records
    ]
    # Table and column names come from the model's meta; every value is a parameter.
    if connection.vendor == "postgresql":
        columns = [quote(str(f.column)) for f in fields]
        assignments = ", ".join(f"{c} = v.{c}" for c in columns)
        sql = (
            f"UPDATE {table} SET {assignments} FROM {pg_unnest([*fields, pk])} "  # noqa: S608
            f"AS v ({', '.join(columns)}, {key}) WHERE {table}.{key} = v.{key}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
        return
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {key} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_rows(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert new rows of a model with a database-made key, without reading their keys back: on PostgreSQL
    one INSERT from arrays of the values, on SQLite one INSERT per row, sent together (executemany). Django's
    bulk_create assembles a many-row statement a few dozen rows at a time instead, which was most of the
    time a stage delete took to record its orders' 10,000 moves."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    preps = [_prep_for(f) for f in fields]
    rows = [[prep(f.pre_save(obj, True)) for f, prep in zip(fields, preps, strict=True)] for obj in objs]
    # Table and column names come from the model's meta; every value is a parameter.
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns})"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            values = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(f"{head} SELECT * FROM {pg_unnest(fields)}", values)  # noqa: S608
        return
    with connection.cursor() as cursor:
        cursor.executemany(f"{head} VALUES ({', '.join(['%s'] * len(fields))})", rows)


def pg_unnest(fields: Sequence[models.Field[Any, Any]]) -> str:
    """``unnest(%s::type[], …)``: rows from one array parameter per field, each cast to its column's type."""
    return "unnest(" + ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields) + ")"


_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


def _prep_for(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """A field's value as the database takes it, as Django's preparation makes it but with less on the way:
    None is NULL for every field; text, whole numbers and booleans (and keys) go as they are; a JSON field's
    dict or list is adapted as Django adapts it; everything else (dates, decimals) goes through Django."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    plain: tuple[type, ...] = ()
    if isinstance(target, models.JSONField):
        encoder = target.encoder
        adapt = connection.ops.adapt_json_value

        def prep_json(value: Any) -> Any:
            if value is None:
                return None
            if type(value) in (dict, list):
                return adapt(value, encoder)
            return field.get_db_prep_save(value, connection)

        return prep_json
    if isinstance(target, _PLAIN_FIELDS):
        plain = (str, int, bool)

    def prep(value: Any) -> Any:
        if value is None or type(value) in plain:
            return value
        return field.get_db_prep_save(value, connection)

    return prep


# --- links --------------------------------------------------------------------------------------------------


def _type_ids(from_type: str, to_type: str, type_id: int | None) -> tuple[int | None, int | None]:
    """(forward, backward) association type ids; as in the cache, a label we don't know is its own reverse."""
    default = DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type))
    forward = type_id or default
    reverse = DEFAULT_ASSOCIATION_TYPES.get((to_type, from_type))
    backward = reverse if forward == default and reverse else forward
    return forward, backward


def link_locally(change: Change, *, add: bool) -> None:
    """Make (or remove) the edge a link change names, both directions."""
    link_edge(
        change.object_type,
        change.object_id,
        change.to_type,
        change.to_id,
        change.association_type_id,
        add=add,
    )


def link_edge(
    from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None, *, add: bool
) -> None:
    """Make (or remove) one edge in the cache, both directions; removal without a type id takes them all."""
    forward, backward = _type_ids(from_type, to_type, type_id)
    if add:
        if forward is None or backward is None:
            return
        Association.objects.bulk_create(
            [
                Association(
                    from_type=from_type, from_id=from_id, to_type=to_type, to_id=to_id, type_id=forward
                ),
                Association(
                    from_type=to_type, from_id=to_id, to_type=from_type, to_id=from_id, type_id=backward
                ),
            ],
            ignore_conflicts=True,
        )
        return
    edges = Q(from_type=from_type, from_id=from_id, to_type=to_type, to_id=to_id) | Q(
        from_type=to_type, from_id=to_id, to_type=from_type, to_id=from_id
    )
    qs = Association.objects.filter(edges)
    if type_id is not None:
        qs = qs.filter(type_id__in=[forward, backward])
    qs.delete()


# --- temporary ids ---------------------------------------------------------------------------------------


@transaction.atomic
def adopt_record_id(object_type: str, temp_id: str, real_id: str) -> None:
    """HubSpot created the record: give the cached row, its edges, references and changes HubSpot's id."""
    spec = registry.get(object_type)
    model = spec.model
    # A sync or webhook may have cached HubSpot's copy already; ours carries the pending edits, so it stays.
    model._default_manager.filter(hubspot_id=real_id).delete()
    model._default_manager.filter(hubspot_id=temp_id).update(hubspot_id=real_id)
    Association.objects.filter(from_type=object_type, from_id=temp_id).update(from_id=real_id)
    Association.objects.filter(to_type=object_type, to_id=temp_id).update(to_id=real_id)
    # Copies of the id on other records: an order's contact_hubspot_id, a cart's order_hubspot_id.
    for other in registry.all_types():
        for field in other.model._meta.concrete_fields:
            if field.name.endswith("hubspot_id") and field.name != "hubspot_id":
                other.model._default_manager.filter(**{field.name: temp_id}).update(**{field.name: real_id})
    adopt_in_changes(object_type, temp_id, real_id)


def replace_property_value(model: type[MirroredObject], name: str, old: str, new: str) -> None:
    records = list(model._default_manager.filter(**{f"properties__{name}": old}))
    for record in records:
        record.properties[name] = new
    model._default_manager.bulk_update(records, ["properties"])


def _swap(value: Any, old: str, new: str) -> Any:
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    return value


def adopt_in_changes(object_type: str, temp_id: str, real_id: str) -> None:
    """Changes that name the temporary id now name HubSpot's; the ones that waited for it may go."""
    Change.objects.filter(object_type=object_type, object_id=temp_id).update(object_id=real_id)
    Change.objects.filter(parent_id=temp_id).update(parent_id=real_id)
    Change.objects.filter(to_id=temp_id).update(to_id=real_id)
    waiting = list(Change.objects.filter(waits_for__contains=temp_id))
    for change in waiting:
        change.new = _swap(change.new, temp_id, real_id)
        change.base = _swap(change.base, temp_id, real_id)
        change.remote = _swap(change.remote, temp_id, real_id)
        change.waits_for = " ".join(t for t in change.waiting_for if t != temp_id)
    Change.objects.bulk_update(waiting, ["new", "base", "remote", "waits_for"])


def waiting_on(temp_id: str) -> list[Change]:
    """Unsettled changes that wait for the named temporary id."""
    return list(
        Change.objects.filter(waits_for__contains=temp_id).exclude(
            status__in=(ChangeStatus.APPLIED, ChangeStatus.DISCARDED)
        )
    )
