"""Compare the local cache with HubSpot: counts, and per-record property and association checksums.

Reads only: nothing in the cache changes. ``python manage.py sync --verify`` prints what it finds.

A live portal keeps changing while a verify reads it (workflows, imports, people): every difference found is
checked again before it is reported. Its records are read again by id; one HubSpot modified after the verify
began is left out (the cache may not have it yet, and the next sync will bring it), and so is one that is
equal now (a sync or webhook caught up meanwhile).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from hubspot_sync import cache, client, registry
from hubspot_sync.models import Association
from hubspot_sync.registry import MirrorType
from hubspot_sync.sync import BATCH_READ, LIST_PAGE, property_names

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
    # Differences left out because HubSpot changed the record after the verify began, or they went away.
    changed_meanwhile: list[str] = field(default_factory=list)

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


def verify_type(spec: MirrorType, *, started: datetime | None = None) -> Drift:
    # HubSpot's timestamps have milliseconds: a change in the verify's first millisecond is after it began.
    started = started or timezone.now()
    started = started.replace(microsecond=started.microsecond - started.microsecond % 1000)
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
    _recheck(spec, names, drift, started)
    return drift


def _recheck(spec: MirrorType, names: list[str], drift: Drift, started: datetime) -> None:
    """Read each differing record again and keep only the differences that still hold and that HubSpot did
    not make after ``started``."""
    suspects = sorted(
        set(drift.missing_locally)
        | set(drift.extra_locally)
        | set(drift.property_mismatches)
        | set(drift.association_mismatches)
    )
    if not suspects:
        return
    remote: dict[str, Any] = {}
    gone: set[str] = set()
    for batch in cache.chunks(suspects, BATCH_READ):
        result = client.batch_read(spec.name, batch, properties=names)
        remote.update((str(r.id), r) for r in result.results)
        gone.update(map(str, result.missing))
    local = {
        hubspot_id: (properties, archived)
        for hubspot_id, properties, archived in spec.model._default_manager.filter(
            hubspot_id__in=suspects
        ).values_list("hubspot_id", "properties", "archived")
    }
    edges: dict[str, dict[str, list[Any]]] = {}
    if drift.association_mismatches and not spec.fetched_by_reference:
        for to_type in spec.associations:
            ids = [i for i in drift.association_mismatches if i in remote]
            found: dict[str, Any] = {}
            for batch in cache.chunks(ids, 1000):
                found.update(client.read_associations(spec.name, to_type, batch))
            for record_id in ids:
                edges.setdefault(record_id, {})[to_type] = sorted(
                    {str(a.to_id) for a in found.get(record_id, [])}
                )

    def modified_meanwhile(record_id: str) -> bool:
        record = remote.get(record_id)
        updated = getattr(record, "updated_at", None) if record is not None else None
        return updated is not None and updated >= started

    def still_missing(record_id: str) -> bool:  # in HubSpot, not (live) in the cache
        mine = local.get(record_id)
        return record_id in remote and (mine is None or mine[1])

    def still_extra(record_id: str) -> bool:  # live in the cache, gone from HubSpot
        mine = local.get(record_id)
        return record_id in gone and mine is not None and not mine[1]

    def properties_differ(record_id: str) -> bool:
        record, mine = remote.get(record_id), local.get(record_id)
        if record is None or mine is None:
            return False
        theirs = {k: v for k, v in record.properties.items() if k in names}
        return checksum(theirs) != checksum({k: v for k, v in mine[0].items() if k in names})

    def edges_differ(record_id: str) -> bool:
        if record_id not in edges:
            return False
        mine: dict[str, list[str]] = {}
        for to_type, to_id in Association.objects.filter(
            from_type=spec.name, from_id=record_id, to_type__in=spec.associations
        ).values_list("to_type", "to_id"):
            mine.setdefault(to_type, []).append(to_id)
        return checksum({t: sorted(set(mine.get(t, []))) for t in spec.associations}) != checksum(
            edges[record_id]
        )

    def keep(ids: list[str], holds: Any) -> list[str]:
        kept = []
        for record_id in ids:
            if not modified_meanwhile(record_id) and holds(record_id):
                kept.append(record_id)
            elif record_id not in drift.changed_meanwhile:
                drift.changed_meanwhile.append(record_id)
        return kept

    missing, extra = drift.missing_locally, drift.extra_locally
    drift.missing_locally = keep(missing, still_missing)
    drift.extra_locally = keep(extra, still_extra)
    drift.property_mismatches = keep(drift.property_mismatches, properties_differ)
    drift.association_mismatches = keep(drift.association_mismatches, edges_differ)
    drift.changed_meanwhile.sort()
    # The listing's count included what was created during the verify and missed what was deleted during it.
    drift.remote_count += len(extra) - len(drift.extra_locally) - (len(missing) - len(drift.missing_locally))
    # Which properties differ, from the values read again.
    drift.mismatched_properties = {}
    for record_id in drift.property_mismatches:
        record, mine = remote[record_id], local[record_id][0]
        for name in names:
            if record.properties.get(name) != mine.get(name) and (name in record.properties or name in mine):
                drift.mismatched_properties[name] = drift.mismatched_properties.get(name, 0) + 1


def verify(object_types: Sequence[str] | None = None) -> list[Drift]:
    started = timezone.now()
    specs = [registry.get(t) for t in object_types] if object_types else registry.all_types()
    return [verify_type(spec, started=started) for spec in specs]
