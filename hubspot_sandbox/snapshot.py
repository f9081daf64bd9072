"""Keep a sandbox's data between runs: the whole state in one gzip-compressed JSON Lines file.

The first line is a header (format, version, portal, id counters); every other line is one record, one
record's association edges, or one section (properties, groups, pipelines, audit, labels, write traces). Lines
stream, so a state with hundreds of thousands of records never becomes one giant string. ``save`` writes
through a temporary file in the same directory and renames it over the old one, so a crash mid-write
leaves the previous snapshot intact.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubspot_sandbox.state import OBJECT_TYPES, Record, SandboxState

logger = logging.getLogger(__name__)

FORMAT = "orderdeck-hubspot-sandbox"
VERSION = 1


def _lines(state: SandboxState) -> Iterator[dict[str, Any]]:
    """Everything in ``state`` as JSON-ready dicts; call with ``state.lock`` held."""
    yield {
        "format": FORMAT,
        "version": VERSION,
        "portal_id": state.portal_id,
        "saved_at": int(time.time() * 1000),
        # The next id of each type: taking it leaves a gap in this process's ids, which is harmless
        # (HubSpot's ids are not contiguous either) and keeps state.py's counters private.
        "next_ids": {name: int(state.next_id(name)) for name in OBJECT_TYPES},
    }
    for type_name, records in state.records.items():
        for rec in records.values():
            yield {
                "k": "record",
                "t": type_name,
                "id": rec.id,
                "p": rec.properties,
                "c": rec.created_ms,
                "u": rec.updated_ms,
                "a": rec.archived,
                "am": rec.archived_ms,
                "h": rec.history,
            }
    for (from_type, from_id), targets in state.associations.items():
        if targets:
            yield {
                "k": "edges",
                "f": [from_type, from_id],
                "to": [[to_type, to_id, sorted(types)] for (to_type, to_id), types in targets.items()],
            }
    yield {
        "k": "labels",
        "v": [
            [f, t, {str(i): label for i, label in labels.items()}]
            for (f, t), labels in state.association_labels.items()
        ],
    }
    yield {"k": "properties", "v": state.properties}
    yield {"k": "groups", "v": state.property_groups}
    yield {"k": "pipelines", "v": state.pipelines}
    yield {"k": "audit", "v": [[t, pid, entries] for (t, pid), entries in state.pipeline_audit.items()]}
    yield {"k": "traces", "v": [[t, trace, rid] for (t, trace), rid in state.write_traces.items()]}


def save(state: SandboxState, path: str | os.PathLike[str]) -> None:
    """Write the whole state to ``path`` atomically (temporary file, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Serialise under the lock so the file is one consistent moment; compress and write outside it.
    with state.lock, _no_gc():
        encoded = [json.dumps(line, separators=(",", ":"), ensure_ascii=False) for line in _lines(state)]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3) as zipped:
            for start in range(0, len(encoded), 1000):
                zipped.write("".join(line + "\n" for line in encoded[start : start + 1000]).encode())
            zipped.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: millions of new acyclic objects would trigger ever longer
    collections for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SnapshotError(ValueError):
    """The file is not a snapshot this version can read."""


def _read(path: Path) -> dict[str, Any]:
    """Parse a snapshot into fresh containers shaped like ``SandboxState``'s."""
    records: dict[str, dict[str, Record]] = {name: {} for name in OBJECT_TYPES}
    associations: dict[tuple[str, str], dict[tuple[str, str], set[tuple[str, int]]]] = {}
    sections: dict[str, Any] = {}
    header: dict[str, Any] | None = None
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for number, text in enumerate(lines):
            item = json.loads(text)
            if number == 0:
                if item.get("format") != FORMAT or item.get("version") != VERSION:
                    raise SnapshotError(f"not a version {VERSION} sandbox snapshot")
                header = item
                continue
            kind = item.get("k")
            if kind == "record":
                if item["t"] not in records:
                    raise SnapshotError(f"unknown object type {item['t']!r}")
                records[item["t"]][item["id"]] = Record(
                    id=item["id"],
                    properties=item["p"],
                    created_ms=item["c"],
                    updated_ms=item["u"],
                    archived=item["a"],
                    archived_ms=item["am"],
                    history={
                        name: [(str(value), int(ts), str(source)) for value, ts, source in entries]
                        for name, entries in item["h"].items()
                    },
                )
            elif kind == "edges":
                targets = associations.setdefault((str(item["f"][0]), str(item["f"][1])), {})
                for to_type, to_id, types in item["to"]:
                    targets[(str(to_type), str(to_id))] = {(str(c), int(type_id)) for c, type_id in types}
            else:
                sections[kind] = item["v"]
    if header is None:
        raise SnapshotError("empty snapshot")
    return {"header": header, "records": records, "associations": associations, **sections}


def load(state: SandboxState, path: str | os.PathLike[str]) -> bool:
    """Replace ``state``'s contents with the snapshot at ``path``; False when there is none to load.

    An unreadable snapshot is moved aside (``<name>.unreadable-<time>``) rather than overwritten later,
    logged, and reported as not loaded.
    """
    source = Path(path)
    if not source.exists():
        return False
    try:
        with _no_gc():
            data = _read(source)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        aside = source.with_name(f"{source.name}.unreadable-{int(time.time())}")
        with contextlib.suppress(OSError):
            source.rename(aside)
        logger.warning("sandbox snapshot %s could not be read (%s); moved to %s", source, exc, aside)
        return False
    with state.lock:
        state.portal_id = int(data["header"].get("portal_id", state.portal_id))
        # New dict objects rather than cleared ones: caches keyed on them (objects.py's unique-value
        # maps) notice the swap and rebuild.
        # A type the snapshot does not know (saved before the sandbox served it) keeps the
        # definitions and pipelines this start installed.
        for name in OBJECT_TYPES:
            state.records[name] = data["records"][name]
            for section, target in (
                ("properties", state.properties),
                ("groups", state.property_groups),
                ("pipelines", state.pipelines),
            ):
                saved = data.get(section, {})
                if name in saved:
                    target[name] = saved[name]
        state.associations = data["associations"]
        state.association_labels = {
            (f, t): {int(i): label for i, label in labels.items()} for f, t, labels in data.get("labels", [])
        }
        state.pipeline_audit = {(t, pid): entries for t, pid, entries in data.get("audit", [])}
        state.write_traces = {(t, trace): rid for t, trace, rid in data.get("traces", [])}
        for name, next_id in data["header"].get("next_ids", {}).items():
            if name in OBJECT_TYPES:
                state.bump_id_counter(name, str(int(next_id) - 1))
        for name, records in state.records.items():
            numeric = [int(rid) for rid in records if rid.isdigit()]
            if numeric:
                state.bump_id_counter(name, str(max(numeric)))
    return True
