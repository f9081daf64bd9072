"""Indexes behind search (reference §1.5), so a search reads the records it may match, not all of them.

Per object type: the live records by numeric id, their ids in order (an ``hs_object_id`` range or sort
is a bisect), and on demand a sorted index of one property's values, a sorted list of the ids that
have a property, and the ids of each recent search's matches.

An index is built on the type's first search and kept current by ``record_written``, which every write
path in objects.py calls. Code that changes records without those paths (seeding, loading a snapshot,
``reset``) always adds, removes or swaps records; ``for_type`` notices that from the records dict and
builds the index again. An edit to an existing record's fields outside those paths is not noticed once
the index is built (tests that doctor records do so before their first search).
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from hubspot_sandbox.state import Record, SandboxState

# Lazily built value indexes (and HAS_PROPERTY id lists) kept per type; the least recently used one goes
# first. Each costs a sort (a scan) to build and two small list edits per write.
MAX_VALUE_INDEXES = 12
# Match lists of recent searches kept per type: keyset paging repeats one query with a moving id bound.
MAX_CACHED_MATCHES = 16
# Ids are compared as floats by the hs_object_id filters; above 2**53 a float no longer holds every id.
_EXACT_FLOAT_IDS = 2**53
# Sorts after every id: (value, AFTER_ALL_IDS) comes after every (value, id) pair with the same value.
_AFTER_ALL_IDS = float("inf")


def record_value(kind: str) -> Callable[[str], Any]:
    """How a record's raw value compares for a property kind: a float (None when it is not a number),
    lower-cased text for strings, and the raw text for enumerations and dates (canonical ISO)."""
    if kind == "number":

        def number(value: str) -> float | None:
            try:
                return float(value)
            except ValueError:
                return None

        return number
    if kind == "string":
        return str.lower
    return str


class Bounds(NamedTuple):
    """An interval of values; None is unbounded on that side."""

    low: Any = None
    low_inclusive: bool = False
    high: Any = None
    high_inclusive: bool = False

    def empty(self) -> bool:
        # No comparison with NaN is true, so a NaN bound matches nothing.
        return self.low != self.low or self.high != self.high

    def intersect(self, other: Bounds) -> Bounds:
        if self.empty() or other.empty():
            return self if self.empty() else other  # the comparisons below would drop a NaN bound
        low, low_inclusive = self.low, self.low_inclusive
        if other.low is not None and (low is None or other.low > low):
            low, low_inclusive = other.low, other.low_inclusive
        elif other.low is not None and other.low == low:
            low_inclusive = low_inclusive and other.low_inclusive
        high, high_inclusive = self.high, self.high_inclusive
        if other.high is not None and (high is None or other.high < high):
            high, high_inclusive = other.high, other.high_inclusive
        elif other.high is not None and other.high == high:
            high_inclusive = high_inclusive and other.high_inclusive
        return Bounds(low, low_inclusive, high, high_inclusive)


UNBOUNDED = Bounds()


def id_span(ids: list[int], bounds: Bounds, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
    """The slice of a sorted id list (or of ``ids[lo:hi]``) inside ``bounds``."""
    hi = len(ids) if hi is None else hi
    if bounds.empty():
        return lo, lo
    if bounds.low is not None:
        find = bisect.bisect_left if bounds.low_inclusive else bisect.bisect_right
        lo = find(ids, bounds.low, lo, hi)
    if bounds.high is not None:
        find = bisect.bisect_right if bounds.high_inclusive else bisect.bisect_left
        hi = find(ids, bounds.high, lo, hi)
    return lo, max(lo, hi)


def contains(ids: list[int], rid: int, lo: int = 0, hi: int | None = None) -> bool:
    hi = len(ids) if hi is None else hi
    at = bisect.bisect_left(ids, rid, lo, hi)
    return at < hi and ids[at] == rid


class ValueIndex:
    """One value per live record: ``keys`` (id → value, for sorts) and ``entries``, the (value, id) pairs
    in order (for ranges). Records without a value are in neither. A NaN has no place in an order and
    matches no comparison, so NaN values are in ``keys`` only."""

    __slots__ = ("entries", "extract", "keys")

    def __init__(self, extract: Callable[[Record], Any], live: dict[int, Record]) -> None:
        self.extract = extract
        keys: dict[int, Any] = {}
        for rid, rec in live.items():
            value = extract(rec)
            if value is not None:
                keys[rid] = value
        self.keys = keys
        self.entries: list[tuple[Any, int]] = sorted((v, rid) for rid, v in keys.items() if v == v)

    def put(self, rid: int, rec: Record | None) -> bool:
        """Bring one record's entry up to date (None: it is no longer live); False when the index turns
        out not to hold what it should, so that the caller drops it."""
        new = None if rec is None else self.extract(rec)
        old = self.keys.get(rid)
        if old is not None:
            if new is not None and old == new:
                return True
            del self.keys[rid]
            if old == old:
                at = bisect.bisect_left(self.entries, (old, rid))
                if at == len(self.entries) or self.entries[at] != (old, rid):
                    return False
                del self.entries[at]
        if new is not None:
            self.keys[rid] = new
            if new == new:
                bisect.insort(self.entries, (new, rid))
        return True

    def span(self, bounds: Bounds) -> tuple[int, int]:
        """The slice of ``entries`` whose values are inside ``bounds``."""
        entries = self.entries
        if bounds.empty():
            return 0, 0
        lo, hi = 0, len(entries)
        # (v,) sorts before every (v, id) and (v, inf) after them: the bisects need no key function.
        if bounds.low is not None:
            lo = bisect.bisect_left(
                entries, (bounds.low,) if bounds.low_inclusive else (bounds.low, _AFTER_ALL_IDS)
            )
        if bounds.high is not None:
            hi = bisect.bisect_left(
                entries, (bounds.high, _AFTER_ALL_IDS) if bounds.high_inclusive else (bounds.high,)
            )
        return lo, max(lo, hi)

    def ids_in(self, spans: list[tuple[int, int]]) -> list[int]:
        """The ids of the entries in ``spans``, in id order."""
        entries = self.entries
        return sorted(rid for lo, hi in spans for _, rid in entries[lo:hi])


class Presence:
    """The live ids, in order, that have a non-empty value of one property (HAS_PROPERTY)."""

    __slots__ = ("ids", "name")

    def __init__(self, name: str, ids: list[int], live: dict[int, Record]) -> None:
        self.name = name
        self.ids = [rid for rid in ids if live[rid].properties.get(name)]

    def put(self, rid: int, rec: Record | None) -> None:
        ids = self.ids
        want = rec is not None and bool(rec.properties.get(self.name))
        at = bisect.bisect_left(ids, rid)
        have = at < len(ids) and ids[at] == rid
        if want and not have:
            ids.insert(at, rid)
        elif have and not want:
            del ids[at]


def _updated_ms(rec: Record) -> int:
    return rec.updated_ms


UPDATED_MS = ("updated_ms",)  # the value index of ``Record.updated_ms``, for search's indexing lag


class TypeIndex:
    """Everything indexed for one object type; ``usable`` is False when a record's id is not a plain
    decimal number or its hs_object_id is not its id: search then scans, as before."""

    def __init__(self, records: dict[str, Record]) -> None:
        self.records = records
        self.size = len(records)
        self.first = next(iter(records), None)
        self.last = next(reversed(records), None)
        self.live: dict[int, Record] = {}
        self.usable = True
        for key, rec in records.items():
            if rec.archived:
                continue  # never searched; checked when restored
            rid = _numeric_id(rec)
            if rid is None or key != rec.id or rid in self.live:
                self.usable = False
                self.live = {}
                break
            self.live[rid] = rec
        self.ids: list[int] = sorted(self.live)
        self.values: dict[Hashable, ValueIndex] = {}
        self.presence: dict[str, Presence] = {}
        # A group's filters other than its hs_object_id range → the ids that match them, in order.
        self.matches: dict[Hashable, list[int]] = {}

    def fresh(self, records: dict[str, Record]) -> bool:
        """Whether this index still describes ``records``: nothing was added, removed or swapped behind
        the write paths (records are only ever appended to the dict, or the dict is cleared or swapped)."""
        return (
            records is self.records
            and len(records) == self.size
            and next(iter(records), None) == self.first
            and next(reversed(records), None) == self.last
        )

    def value_index(self, spec: Hashable, extract: Callable[[Record], Any]) -> ValueIndex:
        found = self.values.pop(spec, None)
        if found is None:
            found = ValueIndex(extract, self.live)
            while len(self.values) >= MAX_VALUE_INDEXES:
                del self.values[next(iter(self.values))]
        self.values[spec] = found  # most recently used last
        return found

    def property_index(self, name: str, kind: str) -> ValueIndex:
        read = record_value(kind)

        def extract(rec: Record) -> Any:
            raw = rec.properties.get(name)
            return None if raw is None else read(raw)

        return self.value_index(("property", name, kind), extract)

    def has_property(self, name: str) -> Presence:
        found = self.presence.pop(name, None)
        if found is None:
            found = Presence(name, self.ids, self.live)
            while len(self.presence) >= MAX_VALUE_INDEXES:
                del self.presence[next(iter(self.presence))]
        self.presence[name] = found  # most recently used last
        return found

    def updated_after(self, cutoff: int) -> set[int]:
        """Live ids written after ``cutoff`` (ms): the ones search has not "indexed" yet."""
        entries = self.value_index(UPDATED_MS, _updated_ms).entries
        return {rid for _, rid in entries[bisect.bisect_left(entries, (cutoff, _AFTER_ALL_IDS)) :]}

    def cached_matches(self, key: Hashable) -> list[int] | None:
        found = self.matches.pop(key, None)
        if found is not None:
            self.matches[key] = found  # most recently used last
        return found

    def cache_matches(self, key: Hashable, ids: list[int]) -> None:
        while len(self.matches) >= MAX_CACHED_MATCHES:
            del self.matches[next(iter(self.matches))]
        self.matches[key] = ids

    def apply(self, records: dict[str, Record], rec: Record) -> bool:
        """Take in one write to ``rec`` (new, changed, archived or restored); False when the index can
        no longer be kept in step and has to go."""
        if not self.usable or records is not self.records or not records:
            return False
        size = len(records)
        first = rec.id if self.first is None else self.first
        if size == self.size + 1 and next(reversed(records)) == rec.id and next(iter(records)) == first:
            # The record just created, appended last.
            self.size, self.first, self.last = size, first, rec.id
        elif not self.fresh(records):
            return False
        rid = _numeric_id(rec)
        if rid is None or records.get(rec.id) is not rec:
            return False
        self.matches.clear()
        was_live = rid in self.live
        target = None if rec.archived else rec
        if target is not None:
            self.live[rid] = target
            if not was_live:
                bisect.insort(self.ids, rid)
        elif was_live:
            del self.live[rid]
            del self.ids[bisect.bisect_left(self.ids, rid)]
        for presence in self.presence.values():
            presence.put(rid, target)
        return all(index.put(rid, target) for index in self.values.values())


def _plain_id(rid: str) -> int | None:
    """``rid`` as an int when it is a plain decimal (no sign, spaces or leading zeros) under 2**53."""
    try:
        number = int(rid)
    except ValueError:
        return None
    return number if str(number) == rid and 0 <= number < _EXACT_FLOAT_IDS else None


def _numeric_id(rec: Record) -> int | None:
    # hs_object_id filters run on the record's id: exact only while the property holds the id.
    if rec.properties.get("hs_object_id") != rec.id:
        return None
    return _plain_id(rec.id)


_INDEXES: weakref.WeakKeyDictionary[SandboxState, dict[str, TypeIndex]] = weakref.WeakKeyDictionary()


def for_type(state: SandboxState, type_name: str) -> TypeIndex | None:
    """The type's index, built or rebuilt when needed; None when search has to scan instead.
    Call with ``state.lock`` held."""
    indexes = _INDEXES.setdefault(state, {})
    records = state.records[type_name]
    index = indexes.get(type_name)
    if index is None or not index.fresh(records):
        index = indexes[type_name] = TypeIndex(records)
    return index if index.usable else None


def record_written(state: SandboxState, type_name: str, rec: Record) -> None:
    """Keep the type's index (if search built one) in step after a write to ``rec``. Called by the write
    paths in objects.py, with ``state.lock`` held."""
    indexes = _INDEXES.get(state)
    if not indexes:
        return
    index = indexes.get(type_name)
    if index is not None and not index.apply(state.records[type_name], rec):
        del indexes[type_name]
