"""POST /crm/v3/objects/{T}/search, with HubSpot's operators, limits and paging (reference §1.5).

Each filter compiles to a predicate and, where an index can answer it, a plan: ``hs_object_id``
comparisons are a slice of the type's id order; EQ, IN, comparisons and BETWEEN on other properties are
slices of a sorted value index; HAS_PROPERTY is a sorted id list (see index.py). A filter group starts
from the smallest of those (or its id range, when that is narrower) and tests its other filters on those
candidates only. The ids matching a group apart from its ``hs_object_id`` range are kept until the next
write to the type, so keyset paging (the same filters with a moving ``hs_object_id GT`` bound, sorted by
id) costs a bisect per page while ``total`` stays exact.

``_scanned`` is the plain loop over every record with the same predicates: search falls back to it
when records cannot be indexed, and the tests hold the indexed answers to it.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from operator import attrgetter, ge, gt, itemgetter, le, lt
from typing import Any

from hubspot_sandbox import standard
from hubspot_sandbox.http import Request, Response
from hubspot_sandbox.index import (
    UNBOUNDED,
    Bounds,
    TypeIndex,
    ValueIndex,
    contains,
    for_type,
    id_span,
    record_value,
)
from hubspot_sandbox.objects import (
    behaviour,
    id_order,
    iso_date,
    iso_ms,
    object_type,
    parse_time_ms,
    property_names,
    record_json,
    validation_error,
)
from hubspot_sandbox.state import ObjectType, Record, SandboxState, resolve_type

# Limits from the search guide's "Limits" section (reference §1.5).
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_BODY_CHARS = 3000
DEFAULT_LIMIT = 10
MAX_LIMIT = 200  # above it we clamp, as the list endpoint does (reference §11 item 5 leaves it open)
MAX_RESULTS = 10_000

OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)

# Full-text ``query`` fields: the contact list is documented; the others are UNCONFIRMED (reference §1.5).
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": (
        "firstname",
        "lastname",
        "email",
        "phone",
        "hs_additional_emails",
        "fax",
        "mobilephone",
        "company",
        "hs_marketable_until_renewal",
    ),
    "orders": ("hs_order_name", "hs_external_order_id", "hs_billing_address_email"),
    "carts": ("hs_cart_name", "hs_external_cart_id"),
    "line_items": ("name", "hs_sku", "description"),
    **standard.QUERY_PROPERTIES,
}

# An id range no narrower than this many records is not worth an index of the other filters' values:
# testing each record in it is cheaper than building one.
SMALL_ID_RANGE = 256
# How much narrower the id range must be than the best index before search tests the id range's records
# instead: the index's matches are kept for the next page, the id range's are not.
ID_RANGE_ADVANTAGE = 4

Predicate = Callable[[Record], bool]
_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")


# --- filters --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdRange:
    """``hs_object_id`` compared with a number: a slice of the id order."""

    bounds: Bounds


@dataclass(frozen=True)
class IdSet:
    """``hs_object_id`` IN: those ids."""

    ids: tuple[int, ...]


@dataclass(frozen=True)
class ValueRanges:
    """EQ, IN, a comparison or BETWEEN on another property: slices of its value index (one per IN value)."""

    name: str
    kind: str
    ranges: tuple[Bounds, ...]


@dataclass(frozen=True)
class HasValue:
    """HAS_PROPERTY: the ids with a value."""

    name: str


Plan = IdRange | IdSet | ValueRanges | HasValue


@dataclass(frozen=True, eq=False)
class Filter:
    """One compiled filter: the predicate the scan (and the index's candidates) are tested with, and
    the plan an index answers it with, if one can."""

    test: Predicate
    # What the filter matches, as a value (property, kind, operator, operands), so that equal filters
    # share cached matches; None when its matches do not follow from records alone (associations).
    key: Hashable | None
    plan: Plan | None = None


def _kind(state: SandboxState, otype: ObjectType, name: str) -> str:
    """How a property's values compare: number, time (canonical ISO strings), enum (case-sensitive)
    or string (case-insensitive; reference §1.5 "Values are case-insensitive" with its two exceptions)."""
    if name == "hs_object_id":
        return "number"
    if name in (otype.created_property, otype.modified_property, "createdate", "hs_createdate"):
        return "datetime"
    definition = (state.properties.get(otype.name) or {}).get(name) or {}
    kind = definition.get("type")
    if kind == "number":
        return "number"
    if kind in ("datetime", "date"):
        return str(kind)
    if kind in ("enumeration", "bool"):
        return "enum"
    return "string"


def _property_name(otype: ObjectType, name: str) -> str:
    # The search guide's table calls the orders/carts creation date ``createdate`` while the objects
    # return ``hs_createdate`` (reference §1.3): answer to both.
    if name == "createdate" and otype.created_property != "createdate":
        return otype.created_property
    return name


def _converter(kind: str, field: str) -> Callable[[str], Any]:
    """Turns a filter value into the form record values are compared in."""

    def number(value: str) -> float:
        try:
            return float(value)
        except ValueError:
            raise validation_error(f"{value} is not a valid number for {field}") from None

    def moment(value: str) -> str:
        ms = parse_time_ms(value)
        if ms is None:
            raise validation_error(f"{value} is not a valid date for {field}")
        return iso_date(ms) if kind == "date" else iso_ms(ms)

    if kind == "number":
        return number
    if kind in ("datetime", "date"):
        return moment
    if kind == "enum":
        return str
    return str.lower


def _tokens(value: str) -> set[str]:
    lowered = value.lower()
    return {t for t in _TOKEN_SPLIT.split(lowered) if t} | {lowered}


def _token_matcher(pattern: str) -> Callable[[str], bool]:
    """CONTAINS_TOKEN: a whole token, or with ``*`` a wildcard over the value (e.g. ``*@hubspot.com``)."""
    lowered = pattern.lower()
    if "*" in lowered:
        regex = re.compile("^" + ".*".join(re.escape(p) for p in lowered.split("*")) + "$")
        return lambda value: bool(regex.match(value.lower())) or any(regex.match(t) for t in _tokens(value))
    wanted = {t for t in _TOKEN_SPLIT.split(lowered) if t}
    return lambda value: bool(wanted) and wanted <= _tokens(value)


def _compile_filter(state: SandboxState, otype: ObjectType, raw: Any) -> Filter:
    if not isinstance(raw, dict):
        raise validation_error("Invalid input JSON: a filter must be an object")
    operator = str(raw.get("operator") or "EQ").upper()
    if operator not in OPERATORS:
        # What HubSpot answers for an operator its enum does not know.
        raise validation_error(
            "Invalid input JSON: Cannot deserialize value of type `FilterOperatorEnum` "
            f'from String "{operator}"'
        )
    name = raw.get("propertyName")
    if not isinstance(name, str) or not name:
        raise validation_error("Invalid input JSON: every filter needs a propertyName")
    if name.startswith("associations."):
        return Filter(_association_filter(state, otype, name, operator, raw), None)
    name = _property_name(otype, name)
    if operator == "HAS_PROPERTY":
        return Filter(lambda rec: bool(rec.properties.get(name)), (operator, name), HasValue(name))
    if operator == "NOT_HAS_PROPERTY":
        return Filter(lambda rec: not rec.properties.get(name), (operator, name))

    kind = _kind(state, otype, name)
    convert = _converter(kind, name)
    read = record_value(kind)

    if operator in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list):
            raise validation_error(f"{operator} needs a list of 'values'")
        # String IN/NOT_IN values must be given lower-case (reference §1.5): compare them as given.
        wanted = {(str(v) if kind == "string" else convert(str(v))) for v in values}
        wanted_key: Hashable = (operator, name, kind, frozenset(wanted))
        if operator == "NOT_IN":
            return Filter(
                lambda rec: (v := rec.properties.get(name)) is None or read(v) not in wanted, wanted_key
            )
        plan: Plan
        if name == "hs_object_id":
            # hs_object_id is a number property: ``wanted`` holds floats, and only whole ones can match.
            ids = {int(v) for v in wanted if isinstance(v, float) and math.isfinite(v) and v.is_integer()}
            plan = IdSet(tuple(sorted(ids)))
        else:
            plan = ValueRanges(name, kind, tuple(Bounds(v, True, v, True) for v in wanted))
        return Filter(
            lambda rec: (v := rec.properties.get(name)) is not None and read(v) in wanted, wanted_key, plan
        )

    value = raw.get("value")
    if value is None:
        raise validation_error(f"{operator} needs a 'value' for {name}")
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)

    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        matches = _token_matcher(text)
        key = (operator, name, text)
        if operator == "CONTAINS_TOKEN":
            return Filter(lambda rec: (v := rec.properties.get(name)) is not None and matches(v), key)
        return Filter(lambda rec: (v := rec.properties.get(name)) is None or not matches(v), key)

    target = convert(text)
    if operator == "NEQ":
        # A record without the property is "not equal" too.
        return Filter(
            lambda rec: (v := rec.properties.get(name)) is None or read(v) != target,
            (operator, name, kind, target),
        )
    predicate: Predicate
    if operator == "EQ":

        def equal(rec: Record) -> bool:
            return (v := rec.properties.get(name)) is not None and read(v) == target

        bounds = Bounds(target, True, target, True)
        predicate = equal
    elif operator == "BETWEEN":
        high_raw = raw.get("highValue")
        if high_raw is None:
            raise validation_error(f"BETWEEN needs a 'highValue' for {name}")
        high = convert(str(high_raw))

        def between(x: Any) -> bool:
            return bool(target <= x <= high)

        bounds = Bounds(target, True, high, True)
        predicate = _range(name, kind, between)
    else:
        # ``x < target`` is ``target > x``: partials of the C comparison functions keep the scan fast.
        flipped = {"LT": gt, "LTE": ge, "GT": lt, "GTE": le}
        bounds = {
            "LT": Bounds(high=target),
            "LTE": Bounds(high=target, high_inclusive=True),
            "GT": Bounds(low=target),
            "GTE": Bounds(low=target, low_inclusive=True),
        }[operator]
        predicate = _range(name, kind, functools.partial(flipped[operator], target))
    plan = IdRange(bounds) if name == "hs_object_id" else ValueRanges(name, kind, (bounds,))
    return Filter(predicate, (operator, name, kind, bounds), plan)


def _range(name: str, kind: str, test: Callable[[Any], bool]) -> Predicate:
    """A comparison predicate; records without the property (or with a non-number in a number
    property) never match."""
    if kind == "number":

        def number(rec: Record) -> bool:
            value = rec.properties.get(name)
            if value is None:
                return False
            try:
                return test(float(value))
            except ValueError:
                return False

        return number
    if kind == "string":
        return lambda rec: (v := rec.properties.get(name)) is not None and test(v.lower())
    return lambda rec: (v := rec.properties.get(name)) is not None and test(v)


def _association_filter(
    state: SandboxState, otype: ObjectType, name: str, operator: str, raw: dict[str, Any]
) -> Predicate:
    """``associations.contact`` EQ 123: records associated with that contact (reference §1.5)."""
    to = resolve_type(name.split(".", 1)[1])
    if to is None:
        raise validation_error(f"Unable to infer object type from: {name.split('.', 1)[1]}")
    if operator == "EQ":
        wanted = {str(raw.get("value", ""))}
    elif operator == "IN":
        wanted = {str(v) for v in raw.get("values") or []}
    else:
        raise validation_error(f"Operator {operator} is not supported for {name}; use EQ or IN")
    edges = state.associations
    keys = [(to.name, v) for v in wanted]
    return lambda rec: any(k in edges.get((otype.name, rec.id), {}) for k in keys)


def _query_filter(otype: ObjectType, query: str) -> Filter:
    needle = query.strip().lower()
    fields = QUERY_PROPERTIES[otype.name]
    return Filter(
        lambda rec: any(needle in (rec.properties.get(f) or "").lower() for f in fields), ("query", needle)
    )


def _groups(body: dict[str, Any]) -> list[list[Any]]:
    groups = body.get("filterGroups")
    if groups is None and isinstance(body.get("filters"), list):
        # The older request shape with top-level ``filters``: one AND group.
        groups = [{"filters": body["filters"]}]
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise validation_error("Invalid input JSON: filterGroups must be a list")
    out: list[list[Any]] = []
    for group in groups:
        filters = (group or {}).get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("Invalid input JSON: every filter group needs a list of filters")
        out.append(filters)
    return out


def _check_limits(groups: list[list[Any]]) -> None:
    """ "Maximum of five filterGroups with up to six filters in each group, with a maximum of 18 filters
    in total" → VALIDATION_ERROR (reference §1.5; the messages' wording is UNCONFIRMED)."""
    if len(groups) > MAX_FILTER_GROUPS:
        raise validation_error(
            f"Too many filter groups: {len(groups)}. "
            f"The maximum number of filter groups is {MAX_FILTER_GROUPS}"
        )
    for filters in groups:
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a filter group: {len(filters)}. "
                f"The maximum number of filters per group is {MAX_FILTERS_PER_GROUP}"
            )
    total = sum(len(f) for f in groups)
    if total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: {total}. The maximum number of filters across all groups is {MAX_FILTERS}"
        )


def _sort_spec(otype: ObjectType, sorts: Any) -> tuple[str, bool] | None:
    """(property, descending). "Only one sorting rule can be applied to any search" (reference §1.5).
    The spec types ``sorts`` as strings; accept ``"name"``/``"-name"`` as well (UNCONFIRMED form)."""
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise validation_error("Invalid input JSON: sorts must be a list")
    if len(sorts) > 1:
        raise validation_error("Only one sort is supported per search request")
    sort = sorts[0]
    if isinstance(sort, str):
        descending = sort.startswith("-")
        return _property_name(otype, sort.lstrip("-+")), descending
    if isinstance(sort, dict) and sort.get("propertyName"):
        direction = str(sort.get("direction") or "ASCENDING").upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(f"Invalid sort direction: {direction}")
        return _property_name(otype, str(sort["propertyName"])), direction == "DESCENDING"
    raise validation_error("Invalid input JSON: a sort needs a propertyName")


def _page_args(body: dict[str, Any]) -> tuple[int, int]:
    raw_limit = body.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
    except (TypeError, ValueError):
        raise validation_error(f"Invalid limit: {raw_limit}") from None
    limit = max(1, min(limit, MAX_LIMIT))
    after_raw = body.get("after")
    if after_raw in (None, ""):
        return limit, 0
    try:
        # "You must format the value in the after parameter as an integer" (reference §1.5).
        after = int(str(after_raw))
    except ValueError:
        raise validation_error(f"Invalid after value: {after_raw}. It must be an integer") from None
    if after < 0:
        raise validation_error(f"Invalid after value: {after_raw}")
    if after + limit > MAX_RESULTS:
        # "Attempting to page beyond 10,000 will result in a 400 error" (reference §1.5 and §10).
        raise validation_error(
            f"Searches are limited to {MAX_RESULTS} results: after ({after}) + limit ({limit}) "
            f"must not exceed {MAX_RESULTS}"
        )
    return limit, after


@dataclass(frozen=True)
class Search:
    """A validated search request."""

    groups: list[list[Filter]]  # filters AND'ed within a group, groups OR'ed (reference §1.5)
    query: Filter | None  # the full-text ``query``, AND'ed with the groups
    sort: tuple[str, bool] | None  # (property, descending); None: creation order
    limit: int
    after: int
    names: list[str]  # properties to return


def parse_search(state: SandboxState, otype: ObjectType, body: Any) -> Search:
    """Validate a search body as HubSpot does and compile its filters (400 VALIDATION_ERROR otherwise)."""
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected an object")
    groups = _groups(body)
    _check_limits(groups)
    compiled = [[_compile_filter(state, otype, f) for f in g] for g in groups]
    query = body.get("query")
    query_filter = _query_filter(otype, str(query)) if query else None
    spec = _sort_spec(otype, body.get("sorts"))
    limit, after = _page_args(body)
    requested = body.get("properties")
    if requested is not None and not isinstance(requested, list):
        raise validation_error("Invalid input JSON: properties must be a list")
    names = property_names(state, otype, [str(p) for p in requested or []])
    return Search(compiled, query_filter, spec, limit, after, names)


def run_search(
    state: SandboxState, otype: ObjectType, search: Search, cutoff: int | None, *, indexed: bool = True
) -> dict[str, Any]:
    """The response body. Records written after ``cutoff`` (ms) are not searchable yet; archived records
    never are (reference §1.5). ``indexed=False`` forces the plain scan."""
    with state.lock:
        index = for_type(state, otype.name) if indexed else None
        if index is None:
            total, page = _scanned(state, otype, search, cutoff)
        else:
            total, page = _indexed(state, otype, index, search, cutoff)
        results = [record_json(rec, search.names) for rec in page]
    response: dict[str, Any] = {"total": total, "results": results}
    if search.after + search.limit < total:
        # Search's cursor is an offset string with no link (reference §1.5 response example). It is
        # offered even at 10,000, where following it fails, as HubSpot does (reference §9 item 1).
        response["paging"] = {"next": {"after": str(search.after + search.limit)}}
    return response


def handle_search(request: Request, state: SandboxState) -> Response:
    """Search one object type. No rate-limit headers and never archived records (reference §1.5)."""
    otype = object_type(request.params["objectType"])
    if len(request.raw_body.decode("utf-8", "replace")) > MAX_BODY_CHARS:
        # "If the body of your request exceeds 3,000 characters, a 400 error will be returned."
        raise validation_error(
            f"The search request body is {len(request.raw_body)} characters; the maximum is {MAX_BODY_CHARS}"
        )
    search = parse_search(state, otype, request.json() or {})
    lag_ms = behaviour(state).search_lag_s * 1000
    cutoff = int(time.time() * 1000 - lag_ms) if lag_ms > 0 else None
    return Response(200, run_search(state, otype, search, cutoff))


# --- the plain scan -------------------------------------------------------------------------------------


def _scanned(
    state: SandboxState, otype: ObjectType, search: Search, cutoff: int | None
) -> tuple[int, list[Record]]:
    """(total, page) from a scan of every record."""
    groups = [[f.test for f in g] for g in search.groups]
    match = _combine(groups, search.query.test if search.query else None)
    matches = _scan(state, otype, match, cutoff)
    page = _first(state, otype, matches, search.sort, search.after + search.limit)[search.after :]
    return len(matches), page


def _first(
    state: SandboxState, otype: ObjectType, matches: list[Record], spec: tuple[str, bool] | None, count: int
) -> list[Record]:
    """The first ``count`` matches in the search's order. ``heapq.nsmallest``/``nlargest`` are documented
    as equal to ``sorted(...)[:n]`` (stable), and only keep ``count`` items: a page deep into 100,000
    matches costs a scan, not a sort."""
    if spec is None:
        # "in order of object creation (oldest first)" (reference §1.5); matches come in id order, so
        # ties keep ids as the tie-break.
        return heapq.nsmallest(count, matches, key=attrgetter("created_ms"))
    name, descending = spec
    if name == "hs_object_id":
        # Matches come in id order: the sort the incremental sync uses costs nothing.
        return matches[::-1][:count] if descending else matches[:count]
    read = record_value(_kind(state, otype, name))
    with_value: list[tuple[Any, Record]] = []
    without: list[Record] = []
    for rec in matches:
        raw = rec.properties.get(name)
        value = read(raw) if raw is not None else None
        if value is None:
            without.append(rec)
        else:
            with_value.append((value, rec))
    pick = heapq.nlargest if descending else heapq.nsmallest
    first = [rec for _, rec in pick(count, with_value, key=itemgetter(0))]
    # Records without the property come last in either direction.
    return first + without[: max(0, count - len(first))]


def _both(first: Predicate, second: Predicate) -> Predicate:
    return lambda rec: first(rec) and second(rec)


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda rec: first(rec) or second(rec)


def _combine(groups: Sequence[Sequence[Predicate]], query_match: Predicate | None) -> Predicate | None:
    """One predicate for the whole request: filters AND within a group, groups OR'ed (reference §1.5),
    and the full-text query on top. Nested closures instead of all()/any() generators per record."""
    combined: Predicate | None = None
    for group in groups:
        if not group:
            continue
        conjunction = functools.reduce(_both, group)
        combined = conjunction if combined is None else _either(combined, conjunction)
    if query_match is not None:
        combined = query_match if combined is None else _both(combined, query_match)
    return combined


def _scan(
    state: SandboxState, otype: ObjectType, match: Predicate | None, cutoff: int | None
) -> list[Record]:
    """Every live record that matches, in id order; archived records never match (reference §1.5)."""
    matches: list[Record] = []
    records = state.records[otype.name]
    for rid in id_order(state, otype.name)[1]:
        rec = records.get(rid)
        if rec is None or rec.archived:
            continue
        if cutoff is not None and rec.updated_ms > cutoff:
            continue  # not indexed yet: search lags writes
        if match is None or match(rec):
            matches.append(rec)
    return matches


# --- the indexed path ------------------------------------------------------------------------------------


def _indexed(
    state: SandboxState, otype: ObjectType, index: TypeIndex, search: Search, cutoff: int | None
) -> tuple[int, list[Record]]:
    """(total, page) from the type's indexes; the same answer as ``_scanned``."""
    # Empty groups add nothing, and no filters at all match everything (as ``_combine`` has it).
    groups = [g for g in search.groups if g] or [[]]
    if search.query is not None:
        groups = [[*g, search.query] for g in groups]
    parts = [_group_matches(index, g) for g in groups]
    if len(parts) == 1:
        ids, lo, hi = parts[0]
    else:
        union: set[int] = set()
        for part, part_lo, part_hi in parts:
            union.update(part[part_lo:part_hi])
        ids = sorted(union)
        lo, hi = 0, len(ids)
    lagged = index.updated_after(cutoff) if cutoff is not None else set()
    total = hi - lo - sum(1 for rid in lagged if contains(ids, rid, lo, hi))
    need = search.after + search.limit
    live = index.live
    if search.sort is not None and search.sort[0] == "hs_object_id":
        first = [live[rid] for rid in _take(ids, lo, hi, need, lagged, descending=search.sort[1])]
    else:
        matches = ids[lo:hi] if not lagged else [rid for rid in ids[lo:hi] if rid not in lagged]
        first = _first_indexed(state, otype, index, matches, search.sort, need)
    return total, first[search.after :]


def _group_matches(index: TypeIndex, filters: list[Filter]) -> tuple[list[int], int, int]:
    """One group's matches as ``ids[lo:hi]``: ``ids`` in order, often a list kept for many searches."""
    bounds = UNBOUNDED
    rest: list[Filter] = []
    for f in filters:
        if isinstance(f.plan, IdRange):
            bounds = bounds.intersect(f.plan.bounds)
        else:
            rest.append(f)
    if not rest:
        ids = index.ids
    else:
        keys = [f.key for f in rest]
        key = tuple(keys) if None not in keys else None
        found = index.cached_matches(key) if key is not None else None
        if found is None:
            found, complete = _evaluate(index, rest, bounds)
            if complete and key is not None:
                index.cache_matches(key, found)
        ids = found
    lo, hi = id_span(ids, bounds)
    return ids, lo, hi


@dataclass
class _Start:
    """Where a group's evaluation can start: ``size`` candidate ids, listed by ``ids()``, which match
    the filters at positions ``covers`` exactly."""

    size: int
    ids: Callable[[], list[int]]
    covers: tuple[int, ...]


def _evaluate(index: TypeIndex, rest: list[Filter], bounds: Bounds) -> tuple[list[int], bool]:
    """The ids (in order) matching the filters ``rest`` within ``bounds``, and whether that list holds
    every id matching ``rest`` (whatever the bounds), so that it can be kept for the next page."""
    lo, hi = id_span(index.ids, bounds)
    in_range = hi - lo
    start = (
        min(_starts(index, rest), key=attrgetter("size"), default=None) if in_range > SMALL_ID_RANGE else None
    )
    if start is None or in_range * ID_RANGE_ADVANTAGE < start.size:
        if in_range == len(index.ids):
            # Nothing narrower: test every record, and keep the result.
            return _test(index, index.ids, rest), True
        return _test(index, index.ids[lo:hi], rest), False
    others = [f for n, f in enumerate(rest) if n not in start.covers]
    return _test(index, start.ids(), others), True


def _test(index: TypeIndex, candidates: list[int], filters: list[Filter]) -> list[int]:
    if not filters:
        return candidates
    test = functools.reduce(_both, [f.test for f in filters])
    live = index.live
    return [rid for rid in candidates if test(live[rid])]


def _starts(index: TypeIndex, rest: list[Filter]) -> list[_Start]:
    """Every index-backed way into a group's matches. Comparisons on one property combine into one
    range (``x GTE a AND x LT b`` is one slice of the index, not two)."""
    starts: list[_Start] = []
    ranges: dict[tuple[str, str], tuple[Bounds, tuple[int, ...]]] = {}
    for n, f in enumerate(rest):
        plan = f.plan
        if isinstance(plan, HasValue):
            has = index.has_property(plan.name).ids
            starts.append(_Start(len(has), functools.partial(list.copy, has), (n,)))
        elif isinstance(plan, IdSet):
            found = [rid for rid in plan.ids if rid in index.live]
            starts.append(_Start(len(found), functools.partial(list.copy, found), (n,)))
        elif isinstance(plan, ValueRanges) and len(plan.ranges) == 1:
            combined, covers = ranges.get((plan.name, plan.kind), (UNBOUNDED, ()))
            ranges[(plan.name, plan.kind)] = (combined.intersect(plan.ranges[0]), (*covers, n))
        elif isinstance(plan, ValueRanges):
            starts.append(_value_start(index.property_index(plan.name, plan.kind), plan.ranges, (n,)))
    for (name, kind), (combined, covers) in ranges.items():
        starts.append(_value_start(index.property_index(name, kind), (combined,), covers))
    return starts


def _value_start(values: ValueIndex, ranges: Sequence[Bounds], covers: tuple[int, ...]) -> _Start:
    spans = [values.span(b) for b in ranges]
    return _Start(sum(hi - lo for lo, hi in spans), functools.partial(values.ids_in, spans), covers)


def _take(ids: list[int], lo: int, hi: int, need: int, lagged: set[int], *, descending: bool) -> list[int]:
    """The first ``need`` ids of ``ids[lo:hi]`` in id order (or reversed), leaving out ``lagged``."""
    if not lagged:
        return ids[max(lo, hi - need) : hi][::-1] if descending else ids[lo : min(hi, lo + need)]
    out: list[int] = []
    for at in range(hi - 1, lo - 1, -1) if descending else range(lo, hi):
        if ids[at] not in lagged:
            out.append(ids[at])
            if len(out) >= need:
                break
    return out


def _first_indexed(
    state: SandboxState,
    otype: ObjectType,
    index: TypeIndex,
    matches: list[int],
    spec: tuple[str, bool] | None,
    count: int,
) -> list[Record]:
    """``_first`` on ids: the same heap over the same sequence in id order, with keys from the indexes
    (the heap's key function is then C code, not a Python loop reading each record)."""
    live = index.live
    if spec is None:
        return heapq.nsmallest(count, [live[rid] for rid in matches], key=attrgetter("created_ms"))
    name, descending = spec
    keys = index.property_index(name, _kind(state, otype, name)).keys
    with_value = [rid for rid in matches if rid in keys]
    pick = heapq.nlargest if descending else heapq.nsmallest
    first = pick(count, with_value, key=keys.__getitem__)
    if len(first) < count:
        # Records without the property come last in either direction.
        first += [rid for rid in matches if rid not in keys][: count - len(first)]
    return [live[rid] for rid in first]
