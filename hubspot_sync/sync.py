"""Pull from HubSpot into the local cache (DESIGN.md §4): full, incremental, refresh(ids), reconcile.

Fetching and writing overlap: fetcher threads speak HTTP (through ``hubspot_sync.client`` and its shared rate
limiter) and hand pages over a bounded queue to the calling thread, the only one that touches the
database. Several requests stay in flight (object types in parallel, concurrent batch reads), which is
what reaches the rate-limit bound at real network latency; the bounded queue keeps memory flat.
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from hubspot_sync import cache, client, pauses, registry
from hubspot_sync.constants import DEFAULT_ASSOCIATION_TYPES
from hubspot_sync.leases import lease_acquire, lease_release, lease_renew
from hubspot_sync.models import (
    Association,
    ConnectionProblem,
    PropertyDefinition,
    SyncCursor,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from hubspot_sync.registry import MirrorType

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[SyncRun], None]

SEARCH_PAGE = 200  # search's largest page
LIST_PAGE = 100  # list's largest page
BATCH_READ = 100  # batch read's largest input
# A full run's writer takes up to this many waiting pages into one transaction: commits and per-statement
# costs shrink with the batch, and other writers wait for a few hundred milliseconds at most.
WRITE_BATCH_PAGES = 24
# How often a run renews its lease (seconds); the lease lasts HUBSPOT_SYNC_LEASE_S.
LEASE_RENEW_S = 5.0


class SyncHalted(Exception):
    """Syncing is stopped by a connection problem (a rejected token, the daily limit) until it is cleared."""


class SyncBusy(Exception):
    """Another run of the same kind holds the lease."""


class SyncImpossible(Exception):
    """The run was asked for something it cannot read (line items without the orders and carts they hang
    on); it fails with this message and changes nothing."""


# --- runs ------------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    run: SyncRun
    owner: str
    lease: str | None
    progress: ProgressCallback | None
    calls_before: dict[str, int] = field(default_factory=dict)
    last_saved: float = 0.0
    lease_renewed: float = field(default_factory=time.monotonic)
    # Tables a full read wrote, for ANALYZE at the end of the run (PostgreSQL).
    analyze: set[str] = field(default_factory=set)

    def tick(self, *, done: int = 0, written: int = 0, skipped: int = 0, force: bool = False) -> None:
        run = self.run
        run.progress_done += done
        run.objects_written += written
        run.objects_skipped += skipped
        stats = client.stats()
        run.api_calls = stats.calls - self.calls_before.get("calls", 0)
        run.http_429 = stats.http_429 - self.calls_before.get("http_429", 0)
        run.heartbeat_at = timezone.now()
        run.save(
            update_fields=[
                "progress_done",
                "progress_total",
                "objects_written",
                "objects_skipped",
                "api_calls",
                "http_429",
                "heartbeat_at",
                "cursor",
                "errors",
            ]
        )
        # The lease lasts minutes: renewing it every few seconds is plenty (a full run ticks often a second).
        if self.lease and (force or time.monotonic() - self.lease_renewed >= LEASE_RENEW_S):
            lease_renew(self.lease, self.owner, settings.HUBSPOT_SYNC_LEASE_S)
            self.lease_renewed = time.monotonic()
        if self.progress:
            self.progress(run)


def halted() -> ConnectionProblem | None:
    """The connection problem that stops syncing now, if any (an ended daily-limit pause is dropped)."""
    return pauses.active()


def run_sync(
    kind: str,
    object_types: Sequence[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
    manual: bool = False,
) -> SyncRun:
    """Run one sync of ``kind`` over the named object types (default: every mirrored type).

    ``manual`` runs (a person pressed "Sync now", or the CLI) clear a rejected-token stop and try again;
    scheduled runs skip while one is in place.
    """
    problem = halted()
    if problem is not None and manual and problem.kind == ConnectionProblem.Kind.AUTH:
        problem.delete()
        problem = halted()
    if problem is not None:
        raise SyncHalted(problem.message)
    specs = [registry.get(name) for name in object_types] if object_types else registry.all_types()
    owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    lease = f"sync:{'full' if kind == SyncKind.RECONCILE else kind}"
    if not lease_acquire(lease, owner, settings.HUBSPOT_SYNC_LEASE_S):
        raise SyncBusy(f"A {kind} sync is already running.")
    try:
        run = _start_run(kind, specs)
        stats = client.stats()
        context = RunContext(run, owner, lease, progress, {"calls": stats.calls, "http_429": stats.http_429})
        try:
            if kind in (SyncKind.FULL, SyncKind.RECONCILE):
                _full(context, specs)
            elif kind == SyncKind.INCREMENTAL:
                _incremental(context, specs)
            else:
                raise ValueError(f"unknown sync kind {kind!r}")
        except client.HubSpotError as exc:
            # A rejected token and the daily limit pause sync and push (a banner says so); whatever it was,
            # the run says it in plain words and keeps HubSpot's own message on demand.
            pauses.record(exc)
            _fail(context, exc, pauses.plain_words(exc), detail=exc.message)
        except SyncImpossible as exc:
            _fail(context, exc, str(exc), detail="")
        except Exception as exc:
            _fail(context, exc, pauses.plain_words(exc))
            raise
        else:
            run.status = SyncStatus.SUCCEEDED
            run.finished_at = timezone.now()
            # The bar's total was an estimate (live counts at the start; line items as they were found):
            # a finished run shows what it read, at 100 %.
            if run.progress_total != run.progress_done:
                run.progress_total = run.progress_done
            context.tick(force=True)
            run.save(update_fields=["status", "finished_at"])
            if context.analyze:
                _analyze(context.analyze)
        return run
    finally:
        lease_release(lease, owner)


def _start_run(kind: str, specs: Sequence[MirrorType]) -> SyncRun:
    """A new run, resuming the cursor of a run of the same kind that crashed."""
    names = ",".join(spec.name for spec in specs)
    crashed = (
        SyncRun.objects.filter(kind=kind, status=SyncStatus.RUNNING, object_types=names)
        .order_by("-started_at")
        .first()
    )
    SyncRun.objects.filter(kind=kind, status=SyncStatus.RUNNING).update(
        status=SyncStatus.INTERRUPTED, finished_at=timezone.now()
    )
    run = SyncRun.objects.create(kind=kind, object_types=names, heartbeat_at=timezone.now())
    if crashed is not None and crashed.cursor:
        run.cursor = dict(crashed.cursor)
        run.resumed_from = crashed
        run.progress_done = crashed.progress_done
        run.save(update_fields=["cursor", "resumed_from", "progress_done"])
    run.cursor.setdefault("started", run.started_at.isoformat())
    return run


def _fail(context: RunContext, exc: BaseException, message: str, *, detail: str | None = None) -> None:
    run = context.run
    run.status = SyncStatus.FAILED
    run.finished_at = timezone.now()
    run.errors += 1
    run.error_message = message
    run.error_detail = (str(exc) if detail is None else detail)[:4000]
    run.save(update_fields=["status", "finished_at", "errors", "error_message", "error_detail"])
    logger.warning("sync %s failed: %s", run.pk, message)


def _analyze(tables: Iterable[str]) -> None:
    """Fresh planner statistics for the tables a full read wrote (PostgreSQL only): a board's queries went
    from 67 to 34 ms once they existed. Once per run, at its end; a failure here fails nothing."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    quoted = ", ".join(connection.ops.quote_name(table) for table in sorted(tables))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quoted}")
    except Exception:
        logger.warning("ANALYZE after the full sync failed", exc_info=True)


# --- properties and pipelines ------------------------------------------------------------------------------


def sync_properties(
    specs: Iterable[MirrorType], fetched: Mapping[str, Sequence[client.ApiProperty]] | None = None
) -> int:
    """Cache HubSpot's property definitions (labels, types, options, read-only) for forms and labels;
    ``fetched`` has them read already, by type."""
    count = 0
    now = timezone.now()
    for spec in specs:
        definitions = fetched[spec.name] if fetched is not None else client.list_properties(spec.name)
        rows = [
            PropertyDefinition(
                object_type=spec.name,
                name=d.name,
                label=d.label,
                type=d.type,
                field_type=d.field_type,
                group_name=d.group_name or "",
                description=d.description or "",
                options=[
                    {"label": o.label, "value": o.value, "display_order": o.display_order, "hidden": o.hidden}
                    for o in d.options
                ],
                read_only_value=d.read_only_value,
                calculated=d.calculated,
                hidden=d.hidden,
                archived=False,
                synced_at=now,
            )
            for d in definitions
        ]
        with transaction.atomic():
            PropertyDefinition.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["object_type", "name"],
                update_fields=[
                    "label",
                    "type",
                    "field_type",
                    "group_name",
                    "description",
                    "options",
                    "read_only_value",
                    "calculated",
                    "hidden",
                    "archived",
                    "synced_at",
                ],
            )
            PropertyDefinition.objects.filter(object_type=spec.name).exclude(
                name__in=[d.name for d in definitions]
            ).update(archived=True)
        count += len(rows)
    return count


def sync_definitions(name: str, fetched: Any = None) -> int:
    """Cache the named definitions (an app's ``registry.DefinitionSyncer``: the order pipelines), then let
    the types that depend on them catch up, in one transaction. ``fetched`` has them read already."""
    syncer = registry.definitions(name)
    if syncer is None:
        return 0
    remote = fetched if fetched is not None else syncer.fetch()
    with transaction.atomic():
        count = syncer.store(remote)
        for spec in registry.all_types():
            if name in spec.definitions:
                for hook in spec.after_definitions:
                    hook()
    return count


def _definitions_of(specs: Sequence[MirrorType]) -> list[str]:
    """The definition syncers these types depend on, each once, in order."""
    return list(
        dict.fromkeys(name for spec in specs for name in spec.definitions if registry.definitions(name))
    )


def _sync_unknown_definitions(spec: MirrorType, ids: Sequence[str]) -> None:
    """Read the type's definitions again at once when a record names one the cache does not know (a stage
    made since the last refresh), rather than at the next scheduled refresh."""
    if ids and spec.names_unknown is not None and spec.names_unknown(spec, ids):
        for name in _definitions_of([spec]):
            sync_definitions(name)


def property_names(spec: MirrorType) -> list[str]:
    """Every property HubSpot defines for the type (HubSpot returns only the properties asked for)."""
    names = list(
        PropertyDefinition.objects.filter(object_type=spec.name, archived=False).values_list(
            "name", flat=True
        )
    )
    required = {column.property for column in spec.columns} | {spec.created_property, spec.modified_property}
    required |= set(spec.required_properties)
    return sorted(set(names) | required)


# --- full ------------------------------------------------------------------------------------------------


@dataclass
class _Page:
    spec: MirrorType
    prepared: cache.Prepared  # made into rows by the fetching thread, while the writer writes
    next_after: str | None = None
    listed: bool = False


class _Done:
    def __init__(self, spec: MirrorType) -> None:
        self.spec = spec


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Written:
    """Pages the second writer wrote (see ``_SideWriter``), for the run's figures."""

    def __init__(self, done: int, written: int, skipped: int) -> None:
        self.done, self.written, self.skipped = done, written, skipped


Item = _Page | _Done | _Failed | _Written


def _merged(group: Sequence[_Page]) -> cache.Prepared:
    """Pages of one type as one page, written with one statement per kind of write."""
    return cache.Prepared(
        [record for page in group for record in page.prepared.records],
        [row for page in group for row in page.prepared.rows],
        sum(page.prepared.malformed for page in group),
    )


def _put(into: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put, waiting while the queue is full, unless the run stops meanwhile."""
    while not stop.is_set():
        try:
            into.put(item, timeout=0.5)
            return
        except queue.Full:
            continue


class _SideWriter:
    """A second writer, on its own connection, for the records fetched by reference (line items): their
    pages carry no cursor and no edges, so they need not commit with the listed pages, and on PostgreSQL one
    connection's round trips and the server's work for it leave the other connection idle. It hands each
    page's figures, then the read's ``_Done`` (or its failure), on to the main writer's queue.

    Only on PostgreSQL (SQLite has one writer at a time) and only when the run is not inside a transaction
    of its caller's (a test's), whose uncommitted rows another connection could not see."""

    def __init__(self, forward: Callable[[Item], None], stop: threading.Event) -> None:
        self.forward, self.stop = forward, stop
        self.pages: queue.Queue[Item | None] = queue.Queue(maxsize=settings.HUBSPOT_SYNC_QUEUE_PAGES)
        self.thread = threading.Thread(target=self._run, name="sync-writer-2", daemon=True)
        self.thread.start()

    @staticmethod
    def wanted() -> bool:
        return (
            connection.vendor == "postgresql"
            and settings.HUBSPOT_SYNC_SECOND_WRITER
            and not connection.in_atomic_block
        )

    def put(self, item: Item | None) -> None:
        _put(self.pages, item, self.stop)

    def close(self) -> None:
        """Wait for the pages given so far (unless the run stopped), then end the thread."""
        self.put(None)
        self.thread.join()

    def _get(self) -> Item | None:
        while not self.stop.is_set():
            try:
                return self.pages.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def _run(self) -> None:
        try:
            if settings.HUBSPOT_SYNC_ASYNC_COMMIT:  # as cache.bulk_writes does for the main connection
                with connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit TO off")
            group: list[_Page] = []  # pages of one type, written as one
            while True:
                if group:
                    try:
                        item = self.pages.get_nowait()
                    except queue.Empty:
                        self._write(group)
                        group = []
                        continue
                else:
                    item = self._get()
                if (
                    isinstance(item, _Page)
                    and (not group or item.spec is group[0].spec)
                    and len(group) < WRITE_BATCH_PAGES
                ):
                    group.append(item)
                    continue
                if group:
                    self._write(group)
                    group = []
                if item is None:
                    return
                if isinstance(item, _Page):
                    group = [item]
                else:
                    self.forward(item)
        except BaseException as exc:  # handed to the main writer, which raises it
            self.forward(_Failed(exc))
        finally:
            connection.close()

    def _write(self, group: list[_Page]) -> None:
        spec = group[0].spec
        prepared = _merged(group)
        with transaction.atomic():
            result = cache.upsert_records(spec, prepared, run_hooks=False, full_run=True)
            cache.run_after_upsert(spec, [str(r.id) for r in prepared.records], full_run=True)
        self.forward(_Written(len(prepared.records), result.written, result.skipped))


def _full(context: RunContext, specs: Sequence[MirrorType]) -> None:
    _check_readable(specs)
    with cache.bulk_writes(), _writer_first():
        _full_run(context, specs)
    context.analyze.update(spec.model._meta.db_table for spec in specs)
    context.analyze.update({Association._meta.db_table, PropertyDefinition._meta.db_table})


def _parents(spec: MirrorType) -> list[MirrorType]:
    """The listed types whose records point to a type fetched by reference (line items: orders, carts)."""
    return [s for s in registry.all_types() if spec.name in s.associations and not s.fetched_by_reference]


def _check_readable(specs: Sequence[MirrorType]) -> None:
    """Line items have no list of their own here: a full run finds them through the orders and carts they
    hang on. A run that names line items without those reads the line items the cache knows of (its own
    and those cached orders and carts point to) and archives only those HubSpot answers not-found for. When
    no full read of orders or carts has ever run, the cache knows of none, and the run would find nothing:
    it fails and says what to run instead, rather than report an empty success. (Reading orders and carts
    in full on the side would be the other choice; it costs a full run of them, unasked.)"""
    names = {spec.name for spec in specs}
    for spec in specs:
        if not spec.fetched_by_reference:
            continue
        parents = _parents(spec)
        if any(parent.name in names for parent in parents):
            continue
        synced = SyncCursor.objects.filter(
            object_type__in=[parent.name for parent in parents], full_synced_at__isnull=False
        ).exists()
        if not synced:
            label = ", ".join(parent.name.replace("_", " ") for parent in parents)
            raise SyncImpossible(
                f"{spec.name.replace('_', ' ').capitalize()} are read through the {label} they belong to, "
                f"and no full sync of those has run yet: run a full sync of {label} too (or of everything)."
            )


@contextmanager
def _writer_first() -> Iterator[None]:
    """A short GIL switch interval while a full run works (HUBSPOT_SYNC_SWITCH_INTERVAL_S says why)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(settings.HUBSPOT_SYNC_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _full_run(context: RunContext, specs: Sequence[MirrorType]) -> None:
    _start_full(context, specs)
    run = _FullRun(context, specs)
    run.fetch_and_write()
    run.read_leftovers()
    _finish_full(context, specs, run.not_found)


def _start_full(context: RunContext, specs: Sequence[MirrorType]) -> None:
    """Property definitions, the definitions the types depend on (order pipelines), and the counts for the
    progress bar. These calls go at once: one after another they cost a round trip each before the first
    page."""
    run = context.run
    with ThreadPoolExecutor(max_workers=len(specs) * 2 + 1, thread_name_prefix="sync-start") as start:
        definitions = {spec.name: start.submit(client.list_properties, spec.name) for spec in specs}
        fetched_definitions = {
            name: start.submit(syncer.fetch)
            for name in _definitions_of(specs)
            if (syncer := registry.definitions(name)) is not None
        }
        # Types fetched by reference are not counted: HubSpot's count of line items includes those on
        # deals and quotes, which no order or cart names; they join the total as the run finds their ids.
        counts = (
            [start.submit(_count, spec) for spec in specs if not spec.fetched_by_reference]
            if run.progress_total is None
            else []
        )
        sync_properties(specs, {name: future.result() for name, future in definitions.items()})
        for name, future in fetched_definitions.items():
            sync_definitions(name, future.result())
        if counts:
            run.progress_total = sum(future.result() for future in counts)


class _FullRun:
    """A full run's fetching and writing. Fetcher threads list the listed types (``list_all``) and
    batch-read the records their edges reference (``read_batch``), handing pages over a bounded queue; the
    calling thread writes them (``fetch_and_write``) and submits the reads that the written pages call for.
    ``outstanding`` counts the scans and reads not done yet; only the writing thread changes it."""

    def __init__(self, context: RunContext, specs: Sequence[MirrorType]) -> None:
        self.context = context
        self.run = context.run
        self.names = {spec.name: property_names(spec) for spec in specs}
        self.listed = [spec for spec in specs if not spec.fetched_by_reference]
        self.referenced = {spec.name: spec for spec in specs if spec.fetched_by_reference}
        self.cursors: dict[str, Any] = self.run.cursor.setdefault("lists", {})
        self.pages: queue.Queue[Item] = queue.Queue(maxsize=settings.HUBSPOT_SYNC_QUEUE_PAGES)
        self.stop = threading.Event()
        self.requested: dict[str, set[str]] = {name: set() for name in self.referenced}
        self.pending_refs: dict[str, list[str]] = {name: [] for name in self.referenced}
        self.truncated: dict[tuple[str, str], set[str]] = {}
        # Ids a batch read answered not-found for: proven absent in HubSpot, archived at the end.
        self.not_found: dict[str, set[str]] = {name: set() for name in self.referenced}
        self.fresh = _fresh_pairs(specs)
        self.outstanding = 0
        self.side: _SideWriter | None = None
        # What the second writer wrote since the last tick: done, written, skipped.
        self.side_figures = [0, 0, 0]
        self.pool: ThreadPoolExecutor | None = None

    # --- fetcher threads

    def put(self, item: Item) -> None:
        _put(self.pages, item, self.stop)

    def put_read(self, item: Item) -> None:
        """A batch read's pages go to the second writer when there is one."""
        if self.side is not None:
            self.side.put(item)
        else:
            self.put(item)

    def list_all(self, spec: MirrorType, after: str | None) -> None:
        try:
            while not self.stop.is_set():
                page = client.list_objects(
                    spec.name,
                    properties=self.names[spec.name],
                    associations=spec.associations,
                    after=after,
                    limit=LIST_PAGE,
                )
                self.put(_Page(spec, cache.prepare(spec, page.results), page.next_after, listed=True))
                after = page.next_after
                if not after:
                    break
            self.put(_Done(spec))
        except BaseException as exc:  # handed to the writer thread, which raises it
            self.put(_Failed(exc))

    def read_batch(self, spec: MirrorType, ids: list[str]) -> None:
        try:
            result = client.batch_read(spec.name, ids, properties=self.names[spec.name])
            self.not_found[spec.name].update(map(str, result.missing))
            self.put_read(_Page(spec, cache.prepare(spec, result.results)))
            self.put_read(_Done(spec))
        except BaseException as exc:  # handed to the writer thread
            self.put_read(_Failed(exc))

    # --- the writing thread

    def submit_refs(self, name: str, flush: bool = False) -> None:
        """Batch-read the referenced ids collected so far, a full batch at a time (``flush``: the rest)."""
        assert self.pool is not None
        buffer = self.pending_refs[name]
        while len(buffer) >= BATCH_READ or (flush and buffer):
            batch, self.pending_refs[name] = buffer[:BATCH_READ], buffer[BATCH_READ:]
            buffer = self.pending_refs[name]
            self.outstanding += 1
            self.run.progress_total = (self.run.progress_total or 0) + len(batch)
            self.pool.submit(self.read_batch, self.referenced[name], batch)

    def write(self, spec: MirrorType, listed: bool, group: list[_Page]) -> cache.UpsertResult:
        """Write pages of one type as one: one upsert, one replacement of their edges, each hook once."""
        prepared = _merged(group)
        records = prepared.records
        result = cache.upsert_records(spec, prepared, run_hooks=False, full_run=True)
        if listed:
            _write_inline_associations(spec, records, self.truncated, self.fresh)
            self.cursors.setdefault(spec.name, {})["after"] = group[-1].next_after
            for record in records:
                for name in self.referenced:
                    for ref_id in (getattr(record, "associations", {}) or {}).get(name, ()):
                        if ref_id not in self.requested[name]:
                            self.requested[name].add(ref_id)
                            self.pending_refs[name].append(ref_id)
            for name in self.referenced:
                self.submit_refs(name)
        cache.run_after_upsert(spec, [str(r.id) for r in records], full_run=True)
        return result

    def take(self, item: Item, limit: int) -> tuple[list[list[_Page]], BaseException | None]:
        """The item and the pages waiting behind it, up to ``limit``, grouped by type and whether listed,
        with the failure a fetcher handed over, if any; notes the scans and reads that are done."""
        groups: dict[tuple[str, bool], list[_Page]] = {}
        taken = 0
        while True:
            if isinstance(item, _Failed):
                return list(groups.values()), item.exc  # raised once the pages before it are written
            if isinstance(item, _Written):
                self.side_figures[0] += item.done
                self.side_figures[1] += item.written
                self.side_figures[2] += item.skipped
            elif isinstance(item, _Done):
                self.outstanding -= 1
                if not item.spec.fetched_by_reference:
                    self.cursors.setdefault(item.spec.name, {})["done"] = True
            else:
                groups.setdefault((item.spec.name, item.listed), []).append(item)
                taken += 1
            if taken >= limit:
                break
            try:
                item = self.pages.get_nowait()
            except queue.Empty:
                break
        return list(groups.values()), None

    def write_waiting(self, item: Item) -> None:
        """Write the item and what is waiting in the queue together, pages of one type as one page: a
        statement per kind of write and a call per hook for all of them, in one transaction with one progress
        tick that saves the cursor with them (a crash resumes after the last page committed). The transaction
        goes on while pages keep waiting, up to WRITE_BATCH_PAGES, and never waits for a fetcher; when
        HubSpot's rate limit paces the fetchers, that is a page at a time."""
        done = written = skipped = taken = 0
        failed: BaseException | None = None
        with transaction.atomic():
            while True:
                groups, failed = self.take(item, WRITE_BATCH_PAGES - taken)
                for group in groups:
                    result = self.write(group[0].spec, group[0].listed, group)
                    taken += len(group)
                    done += sum(len(page.prepared.records) for page in group)
                    written += result.written
                    skipped += result.skipped
                if failed is not None or taken >= WRITE_BATCH_PAGES or not self.outstanding:
                    break
                try:
                    item = self.pages.get_nowait()
                except queue.Empty:
                    break
            side_done, side_written, side_skipped = self.side_figures
            self.side_figures[:] = [0, 0, 0]
            self.context.tick(
                done=done + side_done, written=written + side_written, skipped=skipped + side_skipped
            )
        if failed is not None:
            raise failed

    def fetch_and_write(self) -> None:
        if self.referenced and _SideWriter.wanted():
            self.side = _SideWriter(self.put, self.stop)
        with ThreadPoolExecutor(
            max_workers=settings.HUBSPOT_SYNC_CONCURRENCY, thread_name_prefix="sync"
        ) as self.pool:
            for spec in self.listed:
                state = self.cursors.get(spec.name, {})
                if state.get("done"):
                    continue
                self.outstanding += 1
                self.pool.submit(self.list_all, spec, state.get("after"))
            try:
                while self.outstanding:
                    item: Item = self.pages.get()
                    if isinstance(item, _Written):  # counted with the next pages this writer commits
                        self.take(item, 0)
                        continue
                    self.write_waiting(item)
                    if self.outstanding == 0:
                        # Every scan and read is done: the ids left over make the last, short batches.
                        for name in self.pending_refs:
                            self.submit_refs(name, flush=True)
            finally:
                if self.side is not None and not self.stop.is_set() and not self.outstanding:
                    self.side.close()
                self.stop.set()
                if self.side is not None:
                    self.side.thread.join()

    def read_leftovers(self) -> None:
        """After the lists and their reads: edges whose inline list was cut off at one page, read in full by
        v4; then, for each type fetched by reference, the records referenced by an edge but not fetched (a
        resumed run, or a batch that lost them) and the cache's own records this run has not seen (a line
        item no order or cart in the run names may still be in HubSpot), each read by its id, so what is
        archived at the end is only what HubSpot answered not-found for."""
        for (from_type, to_type), ids in self.truncated.items():
            _read_associations(registry.get(from_type), to_type, sorted(ids))
        started = datetime.fromisoformat(self.run.cursor["started"])
        for spec in self.referenced.values():
            unseen = [
                i
                for i in spec.model._default_manager.filter(archived=False)
                .exclude(synced_at__gte=started)
                .values_list("hubspot_id", flat=True)
                if i not in self.not_found[spec.name]
            ]
            for wanted in (_missing_references(spec), unseen):
                for batch in cache.chunks(wanted, BATCH_READ):
                    fetched = client.batch_read(spec.name, batch, properties=self.names[spec.name])
                    self.not_found[spec.name].update(map(str, fetched.missing))
                    upserted = cache.upsert_records(spec, fetched.results, run_hooks=False, full_run=True)
                    cache.run_after_upsert(spec, [str(r.id) for r in fetched.results], full_run=True)
                    self.run.progress_total = (self.run.progress_total or 0) + len(batch)
                    self.context.tick(done=len(batch), written=upserted.written, skipped=upserted.skipped)


def _finish_full(context: RunContext, specs: Sequence[MirrorType], not_found: Mapping[str, set[str]]) -> None:
    """Archive what this run proved gone from HubSpot; move the cursors on.

    A listed type was listed to its end (by this run, or the crashed run it resumes, which shares its start):
    a record of the cache that the listing did not bring is not in HubSpot. A type fetched by reference is
    never listed, so not being seen proves nothing: only a batch read's not-found for that id does."""
    started = datetime.fromisoformat(context.run.cursor["started"])
    for spec in specs:
        if spec.fetched_by_reference:
            stale = sorted(not_found.get(spec.name, ()))
        else:
            stale = list(
                spec.model._default_manager.filter(archived=False)
                .exclude(synced_at__gte=started)
                .values_list("hubspot_id", flat=True)
            )
        if stale:
            cache.mark_archived(spec, stale)
    # What the run's pages left to the end: copies between records, set-based over the whole table.
    with transaction.atomic():
        cache.run_whole_table_hooks(specs)
    for spec in specs:
        SyncCursor.objects.update_or_create(
            object_type=spec.name, defaults={"modified_before": started, "full_synced_at": timezone.now()}
        )


def _count(spec: MirrorType) -> int:
    """How many live records the type has, for the progress bar (one search call, limit 1)."""
    page = client.search_objects(spec.name, filter_groups=[], sorts=[], properties=["hs_object_id"], limit=1)
    return int(page.total or 0)


def _write_inline_associations(
    spec: MirrorType,
    records: Sequence[Any],
    truncated: dict[tuple[str, str], set[str]],
    fresh: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> None:
    edges: dict[str, dict[str, list[cache.Edge]]] = {}
    for to_type in spec.associations:
        edges[to_type] = {
            str(r.id): [(to_id, None, "HUBSPOT_DEFINED") for to_id in (r.associations or {}).get(to_type, ())]
            for r in records
        }
        for record in records:
            if to_type in (getattr(record, "truncated_associations", None) or ()):
                truncated.setdefault((spec.name, to_type), set()).add(str(record.id))
    cache.replace_edges(
        spec.name, edges, nothing_to_delete=[t for t in spec.associations if (spec.name, t) in fresh]
    )


def _fresh_pairs(specs: Sequence[MirrorType]) -> set[tuple[str, str]]:
    """(type, associated type) pairs whose edges a full run writes as plain inserts, without first deleting
    what the records had:

    - the type's table is empty (a first full sync): each of its records is new, so the only edges it can
      have are those this run's pages of the other type wrote, which are HubSpot's too;
    - or the cache has no edges between the two types yet and only one side's pages write them.

    Both sides' pages then add to each other's edges rather than replace them. An edge removed in HubSpot
    between the reads of its two ends stays until the next run that replaces them (incremental runs and
    the nightly reconcile always do)."""
    in_run = {spec.name: spec for spec in specs if not spec.fetched_by_reference}
    fresh: set[tuple[str, str]] = set()
    for spec in in_run.values():
        empty = not spec.model._default_manager.exists()
        for to_type in spec.associations:
            if empty:
                fresh.add((spec.name, to_type))
                continue
            other = in_run.get(to_type)
            if other is not None and spec.name in other.associations:
                continue
            known = Association.objects.filter(from_type=spec.name, to_type=to_type).exists() or (
                Association.objects.filter(from_type=to_type, to_type=spec.name).exists()
            )
            if not known:
                fresh.add((spec.name, to_type))
    return fresh


def _missing_references(spec: MirrorType) -> list[str]:
    # NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN (subquery) as a nested loop once the subquery outgrows
    # work_mem, which at 300,000 line items takes hours; NOT EXISTS is an anti-join on either database.
    known = spec.model._default_manager.filter(hubspot_id=OuterRef("to_id"))
    return list(
        Association.objects.filter(to_type=spec.name)
        .filter(~Exists(known))
        .values_list("to_id", flat=True)
        .distinct()
    )


def _read_associations(spec: MirrorType, to_type: str, ids: Sequence[str]) -> None:
    if not ids:
        return
    found = client.read_associations(spec.name, to_type, list(ids))
    edges = {
        record_id: [
            (a.to_id, _first_type(a.type_ids, spec.name, to_type), "HUBSPOT_DEFINED")
            for a in found.get(record_id, [])
        ]
        for record_id in ids
    }
    cache.replace_associations(spec.name, to_type, edges)


def _first_type(type_ids: Sequence[int], from_type: str, to_type: str) -> int | None:
    default = DEFAULT_ASSOCIATION_TYPES.get((from_type, to_type))
    return default if default in type_ids or not type_ids else type_ids[0]


# --- incremental -----------------------------------------------------------------------------------------


def _incremental(context: RunContext, specs: Sequence[MirrorType]) -> None:
    run = context.run
    window_to = datetime.fromisoformat(run.cursor["started"]) - timedelta(
        seconds=settings.HUBSPOT_SEARCH_LAG_S
    )
    lookback = timedelta(seconds=settings.HUBSPOT_SYNC_LOOKBACK_S)
    needs_full = [
        spec
        for spec in specs
        if not SyncCursor.objects.filter(object_type=spec.name, full_synced_at__isnull=False).exists()
    ]
    if needs_full:
        # A type never fully synced has no cursor to go on from: read it whole first.
        _full(context, needs_full)
    _refresh_definitions([spec for spec in specs if spec not in needs_full])
    for spec in specs:
        if spec in needs_full:
            continue
        cursor = SyncCursor.objects.get(object_type=spec.name)
        window_from = (cursor.modified_before or window_to) - lookback
        state = run.cursor.setdefault("search", {}).setdefault(spec.name, {})
        if window_from >= window_to:
            state["done"] = True
            continue
        changed = _search_changed(context, spec, window_from, window_to, state)
        # A stage or pipeline made since the last refresh: at once, not in 15 minutes.
        _sync_unknown_definitions(spec, changed)
        for to_type in _incremental_associations(spec):
            for batch in cache.chunks(changed, settings.HUBSPOT_ASSOCIATION_BATCH):
                _read_associations(spec, to_type, batch)
        if changed:
            cache.run_after_upsert(spec, changed)
        cursor.runs_since_deletion_check += 1
        if cursor.runs_since_deletion_check >= settings.HUBSPOT_SYNC_DELETION_CHECK_EVERY:
            _check_deletions(context, spec, window_to)
            cursor.runs_since_deletion_check = 0
        cursor.modified_before = window_to
        cursor.save(update_fields=["modified_before", "runs_since_deletion_check"])
        state["done"] = True
        context.tick()


def _refresh_definitions(specs: Sequence[MirrorType]) -> None:
    """Property definitions and order pipelines, read again by the scheduled sync once they are older than
    HUBSPOT_SYNC_DEFINITIONS_EVERY_MIN (one call per type, one for pipelines: every minute would spend the
    budget on what rarely changes). A record naming an unknown stage refreshes pipelines at once."""
    due = timezone.now() - timedelta(minutes=settings.HUBSPOT_SYNC_DEFINITIONS_EVERY_MIN)
    stale = [
        spec
        for spec in specs
        if (
            PropertyDefinition.objects.filter(object_type=spec.name).aggregate(last=Max("synced_at"))["last"]
            or due
        )
        <= due
    ]
    if stale:
        sync_properties(stale)
    for name in _definitions_of(specs):
        syncer = registry.definitions(name)
        last = syncer.synced_at() if syncer is not None else None
        if last is None or last <= due:
            sync_definitions(name)


def _incremental_associations(spec: MirrorType) -> tuple[str, ...]:
    """Associations re-read for changed records. An edge between two mirrored types is read from one side
    only (orders ↔ carts from the cart, which a conversion modifies), which keeps a run to the fewest calls;
    webhooks and the nightly reconcile catch the rest."""
    return tuple(t for t in spec.associations if t not in spec.incremental_skips)


def _check_deletions(context: RunContext, spec: MirrorType, window_to: datetime) -> int:
    """Compare live counts of records created before the window's end; when the cache has more, read
    HubSpot's archived list and archive what it names."""
    if spec.fetched_by_reference:
        return 0  # line items go with their orders and carts; a full reconcile sweeps the rest
    page = client.search_objects(
        spec.name,
        filter_groups=[
            {
                "filters": [
                    {"propertyName": spec.created_property, "operator": "LT", "value": str(_ms(window_to))}
                ]
            }
        ],
        sorts=[],
        properties=["hs_object_id"],
        limit=1,
    )
    local = spec.model._default_manager.filter(archived=False, remote_created_at__lt=window_to).count()
    if local <= int(page.total or 0):
        return 0
    archived: list[str] = []
    after: str | None = None
    while True:
        listed = client.list_objects(
            spec.name, properties=[spec.modified_property], after=after, limit=LIST_PAGE, archived=True
        )
        archived.extend(str(r.id) for r in listed.results)
        after = listed.next_after
        if not after:
            break
    live_locally = list(
        spec.model._default_manager.filter(archived=False, hubspot_id__in=archived).values_list(
            "hubspot_id", flat=True
        )
    )
    count = cache.mark_archived(spec, live_locally)
    context.tick(written=count)
    return count


def _search_changed(
    context: RunContext, spec: MirrorType, window_from: datetime, window_to: datetime, state: dict[str, Any]
) -> list[str]:
    """Every record modified in the window, by keyset on hs_object_id (each query starts at page one, so
    none ever pages into the 10,000-result cap)."""
    names = property_names(spec)
    last_id = int(state.get("last_id", 0))
    changed: list[str] = list(state.get("changed", []))
    total: int | None = None
    seen = 0
    while True:
        filters = [
            {"propertyName": spec.modified_property, "operator": "GTE", "value": str(_ms(window_from))},
            {"propertyName": spec.modified_property, "operator": "LT", "value": str(_ms(window_to))},
        ]
        if last_id:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)})
        page = client.search_objects(
            spec.name,
            filter_groups=[{"filters": filters}],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            properties=names,
            limit=SEARCH_PAGE,
        )
        records = list(page.results)
        if total is None:
            total = int(page.total or 0)
            context.run.progress_total = (context.run.progress_total or 0) + total
        if records:
            result = cache.upsert_records(spec, records)
            ids = [str(r.id) for r in records]
            changed.extend(ids)
            last_id = max(int(i) for i in ids)
            seen += len(records)
            state["last_id"] = last_id
            context.tick(done=len(records), written=result.written, skipped=result.skipped)
        # A short page ends the window; a full page that reaches the first query's total needs no empty page.
        if len(records) < SEARCH_PAGE or (seen >= total and not page.next_after):
            break
    return changed


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- refresh ---------------------------------------------------------------------------------------------


def refresh_records(object_type: str, hubspot_ids: Sequence[str]) -> cache.UpsertResult:
    """Read the named records again (webhooks, a "resync"); ones HubSpot no longer has are archived."""
    spec = registry.get(object_type)
    names = property_names(spec)
    total = cache.UpsertResult()
    for batch in cache.chunks(sorted(set(hubspot_ids)), BATCH_READ):
        result = client.batch_read(spec.name, batch, properties=names)
        written = cache.upsert_records(spec, result.results)
        total.written += written.written
        total.skipped += written.skipped
        if result.missing:
            cache.mark_archived(spec, list(result.missing))
        found = [str(r.id) for r in result.results]
        _sync_unknown_definitions(spec, found)
        for to_type in spec.associations:
            _read_associations(spec, to_type, found)
        if found:
            cache.run_after_upsert(spec, found)
    return total
