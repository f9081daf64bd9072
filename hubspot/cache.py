"""Bulk writes to the local cache: upserts that never put older data over newer, and association edges.

Django's ``bulk_create(update_conflicts=True)`` can't say "only when newer", and on psycopg 3 it manages
about 3,000 rows a second; so each page is one statement of our own: ``executemany`` of an
``INSERT … ON CONFLICT DO UPDATE … WHERE newer`` on SQLite, and one ``INSERT … SELECT FROM
jsonb_to_recordset(…)`` on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from hubspot.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot.models import Association
from hubspot.registry import MirrorType, parse_datetime

logger = logging.getLogger(__name__)


class RemoteRecord(Protocol):
    """What the cache needs of a record read from HubSpot (hubspot.client.ApiObject has it)."""

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


def build_rows(
    spec: MirrorType, records: Iterable[RemoteRecord], now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Rows for the model's table; a record that can't be read is logged and skipped, never fatal."""
    rows: list[dict[str, Any]] = []
    malformed = 0
    for record in records:
        try:
            properties = dict(record.properties)
            updated = record.updated_at or parse_datetime(str(properties.get(spec.modified_property) or ""))
            created = record.created_at or parse_datetime(str(properties.get(spec.created_property) or ""))
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
    for derive in spec.derive:
        derive(rows)
    return rows, malformed


def upsert_records(
    spec: MirrorType, records: Iterable[RemoteRecord], *, run_hooks: bool = True
) -> UpsertResult:
    """Write a page of HubSpot records; an existing row with a newer remote_updated_at is left alone.

    ``run_hooks=False`` leaves the type's after-upsert hooks to the caller, who runs them once the page's
    associations are written too."""
    now = timezone.now()
    rows, malformed = build_rows(spec, records, now)
    result = UpsertResult(malformed=malformed, skipped=malformed)
    if not rows:
        return result
    # The last version of a record in one page wins (a page can't hold one id twice, but a webhook batch can).
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = by_id.get(row["hubspot_id"])
        if current is None or _newer_or_same(row, current):
            by_id[row["hubspot_id"]] = row
    rows = list(by_id.values())
    model = spec.model
    with transaction.atomic():
        written = (
            _upsert_postgresql(model, rows)
            if connection.vendor == "postgresql"
            else _upsert_sqlite(model, rows)
        )
        if run_hooks:
            run_after_upsert(spec, [row["hubspot_id"] for row in rows])
    result.written = written
    result.skipped += len(rows) - written
    return result


def run_after_upsert(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    for hook in spec.after_upsert:
        hook(spec, hubspot_ids)


def _newer_or_same(row: dict[str, Any], other: dict[str, Any]) -> bool:
    a, b = row["remote_updated_at"], other["remote_updated_at"]
    return a is None or b is None or a >= b


def _complete(model: type[Model], rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    """Rows with every concrete column (defaults for the ones sync doesn't fill, so an insert satisfies NOT
    NULL), and the keys sync did fill: only those are updated on conflict."""
    given = set(rows[0])
    defaults = {
        f.attname: f.get_default()
        for f in model._meta.concrete_fields
        if not f.primary_key and f.attname not in given and f.name not in given
    }
    return [{**row, **defaults} for row in rows], given


def _columns(model: type[Model], rows: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(db column, field) for every key of the rows, in the rows' key order."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    fields.update({f.name: f for f in model._meta.concrete_fields})
    return [(fields[key].column, fields[key]) for key in rows[0]]


def _update_clause(model: type[Model], columns: list[tuple[str, Any]], given: set[str]) -> str:
    quote = connection.ops.quote_name
    updated = [column for column, field in columns if (field.attname in given or field.name in given)]
    return ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated if c != "hubspot_id")


def _upsert_sqlite(model: type[Model], rows: list[dict[str, Any]]) -> int:
    table = connection.ops.quote_name(model._meta.db_table)
    rows, given = _complete(model, rows)
    columns = _columns(model, rows)
    names = [connection.ops.quote_name(column) for column, _ in columns]
    updates = _update_clause(model, columns, given)
    # Table and column names come from the model's meta, never from input; values are parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "  # noqa: S608
        f'ON CONFLICT("hubspot_id") DO UPDATE SET {updates} '
        f'WHERE excluded."remote_updated_at" IS NULL OR {table}."remote_updated_at" IS NULL '
        f'OR excluded."remote_updated_at" >= {table}."remote_updated_at"'
    )
    params = [
        [field.get_db_prep_save(row[key], connection) for key, (_, field) in zip(row, columns, strict=True)]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _upsert_postgresql(model: type[Model], rows: list[dict[str, Any]]) -> int:
    table = connection.ops.quote_name(model._meta.db_table)
    rows, given = _complete(model, rows)
    columns = _columns(model, rows)
    names = [connection.ops.quote_name(column) for column, _ in columns]
    record_types = ", ".join(
        f"{connection.ops.quote_name(column)} {field.db_type(connection)}" for column, field in columns
    )
    updates = _update_clause(model, columns, given)
    keys = [column for column, _ in columns]
    payload = json.dumps(
        [{column: _json_value(row[key]) for key, column in zip(row, keys, strict=True)} for row in rows]
    )
    # Names from the model's meta; the rows travel as one JSON parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {', '.join(names)} FROM jsonb_to_recordset(%s::jsonb) AS r({record_types}) "
        f'ON CONFLICT ("hubspot_id") DO UPDATE SET {updates} '
        f'WHERE excluded."remote_updated_at" IS NULL OR {table}."remote_updated_at" IS NULL '
        f'OR excluded."remote_updated_at" >= {table}."remote_updated_at"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [payload])
        return int(cursor.rowcount)


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


def replace_associations(
    from_type: str, to_type: str, edges: Mapping[str, Sequence[tuple[str, int | None, str]]]
) -> int:
    """Make each named record's edges to ``to_type`` exactly ``edges[id]`` = [(to_id, type_id, category)],
    in both directions."""
    if not edges:
        return 0
    default_type = DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type))
    reverse_type = DEFAULT_ASSOCIATION_TYPES.get((to_type, from_type))
    new: list[Association] = []
    for from_id, targets in edges.items():
        for to_id, type_id, category in targets:
            forward = type_id or default_type
            if forward is None:
                continue
            # The reverse of a default type is its documented pair; a label we don't know is its own reverse.
            backward = reverse_type if forward == default_type and reverse_type else forward
            new.append(
                Association(
                    from_type=from_type,
                    from_id=from_id,
                    to_type=to_type,
                    to_id=to_id,
                    type_id=forward,
                    category=category,
                )
            )
            new.append(
                Association(
                    from_type=to_type,
                    from_id=to_id,
                    to_type=from_type,
                    to_id=from_id,
                    type_id=backward,
                    category=category,
                )
            )
    with transaction.atomic():
        for chunk in chunks(list(edges), 500):
            Association.objects.filter(from_type=from_type, from_id__in=chunk, to_type=to_type).delete()
            Association.objects.filter(from_type=to_type, to_type=from_type, to_id__in=chunk).delete()
        Association.objects.bulk_create(new, ignore_conflicts=True, batch_size=2000)
    return len(new) // 2


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
