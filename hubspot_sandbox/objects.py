"""CRM objects: the mutation functions the whole sandbox uses, and the v3 object endpoints.

Every write to a record goes through ``create_record``, ``update_record``, ``archive_record``,
``restore_record``, ``associate_records`` or ``dissociate_records``: they validate as HubSpot does, keep
property history, and emit the ``ChangeEvent``s that webhooks are sent from.

References: hubspot-api.md §1 (endpoints, limits, shapes), §2 (errors), §5 (associations on objects).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubspot_sandbox import standard
from hubspot_sandbox.defaults import PIPELINE_PROPERTIES, active_stages
from hubspot_sandbox.http import HubSpotError, Request, Response, Router
from hubspot_sandbox.index import record_written
from hubspot_sandbox.state import (
    DEFAULT_ASSOCIATION_TYPES,
    DEFINED_LABELS,
    OBJECT_TYPES,
    ChangeEvent,
    ObjectType,
    Record,
    SandboxState,
    is_defined_type,
    iso_ms,
    now_ms,
    resolve_type,
)

# The path families objects answer on (reference §0: v3, and optionally the date-versioned family).
OBJECT_PREFIXES = ("/crm/v3/objects", "/crm/objects/2026-03")

LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100  # reference §1.2; limit>100 is UNCONFIRMED (400 or clamp): we clamp, consistently
# "The maximum number of inputs supported in a batch request for property histories is 50" (§1.1)
HISTORY_MAX_INPUTS = 50
BATCH_MAX_INPUTS = 100  # reference §1.2
ASSOCIATIONS_PAGE = 100  # association data inside v3 object responses pages at 100 (reference §5.1)

# Properties a bare GET returns (reference §1.3: orders and carts return these three; the search guide's
# table gives the contact set). Line items follow the orders pattern: their default set is UNCONFIRMED.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "orders": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "carts": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "line_items": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    **standard.DEFAULT_PROPERTIES,
}
# Required on create (reference §1.2 "Required properties to create records").
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {"orders": ("hs_order_name",), **standard.REQUIRED_ON_CREATE}
# Set by the sandbox itself, never by a client, whatever the property definitions say.
_SYSTEM_PROPERTIES = frozenset({"hs_object_id", "hs_lastmodifieddate", "lastmodifieddate"})
# hs_lastmodifieddate is excluded from propertyChange webhooks (reference §7.2).
_NO_CHANGE_EVENT = frozenset({"hs_lastmodifieddate", "lastmodifieddate"})
_PIPELINE_PROPERTIES = frozenset(name for pair in PIPELINE_PROPERTIES.values() for name in pair)

# Key of each type inside ``associations`` of an object response, and its singular in v3 ``type``
# strings such as ``order_to_contact`` (reference §5.1). The line-item key "line items" (with a space) is
# what third parties observed; UNCONFIRMED officially (§11 item 7).
ASSOCIATION_KEYS: dict[str, str] = {
    "contacts": "contacts",
    "orders": "orders",
    "carts": "carts",
    "line_items": "line items",
    **{name: name for name in OBJECT_TYPES if name not in ("contacts", "orders", "carts", "line_items")},
}
# The upper-case name HubSpot uses in "Could not get some ORDER objects" (reference §1.3).
_ERROR_NAMES: dict[str, str] = {
    "contacts": "CONTACT",
    "orders": "ORDER",
    "carts": "CART",
    "line_items": "LINE_ITEM",
    **{
        name: t.singular.upper()
        for name, t in OBJECT_TYPES.items()
        if name not in ("contacts", "orders", "carts")
    },
}


@dataclass
class Behaviour:
    """Per-portal switches for behaviour HubSpot does not document firmly (reference §11)."""

    # "It may take a few moments for newly created or updated CRM objects to appear in search results"
    # (reference §1.5): records written less than this many seconds ago are left out of search.
    search_lag_s: float = 0.0
    # Whether an association change bumps both records' last-modified date. UNCONFIRMED
    # (sync-performance §8 item 4); off by default, so clients must not rely on it.
    association_changes_bump_modified: bool = False
    # Whether creating a record also emits propertyChange events for the values it was created with.
    # HubSpot sends them to propertyChange subscribers; UNCONFIRMED for generic object subscriptions.
    property_change_on_create: bool = True
    # Required properties on create (reference §1.2); switch off for hostile seeds that break the rule.
    enforce_required: bool = True


_BEHAVIOUR: weakref.WeakKeyDictionary[SandboxState, Behaviour] = weakref.WeakKeyDictionary()


def behaviour(state: SandboxState) -> Behaviour:
    """The behaviour switches of one sandbox portal (created with defaults on first use)."""
    found = _BEHAVIOUR.get(state)
    if found is None:
        found = _BEHAVIOUR[state] = Behaviour()
    return found


# --- small helpers ----------------------------------------------------------------------------------


def object_type(name: str) -> ObjectType:
    """The object type a path names, or HubSpot's 400 for a name it cannot infer a type from."""
    found = resolve_type(name)
    if found is None:
        # HubSpot's wording for an unknown objectType; the status and category are UNCONFIRMED.
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return found


def not_found(message: str = "resource not found") -> HubSpotError:
    """HubSpot's 404 (reference §2; the exact message is UNCONFIRMED)."""
    return HubSpotError(404, "OBJECT_NOT_FOUND", message)


def validation_error(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **kwargs)


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (an empty body counts as ``{}``)."""
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected an object")
    return body


def as_text(value: Any) -> str:
    """HubSpot serialises every property value as a string: 5 -> "5", true -> "true", null -> ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def parse_time_ms(value: str) -> int | None:
    """Epoch milliseconds or an ISO-8601 date/datetime (reference §1.5 "Dates") as epoch ms."""
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def batch_envelope(started_ms: int, results: list[Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    """``BatchResponse...[WithErrors]``: numErrors and errors only when there are errors (reference §1.3)."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = iso_ms(started_ms)
    body["completedAt"] = iso_ms(now_ms())
    return body


def error_item(
    category: str,
    message: str,
    context: dict[str, list[str]] | None = None,
    *,
    sub_category: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One ``StandardError`` inside a 207 (reference §1.3 multi-status example)."""
    item: dict[str, Any] = {"status": "error", "category": category}
    if sub_category:
        item["subCategory"] = sub_category
    item["message"] = message
    if errors:
        item["errors"] = errors
    item["context"] = context or {}
    return item


def error_item_from(exc: HubSpotError, context: dict[str, list[str]] | None = None) -> dict[str, Any]:
    merged = dict(exc.context or {})
    merged.update(context or {})
    return error_item(
        exc.category or "VALIDATION_ERROR",
        exc.message,
        merged,
        sub_category=exc.sub_category,
        errors=exc.errors,
    )


def check_batch_size(inputs: Any, limit: int = BATCH_MAX_INPUTS) -> list[Any]:
    """The ``inputs`` list of a batch body, at most ``limit`` long (reference §1.2: 100 per request)."""
    if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
        raise validation_error("Invalid input JSON: 'inputs' must be a list of objects")
    if len(inputs) > limit:
        # The limit is documented; HubSpot's exact wording here is UNCONFIRMED.
        raise validation_error(f"Batch input size {len(inputs)} exceeds the maximum of {limit} inputs")
    return inputs


def encode_cursor(offset: int) -> str:
    """An opaque cursor for association paging (HubSpot's look like base64, reference §5.1)."""
    return base64.urlsafe_b64encode(f"sbx-{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    text = cursor.replace("%3D", "=").replace("%3d", "=").rstrip("=")
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        if decoded.startswith("sbx-"):
            return max(0, int(decoded[4:]))
    except (ValueError, UnicodeDecodeError):
        pass
    raise validation_error(f"Invalid paging cursor: {cursor}")


def base_url(request: Request) -> str:
    return f"http://{request.headers.get('host', 'localhost')}"


# --- property validation ----------------------------------------------------------------------------


def _problem(state: SandboxState, name: str, code: str, message: str) -> dict[str, Any]:
    """One entry of HubSpot's "Property values were not valid" list (reference §1.3 / §2)."""
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
        "portalId": state.portal_id,
    }


def _invalid_properties(problems: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot's 400: the problems JSON inside ``message``, and the same again as ``errors[]``."""
    return validation_error(
        "Property values were not valid: " + json.dumps(problems, separators=(",", ":")),
        errors=[
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ],
    )


def _is_read_only(definition: Mapping[str, Any]) -> bool:
    meta = definition.get("modificationMetadata") or {}
    return bool(meta.get("readOnlyValue")) or bool(definition.get("calculated"))


def clean_properties(state: SandboxState, otype: ObjectType, raw: Any, *, creating: bool) -> dict[str, str]:
    """Validate a client's property values against the portal's definitions; return them as strings.

    Unknown → PROPERTY_DOESNT_EXIST, read-only → READ_ONLY_VALUE, an option that is not one →
    INVALID_OPTION, a non-number → INVALID_INTEGER (reference §1.1 PATCH rules, §2). "" clears a value.
    With no definitions installed for a type, every name is accepted (nothing to validate against).
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise validation_error("Invalid input JSON: 'properties' must be an object")
    definitions = state.properties.get(otype.name) or {}
    problems: list[dict[str, Any]] = []
    clean: dict[str, str] = {}
    for name, value in raw.items():
        text = as_text(value)
        definition = definitions.get(name)
        if definitions and definition is None and name not in _SYSTEM_PROPERTIES:
            problems.append(
                _problem(state, name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
            )
            continue
        if name in _SYSTEM_PROPERTIES or (definition is not None and _is_read_only(definition)):
            # The code is what third parties observed; UNCONFIRMED officially (reference §2).
            message = f'"{name}" is a read only property; its value cannot be set.'
            problems.append(_problem(state, name, "READ_ONLY_VALUE", message))
            continue
        if text and definition is not None:
            text, problem = _check_value(state, otype, name, text, definition)
            if problem:
                problems.append(problem)
                continue
        if text or not creating:
            clean[name] = text
    if problems:
        raise _invalid_properties(problems)
    return clean


def _check_value(
    state: SandboxState, otype: ObjectType, name: str, text: str, definition: Mapping[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    kind = definition.get("type")
    if kind == "enumeration" and name not in _PIPELINE_PROPERTIES:
        options = definition.get("options") or []
        allowed = [str(o.get("value")) for o in options]
        if allowed:
            # Multi-select (checkbox) values are ";"-separated; every part must be an option.
            parts = text.split(";") if definition.get("fieldType") == "checkbox" else [text]
            bad = [p for p in parts if p not in allowed]
            if bad:
                # HubSpot's wording is "<value> was not one of the allowed options: [...]".
                message = f"{bad[0]} was not one of the allowed options: [{', '.join(allowed)}]"
                return text, _problem(state, name, "INVALID_OPTION", message)
    elif kind == "number":
        try:
            float(text)
        except ValueError:
            # The doc's own example error: code INVALID_INTEGER, "... was not a valid number" (reference §2).
            return text, _problem(state, name, "INVALID_INTEGER", f"{text} was not a valid number")
    elif kind == "datetime":
        ms = parse_time_ms(text)
        if ms is not None:
            text = iso_ms(ms)  # stored as HubSpot returns datetimes: ISO-8601 with milliseconds and a Z
    elif kind == "date":
        ms = parse_time_ms(text)
        if ms is not None:
            text = iso_date(ms)
    elif kind == "bool" and text.lower() in {"true", "false"}:
        text = text.lower()
    return text, None


# --- order pipelines ----------------------------------------------------------------------------------


def default_pipeline(state: SandboxState, type_name: str) -> dict[str, Any] | None:
    """The portal's first live pipeline by displayOrder: where a record lands when none is given."""
    live = [p for p in state.pipelines.get(type_name, {}).values() if not p.get("archived")]
    if not live:
        return None
    return min(live, key=lambda p: (p.get("displayOrder", 0), str(p.get("label", ""))))


def _apply_pipeline_rules(
    state: SandboxState, otype: ObjectType, changes: dict[str, str], record: Record | None
) -> None:
    """A record's pipeline and stage (an order's or ticket's hs_pipeline / hs_pipeline_stage, a deal's
    pipeline / dealstage) must name a live pipeline and one of its stages.

    Absent on create → the default pipeline and its first stage; a pipeline change without a stage →
    the new pipeline's first stage (unless the current stage belongs to it). Carts have no pipelines
    (reference §4: they are not in the supported list).
    """
    pipelines = state.pipelines.get(otype.name)
    names = PIPELINE_PROPERTIES.get(otype.name)
    if names is None or not pipelines:
        return
    pipeline_prop, stage_prop = names
    current = record.properties if record is not None else {}
    pipeline_id = changes.get(pipeline_prop, current.get(pipeline_prop, ""))
    if pipeline_id:
        pipeline = pipelines.get(pipeline_id)
        if pipeline is None or pipeline.get("archived"):
            allowed = ", ".join(p["id"] for p in pipelines.values() if not p.get("archived"))
            message = (
                f"{pipeline_id} was not one of the allowed options: [{allowed}] "
                f"(not a{'n' if otype.singular[0] in 'aeiou' else ''} {otype.singular} pipeline)"
            )
            raise _invalid_properties([_problem(state, pipeline_prop, "INVALID_OPTION", message)])
    else:
        pipeline = default_pipeline(state, otype.name)
        if pipeline is None:
            return
    stage_ids = [s["id"] for s in active_stages(pipeline)]
    if stage_prop in changes:
        stage_id = changes[stage_prop]
        if stage_id not in stage_ids:
            message = (
                f"{stage_id or '(empty)'} was not one of the allowed options: [{', '.join(stage_ids)}] "
                f'(it is not a stage of pipeline {pipeline["id"]} "{pipeline.get("label", "")}")'
            )
            raise _invalid_properties([_problem(state, stage_prop, "INVALID_OPTION", message)])
    elif current.get(stage_prop) not in stage_ids and stage_ids:
        changes[stage_prop] = stage_ids[0]
    if current.get(pipeline_prop) != pipeline["id"]:
        changes[pipeline_prop] = pipeline["id"]


# --- unique values (idProperty lookups, duplicate checks) ----------------------------------------------


class _UniqueMap:
    """value (lower-cased) -> record id for one unique property, rebuilt when records change behind us."""

    __slots__ = ("count", "records", "values")

    def __init__(self, records: dict[str, Record], prop: str) -> None:
        self.records = records
        self.count = len(records)
        self.values: dict[str, str] = {}
        for rid, rec in records.items():
            value = rec.properties.get(prop)
            if value and not rec.archived:
                self.values[value.lower()] = rid


_UNIQUES: weakref.WeakKeyDictionary[SandboxState, dict[tuple[str, str], _UniqueMap]] = (
    weakref.WeakKeyDictionary()
)


def unique_properties(state: SandboxState, otype: ObjectType) -> set[str]:
    """Properties whose values identify one record: hasUniqueValue ones, and a contact's email."""
    found = {n for n, d in (state.properties.get(otype.name) or {}).items() if d.get("hasUniqueValue")}
    if otype.name == "contacts":
        found.add("email")  # HubSpot deduplicates contacts by email (reference §1.1 idProperty)
    found.discard("hs_object_id")
    return found


def _unique_map(state: SandboxState, type_name: str, prop: str) -> _UniqueMap:
    maps = _UNIQUES.setdefault(state, {})
    records = state.records[type_name]
    found = maps.get((type_name, prop))
    if found is None or found.records is not records or found.count != len(records):
        found = maps[(type_name, prop)] = _UniqueMap(records, prop)
    return found


def _find_unique(state: SandboxState, type_name: str, prop: str, value: str) -> Record | None:
    key = value.lower()
    for attempt in range(2):
        index = _unique_map(state, type_name, prop)
        rid = index.values.get(key)
        if rid is None:
            return None
        rec = state.records[type_name].get(rid)
        if rec is not None and not rec.archived and (rec.properties.get(prop) or "").lower() == key:
            return rec
        if attempt == 0:  # stale: something wrote behind our back; rebuild once
            _UNIQUES.setdefault(state, {}).pop((type_name, prop), None)
    return None


def _index_values(state: SandboxState, type_name: str, rec: Record, before: Mapping[str, str]) -> None:
    """Keep the unique maps in step after one of our own writes."""
    maps = _UNIQUES.get(state)
    if not maps:
        return
    records = state.records[type_name]
    for (t, prop), index in maps.items():
        if t != type_name:
            continue
        old = before.get(prop)
        new = None if rec.archived else rec.properties.get(prop)
        if old and index.values.get(old.lower()) == rec.id:
            del index.values[old.lower()]
        if new:
            index.values[new.lower()] = rec.id
        index.count = len(records)


def _check_unique(
    state: SandboxState,
    otype: ObjectType,
    changes: Mapping[str, str],
    record_id: str | None,
    claimed: dict[tuple[str, str], str] | None = None,
) -> None:
    """Refuse a value of a unique property that another record (or input of this batch) already has.

    ``claimed`` collects (property, value) -> record id ("" for a new record) across one batch.
    """
    for prop in unique_properties(state, otype):
        value = changes.get(prop)
        if not value:
            continue
        key = (prop, value.lower())
        if claimed is not None:
            if key in claimed and claimed[key] != record_id:
                raise validation_error(f"Duplicate {prop} values in batch input: {value}")
            claimed[key] = record_id or ""
        other = _find_unique(state, otype.name, prop, value)
        if other is None or other.id == record_id:
            continue
        if otype.name == "contacts" and prop == "email":
            # 409 CONFLICT, as many integrations record it (reference §2); undocumented.
            raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {other.id}")
        # Third parties saw "... already has that value" on duplicate unique values; UNCONFIRMED.
        message = f"{value}: propertyValue already has that value"
        raise _invalid_properties([_problem(state, prop, "INVALID_UNIQUE_VALUE", message)])


def find_record(
    state: SandboxState,
    otype: ObjectType,
    value: str,
    *,
    id_property: str | None = None,
    archived: bool = False,
) -> Record | None:
    """The record an id (or a unique ``idProperty`` value) names; archived ones only with ``archived``."""
    if not id_property or id_property == "hs_object_id":
        return state.get(otype.name, value, archived=archived)
    if id_property not in unique_properties(state, otype):
        raise validation_error(f"{id_property} is not a unique property and cannot be used as idProperty")
    if not archived:
        return _find_unique(state, otype.name, id_property, value)
    key = value.lower()
    for rec in state.records[otype.name].values():
        if rec.archived and (rec.properties.get(id_property) or "").lower() == key:
            return rec
    return None


# --- writes -------------------------------------------------------------------------------------------


def _write(rec: Record, changes: Mapping[str, str], ts: int, source: str) -> list[tuple[str, str]]:
    """Set values ("" clears), keep each property's history newest first; return what changed."""
    changed: list[tuple[str, str]] = []
    props = rec.properties
    for name, value in changes.items():
        if props.get(name, "") == value:
            continue
        if value:
            props[name] = value
        else:
            props.pop(name, None)
        rec.history.setdefault(name, []).insert(0, (value, ts, source))
        changed.append((name, value))
    return changed


def _line_item_amount(otype: ObjectType, rec: Record | None, changes: dict[str, str]) -> None:
    """A line item's amount is quantity times unit price (reference §6 default line item properties)."""
    if otype.name != "line_items" or "amount" in changes:
        return
    if "price" not in changes and "quantity" not in changes:
        return
    current = rec.properties if rec is not None else {}
    price = changes.get("price", current.get("price", ""))
    quantity = changes.get("quantity", current.get("quantity", "1"))
    try:
        total = float(price) * float(quantity or "1")
    except ValueError:
        return
    changes["amount"] = f"{total:.2f}".rstrip("0").rstrip(".") if total != int(total) else str(int(total))


def _derived(state: SandboxState, otype: ObjectType, changes: dict[str, str]) -> None:
    """Values HubSpot calculates from a write: a contact's email domain (a read-only, calculated
    property in the default definitions)."""
    if (
        otype.name == "contacts"
        and "email" in changes
        and "hs_email_domain" in (state.properties.get("contacts") or {})
    ):
        email = changes["email"]
        changes["hs_email_domain"] = email.rsplit("@", 1)[1].lower() if "@" in email else ""


def _emit(
    state: SandboxState,
    otype: ObjectType,
    subscription_type: str,
    rec: Record,
    ts: int,
    source: str,
    *,
    name: str | None = None,
    value: str | None = None,
) -> None:
    state.emit(
        ChangeEvent(
            subscription_type=subscription_type,
            object_type_id=otype.type_id,
            object_id=rec.id,
            occurred_ms=ts,
            property_name=name,
            property_value=value,
            change_source=source,
        )
    )


def _next_ts(rec: Record | None = None) -> int:
    """Now, but never before the record's last change: updatedAt only moves forward."""
    ts = now_ms()
    if rec is not None and ts <= rec.updated_ms:
        ts = rec.updated_ms + 1
    return ts


@dataclass
class _AssociationInput:
    to_type: str
    to_id: str
    category: str
    type_id: int


def association_pair(state: SandboxState, from_type: str, type_id: int) -> str | None:
    """The type a typed association from ``from_type`` points to (default ids and custom labels)."""
    for (f, t), tid in DEFAULT_ASSOCIATION_TYPES.items():
        if f == from_type and tid == type_id:
            return t
    for (f, t), defined in DEFINED_LABELS.items():
        if f == from_type and type_id in defined:
            return t
    for (f, t), labels in state.association_labels.items():
        if f == from_type and type_id in labels:
            return t
    return None


def _parse_associations(state: SandboxState, otype: ObjectType, raw: Any) -> list[_AssociationInput]:
    """A create body's ``associations`` (reference §1.4), validated before anything is written."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise validation_error("Invalid input JSON: 'associations' must be a list")
    parsed: list[_AssociationInput] = []
    for item in raw:
        to = item.get("to") if isinstance(item, dict) else None
        specs = item.get("types") if isinstance(item, dict) else None
        if (
            not isinstance(to, dict)
            or not isinstance(specs, list)
            or not all(isinstance(x, dict) for x in specs)
        ):
            raise validation_error(
                "Invalid input JSON: an association needs 'to': {id} and a list of 'types'"
            )
        to_id = str(to.get("id", "")).strip()
        for spec in specs:
            try:
                type_id = int(spec.get("associationTypeId"))
            except (TypeError, ValueError):
                raise validation_error("Invalid input JSON: associationTypeId must be an integer") from None
            category = str(spec.get("associationCategory") or "HUBSPOT_DEFINED")
            to_type = association_pair(state, otype.name, type_id)
            if to_type is None:
                raise validation_error(
                    f"{type_id} is not a valid association type id from {otype.singular}",
                    context={"associationTypeId": [str(type_id)]},
                )
            if state.get(to_type, to_id) is None:
                missing = f"{OBJECT_TYPES[to_type].singular} {to_id} does not exist"
                raise validation_error(
                    f"One or more associations are invalid: {missing}", context={"id": [to_id]}
                )
            parsed.append(_AssociationInput(to_type, to_id, category, type_id))
    return parsed


def _prepare_create(
    state: SandboxState,
    otype: ObjectType,
    properties: Any,
    associations: Any,
    claimed: dict[tuple[str, str], str] | None = None,
) -> tuple[dict[str, str], list[_AssociationInput]]:
    changes = clean_properties(state, otype, properties, creating=True)
    if behaviour(state).enforce_required:
        missing = [p for p in REQUIRED_ON_CREATE.get(otype.name, ()) if not changes.get(p)]
        if missing:
            raise _invalid_properties(
                [
                    _problem(state, p, "REQUIRED_PROPERTY", f"{p} is required to create a {otype.singular}")
                    for p in missing
                ]
            )
    _apply_pipeline_rules(state, otype, changes, None)
    _check_unique(state, otype, changes, None, claimed)
    _line_item_amount(otype, None, changes)
    return changes, _parse_associations(state, otype, associations)


def _insert(
    state: SandboxState,
    otype: ObjectType,
    changes: dict[str, str],
    links: list[_AssociationInput],
    *,
    source: str,
    trace_id: str | None,
) -> Record:
    ts = now_ms()
    rid = state.next_id(otype.name)
    created = ts
    if otype.created_property in changes:  # only when the definition allows setting it (imports do)
        created = parse_time_ms(changes[otype.created_property]) or ts
    rec = Record(id=rid, properties={}, created_ms=created, updated_ms=ts)
    values = {
        "hs_object_id": rid,
        otype.created_property: iso_ms(created),
        otype.modified_property: iso_ms(ts),
        # Objects written through the API show source API / label INTERNAL_PROCESSING (reference §1.3).
        "hs_object_source": source,
        "hs_object_source_label": "INTERNAL_PROCESSING" if source == "API" else source,
    }
    values.update(changes)
    _derived(state, otype, values)
    _write(rec, values, ts, source)
    state.records[otype.name][rid] = rec
    _index_values(state, otype.name, rec, {})
    record_written(state, otype.name, rec)
    if trace_id:
        state.write_traces[(otype.name, trace_id)] = rid
    _emit(state, otype, "object.creation", rec, ts, source)
    if behaviour(state).property_change_on_create:
        for name, value in changes.items():
            if value and name not in _NO_CHANGE_EVENT:
                _emit(state, otype, "object.propertyChange", rec, ts, source, name=name, value=value)
    for link in links:
        associate_records(
            state,
            otype.name,
            rid,
            link.to_type,
            link.to_id,
            type_id=link.type_id,
            category=link.category,
            source=source,
        )
    return rec


def create_record(
    state: SandboxState,
    type_name: str,
    properties: Mapping[str, Any],
    *,
    associations: list[dict[str, Any]] | None = None,
    source: str = "API",
    trace_id: str | None = None,
) -> Record:
    """Create a record as HubSpot's POST does; a repeated ``trace_id`` returns the first record instead."""
    otype = object_type(type_name)
    with state.lock:
        existing = _traced_record(state, otype, trace_id) if trace_id else None
        if existing is not None:
            return existing
        changes, links = _prepare_create(state, otype, properties, associations)
        return _insert(state, otype, changes, links, source=source, trace_id=trace_id)


def _prepare_update(
    state: SandboxState,
    otype: ObjectType,
    rec: Record,
    properties: Any,
    claimed: dict[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    changes = clean_properties(state, otype, properties, creating=False)
    if _PIPELINE_PROPERTIES & changes.keys():
        _apply_pipeline_rules(state, otype, changes, rec)
    _check_unique(state, otype, changes, rec.id, claimed)
    _line_item_amount(otype, rec, changes)
    return changes


def _modify(
    state: SandboxState, otype: ObjectType, rec: Record, changes: dict[str, str], source: str
) -> list[str]:
    ts = _next_ts(rec)
    before = dict(rec.properties)
    _derived(state, otype, changes)
    changed = _write(rec, changes, ts, source)
    if changed:
        rec.updated_ms = ts
        _write(rec, {otype.modified_property: iso_ms(ts)}, ts, source)
        _index_values(state, otype.name, rec, before)
        record_written(state, otype.name, rec)
        for name, value in changed:
            if name not in _NO_CHANGE_EVENT:
                _emit(state, otype, "object.propertyChange", rec, ts, source, name=name, value=value)
    return [name for name, _ in changed]


def update_record(
    state: SandboxState,
    type_name: str,
    record_id: str,
    properties: Mapping[str, Any],
    *,
    source: str = "API",
    id_property: str | None = None,
) -> Record:
    """Update a live record as HubSpot's PATCH does (404 when it is missing or archived)."""
    otype = object_type(type_name)
    with state.lock:
        rec = find_record(state, otype, record_id, id_property=id_property)
        if rec is None:
            raise not_found()
        changes = _prepare_update(state, otype, rec, properties)
        _modify(state, otype, rec, changes, source)
        return rec


def archive_record(state: SandboxState, type_name: str, record_id: str, *, source: str = "API") -> bool:
    """Move a record to the recycling bin; False when there was no live record to archive.

    Archiving does not bump the last-modified date (reference §9 item 2).
    """
    otype = object_type(type_name)
    with state.lock:
        rec = state.get(otype.name, record_id)
        if rec is None:
            return False
        before = dict(rec.properties)
        ts = _next_ts(rec)
        rec.archived = True
        rec.archived_ms = ts
        _index_values(state, otype.name, rec, before)
        record_written(state, otype.name, rec)
        _emit(state, otype, "object.deletion", rec, ts, source)
        return True


def restore_record(state: SandboxState, type_name: str, record_id: str, *, source: str = "API") -> Record:
    """Bring an archived record back from the recycling bin (its associations come back with it)."""
    otype = object_type(type_name)
    with state.lock:
        rec = state.get(otype.name, record_id, archived=True)
        if rec is None:
            raise not_found()
        _check_unique(state, otype, rec.properties, rec.id)
        ts = _next_ts(rec)
        rec.archived = False
        rec.archived_ms = None
        rec.updated_ms = ts
        _write(rec, {otype.modified_property: iso_ms(ts)}, ts, source)
        _index_values(state, otype.name, rec, {})
        record_written(state, otype.name, rec)
        _emit(state, otype, "object.restore", rec, ts, source)
        return rec


# --- associations (mutations; the endpoints live in associations.py) ----------------------------------


def association_type_name(state: SandboxState, from_type: str, to_type: str, type_id: int) -> str:
    """v3's ``type`` string: ``order_to_contact`` for defaults, the label's name for custom labels.

    Where a pair also has a "Primary" type, v3 names that one ``contact_to_company`` and the default
    ``contact_to_company_unlabeled`` (the v3 types example of reference §5.1 names id 1 so)."""
    plain = f"{OBJECT_TYPES[from_type].singular}_to_{OBJECT_TYPES[to_type].singular}"
    defined = DEFINED_LABELS.get((from_type, to_type))
    if defined:
        if type_id in defined:
            return plain
        if DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type)) == type_id:
            return f"{plain}_unlabeled"
    if DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type)) == type_id:
        return plain
    label = state.association_labels.get((from_type, to_type), {}).get(type_id)
    if label:
        return label.strip().lower().replace(" ", "_")
    return f"{OBJECT_TYPES[from_type].singular}_to_{OBJECT_TYPES[to_type].singular}"


def _association_event(
    state: SandboxState,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    type_id: int,
    category: str,
    *,
    removed: bool,
    ts: int,
    source: str,
) -> None:
    # Generic associationChange payload fields are UNCONFIRMED (reference §7.2): the legacy fields plus
    # object type ids. One event per side of the association (reference §7.2).
    name = association_type_name(state, from_type, to_type, type_id).upper()
    state.emit(
        ChangeEvent(
            subscription_type="object.associationChange",
            object_type_id=OBJECT_TYPES[from_type].type_id,
            object_id=from_id,
            occurred_ms=ts,
            change_source=source,
            extra={
                "associationType": name,
                "associationTypeId": type_id,
                "associationCategory": category,
                "fromObjectTypeId": OBJECT_TYPES[from_type].type_id,
                "fromObjectId": int(from_id) if from_id.isdigit() else from_id,
                "toObjectTypeId": OBJECT_TYPES[to_type].type_id,
                "toObjectId": int(to_id) if to_id.isdigit() else to_id,
                "associationRemoved": removed,
                "isPrimaryAssociation": False,
            },
        )
    )


def _touch(state: SandboxState, type_name: str, record_id: str, source: str) -> None:
    rec = state.get(type_name, record_id)
    if rec is None:
        return
    otype = OBJECT_TYPES[type_name]
    ts = _next_ts(rec)
    rec.updated_ms = ts
    _write(rec, {otype.modified_property: iso_ms(ts)}, ts, source)
    record_written(state, type_name, rec)


def default_type_id(from_type: str, to_type: str) -> int:
    type_id = DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type))
    if type_id is None:
        raise validation_error(
            f"There is no default association type from {OBJECT_TYPES[from_type].singular} "
            f"to {OBJECT_TYPES[to_type].singular}"
        )
    return type_id


def check_type_id(state: SandboxState, from_type: str, to_type: str, type_id: int, category: str) -> None:
    """A typed association must be the pair's default type or one of its labels (reference §5.3)."""
    if category == "HUBSPOT_DEFINED":
        if is_defined_type(from_type, to_type, type_id):
            return
    elif type_id in state.association_labels.get((from_type, to_type), {}):
        return
    raise validation_error(
        f"{category} association type {type_id} is not valid from "
        f"{OBJECT_TYPES[from_type].singular} to {OBJECT_TYPES[to_type].singular}",
        context={"associationTypeId": [str(type_id)]},
    )


def associate_records(
    state: SandboxState,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    *,
    type_id: int | None = None,
    category: str = "HUBSPOT_DEFINED",
    source: str = "API",
) -> bool:
    """Link two live records (both directions) and emit associationChange; False if already linked."""
    f = object_type(from_type).name
    t = object_type(to_type).name
    with state.lock:
        if state.get(f, from_id) is None or state.get(t, to_id) is None:
            raise not_found()
        if type_id is None:
            type_id = default_type_id(f, t)
        check_type_id(state, f, t, type_id, category)
        existing = state.associations.get((f, from_id), {}).get((t, to_id), set())
        if (category, type_id) in existing:
            return False
        state.associate(f, from_id, t, to_id, type_id=type_id, category=category)
        ts = now_ms()
        reverse = state.reverse_type_id(f, t, type_id)
        _association_event(
            state, f, from_id, t, to_id, type_id, category, removed=False, ts=ts, source=source
        )
        _association_event(
            state, t, to_id, f, from_id, reverse, category, removed=False, ts=ts, source=source
        )
        if behaviour(state).association_changes_bump_modified:
            _touch(state, f, from_id, source)
            _touch(state, t, to_id, source)
        return True


def dissociate_records(
    state: SandboxState,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    *,
    type_id: int | None = None,
    source: str = "API",
) -> bool:
    """Remove one typed edge (or, without a type id, every edge) between two records, both directions."""
    f = object_type(from_type).name
    t = object_type(to_type).name
    with state.lock:
        types = set(state.associations.get((f, from_id), {}).get((t, to_id), set()))
        removed = [(c, tid) for c, tid in types if type_id is None or tid == type_id]
        if not removed or not state.dissociate(f, from_id, t, to_id, type_id=type_id):
            return False
        ts = now_ms()
        for category, tid in removed:
            reverse = state.reverse_type_id(f, t, tid)
            _association_event(state, f, from_id, t, to_id, tid, category, removed=True, ts=ts, source=source)
            _association_event(
                state, t, to_id, f, from_id, reverse, category, removed=True, ts=ts, source=source
            )
        if behaviour(state).association_changes_bump_modified:
            _touch(state, f, from_id, source)
            _touch(state, t, to_id, source)
        return True


def live_associations(
    state: SandboxState, from_type: str, from_id: str, to_type: str
) -> list[tuple[str, set[tuple[str, int]]]]:
    """(to id, {(category, type id)}) of one record's associations to one type, in id order, skipping
    archived targets (their edges are kept so a restore brings them back)."""
    targets = state.records[to_type]
    out = []
    for to_id, types in state.associated(from_type, from_id, to_type).items():
        target = targets.get(to_id)
        if target is not None and not target.archived:
            out.append((to_id, types))
    return out


# --- reading: JSON shapes ---------------------------------------------------------------------------


_DAY_MS = 86_400_000
_DAY_PREFIXES: dict[int, str] = {}


def _iso_ms(ms: int) -> str:
    """``state.iso_ms`` with the date part cached per day: a list page formats two timestamps per record,
    and strftime was a sixth of the time a page took to build."""
    day, rest = divmod(ms, _DAY_MS)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        prefix = _DAY_PREFIXES[day] = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%dT")
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def record_json(
    rec: Record,
    names: Iterable[str] | None,
    history: Sequence[str] = (),
) -> dict[str, Any]:
    """``SimplePublicObject``: the asked-for properties that have a value (reference §1.1: a property
    without a value is left out), all values strings; ``names=None`` means every property."""
    values = rec.properties
    if names is None:
        props = {k: v for k, v in values.items() if v}
    else:
        get = values.get
        props = {n: v for n in names if (v := get(n))}
    body: dict[str, Any] = {
        "id": rec.id,
        "properties": props,
        "createdAt": _iso_ms(rec.created_ms),
        "updatedAt": _iso_ms(rec.updated_ms),
        "archived": rec.archived,
    }
    if rec.archived and rec.archived_ms is not None:
        body["archivedAt"] = _iso_ms(rec.archived_ms)
    if history:
        with_history: dict[str, list[dict[str, Any]]] = {}
        for name in history:
            entries = rec.history.get(name)
            if entries:
                with_history[name] = [
                    {"value": value, "timestamp": _iso_ms(ts), "sourceType": src}
                    for value, ts, src in entries
                ]
        body["propertiesWithHistory"] = with_history
    return body


def property_names(state: SandboxState, otype: ObjectType, requested: list[str]) -> list[str]:
    return requested or list(DEFAULT_PROPERTIES[otype.name])


def _id_order(item: tuple[str, set[tuple[str, int]]]) -> tuple[int, str]:
    return len(item[0]), item[0]


def associations_json(
    state: SandboxState, otype: ObjectType, rec: Record, to_types: Sequence[ObjectType], base: str
) -> dict[str, Any]:
    """``associations`` of an object response: one key per type that has any, v3 ``type`` strings,
    each list paged at 100 with a link to the association endpoint (reference §5.1).

    What ``live_associations`` gives per type, read in one pass over the record's edges (a list page asks
    for three types of a hundred records; a pass per type was a third of the time the page took)."""
    edges = state.associations.get((otype.name, rec.id))
    if not edges:
        return {}
    wanted = {to.name for to in to_types}
    by_type: dict[str, list[tuple[str, set[tuple[str, int]]]]] = {}
    for (to_name, to_id), types in edges.items():
        if types and to_name in wanted:
            by_type.setdefault(to_name, []).append((to_id, types))
    out: dict[str, Any] = {}
    for to in to_types:
        found = by_type.get(to.name)
        if not found:
            continue
        found.sort(key=_id_order)
        targets = state.records[to.name]
        type_names: dict[int, str] = {}
        results: list[dict[str, str]] = []
        for to_id, types in found:
            target = targets.get(to_id)
            if target is None or target.archived:
                continue  # archived targets keep their edges, so a restore brings them back
            for _category, type_id in sorted(types, key=lambda t: t[1]) if len(types) > 1 else types:
                name = type_names.get(type_id)
                if name is None:
                    name = type_names[type_id] = association_type_name(state, otype.name, to.name, type_id)
                results.append({"id": to_id, "type": name})
        if not results:
            continue
        collection: dict[str, Any] = {"results": results[:ASSOCIATIONS_PAGE]}
        if len(results) > ASSOCIATIONS_PAGE:
            after = encode_cursor(ASSOCIATIONS_PAGE)
            path = f"/crm/v3/objects/{otype.type_id}/{rec.id}/associations/{to.type_id}"
            collection["paging"] = {"next": {"after": after, "link": f"{base}{path}?after={after}"}}
        out[ASSOCIATION_KEYS[to.name]] = collection
    return out


def association_types_arg(names: list[str]) -> list[ObjectType]:
    """``associations=`` names; unknown ones are ignored (reference §1.1 parameter semantics)."""
    out: list[ObjectType] = []
    for name in names:
        found = resolve_type(name.strip())
        if found is not None and found not in out:
            out.append(found)
    return out


# --- the list's id order ----------------------------------------------------------------------------


class _IdIndex:
    __slots__ = ("count", "ints", "records", "strs")

    def __init__(self, records: dict[str, Record]) -> None:
        self.records = records
        pairs = sorted((int(rid), rid) for rid in records)
        self.ints = [p[0] for p in pairs]
        self.strs = [p[1] for p in pairs]
        self.count = len(records)


_ID_INDEX: weakref.WeakKeyDictionary[SandboxState, dict[str, _IdIndex]] = weakref.WeakKeyDictionary()


def id_order(state: SandboxState, type_name: str) -> tuple[list[int], list[str]]:
    """Every record id of a type in ascending numeric order (ints and strings side by side).

    Kept between requests: new ids are appended when they come after the last one (the usual case),
    anything else rebuilds the order.
    """
    indexes = _ID_INDEX.setdefault(state, {})
    records = state.records[type_name]
    index = indexes.get(type_name)
    if index is None or index.records is not records or index.count > len(records):
        index = indexes[type_name] = _IdIndex(records)
    elif index.count < len(records):
        new = list(itertools.islice(records, index.count, None))
        new_ints = [int(r) for r in new]
        if (not index.ints or min(new_ints) > index.ints[-1]) and new_ints == sorted(new_ints):
            index.ints.extend(new_ints)
            index.strs.extend(new)
            index.count = len(records)
        else:
            index = indexes[type_name] = _IdIndex(records)
    return index.ints, index.strs


# --- handlers -----------------------------------------------------------------------------------------


def _int_arg(request: Request, name: str, default: int) -> int:
    value = request.arg(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise validation_error(f"Invalid value for {name}: {value}") from None


def handle_list(request: Request, state: SandboxState) -> Response:
    """GET /crm/v3/objects/{T}: pages in id order; ``paging`` only while more remain (reference §1.3)."""
    otype = object_type(request.params["objectType"])
    limit = max(1, min(_int_arg(request, "limit", LIST_DEFAULT_LIMIT), LIST_MAX_LIMIT))
    history = request.arg_list("propertiesWithHistory")
    if history:
        # Asking for history "will reduce the maximum number of objects" (reference §1.1); the list
        # maximum is UNCONFIRMED, so the batch figure (50) is used.
        limit = min(limit, HISTORY_MAX_INPUTS)
    names = property_names(state, otype, request.arg_list("properties"))
    to_types = association_types_arg(request.arg_list("associations"))
    archived = request.arg_bool("archived")
    after = request.arg("after") or None
    # Some older clients page with ``offset`` (a position): honour it so they end on a short page.
    skip = 0 if after else max(0, _int_arg(request, "offset", 0))
    if after is not None and not after.isdigit():
        raise validation_error(f"Invalid after value: {after}")
    base = base_url(request)
    with state.lock:
        ints, strs = id_order(state, otype.name)
        records = state.records[otype.name]
        i = bisect.bisect_left(ints, int(after)) if after else 0
        n = len(strs)
        page: list[Record] = []
        while i < n and len(page) < limit:
            rec = records.get(strs[i])
            i += 1
            if rec is None or rec.archived != archived:
                continue
            if skip:
                skip -= 1
                continue
            page.append(rec)
        more = False
        while i < n:
            rec = records.get(strs[i])
            i += 1
            if rec is not None and rec.archived == archived:
                more = True
                break
        results = []
        for rec in page:
            item = record_json(rec, names, history)
            if to_types:
                assoc = associations_json(state, otype, rec, to_types, base)
                if assoc:
                    item["associations"] = assoc
            results.append(item)
    body: dict[str, Any] = {"results": results}
    if more and page:
        # HubSpot's cursor is the next record id (its example: last id + 1); treat it as opaque.
        next_after = str(int(page[-1].id) + 1)
        body["paging"] = {
            "next": {
                "after": next_after,
                "link": f"{base}/crm/v3/objects/{otype.type_id}?limit={limit}&after={next_after}",
            }
        }
    return Response(200, body)


def handle_get(request: Request, state: SandboxState) -> Response:
    otype = object_type(request.params["objectType"])
    names = property_names(state, otype, request.arg_list("properties"))
    history = request.arg_list("propertiesWithHistory")
    to_types = association_types_arg(request.arg_list("associations"))
    with state.lock:
        rec = find_record(
            state,
            otype,
            request.params["objectId"],
            id_property=request.arg("idProperty"),
            archived=request.arg_bool("archived"),
        )
        if rec is None:
            raise not_found()
        body = record_json(rec, names, history)
        if to_types:
            assoc = associations_json(state, otype, rec, to_types, base_url(request))
            if assoc:
                body["associations"] = assoc
    return Response(200, body)


def handle_create(request: Request, state: SandboxState) -> Response:
    """POST /crm/v3/objects/{T}: 201 with every property the new record has."""
    body = json_body(request)
    rec = create_record(
        state,
        request.params["objectType"],
        body.get("properties") or {},
        associations=body.get("associations"),
        trace_id=body.get("objectWriteTraceId"),
    )
    with state.lock:
        return Response(201, record_json(rec, None))


def handle_update(request: Request, state: SandboxState) -> Response:
    """PATCH /crm/v3/objects/{T}/{id}: 200 with the defaults and the properties sent."""
    body = json_body(request)
    otype = object_type(request.params["objectType"])
    properties = body.get("properties") or {}
    rec = update_record(
        state, otype.name, request.params["objectId"], properties, id_property=request.arg("idProperty")
    )
    with state.lock:
        names = list(DEFAULT_PROPERTIES[otype.name]) + [n for n in properties if isinstance(n, str)]
        return Response(200, record_json(rec, names))


def handle_archive(request: Request, state: SandboxState) -> Response:
    """DELETE /crm/v3/objects/{T}/{id}: 204, also when there was nothing to archive."""
    archive_record(state, request.params["objectType"], request.params["objectId"])
    return Response(204)


# --- batch --------------------------------------------------------------------------------------------


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    raise validation_error("Invalid input JSON: expected a list of property names")


def _input_id(item: Any) -> str:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        raise validation_error("Invalid input JSON: every input needs an 'id'")
    return str(item["id"])


def handle_batch_read(request: Request, state: SandboxState) -> Response:
    """POST .../batch/read: 200, or 207 with one OBJECT_NOT_FOUND error listing missing ids."""
    started = now_ms()
    otype = object_type(request.params["objectType"])
    body = json_body(request)
    inputs = check_batch_size(body.get("inputs"))
    history = _str_list(body.get("propertiesWithHistory"))
    if history and len(inputs) > HISTORY_MAX_INPUTS:
        # Verbatim HubSpot message (reference §1.1, quoted from a real response).
        raise validation_error(
            "The maximum number of inputs supported in a batch request for property histories is "
            f"{HISTORY_MAX_INPUTS}"
        )
    names = property_names(state, otype, _str_list(body.get("properties")))
    id_property = body.get("idProperty")
    archived = request.arg_bool("archived")
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    seen: set[str] = set()
    with state.lock:
        for item in inputs:
            value = _input_id(item)
            if value in seen:
                continue
            seen.add(value)
            rec = find_record(state, otype, value, id_property=id_property, archived=archived)
            if rec is None:
                missing.append(value)
            else:
                results.append(record_json(rec, names, history))
    errors = []
    if missing:
        # Wording as observed by several fakes and recordings; UNCONFIRMED (reference §1.3).
        errors.append(
            error_item(
                "OBJECT_NOT_FOUND",
                f"Could not get some {_ERROR_NAMES[otype.name]} objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                {"ids": missing},
            )
        )
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def _partial(inputs: list[Any]) -> bool:
    """Partial success is opt-in: "include a unique objectWriteTraceId value for each input"
    (reference §1.3)."""
    return bool(inputs) and all(isinstance(i, dict) and i.get("objectWriteTraceId") for i in inputs)


def _with_trace(body: dict[str, Any], trace_id: Any) -> dict[str, Any]:
    if trace_id:
        body["objectWriteTraceId"] = str(trace_id)
    return body


def handle_batch_create(request: Request, state: SandboxState) -> Response:
    """POST .../batch/create: 201; with objectWriteTraceIds a failing input becomes a 207 error item,
    without them the whole batch fails. A trace id seen before never creates a second record."""
    started = now_ms()
    otype = object_type(request.params["objectType"])
    inputs = check_batch_size(json_body(request).get("inputs"))
    partial = _partial(inputs)
    errors: list[dict[str, Any]] = []
    with state.lock:
        # Validate every input before writing any, so a failing batch leaves nothing behind.
        plans: list[tuple[str | None, dict[str, str], list[_AssociationInput]]] = []
        claimed: dict[tuple[str, str], str] = {}
        planned_traces: set[str] = set()
        for item in inputs:
            trace = str(item.get("objectWriteTraceId") or "") or None
            if trace and (trace in planned_traces or _traced_record(state, otype, trace) is not None):
                plans.append((trace, {}, []))  # a retry of a create that already happened
                continue
            try:
                changes, links = _prepare_create(
                    state, otype, item.get("properties"), item.get("associations"), claimed
                )
            except HubSpotError as exc:
                if not partial:
                    raise
                errors.append(error_item_from(exc, {"objectWriteTraceId": [str(trace)]}))
                continue
            if trace:
                planned_traces.add(trace)
            plans.append((trace, changes, links))
        results: list[dict[str, Any]] = []
        for trace, changes, links in plans:
            rec = _traced_record(state, otype, trace) if trace else None
            if rec is None:
                rec = _insert(state, otype, changes, links, source="API", trace_id=trace)
            results.append(_with_trace(record_json(rec, None), trace))
    return Response(207 if errors else 201, batch_envelope(started, results, errors))


def _traced_record(state: SandboxState, otype: ObjectType, trace: str) -> Record | None:
    record_id = state.write_traces.get((otype.name, trace))
    return state.records[otype.name].get(record_id) if record_id else None


def _duplicate_ids(values: list[str]) -> None:
    seen: set[str] = set()
    duplicates: set[str] = set()
    for value in values:
        if value in seen:
            duplicates.add(value)
        seen.add(value)
    if duplicates:
        # HubSpot refuses a batch that names one record twice.
        listed = ", ".join(sorted(duplicates))
        raise validation_error(f"Duplicate IDs found in batch input: [{listed}]. IDs must be unique")


def handle_batch_update(request: Request, state: SandboxState) -> Response:
    """POST .../batch/update: 200, 207 with OBJECT_NOT_FOUND items for ids that are not there
    (it used to answer 204; CHANGELOG in reference §1.1)."""
    started = now_ms()
    otype = object_type(request.params["objectType"])
    inputs = check_batch_size(json_body(request).get("inputs"))
    partial = _partial(inputs)
    ids = [_input_id(i) for i in inputs]
    _duplicate_ids(ids)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        plans: list[tuple[Record, dict[str, str], dict[str, Any]]] = []
        missing: list[str] = []
        claimed: dict[tuple[str, str], str] = {}
        for item, value in zip(inputs, ids, strict=True):
            rec = find_record(state, otype, value, id_property=item.get("idProperty"))
            if rec is None:
                missing.append(value)
                continue
            try:
                changes = _prepare_update(state, otype, rec, item.get("properties"), claimed)
            except HubSpotError as exc:
                if not partial:
                    raise
                errors.append(error_item_from(exc, {"objectWriteTraceId": [str(item["objectWriteTraceId"])]}))
                continue
            plans.append((rec, changes, item))
        for rec, changes, item in plans:
            _modify(state, otype, rec, changes, "API")
            names = list(DEFAULT_PROPERTIES[otype.name]) + list((item.get("properties") or {}).keys())
            results.append(_with_trace(record_json(rec, names), item.get("objectWriteTraceId")))
    if missing:
        errors.append(error_item("OBJECT_NOT_FOUND", "resource not found", {"ids": missing}))
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def handle_batch_upsert(request: Request, state: SandboxState) -> Response:
    """POST .../batch/upsert: create or update by a unique ``idProperty``; results carry ``new``."""
    started = now_ms()
    otype = object_type(request.params["objectType"])
    inputs = check_batch_size(json_body(request).get("inputs"))
    partial = _partial(inputs)
    ids = [_input_id(i) for i in inputs]
    _duplicate_ids(ids)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        plans: list[tuple[Record | None, dict[str, str], list[_AssociationInput], dict[str, Any]]] = []
        claimed: dict[tuple[str, str], str] = {}
        for item, value in zip(inputs, ids, strict=True):
            id_property = item.get("idProperty") or "hs_object_id"
            try:
                rec = find_record(state, otype, value, id_property=id_property)
                if rec is not None:
                    plans.append(
                        (rec, _prepare_update(state, otype, rec, item.get("properties"), claimed), [], item)
                    )
                    continue
                if id_property == "hs_object_id":
                    raise not_found(f"No {otype.singular} with id {value} exists; upsert by id only updates")
                properties = dict(item.get("properties") or {})
                properties[id_property] = value
                changes, links = _prepare_create(state, otype, properties, None, claimed)
                plans.append((None, changes, links, item))
            except HubSpotError as exc:
                if not partial:
                    raise
                errors.append(error_item_from(exc, {"objectWriteTraceId": [str(item["objectWriteTraceId"])]}))
        for rec, changes, links, item in plans:
            trace = item.get("objectWriteTraceId")
            if rec is None:
                created = _insert(
                    state, otype, changes, links, source="API", trace_id=str(trace) if trace else None
                )
                body = record_json(created, None)
                body["new"] = True
            else:
                _modify(state, otype, rec, changes, "API")
                names = list(DEFAULT_PROPERTIES[otype.name]) + list((item.get("properties") or {}).keys())
                body = record_json(rec, names)
                body["new"] = False
            results.append(_with_trace(body, trace))
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def handle_batch_archive(request: Request, state: SandboxState) -> Response:
    """POST .../batch/archive: 204, ids that are not there are ignored."""
    otype = object_type(request.params["objectType"])
    inputs = check_batch_size(json_body(request).get("inputs"))
    ids = [_input_id(i) for i in inputs]
    with state.lock:
        for value in ids:
            archive_record(state, otype.name, value)
    return Response(204)


def register(router: Router) -> None:
    """The object routes on every prefix; literal paths (batch, search) before ``/{objectId}``."""
    from hubspot_sandbox import search  # search builds on this module

    for prefix in OBJECT_PREFIXES:
        base = f"{prefix}/{{objectType}}"
        router.add("GET", base, handle_list)
        router.add("POST", base, handle_create)
        router.add("POST", f"{base}/batch/read", handle_batch_read)
        router.add("POST", f"{base}/batch/create", handle_batch_create)
        router.add("POST", f"{base}/batch/update", handle_batch_update)
        router.add("POST", f"{base}/batch/upsert", handle_batch_upsert)
        router.add("POST", f"{base}/batch/archive", handle_batch_archive)
        router.add("POST", f"{base}/search", search.handle_search)
        router.add("GET", f"{base}/{{objectId}}", handle_get)
        router.add("PATCH", f"{base}/{{objectId}}", handle_update)
        router.add("DELETE", f"{base}/{{objectId}}", handle_archive)
