"""`python manage.py sync [--full] [--type T …] [--verify]`: pull from HubSpot now, with a progress bar."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hubspot_sync import registry, sync
from hubspot_sync.models import SyncKind, SyncRun, SyncStatus
from hubspot_sync.verify import SAMPLE, verify


class Command(BaseCommand):
    help = (
        "Sync the local cache from HubSpot (incremental by default), or compare it with HubSpot (--verify)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="read every record again")
        parser.add_argument(
            "--reconcile", action="store_true", help="a full read that also archives deletions"
        )
        parser.add_argument(
            "--type",
            action="append",
            dest="types",
            metavar="TYPE",
            help="order, cart, line_item or contact (repeatable; default: all)",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="compare the cache with HubSpot and list any drift (changes nothing)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        types = [registry.get(t).name for t in options["types"]] if options["types"] else None
        if options["verify"]:
            self._verify(types)
            return
        kind = (
            SyncKind.RECONCILE
            if options["reconcile"]
            else SyncKind.FULL
            if options["full"]
            else SyncKind.INCREMENTAL
        )
        started = time.monotonic()
        try:
            run = sync.run_sync(kind, types, progress=self._progress, manual=True)
        except (sync.SyncBusy, sync.SyncHalted) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("")
        if run.status != SyncStatus.SUCCEEDED:
            said = f"\nHubSpot said: {run.error_detail}" if run.error_detail else ""
            raise CommandError(f"{run.error_message}{said}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{run.get_kind_display()} sync done in {time.monotonic() - started:.1f} s: "
                f"{run.objects_written:,} written, {run.objects_skipped:,} unchanged or older, "
                f"{run.api_calls:,} API calls, {run.http_429} rate-limited answers."
            )
        )

    def _progress(self, run: SyncRun) -> None:
        total = run.progress_total or 0
        done = run.progress_done
        width = 30
        filled = int(width * done / total) if total else 0
        bar = "#" * min(filled, width) + "-" * max(width - filled, 0)
        percent = f"{100 * done / total:5.1f}%" if total else "     "
        sys.stdout.write(f"\r[{bar}] {percent} {done:,}/{total:,} objects, {run.api_calls:,} calls")
        sys.stdout.flush()

    def _verify(self, types: list[str] | None) -> None:
        drifts = verify(types)
        dirty = False
        for d in drifts:
            status = self.style.SUCCESS("equal") if d.clean else self.style.ERROR("DRIFT")
            self.stdout.write(
                f"{d.object_type:<11} {status}  HubSpot {d.remote_count:,}  cache {d.local_count:,}"
            )
            for label, ids in (
                ("missing in the cache", d.missing_locally),
                ("only in the cache", d.extra_locally),
                ("properties differ", d.property_mismatches),
                ("associations differ", d.association_mismatches),
            ):
                if ids:
                    dirty = True
                    self.stdout.write(
                        f"  {len(ids):,} {label}: {', '.join(ids[:SAMPLE])}"
                        + (" …" if len(ids) > SAMPLE else "")
                    )
            if d.changed_meanwhile:
                self.stdout.write(
                    f"  {len(d.changed_meanwhile):,} left out: HubSpot changed them while this ran, or the "
                    "cache caught up meanwhile"
                )
            if d.mismatched_properties:
                worst = sorted(d.mismatched_properties.items(), key=lambda kv: -kv[1])[:10]
                self.stdout.write("  differing properties: " + ", ".join(f"{k} ({v})" for k, v in worst))
        if dirty:
            raise CommandError(
                "The cache differs from HubSpot; `manage.py sync --reconcile` brings it back in line."
            )
