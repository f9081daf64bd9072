"""Association endpoints, v3 and v4, over the state's typed edges (reference §5).

Every change goes through ``objects.associate_records`` / ``objects.dissociate_records``, so both
directions stay in step and each side gets its associationChange event.
"""

from __future__ import annotations

from typing import Any

from hubspot_sandbox.http import HubSpotError, Request, Response, Router
from hubspot_sandbox.objects import (
    DEFAULT_PROPERTIES,
    associate_records,
    association_type_name,
    associations_json,
    base_url,
    batch_envelope,
    check_batch_size,
    check_type_id,
    decode_cursor,
    default_type_id,
    dissociate_records,
    encode_cursor,
    error_item,
    json_body,
    live_associations,
    not_found,
    object_type,
    record_json,
    validation_error,
)
from hubspot_sandbox.state import (
    DEFAULT_ASSOCIATION_TYPES,
    DEFINED_LABELS,
    ObjectType,
    SandboxState,
    is_defined_type,
    now_ms,
)

V3_PAGE = 100  # v3 association lists page at 100 (reference §5.1)
V4_PAGE = 500  # v4 GET pages at 500 (reference §5.2)
V4_BATCH_READ_MAX = 1000  # "may not exceed 1000 IDs per request body" (reference §5.2)
V4_BATCH_CREATE_MAX = 2000  # reference §5.2
FIRST_LABEL_TYPE_ID = 10_000  # custom labels get ids well clear of HubSpot's defined ones (§5.3)


def _pair(request: Request) -> tuple[ObjectType, ObjectType]:
    params = request.params
    return object_type(params.get("fromObjectType") or params["objectType"]), object_type(
        params.get("toObjectType") or params["toType"]
    )


def _require(state: SandboxState, otype: ObjectType, record_id: str) -> None:
    if state.get(otype.name, record_id) is None:
        raise not_found()


def _object_id(value: Any) -> str:
    """``{"id": "123"}`` (or a bare id) from a batch input."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or str(value).strip() == "":
        raise validation_error("Invalid input JSON: every input needs an object id")
    return str(value).strip()


def _as_int(value: str) -> int | str:
    # v4 answers object ids as numbers (reference §5.2 examples).
    return int(value) if value.isdigit() else value


def _label_of(state: SandboxState, from_type: str, to_type: str, type_id: int) -> str | None:
    defined = DEFINED_LABELS.get((from_type, to_type), {}).get(type_id)
    return defined or state.association_labels.get((from_type, to_type), {}).get(type_id)


def _spec_json(
    state: SandboxState, from_type: str, to_type: str, category: str, type_id: int
) -> dict[str, Any]:
    """``AssociationSpecWithLabel``: default types have a null label (reference §5.2 labels GET), a
    "Primary" type its label (the v4 batch read example)."""
    label = _label_of(state, from_type, to_type, type_id)
    if category == "HUBSPOT_DEFINED" and type_id not in DEFINED_LABELS.get((from_type, to_type), {}):
        label = None
    return {"category": category, "typeId": type_id, "label": label}


def _specs(state: SandboxState, f: ObjectType, t: ObjectType, raw: Any) -> list[tuple[str, int]]:
    """``[{associationCategory, associationTypeId}]`` validated for the pair."""
    if not isinstance(raw, list) or not raw:
        raise validation_error("Invalid input JSON: expected a list of association types")
    out: list[tuple[str, int]] = []
    for spec in raw:
        if not isinstance(spec, dict):
            raise validation_error("Invalid input JSON: an association type must be an object")
        category = str(spec.get("associationCategory") or "HUBSPOT_DEFINED")
        try:
            type_id = int(str(spec.get("associationTypeId")))
        except (TypeError, ValueError):
            raise validation_error("Invalid input JSON: associationTypeId must be an integer") from None
        check_type_id(state, f.name, t.name, type_id, category)
        out.append((category, type_id))
    return out


def _link(
    state: SandboxState, f: ObjectType, from_id: str, t: ObjectType, to_id: str, specs: list[tuple[str, int]]
) -> None:
    """Create typed edges; a labelled association always comes with the pair's unlabelled one, as v4
    reads show both (reference §5.2 batch read example)."""
    default = DEFAULT_ASSOCIATION_TYPES.get((f.name, t.name))
    wanted = list(specs)
    if default is not None and ("HUBSPOT_DEFINED", default) not in wanted:
        wanted.insert(0, ("HUBSPOT_DEFINED", default))
    for category, type_id in wanted:
        associate_records(state, f.name, from_id, t.name, to_id, type_id=type_id, category=category)


def _labels_between(state: SandboxState, f: ObjectType, from_id: str, t: ObjectType, to_id: str) -> list[str]:
    types = state.associations.get((f.name, from_id), {}).get((t.name, to_id), set())
    labels = [_label_of(state, f.name, t.name, tid) for c, tid in sorted(types, key=lambda x: x[1])]
    return [label for label in labels if label]


def _labels_pair_json(
    state: SandboxState, f: ObjectType, from_id: str, t: ObjectType, to_id: str
) -> dict[str, Any]:
    """``LabelsBetweenObjectPair`` (reference §5.2)."""
    return {
        "fromObjectTypeId": f.type_id,
        "fromObjectId": _as_int(from_id),
        "toObjectTypeId": t.type_id,
        "toObjectId": _as_int(to_id),
        "labels": _labels_between(state, f, from_id, t, to_id),
    }


def _v4_targets(state: SandboxState, f: ObjectType, from_id: str, t: ObjectType) -> list[dict[str, Any]]:
    """``MultiAssociatedObjectWithLabel`` for each associated record."""
    out = []
    for to_id, types in live_associations(state, f.name, from_id, t.name):
        out.append(
            {
                "toObjectId": _as_int(to_id),
                "associationTypes": [
                    _spec_json(state, f.name, t.name, c, tid) for c, tid in sorted(types, key=lambda x: x[1])
                ],
            }
        )
    return out


def _v3_targets(state: SandboxState, f: ObjectType, from_id: str, t: ObjectType) -> list[dict[str, str]]:
    """``AssociatedId`` entries: one per (record, type), with v3's ``order_to_contact`` strings."""
    out: list[dict[str, str]] = []
    for to_id, types in live_associations(state, f.name, from_id, t.name):
        for _c, tid in sorted(types, key=lambda x: x[1]):
            out.append({"id": to_id, "type": association_type_name(state, f.name, t.name, tid)})
    return out


def _page(
    items: list[Any], after: str | None, limit: int, link: str
) -> tuple[list[Any], dict[str, Any] | None]:
    start = decode_cursor(after)
    page = items[start : start + limit]
    if start + limit < len(items):
        cursor = encode_cursor(start + limit)
        return page, {"next": {"after": cursor, "link": f"{link}?after={cursor}"}}
    return page, None


def _limit(request: Request, default: int) -> int:
    value = request.arg("limit")
    if not value:
        return default
    try:
        return max(1, min(int(value), default))
    except ValueError:
        raise validation_error(f"Invalid value for limit: {value}") from None


# --- v3 object-scoped (reference §5.1) ---------------------------------------------------------------


def v3_list(request: Request, state: SandboxState) -> Response:
    f, t = _pair(request)
    from_id = request.params["objectId"]
    with state.lock:
        _require(state, f, from_id)
        items = _v3_targets(state, f, from_id, t)
    link = f"{base_url(request)}/crm/v3/objects/{f.type_id}/{from_id}/associations/{t.type_id}"
    page, paging = _page(items, request.arg("after"), _limit(request, V3_PAGE), link)
    body: dict[str, Any] = {"results": page}
    if paging:
        body["paging"] = paging
    return Response(200, body)


def _v3_type_id(state: SandboxState, f: ObjectType, t: ObjectType, value: str) -> tuple[str, int]:
    """A v3 path's association type: a number or a name such as ``order_to_contact``."""
    if value.isdigit():
        type_id = int(value)
        category = "HUBSPOT_DEFINED" if is_defined_type(f.name, t.name, type_id) else "USER_DEFINED"
        return category, type_id
    for type_id in _defined_ids(f, t):
        if association_type_name(state, f.name, t.name, type_id) == value.lower():
            return "HUBSPOT_DEFINED", type_id
    for type_id in state.association_labels.get((f.name, t.name), {}):
        if association_type_name(state, f.name, t.name, type_id) == value.lower():
            return "USER_DEFINED", type_id
    raise validation_error(f"{value} is not a valid association type between {f.singular} and {t.singular}")


def _defined_ids(f: ObjectType, t: ObjectType) -> list[int]:
    """HubSpot's own type ids from one type to another: the default first, then any "Primary" type."""
    default = DEFAULT_ASSOCIATION_TYPES.get((f.name, t.name))
    ids = [default] if default is not None else []
    return ids + sorted(DEFINED_LABELS.get((f.name, t.name), {}))


def v3_put(request: Request, state: SandboxState) -> Response:
    """PUT .../associations/{toType}/{toId}/{type}: 200 with the object and its associations of toType."""
    f, t = _pair(request)
    from_id, to_id = request.params["objectId"], request.params["toObjectId"]
    with state.lock:
        _require(state, f, from_id)
        _require(state, t, to_id)
        category, type_id = _v3_type_id(state, f, t, request.params["associationType"])
        check_type_id(state, f.name, t.name, type_id, category)
        associate_records(state, f.name, from_id, t.name, to_id, type_id=type_id, category=category)
        rec = state.get(f.name, from_id)
        assert rec is not None
        body = record_json(rec, DEFAULT_PROPERTIES[f.name])
        body["associations"] = associations_json(state, f, rec, [t], base_url(request))
    return Response(200, body)


def v3_delete(request: Request, state: SandboxState) -> Response:
    f, t = _pair(request)
    with state.lock:
        type_id = _v3_type_id(state, f, t, request.params["associationType"])[1]
        dissociate_records(
            state, f.name, request.params["objectId"], t.name, request.params["toObjectId"], type_id=type_id
        )
    return Response(204)


# --- v3 batch (reference §5.1) ---------------------------------------------------------------------


def v3_batch_create(request: Request, state: SandboxState) -> Response:
    started = now_ms()
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        for item in inputs:
            from_id, to_id = _object_id(item.get("from")), _object_id(item.get("to"))
            category, type_id = _v3_type_id(
                state, f, t, str(item.get("type") or default_type_id(f.name, t.name))
            )
            missing = [i for o, i in ((f, from_id), (t, to_id)) if state.get(o.name, i) is None]
            if missing:
                errors.append(_missing_error(missing))
                continue
            check_type_id(state, f.name, t.name, type_id, category)
            associate_records(state, f.name, from_id, t.name, to_id, type_id=type_id, category=category)
            results.append(
                {
                    "from": {"id": from_id},
                    "to": {"id": to_id},
                    "type": association_type_name(state, f.name, t.name, type_id),
                }
            )
    return Response(207 if errors else 201, batch_envelope(started, results, errors))


def _missing_error(ids: list[str]) -> dict[str, Any]:
    return error_item("OBJECT_NOT_FOUND", f"Objects not found: [{', '.join(ids)}]", {"ids": ids})


def _no_associations(f: ObjectType, from_id: str, t: ObjectType) -> dict[str, Any]:
    """A record with no associations of the type is a 207 error item (reference §5.2; UNCONFIRMED)."""
    return error_item(
        "OBJECT_NOT_FOUND",
        f"No {t.singular} is associated with {f.singular} {from_id}.",
        {"fromObjectId": [from_id]},
        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
    )


def v3_batch_read(request: Request, state: SandboxState) -> Response:
    """Each record's first 100 associations, with a cursor this endpoint never honours: v3 batch read
    "silently ignores after" (reference §9 item 4; use v4 for paging)."""
    started = now_ms()
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_READ_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    base = base_url(request)
    with state.lock:
        for item in inputs:
            from_id = _object_id(item)
            items = _v3_targets(state, f, from_id, t) if state.get(f.name, from_id) else []
            if not items:
                errors.append(_no_associations(f, from_id, t))
                continue
            link = f"{base}/crm/v3/objects/{f.type_id}/{from_id}/associations/{t.type_id}"
            page, paging = _page(items, None, V3_PAGE, link)
            result: dict[str, Any] = {"from": {"id": from_id}, "to": page}
            if paging:
                result["paging"] = paging
            results.append(result)
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def v3_batch_archive(request: Request, state: SandboxState) -> Response:
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    with state.lock:
        for item in inputs:
            type_value = item.get("type")
            type_id = _v3_type_id(state, f, t, str(type_value))[1] if type_value else None
            dissociate_records(
                state,
                f.name,
                _object_id(item.get("from")),
                t.name,
                _object_id(item.get("to")),
                type_id=type_id,
            )
    return Response(204)


def v3_types(request: Request, state: SandboxState) -> Response:
    """GET /crm/v3/associations/{from}/{to}/types: ``[{id, name}]`` (reference §5.1)."""
    f, t = _pair(request)
    results = []
    for type_id in _defined_ids(f, t):
        results.append({"id": str(type_id), "name": association_type_name(state, f.name, t.name, type_id)})
    for type_id in sorted(state.association_labels.get((f.name, t.name), {})):
        results.append({"id": str(type_id), "name": association_type_name(state, f.name, t.name, type_id)})
    return Response(200, {"results": results})


# --- v4 records (reference §5.2) -------------------------------------------------------------------


def v4_list(request: Request, state: SandboxState) -> Response:
    f, t = _pair(request)
    from_id = request.params["objectId"]
    with state.lock:
        _require(state, f, from_id)
        items = _v4_targets(state, f, from_id, t)
    link = f"{base_url(request)}/crm/v4/objects/{f.type_id}/{from_id}/associations/{t.type_id}"
    page, paging = _page(items, request.arg("after"), _limit(request, V4_PAGE), link)
    body: dict[str, Any] = {"results": page}
    if paging:
        body["paging"] = paging
    return Response(200, body)


def v4_put(request: Request, state: SandboxState) -> Response:
    """PUT with a list of association types: 201 ``LabelsBetweenObjectPair`` (reference §5.2)."""
    f, t = _pair(request)
    from_id, to_id = request.params["objectId"], request.params["toObjectId"]
    specs_raw = request.json()
    with state.lock:
        _require(state, f, from_id)
        _require(state, t, to_id)
        _link(state, f, from_id, t, to_id, _specs(state, f, t, specs_raw))
        body = _labels_pair_json(state, f, from_id, t, to_id)
    return Response(201, body)


def v4_delete(request: Request, state: SandboxState) -> Response:
    """Removes every association between the pair (reference §5.2)."""
    f, t = _pair(request)
    dissociate_records(state, f.name, request.params["objectId"], t.name, request.params["toObjectId"])
    return Response(204)


def _default_results(f: ObjectType, from_id: str, t: ObjectType, to_id: str) -> list[dict[str, Any]]:
    """``PublicDefaultAssociation`` both ways."""
    forward = default_type_id(f.name, t.name)
    backward = default_type_id(t.name, f.name)
    return [
        {
            "from": {"id": from_id},
            "to": {"id": to_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": forward},
        },
        {
            "from": {"id": to_id},
            "to": {"id": from_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": backward},
        },
    ]


def v4_put_default(request: Request, state: SandboxState) -> Response:
    """PUT .../associations/default/{toType}/{toId}: 200 ``BatchResponsePublicDefaultAssociation``."""
    started = now_ms()
    f, t = _pair(request)
    from_id, to_id = request.params["fromObjectId"], request.params["toObjectId"]
    with state.lock:
        _require(state, f, from_id)
        _require(state, t, to_id)
        associate_records(state, f.name, from_id, t.name, to_id)
        results = _default_results(f, from_id, t, to_id)
    return Response(200, batch_envelope(started, results, []))


# --- v4 batch (reference §5.2) ---------------------------------------------------------------------


def v4_batch_default(request: Request, state: SandboxState) -> Response:
    started = now_ms()
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        default_type_id(f.name, t.name)
        for item in inputs:
            from_id, to_id = _object_id(item.get("from")), _object_id(item.get("to"))
            missing = [i for o, i in ((f, from_id), (t, to_id)) if state.get(o.name, i) is None]
            if missing:
                errors.append(_missing_error(missing))
                continue
            associate_records(state, f.name, from_id, t.name, to_id)
            results.extend(_default_results(f, from_id, t, to_id))
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def v4_batch_create(request: Request, state: SandboxState) -> Response:
    """201 with ``LabelsBetweenObjectPair`` results, 207 when some records are missing; 2,000 inputs."""
    started = now_ms()
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        planned = []
        for item in inputs:
            from_id, to_id = _object_id(item.get("from")), _object_id(item.get("to"))
            planned.append((from_id, to_id, _specs(state, f, t, item.get("types"))))
        for from_id, to_id, specs in planned:
            missing = [i for o, i in ((f, from_id), (t, to_id)) if state.get(o.name, i) is None]
            if missing:
                errors.append(_missing_error(missing))
                continue
            _link(state, f, from_id, t, to_id, specs)
            results.append(_labels_pair_json(state, f, from_id, t, to_id))
    return Response(207 if errors else 201, batch_envelope(started, results, errors))


def v4_batch_read(request: Request, state: SandboxState) -> Response:
    """Up to 1,000 ids; each result pages at 500 with its own ``after``; a record with no associations
    is a 207 error item (reference §5.2)."""
    started = now_ms()
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_READ_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    base = base_url(request)
    with state.lock:
        for item in inputs:
            from_id = _object_id(item)
            after = item.get("after") if isinstance(item, dict) else None
            items = _v4_targets(state, f, from_id, t) if state.get(f.name, from_id) else []
            if not items:
                errors.append(_no_associations(f, from_id, t))
                continue
            link = f"{base}/crm/v4/objects/{f.type_id}/{from_id}/associations/{t.type_id}"
            page, paging = _page(items, str(after) if after else None, V4_PAGE, link)
            result: dict[str, Any] = {"from": {"id": from_id}, "to": page}
            if paging:
                result["paging"] = paging
            results.append(result)
    return Response(207 if errors else 200, batch_envelope(started, results, errors))


def v4_batch_archive(request: Request, state: SandboxState) -> Response:
    """``{inputs:[{from:{id}, to:[{id}]}]}``: every association between each pair goes; 204."""
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    with state.lock:
        for item in inputs:
            from_id = _object_id(item.get("from"))
            targets = item.get("to") or []
            if not isinstance(targets, list):
                targets = [targets]
            for target in targets:
                dissociate_records(state, f.name, from_id, t.name, _object_id(target))
    return Response(204)


def v4_batch_archive_labels(request: Request, state: SandboxState) -> Response:
    """Remove given types; "Deleting an unlabeled association will also delete all labeled
    associations" (reference §5.2). 204."""
    f, t = _pair(request)
    inputs = check_batch_size(json_body(request).get("inputs"), V4_BATCH_CREATE_MAX)
    default = DEFAULT_ASSOCIATION_TYPES.get((f.name, t.name))
    with state.lock:
        for item in inputs:
            from_id, to_id = _object_id(item.get("from")), _object_id(item.get("to"))
            for _category, type_id in _specs(state, f, t, item.get("types")):
                dissociate_records(
                    state, f.name, from_id, t.name, to_id, type_id=None if type_id == default else type_id
                )
    return Response(204)


# --- labels (reference §5.2 "Labels") ----------------------------------------------------------------


def labels_list(request: Request, state: SandboxState) -> Response:
    f, t = _pair(request)
    results = []
    for type_id in _defined_ids(f, t):
        label = DEFINED_LABELS.get((f.name, t.name), {}).get(type_id)
        results.append({"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label})
    for type_id, label in sorted(state.association_labels.get((f.name, t.name), {}).items()):
        results.append({"category": "USER_DEFINED", "typeId": type_id, "label": label})
    return Response(200, {"results": results})


def _next_label_id(state: SandboxState) -> int:
    used = [tid for labels in state.association_labels.values() for tid in labels]
    return max([FIRST_LABEL_TYPE_ID - 1, *used]) + 1


def labels_create(request: Request, state: SandboxState) -> Response:
    """POST ``{label, name, inverseLabel?}``: 200 with the new type.

    One type id serves both directions here (a custom label is its own reverse in the state); the
    inverse label names that id when read from the other side. HubSpot gives a paired label two ids.
    """
    f, t = _pair(request)
    body = json_body(request)
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        raise validation_error("label is required")
    inverse = body.get("inverseLabel")
    with state.lock:
        existing = state.association_labels.get((f.name, t.name), {})
        if label in existing.values():
            raise HubSpotError(
                409, "CONFLICT", f'An association label "{label}" already exists for this pair'
            )
        type_id = _next_label_id(state)
        state.association_labels.setdefault((f.name, t.name), {})[type_id] = label
        state.association_labels.setdefault((t.name, f.name), {})[type_id] = (
            inverse if isinstance(inverse, str) and inverse else label
        )
    return Response(200, {"results": [{"category": "USER_DEFINED", "typeId": type_id, "label": label}]})


def labels_update(request: Request, state: SandboxState) -> Response:
    """PUT ``{associationTypeId, label, inverseLabel?}``: 204."""
    f, t = _pair(request)
    body = json_body(request)
    try:
        type_id = int(str(body.get("associationTypeId")))
    except (TypeError, ValueError):
        raise validation_error("associationTypeId is required") from None
    label = body.get("label")
    with state.lock:
        labels = state.association_labels.get((f.name, t.name), {})
        if type_id not in labels:
            raise not_found(f"No association label {type_id} between {f.singular} and {t.singular}")
        if isinstance(label, str) and label:
            labels[type_id] = label
        inverse = body.get("inverseLabel")
        if isinstance(inverse, str) and inverse:
            state.association_labels.setdefault((t.name, f.name), {})[type_id] = inverse
    return Response(204)


def labels_delete(request: Request, state: SandboxState) -> Response:
    """DELETE .../labels/{associationTypeId}: the label and every association carrying it go; 204."""
    f, t = _pair(request)
    try:
        type_id = int(request.params["associationTypeId"])
    except ValueError:
        raise validation_error("associationTypeId must be an integer") from None
    with state.lock:
        if type_id not in state.association_labels.get((f.name, t.name), {}):
            raise not_found(f"No association label {type_id} between {f.singular} and {t.singular}")
        for (from_type, from_id), edges in list(state.associations.items()):
            if from_type != f.name:
                continue
            for (to_type, to_id), types in list(edges.items()):
                if to_type == t.name and any(tid == type_id for _c, tid in types):
                    dissociate_records(state, f.name, from_id, t.name, to_id, type_id=type_id)
        state.association_labels[(f.name, t.name)].pop(type_id, None)
        state.association_labels.get((t.name, f.name), {}).pop(type_id, None)
    return Response(204)


def register(router: Router) -> None:
    v3 = "/crm/v3/objects/{objectType}/{objectId}/associations/{toType}"
    router.add("GET", v3, v3_list)
    router.add("PUT", f"{v3}/{{toObjectId}}/{{associationType}}", v3_put)
    router.add("DELETE", f"{v3}/{{toObjectId}}/{{associationType}}", v3_delete)
    v3_batch = "/crm/v3/associations/{fromObjectType}/{toObjectType}"
    router.add("POST", f"{v3_batch}/batch/create", v3_batch_create)
    router.add("POST", f"{v3_batch}/batch/read", v3_batch_read)
    router.add("POST", f"{v3_batch}/batch/archive", v3_batch_archive)
    router.add("GET", f"{v3_batch}/types", v3_types)

    v4 = "/crm/v4/objects/{objectType}/{objectId}/associations"
    router.add(
        "PUT",
        "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
        v4_put_default,
    )
    router.add("GET", f"{v4}/{{toType}}", v4_list)
    router.add("PUT", f"{v4}/{{toType}}/{{toObjectId}}", v4_put)
    router.add("DELETE", f"{v4}/{{toType}}/{{toObjectId}}", v4_delete)
    v4_batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"
    router.add("POST", f"{v4_batch}/associate/default", v4_batch_default)
    router.add("POST", f"{v4_batch}/create", v4_batch_create)
    router.add("POST", f"{v4_batch}/read", v4_batch_read)
    router.add("POST", f"{v4_batch}/archive", v4_batch_archive)
    router.add("POST", f"{v4_batch}/labels/archive", v4_batch_archive_labels)
    # Labels live under /crm/v4/associations; the newest spec moves them to /crm/associations/v4 (§5.2).
    for labels in (
        "/crm/v4/associations/{fromObjectType}/{toObjectType}/labels",
        "/crm/associations/v4/{fromObjectType}/{toObjectType}/labels",
    ):
        router.add("GET", labels, labels_list)
        router.add("POST", labels, labels_create)
        router.add("PUT", labels, labels_update)
        router.add("DELETE", f"{labels}/{{associationTypeId}}", labels_delete)
