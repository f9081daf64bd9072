"""``python -m hubspot_sandbox``: serve the HubSpot CRM API emulator until Ctrl-C or SIGTERM.

The same options as OrderDeck's ``python manage.py sandbox`` (a thin wrapper over this module). Defaults come
from the environment where one is set: ``SANDBOX_PORT``, ``HUBSPOT_ACCESS_TOKEN`` (the one Bearer token
accepted) and ``HUBSPOT_CLIENT_SECRET`` (what webhooks are signed with).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.ratelimit import TIERS
from hubspot_sandbox.server import Sandbox, SandboxConfig

DEFAULT_PORT = 8765
DESCRIPTION = "Serve a local HubSpot CRM API sandbox (objects, search, associations, pipelines, webhooks)."


class OptionError(ValueError):
    """An option value the sandbox cannot use; the message says which and why."""


def add_arguments(
    parser: argparse.ArgumentParser, *, port: int, token: str | None, webhook_secret: str
) -> None:
    """Every option of the sandbox, on ``parser`` (argparse's, or Django's CommandParser)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port, help="0 takes a free port")
    parser.add_argument("--token", default=token, help="the Bearer token accepted (empty: any token)")
    parser.add_argument("--tier", default="professional", choices=sorted(TIERS))
    parser.add_argument("--daily-limit", type=int, default=None, help="override the tier's daily budget")
    parser.add_argument("--no-rate-limits", action="store_true", help="send the headers, refuse nothing")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429s")
    parser.add_argument("--search-lag", type=float, default=0.0, help="seconds before writes show in search")
    parser.add_argument("--seed", type=int, default=1, help="the seed of the generated data")
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--carts", type=int, default=120)
    parser.add_argument(
        "--companies", type=int, default=0, help="seed companies tied to the contacts (standard objects)"
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
    parser.add_argument("--webhook-url", default=None, help="where signed webhooks are sent")
    parser.add_argument("--webhook-secret", default=webhook_secret, help="the app secret that signs them")
    parser.add_argument("--live", type=float, default=None, metavar="SECONDS", help="live edits every N s")
    parser.add_argument("--snapshot", default=None, metavar="PATH", help="load at start, save on exit")


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
            raise OptionError("--storm takes PERIOD:DURATION in seconds, e.g. 60:5") from None
        rules.append(FaultRule("storm", period_s=period, duration_s=duration))
    return rules


def config_from_options(options: dict[str, Any]) -> SandboxConfig:
    return SandboxConfig(
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
        webhook_secret=options["webhook_secret"] or "",
        live_activity_s=options["live"],
        snapshot_path=options["snapshot"],
    )


def serve(config: SandboxConfig, write: Callable[[str], Any]) -> None:
    """Start the sandbox, say where it is, and serve until Ctrl-C or SIGTERM (a snapshot is saved then)."""
    sandbox = Sandbox(config)
    url = sandbox.start()

    def announce() -> None:
        records = {name: len(records) for name, records in sandbox.state.records.items() if records}
        write(f"HubSpot sandbox at {url}")
        write(f"token: {config.token or '(any)'}; records: {records}; admin: {url}/_sandbox/stats")
        saved = f" (the snapshot is saved to {config.snapshot_path})" if config.snapshot_path else ""
        write(f"Ctrl-C or SIGTERM to stop{saved}")

    sandbox.serve_forever(ready=announce)


def _env_port() -> int:
    raw = os.environ.get("SANDBOX_PORT", "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_PORT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_sandbox", description=DESCRIPTION)
    add_arguments(
        parser,
        port=_env_port(),
        token=os.environ.get("HUBSPOT_ACCESS_TOKEN", "sandbox-token"),
        webhook_secret=os.environ.get("HUBSPOT_CLIENT_SECRET", ""),
    )
    options = vars(parser.parse_args(argv))
    try:
        config = config_from_options(options)
    except OptionError as exc:
        parser.error(str(exc))
    serve(config, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
