"""Compare the local cache with HubSpot: counts, and per-record property and association checksums.

Reads only: nothing in the cache changes. ``python manage.py sync --verify`` prints what it finds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubspot import cache, client, registry
from hubspot.models import Association
from hubspot.registry import MirrorType
from hubspot.sync import BATCH_READ, LIST_PAGE, property_names

SAMPLE = 20  # ids listed per kind of drift


@dataclass
class Drift:
    object_type: str
    remote_count: int = 0
    local_count: int = 0
    missing_locally: list[str] = field(default_factory=list)
    extra_locally: list[str] = field(default_factory=list)
    property_mismatches: list[str] = field(default_factory=list)
    association_mismatches: list[str] = field(default_factory=list)
    mismatched_properties: dict[str, int] = field(default_factory=dict)  # property name -> records differing

    @property
    def clean(self) -> bool:
        return not (
            self.missing_locally
            or self.extra_locally
            or self.property_mismatches
            or self.association_mismatches
            or self.remote_count != self.local_count
        )


def checksum(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _remote_records(spec: MirrorType, names: list[str], local_ids: Sequence[str]) -> Iterable[Any]:
    if spec.fetched_by_reference:
        referenced = set(Association.objects.filter(to_type=spec.name).values_list("to_id", flat=True))
        for batch in cache.chunks(sorted(referenced | set(local_ids)), BATCH_READ):
            yield from client.batch_read(spec.name, batch, properties=names).results
        return
    after: str | None = None
    while True:
        page = client.list_objects(
            spec.name, properties=names, associations=spec.associations, after=after, limit=LIST_PAGE
        )
        yield from page.results
        after = page.next_after
        if not after:
            return


def verify_type(spec: MirrorType) -> Drift:
    names = property_names(spec)
    local = dict(spec.model._default_manager.filter(archived=False).values_list("hubspot_id", "properties"))
    drift = Drift(spec.name, local_count=len(local))
    seen: set[str] = set()
    remote_edges: dict[str, dict[str, list[str]]] = {}
    for record in _remote_records(spec, names, list(local)):
        record_id = str(record.id)
        seen.add(record_id)
        drift.remote_count += 1
        if record_id not in local:
            drift.missing_locally.append(record_id)
            continue
        theirs = {k: v for k, v in record.properties.items() if k in names}
        mine = {k: v for k, v in local[record_id].items() if k in names}
        if checksum(theirs) != checksum(mine):
            drift.property_mismatches.append(record_id)
            for name in set(theirs) | set(mine):
                if theirs.get(name) != mine.get(name):
                    drift.mismatched_properties[name] = drift.mismatched_properties.get(name, 0) + 1
        if not spec.fetched_by_reference:
            remote_edges[record_id] = {
                t: sorted(map(str, (record.associations or {}).get(t, ()))) for t in spec.associations
            }
    drift.extra_locally = sorted(set(local) - seen)
    if remote_edges:
        local_edges: dict[str, dict[str, list[str]]] = {}
        for from_id, to_type, to_id in Association.objects.filter(
            from_type=spec.name, to_type__in=spec.associations
        ).values_list("from_id", "to_type", "to_id"):
            local_edges.setdefault(from_id, {}).setdefault(to_type, []).append(to_id)
        for record_id, edges in remote_edges.items():
            mine_edges = {
                t: sorted(set(local_edges.get(record_id, {}).get(t, []))) for t in spec.associations
            }
            theirs_edges = {t: sorted(set(ids)) for t, ids in edges.items()}
            if checksum(mine_edges) != checksum(theirs_edges):
                drift.association_mismatches.append(record_id)
    return drift


def verify(object_types: Sequence[str] | None = None) -> list[Drift]:
    specs = [registry.get(t) for t in object_types] if object_types else registry.all_types()
    return [verify_type(spec) for spec in specs]
