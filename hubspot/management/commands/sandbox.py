"""``python manage.py sandbox``: serve the local HubSpot sandbox until Ctrl-C."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hubspot.sandbox.faults import FaultRule
from hubspot.sandbox.ratelimit import TIERS
from hubspot.sandbox.server import Sandbox, SandboxConfig


def fault_rules(options: dict[str, Any]) -> list[FaultRule]:
    """The fault flags as rules (the admin endpoint /_sandbox/faults changes them while running)."""
    rules: list[FaultRule] = []
    if options["latency_ms"]:
        rules.append(FaultRule("latency", latency_ms=options["latency_ms"], jitter_ms=options["jitter_ms"]))
    if options["error_rate"]:
        rules.append(FaultRule("error", probability=options["error_rate"]))
    if options["hang_rate"]:
        rules.append(FaultRule("hang", probability=options["hang_rate"], hang_s=options["hang_s"]))
    if options["storm"]:
        try:
            period, duration = (float(part) for part in options["storm"].split(":"))
        except ValueError:
            raise CommandError("--storm takes PERIOD:DURATION in seconds, e.g. 60:5") from None
        rules.append(FaultRule("storm", period_s=period, duration_s=duration))
    return rules


class Command(BaseCommand):
    help = "Serve a local HubSpot CRM API sandbox (objects, search, associations, pipelines, webhooks)."
    # The sandbox shares nothing with the app (no database, no URLs): it starts without the app's checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument(
            "--token", default=settings.HUBSPOT_ACCESS_TOKEN, help="the Bearer token accepted"
        )
        parser.add_argument("--tier", default="professional", choices=sorted(TIERS))
        parser.add_argument("--daily-limit", type=int, default=None, help="override the tier's daily budget")
        parser.add_argument("--no-rate-limits", action="store_true", help="send the headers, refuse nothing")
        parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429s")
        parser.add_argument(
            "--search-lag", type=float, default=0.0, help="seconds before writes show in search"
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument("--orders", type=int, default=500)
        parser.add_argument("--carts", type=int, default=120)
        parser.add_argument(
            "--companies",
            type=int,
            default=0,
            help="seed companies tied to the contacts (HubSpot's standard objects)",
        )
        parser.add_argument("--deals", type=int, default=0, help="seed deals tied to contacts and companies")
        parser.add_argument("--hostile", action="store_true", help="plant hostile text in seeded values")
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--jitter-ms", type=float, default=0.0)
        parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 5xx")
        parser.add_argument("--hang-rate", type=float, default=0.0, help="share of requests that hang")
        parser.add_argument("--hang-s", type=float, default=30.0)
        parser.add_argument("--storm", default="", metavar="PERIOD:DURATION", help="429 storms, e.g. 60:5")
        parser.add_argument("--fault-seed", type=int, default=1)
        parser.add_argument("--webhook-url", default=None)
        parser.add_argument("--webhook-secret", default=settings.HUBSPOT_CLIENT_SECRET)
        parser.add_argument(
            "--live", type=float, default=None, metavar="SECONDS", help="live edits every N s"
        )
        parser.add_argument("--snapshot", default=None, metavar="PATH", help="load at start, save on exit")

    def handle(self, *args: Any, **options: Any) -> None:
        config = SandboxConfig(
            host=options["host"],
            port=options["port"],
            token=options["token"] or None,
            tier=options["tier"],
            daily_limit=options["daily_limit"],
            rate_limits=not options["no_rate_limits"],
            retry_after=options["retry_after"],
            search_lag_s=options["search_lag"],
            seed=options["seed"],
            seed_contacts=options["contacts"],
            seed_orders=options["orders"],
            seed_carts=options["carts"],
            seed_companies=options["companies"],
            seed_deals=options["deals"],
            hostile=options["hostile"],
            faults=fault_rules(options),
            fault_seed=options["fault_seed"],
            webhook_url=options["webhook_url"],
            webhook_secret=options["webhook_secret"],
            live_activity_s=options["live"],
            snapshot_path=options["snapshot"],
        )
        sandbox = Sandbox(config)
        url = sandbox.start()

        def announce() -> None:
            records = {name: len(records) for name, records in sandbox.state.records.items() if records}
            self.stdout.write(self.style.SUCCESS(f"HubSpot sandbox at {url}"))
            self.stdout.write(
                f"token: {config.token or '(any)'}; records: {records}; admin: {url}/_sandbox/stats"
            )
            saved = f" (the snapshot is saved to {config.snapshot_path})" if config.snapshot_path else ""
            self.stdout.write(f"Ctrl-C or SIGTERM to stop{saved}")

        sandbox.serve_forever(ready=announce)
