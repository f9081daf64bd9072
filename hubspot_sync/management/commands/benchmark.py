"""`python manage.py benchmark NAME [--quick] [--out PATH]`: run a benchmark, print a table, write JSON."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hubspot_sync import benchmarks


class Command(BaseCommand):
    help = "Run a benchmark; print its figures as a table and write them as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="the benchmark to run (omit with --all or --list)")
        parser.add_argument("--quick", action="store_true", help="a small size that runs in under a minute")
        parser.add_argument("--out", help="where to write the JSON (default bench-results/NAME.json)")
        parser.add_argument("--all", action="store_true", help="run every benchmark")
        parser.add_argument("--out-dir", default=str(settings.BASE_DIR / "bench-results"))
        parser.add_argument("--list", action="store_true", help="list the benchmarks")

    def handle(self, *args: Any, **options: Any) -> None:
        available = benchmarks.registry()
        if options["list"]:
            for name in benchmarks.public():
                self.stdout.write(name)
            return
        if options["all"]:
            names = benchmarks.public()
        elif options["name"]:
            if options["name"] not in available:
                raise CommandError(
                    f"No benchmark named {options['name']!r}; there are: {', '.join(available)}."
                )
            names = [options["name"]]
        else:
            raise CommandError("Name a benchmark, or pass --all or --list.")
        for name in names:
            out = (
                Path(options["out"])
                if options["out"] and len(names) == 1
                else Path(options["out_dir"]) / f"{name}.json"
            )
            self._run(name, available[name], quick=options["quick"], out=out)

    def _run(self, name: str, benchmark: benchmarks.Benchmark, *, quick: bool, out: Path) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"benchmark {name}{' (quick)' if quick else ''}"))
        started = time.perf_counter()
        result = benchmark(quick)
        elapsed = time.perf_counter() - started
        width = max((len(label) for label, _ in result.rows), default=10)
        for label, value in result.rows:
            self.stdout.write(f"  {label.ljust(width)}  {value}")
        for note in result.notes:
            self.stdout.write(f"  note: {note}")
        body = {
            "benchmark": name,
            "quick": quick,
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(elapsed, 2),
            "machine": benchmarks.machine(),
            **result.figures,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(body, indent=2) + "\n")
        self.stdout.write(f"  wrote {out}")
