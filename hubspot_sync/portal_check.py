"""Does the cache still mirror the HubSpot portal it reads? A check for the start of the demo (and any start).

The cache only ever reads changes after its first full read. If HubSpot is swapped underneath it (a sandbox
reseeded from scratch, a token of another portal), incremental sync brings the new portal's records in
beside the old ones, and nothing says the two do not belong together. So after a full read the portal's id
(``/account-info/v3/details``) and a few sampled records' ids and creation times are written down; at the
next start they are read from HubSpot again. A creation time never changes, so a sampled id that now has
another one, or a different portal id, or none of the sampled records left, means another portal. The
finding is kept until a full sync has succeeded after it: the Sync page and every page's banner say so and
offer the full resync.

The fingerprint lives in a small JSON file in the data directory (``ORDERDECK_DATA_DIR``), beside the
cache's own files on the embedded default.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from hubspot_sync import client
from hubspot_sync.models import SyncKind, SyncRun, SyncStatus

logger = logging.getLogger(__name__)

FILE_NAME = "hubspot-portal.json"
SAMPLE_TYPES: tuple[str, ...] = ("contacts", "orders")
SAMPLE_SIZE = 3


@dataclass(frozen=True)
class Fingerprint:
    portal_id: int | None
    # object type -> [(record id, createdAt ISO)], the first few records in id order
    samples: dict[str, list[tuple[str, str]]]

    def json(self) -> dict[str, Any]:
        return {
            "portal_id": self.portal_id,
            "samples": {t: [list(s) for s in v] for t, v in self.samples.items()},
        }

    @classmethod
    def from_json(cls, raw: Any) -> Fingerprint | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("samples"), dict):
            return None
        portal = raw.get("portal_id")
        samples = {
            str(t): [(str(s[0]), str(s[1])) for s in v if isinstance(s, list) and len(s) == 2]
            for t, v in raw["samples"].items()
            if isinstance(v, list)
        }
        return cls(portal if isinstance(portal, int) else None, samples)


@dataclass(frozen=True)
class Mismatch:
    reason: str
    detected_at: datetime

    @property
    def message(self) -> str:
        return (
            f"The local cache does not match HubSpot: {self.reason} Run a full resync to replace the cached "
            "records with HubSpot's."
        )


def _path() -> Path:
    return Path(settings.DATA_DIR) / FILE_NAME


def _load() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, Any]) -> None:
    path = _path()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    temporary.replace(path)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def portal_id() -> int | None:
    """The portal HubSpot answers as, or None where the endpoint is not available to the token."""
    try:
        reply = client._send("account_details", "GET", "/account-info/v3/details", repeatable=True)
    except client.Rejected:
        return None
    value = reply.body.get("portalId") if isinstance(reply.body, dict) else None
    return value if isinstance(value, int) else None


def current() -> Fingerprint:
    """HubSpot's fingerprint now: its portal id and the first few records of each sampled type."""
    samples: dict[str, list[tuple[str, str]]] = {}
    for object_type in SAMPLE_TYPES:
        page = client.list_objects(object_type, properties=[], limit=SAMPLE_SIZE)
        samples[object_type] = [(o.id, _iso(o.created_at)) for o in page.results]
    return Fingerprint(portal_id(), samples)


def remember() -> Fingerprint:
    """Write down HubSpot's fingerprint as the cache's (after a full read); clears an earlier finding."""
    fingerprint = current()
    _save({"fingerprint": fingerprint.json(), "recorded_at": _iso(datetime.now(UTC))})
    return fingerprint


def compare(stored: Fingerprint) -> str | None:
    """Why HubSpot is not the portal ``stored`` was taken from, or None when it is."""
    now_portal = portal_id()
    if stored.portal_id is not None and now_portal is not None and stored.portal_id != now_portal:
        return (
            f"it was filled from HubSpot portal {stored.portal_id}, and HubSpot now answers as portal "
            f"{now_portal}."
        )
    sampled = 0
    found = 0
    for object_type, samples in stored.samples.items():
        if object_type not in SAMPLE_TYPES or not samples:
            continue
        sampled += len(samples)
        result = client.batch_read(object_type, [rid for rid, _ in samples], properties=[])
        created = {o.id: _iso(o.created_at) for o in result.results}
        for record_id, created_at in samples:
            if record_id not in created:
                continue  # deleted since: that alone proves nothing
            found += 1
            if created[record_id] != created_at:
                return (
                    f"{object_type} record {record_id} was created at {created_at} in the portal the cache "
                    f"was filled from, and at {created[record_id]} in HubSpot now (HubSpot was reset or "
                    "reseeded)."
                )
    if sampled and not found:
        return "none of the records sampled after its last full sync exist in HubSpot any more."
    return None


def _full_sync_since(moment: datetime) -> bool:
    return SyncRun.objects.filter(
        kind__in=(SyncKind.FULL, SyncKind.RECONCILE), status=SyncStatus.SUCCEEDED, finished_at__gt=moment
    ).exists()


def mismatch() -> Mismatch | None:
    """The finding of the last check, unless a full sync has succeeded since (read by the pages)."""
    raw = _load().get("mismatch")
    if not isinstance(raw, dict):
        return None
    try:
        detected = datetime.fromisoformat(str(raw["detected_at"]))
    except (KeyError, ValueError):
        return None
    if _full_sync_since(detected):
        return None
    return Mismatch(str(raw.get("reason", "")), detected)


def remember_if_new() -> None:
    """After the cache was filled from HubSpot: write its fingerprint down if there is none yet."""
    if Fingerprint.from_json(_load().get("fingerprint")) is not None:
        return
    try:
        remember()
    except client.HubSpotError as exc:
        logger.warning("could not read HubSpot's fingerprint: %s", exc)


def check_at_start() -> Mismatch | None:
    """Compare HubSpot with the cache's fingerprint; record and return a finding.

    With no fingerprint yet (a first start) there is nothing to compare: ``remember_if_new`` writes one
    down once the cache is filled. An earlier finding that a full sync has since resolved is replaced by
    the fingerprint of the portal that sync read. HubSpot errors leave everything as it was (the check is
    skipped, not failed).
    """
    data = _load()
    stored = Fingerprint.from_json(data.get("fingerprint"))
    try:
        if isinstance(data.get("mismatch"), dict) and mismatch() is None:
            remember()  # a full sync replaced the cache since the finding: this portal is the cache's now
            return None
        if stored is None:
            return None
        reason = compare(stored)
    except client.HubSpotError as exc:
        logger.warning("could not compare the cache with HubSpot: %s", exc)
        return None
    if reason is None:
        data.pop("mismatch", None)
        if "mismatch" in _load():
            _save(data)
        return None
    found = Mismatch(reason, datetime.now(UTC))
    data["mismatch"] = {"reason": reason, "detected_at": _iso(found.detected_at)}
    _save(data)
    logger.warning("the cache does not match HubSpot: %s", reason)
    return found
