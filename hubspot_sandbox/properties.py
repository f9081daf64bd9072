"""Properties, property groups and object schemas: ``/crm/v3/properties``, ``/properties/v2``, schemas.

Reference §6 (endpoints, ``Property`` shape, type/fieldType combinations) and the Python SDK's models,
which every answer here must deserialise into (``ModelProperty`` requires ``name, label, type,
fieldType, groupName, description, options``; ``StandardError`` requires ``context, links, errors``).
Wording of error messages HubSpot does not document is UNCONFIRMED and marked so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from hubspot_sandbox import standard
from hubspot_sandbox.defaults import GROUPS, options_json
from hubspot_sandbox.http import HubSpotError, Request, Response, Router
from hubspot_sandbox.state import (
    DEFAULT_ASSOCIATION_TYPES,
    DEFINED_LABELS,
    OBJECT_TYPES,
    ObjectType,
    SandboxState,
    iso_ms,
    now_ms,
    resolve_type,
)

# type -> the fieldTypes it may be shown with (reference §6 "Valid combinations", DOC properties guide;
# phone_number is in the spec's type enum but missing from the doc list, and goes with phonenumber).
VALID_FIELD_TYPES: dict[str, frozenset[str]] = {
    "bool": frozenset({"booleancheckbox", "calculation_equation"}),
    "enumeration": frozenset({"booleancheckbox", "checkbox", "radio", "select", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "string": frozenset({"file", "text", "textarea", "calculation_equation", "html", "phonenumber"}),
    "number": frozenset({"number", "calculation_equation"}),
    "phone_number": frozenset({"phonenumber"}),
}
ALL_FIELD_TYPES: frozenset[str] = frozenset().union(*VALID_FIELD_TYPES.values())
# "Up to 10 unique-ID properties per object" (reference §6).
MAX_UNIQUE_PROPERTIES = 10
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PROPERTY_UPDATE_FIELDS = (
    "label",
    "type",
    "fieldType",
    "groupName",
    "description",
    "options",
    "displayOrder",
    "hidden",
    "formField",
    "calculationFormula",
)

# Labels and display properties for the schema endpoints.
_SCHEMA_META: dict[str, dict[str, Any]] = {
    "contacts": {
        "labels": {"singular": "Contact", "plural": "Contacts"},
        "primary": "email",
        "secondary": ["firstname", "lastname"],
        "required": [],
        "searchable": ["firstname", "lastname", "email", "phone", "mobilephone", "company"],
    },
    "line_items": {
        "labels": {"singular": "Line item", "plural": "Line items"},
        "primary": "name",
        "secondary": ["hs_sku"],
        "required": [],
        "searchable": ["name", "hs_sku"],
    },
    "orders": {
        "labels": {"singular": "Order", "plural": "Orders"},
        "primary": "hs_order_name",
        "secondary": ["hs_external_order_id"],
        # The only required property on create (reference §1.2).
        "required": ["hs_order_name"],
        "searchable": ["hs_order_name", "hs_external_order_id", "hs_shipping_tracking_number"],
    },
    "carts": {
        "labels": {"singular": "Cart", "plural": "Carts"},
        "primary": "hs_cart_name",
        "secondary": ["hs_external_cart_id"],
        "required": [],
        "searchable": ["hs_cart_name", "hs_external_cart_id"],
    },
    **standard.schema_meta(),
}
_SCHEMA_CREATED = "2019-08-06T02:41:08.029Z"


# --- helpers shared with pipelines.py -----------------------------------------------------------


def object_type_or_error(name: str) -> ObjectType:
    """``order``, ``orders`` or ``0-123``; anything else is HubSpot's 400 (message UNCONFIRMED)."""
    object_type = resolve_type(name)
    if object_type is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return object_type


def json_object(request: Request) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    body = request.json()
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def batch_inputs(body: dict[str, Any]) -> list[Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: `inputs` must be a list")
    return inputs


def standard_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """One batch item error (``StandardError``: the SDK requires context, links and errors)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def batch_response(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started_ms: int, ok_status: int
) -> Response:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso_ms(started_ms),
        "completedAt": iso_ms(now_ms()),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body)
    return Response(ok_status, body)


def iso_to_ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


# --- property validation ----------------------------------------------------------------------------


def _validation(message: str, *, code: str | None = None, name: str | None = None) -> HubSpotError:
    errors = None
    if code:
        detail: dict[str, Any] = {"message": message, "code": code}
        if name is not None:
            detail["context"] = {"propertyName": [name]}
        errors = [detail]
    return HubSpotError(400, "VALIDATION_ERROR", message, errors=errors)


def _not_found_property(type_name: str, name: str) -> HubSpotError:
    # Wording UNCONFIRMED (reference §11.8).
    return HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        f"Unable to find property {name} for object type {OBJECT_TYPES[type_name].type_id}",
        context={"propertyName": [name]},
    )


def _clean_options(raw: Any, name: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _validation(f"Options of property {name} must be a list", code="INVALID_OPTIONS", name=name)
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, option in enumerate(raw):
        if not isinstance(option, dict) or not option.get("label") or option.get("value") in (None, ""):
            raise _validation(
                f"Every option of property {name} needs a label and a value",
                code="INVALID_OPTIONS",
                name=name,
            )
        value = str(option["value"])
        if value in seen:
            raise _validation(
                f"Duplicate option value '{value}' on property {name}", code="INVALID_OPTIONS", name=name
            )
        seen.add(value)
        cleaned: dict[str, Any] = {
            "label": str(option["label"]),
            "value": value,
            "displayOrder": int(option.get("displayOrder", index)),
            "hidden": bool(option.get("hidden", False)),
        }
        if option.get("description"):
            cleaned["description"] = str(option["description"])
        options.append(cleaned)
    return options


def _check_type(type_: Any, field_type: Any, name: str) -> None:
    if type_ not in VALID_FIELD_TYPES:
        raise _validation(
            f"Invalid property type '{type_}' for property {name}; "
            f"valid types are {sorted(VALID_FIELD_TYPES)}",
            code="INVALID_PROPERTY_TYPE",
            name=name,
        )
    if field_type not in ALL_FIELD_TYPES:
        raise _validation(
            f"Invalid field type '{field_type}' for property {name}", code="INVALID_FIELD_TYPE", name=name
        )
    if field_type not in VALID_FIELD_TYPES[type_]:
        raise _validation(
            f"Property {name} of type '{type_}' cannot use field type '{field_type}'; "
            f"valid field types are {sorted(VALID_FIELD_TYPES[type_])}",
            code="INVALID_FIELD_TYPE",
            name=name,
        )


def _check_group(state: SandboxState, type_name: str, group: Any, name: str) -> None:
    existing = state.property_groups[type_name].get(group) if isinstance(group, str) else None
    if existing is None or existing.get("archived"):
        raise _validation(f"Property group {group} does not exist", code="INVALID_PROPERTY_GROUP", name=name)


def new_property(state: SandboxState, type_name: str, body: Any) -> dict[str, Any]:
    """Validate a ``PropertyCreate`` and return the stored definition (not yet saved)."""
    if not isinstance(body, dict):
        raise _validation("Invalid input JSON: a property must be an object")
    name = body.get("name")
    for required in ("name", "label", "type", "fieldType", "groupName"):
        if body.get(required) in (None, ""):
            raise _validation(f"Missing required field '{required}'", code="MISSING_REQUIRED_FIELD")
    assert isinstance(name, str)
    if not _NAME_RE.match(name) or len(name) > 100:
        raise _validation(
            f"Property name '{name}' must start with a letter and contain only lowercase letters, numbers "
            "and underscores",
            code="INVALID_PROPERTY_NAME",
            name=name,
        )
    existing = state.properties[type_name].get(name)
    if existing is not None:
        # 409 "if there is already a property with the 'name' you used" (legacy properties doc); the
        # category is the one HubSpot uses for other duplicates, the message is UNCONFIRMED. An archived
        # property still holds its name.
        raise HubSpotError(
            409,
            "OBJECT_ALREADY_EXISTS",
            f"A property named '{name}' already exists.",
            context={"propertyName": [name]},
        )
    _check_type(body["type"], body["fieldType"], name)
    _check_group(state, type_name, body["groupName"], name)
    options = _clean_options(body.get("options"), name)
    if body["type"] == "bool" and not options:
        options = options_json([("Yes", "true"), ("No", "false")])
    unique = bool(body.get("hasUniqueValue", False))
    if unique:
        count = sum(
            1
            for p in state.properties[type_name].values()
            if p.get("hasUniqueValue") and not p.get("archived")
        )
        if count >= MAX_UNIQUE_PROPERTIES:
            raise _validation(
                f"An object type can have at most {MAX_UNIQUE_PROPERTIES} unique value properties",
                code="TOO_MANY_UNIQUE_PROPERTIES",
                name=name,
            )
    calculated = body["fieldType"] == "calculation_equation"
    created = iso_ms(now_ms())
    prop: dict[str, Any] = {
        "updatedAt": created,
        "createdAt": created,
        "name": name,
        "label": str(body["label"]),
        "type": body["type"],
        "fieldType": body["fieldType"],
        "description": str(body.get("description") or ""),
        "groupName": body["groupName"],
        "options": options,
        "displayOrder": int(body.get("displayOrder", -1)),
        "calculated": calculated,
        "externalOptions": bool(body.get("externalOptions", False)),
        "archived": False,
        "hasUniqueValue": unique,
        "hidden": bool(body.get("hidden", False)),
        "modificationMetadata": {
            "archivable": True,
            "readOnlyDefinition": False,
            "readOnlyValue": calculated,
        },
        "formField": bool(body.get("formField", False)),
        "dataSensitivity": "non_sensitive",
    }
    if body["type"] == "enumeration":
        prop["modificationMetadata"]["readOnlyOptions"] = False
    if body.get("calculationFormula"):
        prop["calculationFormula"] = str(body["calculationFormula"])
    if body.get("referencedObjectType"):
        prop["referencedObjectType"] = str(body["referencedObjectType"])
    return prop


def _update_property(state: SandboxState, type_name: str, prop: dict[str, Any], body: dict[str, Any]) -> None:
    name = prop["name"]
    changes = {k: body[k] for k in _PROPERTY_UPDATE_FIELDS if k in body}
    if "options" in changes:
        changes["options"] = _clean_options(changes["options"], name)
    meta = prop["modificationMetadata"]
    if meta.get("readOnlyDefinition"):
        # HubSpot-defined definitions are fixed, though an enumeration's options may be editable
        # (``readOnlyOptions``). The message is UNCONFIRMED.
        for key, value in changes.items():
            if key == "options" and not meta.get("readOnlyOptions", True):
                continue
            if prop.get(key) != value:
                raise _validation(
                    f"Property {name} is a HubSpot-defined property; its {key} cannot be changed",
                    code="READ_ONLY_DEFINITION",
                    name=name,
                )
    if "type" in changes or "fieldType" in changes:
        _check_type(changes.get("type", prop["type"]), changes.get("fieldType", prop["fieldType"]), name)
    if "groupName" in changes:
        _check_group(state, type_name, changes["groupName"], name)
    if "displayOrder" in changes:
        changes["displayOrder"] = int(changes["displayOrder"])
    for key in ("hidden", "formField"):
        if key in changes:
            changes[key] = bool(changes[key])
    prop.update(changes)
    prop["updatedAt"] = iso_ms(now_ms())


def _archive_property(state: SandboxState, type_name: str, name: str) -> None:
    prop = state.properties[type_name].get(name)
    if prop is None or prop.get("archived"):
        raise _not_found_property(type_name, name)
    _check_archivable(prop)
    prop["archived"] = True
    prop["archivedAt"] = iso_ms(now_ms())


def _check_archivable(prop: dict[str, Any]) -> None:
    if not prop["modificationMetadata"].get("archivable", True):
        raise _validation(
            f"Property {prop['name']} is a HubSpot-defined property and cannot be archived",
            code="PROPERTY_NOT_ARCHIVABLE",
            name=prop["name"],
        )


def visible_properties(
    state: SandboxState, type_name: str, *, archived: bool = False, names: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Live (or, with ``archived``, only archived) definitions, optionally only the named ones."""
    wanted = set(names)
    return [
        p
        for p in state.properties[type_name].values()
        if bool(p.get("archived")) == archived and (not wanted or p["name"] in wanted)
    ]


# --- handlers: properties -------------------------------------------------------------------------


def list_properties(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    # Everything here is non_sensitive; the sensitive lists are empty (reference §6 ``dataSensitivity``).
    if request.arg("dataSensitivity", "non_sensitive") != "non_sensitive":
        return Response(200, {"results": []})
    with state.lock:
        results = visible_properties(
            state,
            object_type.name,
            archived=request.arg_bool("archived"),
            names=request.arg_list("properties"),
        )
        return Response(200, {"results": _copy(results)})


def create_property(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    with state.lock:
        prop = new_property(state, object_type.name, body)
        state.properties[object_type.name][prop["name"]] = prop
        return Response(201, _copy(prop))


def get_property(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    name = request.params["propertyName"]
    with state.lock:
        prop = state.properties[object_type.name].get(name)
        if prop is None or bool(prop.get("archived")) != request.arg_bool("archived"):
            raise _not_found_property(object_type.name, name)
        return Response(200, _copy(prop))


def update_property(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    name = request.params["propertyName"]
    body = json_object(request)
    with state.lock:
        prop = state.properties[object_type.name].get(name)
        if prop is None or prop.get("archived"):
            raise _not_found_property(object_type.name, name)
        _update_property(state, object_type.name, prop, body)
        return Response(200, _copy(prop))


def archive_property(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    with state.lock:
        _archive_property(state, object_type.name, request.params["propertyName"])
    return Response(204)


def batch_read_properties(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    started = now_ms()
    archived = bool(body.get("archived", False))
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        for item in batch_inputs(body):
            name = item.get("name") if isinstance(item, dict) else None
            prop = state.properties[object_type.name].get(name) if isinstance(name, str) else None
            if prop is None or bool(prop.get("archived")) != archived:
                # Unknown names come back as item errors of a 207, as object batch reads do (UNCONFIRMED).
                errors.append(
                    standard_error(
                        "OBJECT_NOT_FOUND", f"Unable to find property {name}", {"propertyName": [str(name)]}
                    )
                )
            else:
                results.append(_copy(prop))
    return batch_response(results, errors, started, 200)


def batch_create_properties(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    started = now_ms()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        for item in batch_inputs(body):
            try:
                prop = new_property(state, object_type.name, item)
            except HubSpotError as exc:
                name = item.get("name") if isinstance(item, dict) else None
                errors.append(
                    standard_error(
                        exc.category or "VALIDATION_ERROR", exc.message, {"propertyName": [str(name)]}
                    )
                )
                continue
            state.properties[object_type.name][prop["name"]] = prop
            results.append(_copy(prop))
    return batch_response(results, errors, started, 201)


def batch_archive_properties(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    with state.lock:
        props = state.properties[object_type.name]
        names = [item.get("name") for item in batch_inputs(body) if isinstance(item, dict)]
        found = [
            props[n] for n in names if isinstance(n, str) and n in props and not props[n].get("archived")
        ]
        # Check everything first so a refused input archives nothing.
        for prop in found:
            _check_archivable(prop)
        archived_at = iso_ms(now_ms())
        for prop in found:
            prop["archived"] = True
            prop["archivedAt"] = archived_at
    return Response(204)


# --- handlers: groups -------------------------------------------------------------------------------


def _group_or_404(state: SandboxState, type_name: str, name: str) -> dict[str, Any]:
    group = state.property_groups[type_name].get(name)
    if group is None or group.get("archived"):
        raise HubSpotError(
            404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}", context={"groupName": [name]}
        )
    return group


def list_groups(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    with state.lock:
        groups = [g for g in state.property_groups[object_type.name].values() if not g.get("archived")]
        return Response(200, {"results": _copy(groups)})


def create_group(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    name, label = body.get("name"), body.get("label")
    if not name or not label:
        raise _validation("A property group needs a name and a label", code="MISSING_REQUIRED_FIELD")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _validation(
            f"Property group name '{name}' must start with a letter and contain only lowercase letters, "
            "numbers and underscores",
            code="INVALID_GROUP_NAME",
        )
    with state.lock:
        groups = state.property_groups[object_type.name]
        if name in groups and not groups[name].get("archived"):
            raise HubSpotError(
                409,
                "OBJECT_ALREADY_EXISTS",
                f"A property group named '{name}' already exists.",
                context={"groupName": [name]},
            )
        group = {
            "name": name,
            "label": str(label),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        groups[name] = group
        return Response(201, dict(group))


def get_group(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    with state.lock:
        return Response(200, dict(_group_or_404(state, object_type.name, request.params["groupName"])))


def update_group(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    body = json_object(request)
    with state.lock:
        group = _group_or_404(state, object_type.name, request.params["groupName"])
        if "label" in body:
            group["label"] = str(body["label"])
        if "displayOrder" in body:
            group["displayOrder"] = int(body["displayOrder"])
        return Response(200, dict(group))


def archive_group(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    name = request.params["groupName"]
    with state.lock:
        group = _group_or_404(state, object_type.name, name)
        # HubSpot's own groups stay, and a group is emptied before it goes (UNCONFIRMED wording).
        if any(
            name == g for g, _label in GROUPS.get(object_type.name, standard.GROUPS.get(object_type.name, ()))
        ):
            raise _validation(f"Property group {name} is HubSpot-defined and cannot be archived")
        if any(
            p["groupName"] == name and not p.get("archived")
            for p in state.properties[object_type.name].values()
        ):
            raise _validation(f"Property group {name} still has properties; move or archive them first")
        group["archived"] = True
    return Response(204)


# --- handlers: legacy v2 --------------------------------------------------------------------------


def _v2_property(prop: dict[str, Any]) -> dict[str, Any]:
    """The legacy (v1/v2) property shape: a flat object, epoch-ms timestamps, flags at the top level."""
    meta = prop["modificationMetadata"]
    return {
        "name": prop["name"],
        "label": prop["label"],
        "description": prop["description"],
        "groupName": prop["groupName"],
        "type": prop["type"],
        "fieldType": prop["fieldType"],
        "options": [
            {
                "label": o["label"],
                "value": o["value"],
                "displayOrder": o.get("displayOrder", -1),
                "hidden": o["hidden"],
                "description": o.get("description"),
                "readOnly": bool(meta.get("readOnlyOptions", False)),
                "doubleData": None,
            }
            for o in prop["options"]
        ],
        "displayOrder": prop.get("displayOrder", -1),
        "formField": prop.get("formField", False),
        "readOnlyValue": meta["readOnlyValue"],
        "readOnlyDefinition": meta["readOnlyDefinition"],
        "hidden": prop.get("hidden", False),
        "mutableDefinitionNotDeletable": meta["readOnlyDefinition"] and not meta["archivable"],
        "calculated": prop.get("calculated", False),
        "externalOptions": prop.get("externalOptions", False),
        "deleted": False,
        "hubspotDefined": True if prop.get("hubspotDefined") else None,
        "createdAt": iso_to_ms(prop["createdAt"]) if prop.get("createdAt") else None,
        "updatedAt": iso_to_ms(prop["updatedAt"]) if prop.get("updatedAt") else None,
        "createdUserId": None,
        "updatedUserId": None,
        "showCurrencySymbol": prop.get("showCurrencySymbol", False),
        "numberDisplayHint": prop.get("numberDisplayHint"),
        "hasUniqueValue": prop.get("hasUniqueValue", False),
        "favorited": False,
        "favoritedOrder": -1,
        "displayMode": "current_value",
        "searchableInGlobalSearch": False,
        "optionsAreMutable": not meta.get("readOnlyOptions", True) if prop["type"] == "enumeration" else None,
        "isCustomizedDefault": False,
        "referencedObjectType": prop.get("referencedObjectType"),
        "currencyPropertyName": None,
    }


def list_properties_v2(request: Request, state: SandboxState) -> Response:
    object_type = object_type_or_error(request.params["objectType"])
    with state.lock:
        # A bare JSON list, not ``{"results": [...]}``: that is the legacy API's shape.
        return Response(200, [_v2_property(p) for p in visible_properties(state, object_type.name)])


# --- handlers: schemas ------------------------------------------------------------------------------


def object_schema(state: SandboxState, object_type: ObjectType) -> dict[str, Any]:
    """An ``ObjectSchema`` for a standard object type, in the shape the SDK's schemas model accepts."""
    from hubspot_sandbox.objects import association_type_name

    meta = _SCHEMA_META[object_type.name]
    defined = [
        (to_type, type_id)
        for (from_type, to_type), type_id in DEFAULT_ASSOCIATION_TYPES.items()
        if from_type == object_type.name
    ] + [
        (to_type, type_id)
        for (from_type, to_type), labels in DEFINED_LABELS.items()
        if from_type == object_type.name
        for type_id in labels
    ]
    associations = [
        {
            "fromObjectTypeId": object_type.type_id,
            "toObjectTypeId": OBJECT_TYPES[to_type].type_id,
            # The names v3's association types answer (``contact_to_company_unlabeled`` beside a primary).
            "name": association_type_name(state, object_type.name, to_type, type_id),
            "id": str(type_id),
            "createdAt": _SCHEMA_CREATED,
            "updatedAt": _SCHEMA_CREATED,
        }
        for to_type, type_id in defined
    ]
    return {
        "id": object_type.type_id.split("-", 1)[1],
        "objectTypeId": object_type.type_id,
        "name": object_type.singular,
        "fullyQualifiedName": object_type.singular.upper(),
        "labels": dict(meta["labels"]),
        "primaryDisplayProperty": meta["primary"],
        "secondaryDisplayProperties": list(meta["secondary"]),
        "requiredProperties": list(meta["required"]),
        "searchableProperties": list(meta["searchable"]),
        "properties": _copy(visible_properties(state, object_type.name)),
        "associations": associations,
        "archived": False,
        "metaType": "HUBSPOT",
        "createdAt": _SCHEMA_CREATED,
        "updatedAt": _SCHEMA_CREATED,
    }


def _schemas_list(include_standard: bool) -> Callable[[Request, SandboxState], Response]:
    def handler(request: Request, state: SandboxState) -> Response:
        # "Retrieve all custom object schemas": HubSpot lists custom objects only, and a sandbox has none
        # (DOC https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/schemas/get-schemas).
        # ``include_standard`` lists the four standard types too, for clients that want their shape.
        if not include_standard or request.arg_bool("archived"):
            return Response(200, {"results": []})
        with state.lock:
            return Response(200, {"results": [object_schema(state, t) for t in OBJECT_TYPES.values()]})

    return handler


def _schema_get(standard_by_id: bool) -> Callable[[Request, SandboxState], Response]:
    def handler(request: Request, state: SandboxState) -> Response:
        name = request.params["objectType"]
        object_type = resolve_type(name)
        # Whether HubSpot answers a standard type here is UNCONFIRMED; ``standard_by_id=False`` makes it
        # answer like an unknown custom object.
        if object_type is None or not standard_by_id:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find object type {name}")
        with state.lock:
            return Response(200, object_schema(state, object_type))

    return handler


def _copy(value: Any) -> Any:
    """A deep copy of stored JSON, so a response serialised later never sees a half-done change."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def register(
    router: Router, *, include_standard_schemas: bool = False, standard_schema_by_id: bool = True
) -> None:
    """Add the properties, property-group, legacy v2 properties and schema routes to ``router``."""
    base = "/crm/v3/properties/{objectType}"
    router.add("GET", f"{base}/groups", list_groups)
    router.add("POST", f"{base}/groups", create_group)
    router.add("GET", f"{base}/groups/{{groupName}}", get_group)
    router.add("PATCH", f"{base}/groups/{{groupName}}", update_group)
    router.add("DELETE", f"{base}/groups/{{groupName}}", archive_group)
    router.add("POST", f"{base}/batch/read", batch_read_properties)
    router.add("POST", f"{base}/batch/create", batch_create_properties)
    router.add("POST", f"{base}/batch/archive", batch_archive_properties)
    router.add("GET", base, list_properties)
    router.add("POST", base, create_property)
    router.add("GET", f"{base}/{{propertyName}}", get_property)
    router.add("PATCH", f"{base}/{{propertyName}}", update_property)
    router.add("DELETE", f"{base}/{{propertyName}}", archive_property)
    router.add("GET", "/properties/v2/{objectType}/properties", list_properties_v2)
    # The guides use /crm/v3/schemas; the SDK calls /crm-object-schemas/v3/schemas. Both are HubSpot's.
    for schemas in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
        router.add("GET", schemas, _schemas_list(include_standard_schemas))
        router.add("GET", f"{schemas}/{{objectType}}", _schema_get(standard_schema_by_id))
