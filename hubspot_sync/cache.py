"""Bulk writes to the local cache: upserts that never put older data over newer, and association edges.

Django's ``bulk_create(update_conflicts=True)`` can't say "only when newer", and on psycopg 3 it manages
about 3,000 rows a second; so each page is one statement of our own: ``executemany`` of an
``INSERT … ON CONFLICT DO UPDATE … WHERE newer`` on SQLite, and one ``INSERT … SELECT FROM
jsonb_to_recordset(…)`` on PostgreSQL. Association edges go the same way (raw statements, one per page
for the deletes of each direction and one for the inserts), since building model instances for
``bulk_create`` cost more than the writes themselves.

Values are converted for the database by converters built once per table and row shape (``_plan``): they
give what Django's ``get_db_prep_save`` gives for the values sync produces, without its per-value layers,
which a full sync would otherwise call millions of times.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model
from django.db.models.expressions import RawSQL
from django.utils import timezone

from hubspot_sync import registry
from hubspot_sync.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot_sync.models import Association
from hubspot_sync.registry import MirrorType, parse_datetime

logger = logging.getLogger(__name__)

# (to id, association type id or None for the default type, category)
Edge = tuple[str, int | None, str]


class RemoteRecord(Protocol):
    """What the cache needs of a record read from HubSpot (hubspot_sync.client.ApiObject has it)."""

    @property
    def id(self) -> str: ...
    @property
    def properties(self) -> dict[str, str | None]: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def archived(self) -> bool: ...


@dataclass
class UpsertResult:
    written: int = 0
    skipped: int = 0  # older than what the cache has, or malformed
    malformed: int = 0


@dataclass
class Prepared:
    """A page of records made into rows, before the type's derive hooks: what ``prepare`` does needs no
    database, so a full run does it in the thread that fetched the page while the writer writes the last."""

    records: list[Any]
    rows: list[dict[str, Any]]
    malformed: int


def prepare(spec: MirrorType, records: Iterable[RemoteRecord], now: datetime | None = None) -> Prepared:
    """Rows for the model's table; a record that can't be read is logged and skipped, never fatal."""
    now = now or timezone.now()
    records = list(records)
    rows: list[dict[str, Any]] = []
    malformed = 0
    modified, created_property = spec.modified_property, spec.created_property
    for record in records:
        try:
            properties = dict(record.properties)
            updated = record.updated_at or parse_datetime(str(properties.get(modified) or ""))
            created = record.created_at or parse_datetime(str(properties.get(created_property) or ""))
            record_id = str(record.id)
            if not record_id or len(record_id) > 32:
                raise ValueError(f"bad id {record_id!r}")
            row: dict[str, Any] = {
                "hubspot_id": record_id,
                "properties": properties,
                "remote_created_at": created,
                "remote_updated_at": updated,
                "archived": bool(record.archived),
                "synced_at": now,
                "updated_at": now,
            }
            row.update(spec.column_values(properties))
        except (TypeError, ValueError, AttributeError) as exc:
            malformed += 1
            logger.warning("sync: skipped a malformed %s record (%s)", spec.name, exc)
            continue
        rows.append(row)
    return Prepared(records, rows, malformed)


def upsert_records(
    spec: MirrorType,
    records: Iterable[RemoteRecord] | Prepared,
    *,
    run_hooks: bool = True,
    full_run: bool = False,
) -> UpsertResult:
    """Write a page of HubSpot records (or the rows ``prepare`` made of them); an existing row with a newer
    remote_updated_at is left alone.

    ``run_hooks=False`` leaves the type's after-upsert hooks to the caller, who runs them once the page's
    associations are written too. ``full_run``: the rows versions of hooks (see ``registry.whole_table``)
    fill their columns from the records' inline edges."""
    prepared = records if isinstance(records, Prepared) else prepare(spec, records)
    rows, malformed = prepared.rows, prepared.malformed
    for derive in spec.derive:
        derive(rows)
    if full_run and rows:
        edges = {str(r.id): getattr(r, "associations", None) or {} for r in prepared.records}
        for hook in spec.after_upsert:
            fill = registry.rows_version(hook)
            if fill is not None:
                fill(spec, rows, edges)
    result = UpsertResult(malformed=malformed, skipped=malformed)
    if not rows:
        return result
    # The last version of a record in one page wins (a page can't hold one id twice, but a webhook batch can).
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = by_id.get(row["hubspot_id"])
        if current is None or _newer_or_same(row, current):
            by_id[row["hubspot_id"]] = row
    if len(by_id) != len(rows):
        rows = list(by_id.values())
    # Inside a caller's transaction (a full run writes several pages in one) no savepoint is needed: an
    # error rolls the caller's whole transaction back, cursor and all.
    with transaction.atomic(savepoint=False):
        with ExitStack() as around:
            if spec.around_write:
                ids = [row["hubspot_id"] for row in rows]
                for around_hook in spec.around_write:
                    around.enter_context(around_hook(spec, ids))
            written = (
                _upsert_postgresql(spec.model, rows)
                if connection.vendor == "postgresql"
                else _upsert_sqlite(spec.model, rows)
            )
        if run_hooks:
            run_after_upsert(spec, [row["hubspot_id"] for row in rows])
    result.written = written
    result.skipped += len(rows) - written
    return result


def run_after_upsert(spec: MirrorType, hubspot_ids: Sequence[str], *, full_run: bool = False) -> None:
    """The type's after-upsert hooks for the named records. In a full run (``full_run``), hooks that have a
    whole-table version are left to ``run_whole_table_hooks`` at the run's end."""
    for hook in spec.after_upsert:
        if full_run and registry.whole_table_version(hook) is not None:
            continue
        hook(spec, hubspot_ids)


def run_whole_table_hooks(specs: Iterable[MirrorType]) -> None:
    """The whole-table versions of the types' after-upsert hooks, each once (the end of a full run)."""
    done: list[registry.WholeTableHook] = []
    for spec in specs:
        for hook in spec.after_upsert:
            whole = registry.whole_table_version(hook)
            if whole is not None and whole not in done:
                done.append(whole)
                whole(spec)


@contextmanager
def bulk_writes() -> Iterator[None]:
    """Around a full run's writes. On SQLite, the WAL is checkpointed every
    HUBSPOT_SYNC_SQLITE_CHECKPOINT_PAGES pages rather than every 1,000, which spares hundreds of checkpoints
    (and their fsyncs) that copy the same index pages again; one checkpoint at the end leaves the WAL as the
    default would.

    On PostgreSQL the run's commits don't wait for their WAL to reach the disk (synchronous_commit off, for
    this connection only, when HUBSPOT_SYNC_ASYNC_COMMIT). A crash can then lose the last fraction of a
    second of committed pages, never make the database inconsistent; each page commits with the cursor
    that follows it, so the resumed run reads those pages again."""
    if connection.vendor == "postgresql":
        if not settings.HUBSPOT_SYNC_ASYNC_COMMIT:
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        return
    if connection.vendor != "sqlite":
        yield
        return
    pages = int(settings.HUBSPOT_SYNC_SQLITE_CHECKPOINT_PAGES)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA wal_autocheckpoint={pages:d}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={previous:d}")
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _newer_or_same(row: dict[str, Any], other: dict[str, Any]) -> bool:
    a, b = row["remote_updated_at"], other["remote_updated_at"]
    return a is None or b is None or a >= b


# --- statements and converters, built once per table and row shape ----------------------------------------

# A column's values converted for the database all at once: (field, values) -> values.
ColumnConverter = Callable[[models.Field[Any, Any], list[Any]], list[Any]]
_NONE = type(None)


def _django(field: models.Field[Any, Any], values: list[Any]) -> list[Any]:
    prep = field.get_db_prep_save
    return [prep(value, connection) for value in values]


def _plain(*types: type) -> ColumnConverter:
    """Columns whose values Django passes on unchanged when they have these types (a str for a CharField, a
    bool for a BooleanField, …), which is what sync produces; any other value goes through Django."""
    allowed = {_NONE, *types}

    def convert(field: models.Field[Any, Any], values: list[Any]) -> list[Any]:
        if {type(value) for value in values} <= allowed:
            return values
        return _django(field, values)

    return convert


def _sqlite_datetimes(field: models.Field[Any, Any], values: list[Any]) -> list[Any]:
    """What SQLite's adapt_datetimefield_value stores for aware datetimes when the connection's zone is UTC:
    the naive UTC time as str() writes it. synced_at and updated_at are one value for a whole page."""
    out: list[Any] = []
    last_in: Any = None
    last_out: Any = None
    for value in values:
        if value is not last_in:
            last_in = value
            if value is None:
                last_out = None
            elif type(value) is datetime and value.tzinfo is UTC:
                # str() of the naive time is isoformat(" "); in UTC the aware one only adds "+00:00".
                last_out = value.isoformat(" ")[:-6]
            elif isinstance(value, datetime) and value.tzinfo is not None:
                last_out = str(value.astimezone(UTC).replace(tzinfo=None))
            else:
                last_out = field.get_db_prep_save(value, connection)
        out.append(last_out)
    return out


def _json_texts(field: models.Field[Any, Any], values: list[Any]) -> list[Any]:
    """JSON text for a JSONField, as Django's json.dumps would store it up to spacing and escapes (reading it
    back gives the same value); orjson writes a page's properties several times faster."""
    dumps = orjson.dumps
    return [None if value is None else dumps(value).decode() for value in values]


def _column_converter(field: models.Field[Any, Any]) -> ColumnConverter:
    """What ``field.get_db_prep_save`` makes of the values sync produces, for a whole column at once."""
    if connection.vendor == "sqlite":
        if isinstance(field, models.DateTimeField) and settings.USE_TZ and connection.timezone == UTC:
            return _sqlite_datetimes
        if isinstance(field, models.JSONField) and field.encoder is None:
            return _json_texts
    if isinstance(field, (models.CharField, models.TextField)):
        return _plain(str)
    if isinstance(field, models.BooleanField):
        return _plain(bool)
    if isinstance(field, models.DecimalField):
        return _plain(Decimal)
    if isinstance(field, (models.ForeignKey, models.IntegerField)):
        return _plain(int)
    return _django


@dataclass(frozen=True)
class _Plan:
    sql: str
    keys: tuple[str, ...]  # the rows' keys, in the statement's column order
    fields: tuple[models.Field[Any, Any], ...]  # the field of each key
    converters: tuple[ColumnConverter, ...]  # SQLite: one per key
    default_fields: tuple[models.Field[Any, Any], ...]  # columns sync doesn't fill: their defaults on insert


_PLANS: dict[tuple[Any, ...], _Plan] = {}


def _plan(model: type[Model], keys: tuple[str, ...]) -> _Plan:
    """The upsert statement for rows with these keys. Only the keys sync filled are updated on conflict; the
    other columns get their defaults on insert (so it satisfies NOT NULL) and keep their values on update."""
    cache_key = (connection.vendor, connection.timezone_name, model._meta.label, keys)
    plan = _PLANS.get(cache_key)
    if plan is not None:
        return plan
    by_key: dict[str, models.Field[Any, Any]] = {f.attname: f for f in model._meta.concrete_fields}
    by_key.update({f.name: f for f in model._meta.concrete_fields})
    fields = tuple(by_key[key] for key in keys)
    given = {f.column for f in fields}
    default_fields = tuple(
        f for f in model._meta.concrete_fields if not f.primary_key and f.column not in given
    )
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = [quote(f.column) for f in (*fields, *default_fields)]
    updates = ", ".join(
        f"{quote(f.column)} = excluded.{quote(f.column)}" for f in fields if f.column != "hubspot_id"
    )
    newer = (
        f'WHERE excluded."remote_updated_at" IS NULL OR {table}."remote_updated_at" IS NULL '
        f'OR excluded."remote_updated_at" >= {table}."remote_updated_at"'
    )
    # Table, column and key names come from the model's meta and our own row keys, never from input; values
    # are parameters.
    if connection.vendor == "postgresql":
        # The rows travel as one JSON parameter whose keys are the rows' own; defaults as typed parameters.
        record_types = ", ".join(
            f"{quote(key)} {f.db_type(connection)}" for key, f in zip(keys, fields, strict=True)
        )
        selected = [f"r.{quote(key)}" for key in keys] + [
            f"%s::{f.db_type(connection)}" for f in default_fields
        ]
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
            f"SELECT {', '.join(selected)} FROM jsonb_to_recordset(%s::jsonb) AS r({record_types}) "
            f'ON CONFLICT ("hubspot_id") DO UPDATE SET {updates} {newer}'
        )
        converters: tuple[ColumnConverter, ...] = ()
    else:
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "  # noqa: S608
            f'ON CONFLICT("hubspot_id") DO UPDATE SET {updates} {newer}'
        )
        converters = tuple(_column_converter(f) for f in fields)
    plan = _PLANS[cache_key] = _Plan(sql, keys, fields, converters, default_fields)
    return plan


def _defaults(plan: _Plan) -> list[Any]:
    # Per call, not per plan: a default may be a callable with a different answer each time.
    return [f.get_db_prep_save(f.get_default(), connection) for f in plan.default_fields]


def _upsert_sqlite(model: type[Model], rows: list[dict[str, Any]]) -> int:
    plan = _plan(model, tuple(rows[0]))
    # Column by column: one conversion call per column rather than one per value.
    columns = [
        convert(field, [row[key] for row in rows])
        for key, field, convert in zip(plan.keys, plan.fields, plan.converters, strict=True)
    ]
    columns += [[default] * len(rows) for default in _defaults(plan)]
    with connection.cursor() as cursor:
        cursor.executemany(plan.sql, list(zip(*columns, strict=True)))
        return int(cursor.rowcount)


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _postgresql_json(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON text for jsonb_to_recordset. orjson writes datetimes as ISO-8601 itself and calls
    ``default`` only for decimals."""
    return orjson.dumps(rows, default=_decimal_text).decode()


def _upsert_postgresql(model: type[Model], rows: list[dict[str, Any]]) -> int:
    plan = _plan(model, tuple(rows[0]))
    payload = _postgresql_json(rows)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, [*_defaults(plan), payload])
        return int(cursor.rowcount)


# --- archiving and associations ----------------------------------------------------------------------------


def mark_archived(spec: MirrorType, hubspot_ids: Sequence[str], *, at: datetime | None = None) -> int:
    """Mark records archived (deleted in HubSpot); their edges go too."""
    if not hubspot_ids:
        return 0
    at = at or timezone.now()
    count = 0
    with transaction.atomic():
        for chunk in chunks(list(hubspot_ids), 500):
            count += spec.model._default_manager.filter(hubspot_id__in=chunk, archived=False).update(
                archived=True, synced_at=at
            )
            Association.objects.filter(from_type=spec.name, from_id__in=chunk).delete()
            Association.objects.filter(to_type=spec.name, to_id__in=chunk).delete()
        run_after_upsert(spec, list(hubspot_ids))
    return count


def replace_associations(from_type: str, to_type: str, edges: Mapping[str, Sequence[Edge]]) -> int:
    """Make each named record's edges to ``to_type`` exactly ``edges[id]`` = [(to_id, type_id, category)],
    in both directions."""
    return replace_edges(from_type, {to_type: edges})


def replace_edges(
    from_type: str,
    edges: Mapping[str, Mapping[str, Sequence[Edge]]],
    *,
    nothing_to_delete: Iterable[str] = (),
) -> int:
    """``replace_associations`` for several types at once: ``edges[to_type][from_id]`` = the record's edges
    to that type. One page of a full run is then three statements, whatever the number of types.

    ``nothing_to_delete``: types the caller knows the records have no edges to yet (a first full sync), so
    their replacement is an insert: the deletes would find nothing, at a cost of an index search per record
    and type."""
    skip = set(nothing_to_delete)
    rows: list[tuple[str, str, str, str, int, str]] = []
    ids_by_type: dict[str, list[str]] = {}
    for to_type, by_record in edges.items():
        if not by_record:
            continue
        ids_by_type[to_type] = list(by_record)
        default_type = DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type))
        reverse_type = DEFAULT_ASSOCIATION_TYPES.get((to_type, from_type))
        for from_id, targets in by_record.items():
            for to_id, type_id, category in targets:
                forward = type_id or default_type
                if forward is None:
                    continue
                # The reverse of a default type is its documented pair; a label we don't know is its own
                # reverse.
                backward = reverse_type if forward == default_type and reverse_type else forward
                rows.append((from_type, from_id, to_type, to_id, forward, category))
                rows.append((to_type, to_id, from_type, from_id, backward, category))
    if not ids_by_type:
        return 0
    # Types whose edges are replaced for the same records share their delete statements.
    groups: dict[tuple[str, ...], list[str]] = {}
    for to_type, record_ids in ids_by_type.items():
        if to_type not in skip:
            groups.setdefault(tuple(record_ids), []).append(to_type)
    with transaction.atomic(savepoint=False):
        for ids, to_types in groups.items():
            for chunk in chunks(list(ids), 1000):
                _delete_edges(from_type, to_types, chunk)
        _insert_edges(rows)
    return len(rows) // 2


_TABLE = Association._meta.db_table


def _delete_edges(from_type: str, to_types: list[str], ids: list[str]) -> None:
    """Delete the named records' edges to ``to_types``, both directions. The id lists travel as one
    parameter (a JSON array on SQLite, an array on PostgreSQL): a statement with hundreds of parameters
    costs more to log in DEBUG than to run."""
    table = connection.ops.quote_name(_TABLE)
    if connection.vendor == "postgresql":
        forward = "from_type = %s AND to_type = ANY(%s) AND from_id = ANY(%s)"
        backward = "to_type = %s AND from_type = ANY(%s) AND to_id = ANY(%s)"
        params: list[Any] = [from_type, to_types, ids]
    else:
        forward = (
            "from_type = %s AND to_type IN (SELECT value FROM json_each(%s)) "
            "AND from_id IN (SELECT value FROM json_each(%s))"
        )
        backward = (
            "to_type = %s AND from_type IN (SELECT value FROM json_each(%s)) "
            "AND to_id IN (SELECT value FROM json_each(%s))"
        )
        params = [from_type, json.dumps(to_types), json.dumps(ids)]
    with connection.cursor() as cursor:
        # The table name comes from the model's meta; values are parameters.
        cursor.execute(f"DELETE FROM {table} WHERE {forward}", params)  # noqa: S608
        cursor.execute(f"DELETE FROM {table} WHERE {backward}", params)  # noqa: S608


def _insert_edges(rows: list[tuple[str, str, str, str, int, str]]) -> None:
    """Insert edges, leaving any that exist already (what bulk_create(ignore_conflicts=True) does)."""
    if not rows:
        return
    table = connection.ops.quote_name(_TABLE)
    columns = "from_type, from_id, to_type, to_id, type_id, category, label"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = (
                "from_type varchar(32), from_id varchar(32), to_type varchar(32), to_id varchar(32), "
                "type_id integer, category varchar(32)"
            )
            payload = orjson.dumps(
                [
                    {"from_type": a, "from_id": b, "to_type": c, "to_id": d, "type_id": e, "category": f}
                    for a, b, c, d, e, f in rows
                ]
            ).decode()
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608
                f"SELECT from_type, from_id, to_type, to_id, type_id, category, '' "
                f"FROM jsonb_to_recordset(%s::jsonb) AS r({types}) ON CONFLICT DO NOTHING",
                [payload],
            )
        else:
            # One statement over a JSON array rather than executemany: executemany gives the GIL up and takes
            # it back for every row, and with the fetching threads busy each take waits for the interpreter's
            # switch interval; a page of edges then costs milliseconds per edge instead of microseconds.
            cursor.execute(
                f"INSERT OR IGNORE INTO {table} ({columns}) "  # noqa: S608
                "SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, '' "
                "FROM json_each(%s)",
                [orjson.dumps(rows).decode()],
            )


def id_list(ids: Sequence[str]) -> RawSQL:
    """A list of ids as one parameter, for ``field__in=id_list(ids)``: a JSON array on SQLite, an array on
    PostgreSQL. A page's hundred ids as a hundred parameters cost more to quote for DEBUG's query log
    than the query took."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", (list(ids),))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(list(ids)),))


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
