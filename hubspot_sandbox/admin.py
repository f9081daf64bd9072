"""``/_sandbox/`` admin endpoints: faults, reset, seed, stats, webhook target, live activity, settings.

They take no token and are not counted in request stats. Handlers receive the ``Sandbox`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubspot_sandbox import objects
from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.http import HubSpotError, Request, Response, Router
from hubspot_sandbox.objects import json_body, record_json

if TYPE_CHECKING:
    from hubspot_sandbox.server import Sandbox

PREFIX = "/_sandbox"
# Runtime settings PATCH /_sandbox/config may change, and where each lives.
_LIMITER_SETTINGS = {
    "tier": "tier",
    "ten_second_limit": "ten_second_limit",
    "daily_limit": "daily_limit",
    "window_ms": "window_ms",
    "search_per_s": "search_per_s",
    "search_window_ms": "search_window_ms",
    "search_counts_in_window": "search_counts_in_window",
    "rate_limits": "enforce",
    "retry_after": "retry_after",
}
_BEHAVIOUR_SETTINGS = ("search_lag_s", "association_changes_bump_modified", "property_change_on_create")


def _rules(body: Any) -> list[FaultRule]:
    raw = body.get("rules") if isinstance(body, dict) else body
    if not isinstance(raw, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "expected {'rules': [...]} or a list of rules")
    return [FaultRule.from_json(r) for r in raw]


def get_faults(request: Request, sandbox: Sandbox) -> Response:
    return Response(200, sandbox.faults.json())


def put_faults(request: Request, sandbox: Sandbox) -> Response:
    """Replace every rule: ``{"rules": [{"kind": "error", "probability": 0.1, ...}], "seed": 7}``."""
    body = request.json()
    seed = body.get("seed") if isinstance(body, dict) else None
    sandbox.faults.set(_rules(body), seed=int(seed) if seed is not None else None)
    return Response(200, sandbox.faults.json())


def post_fault(request: Request, sandbox: Sandbox) -> Response:
    """Add one rule to those active."""
    sandbox.faults.add(FaultRule.from_json(json_body(request)))
    return Response(200, sandbox.faults.json())


def delete_faults(request: Request, sandbox: Sandbox) -> Response:
    sandbox.faults.clear()
    return Response(204)


def reset(request: Request, sandbox: Sandbox) -> Response:
    sandbox.reset()
    return Response(200, {"reset": True})


def seed(request: Request, sandbox: Sandbox) -> Response:
    """``{"contacts": 50, "orders": 200, "carts": 40, "seed": 1, "hostile": false}`` → counts made;
    ``"companies"``/``"deals"`` add HubSpot's other standard objects tied to the contacts."""
    body = json_body(request)
    counts = sandbox.seed(
        contacts=int(body.get("contacts", 0)),
        orders=int(body.get("orders", 0)),
        carts=int(body.get("carts", 0)),
        seed=int(body.get("seed", 1)),
        hostile=bool(body.get("hostile", False)),
    )
    companies, deals = int(body.get("companies", 0)), int(body.get("deals", 0))
    if companies or deals:
        standard = sandbox.seed_standard(companies=companies, deals=deals, seed=int(body.get("seed", 1)))
        counts.update(
            companies=standard["companies"],
            deals=standard["deals"],
            associations=counts.get("associations", 0) + standard["associations"],
        )
    return Response(200, counts)


def get_stats(request: Request, sandbox: Sandbox) -> Response:
    body = sandbox.stats.json()
    body["daily_used"] = sandbox.limiter.daily_used
    return Response(200, body)


def delete_stats(request: Request, sandbox: Sandbox) -> Response:
    sandbox.stats.reset()
    return Response(204)


def get_webhook(request: Request, sandbox: Sandbox) -> Response:
    config = sandbox.config
    return Response(
        200,
        {"url": config.webhook_url, "appId": config.webhook_app_id, "hasSecret": bool(config.webhook_secret)},
    )


def put_webhook(request: Request, sandbox: Sandbox) -> Response:
    """``{"url": ..., "secret": ..., "appId": ...}``; a null url stops sending."""
    body = json_body(request)
    app_id = body.get("appId")
    sandbox.set_webhook(
        body.get("url"), str(body.get("secret") or ""), int(app_id) if app_id is not None else None
    )
    return get_webhook(request, sandbox)


def put_live(request: Request, sandbox: Sandbox) -> Response:
    """``{"enabled": true, "interval_s": 2, "seed": 1}``: random edits, as staff in HubSpot would make."""
    body = json_body(request)
    interval = body.get("interval_s")
    live_seed = body.get("seed")
    sandbox.set_live(
        bool(body.get("enabled", True)),
        interval_s=float(interval) if interval is not None else None,
        seed=int(live_seed) if live_seed is not None else None,
    )
    return Response(200, {"enabled": sandbox.live is not None, "interval_s": sandbox.config.live_activity_s})


def get_config(request: Request, sandbox: Sandbox) -> Response:
    limits = sandbox.limiter.config
    switches = objects.behaviour(sandbox.state)
    body: dict[str, Any] = {name: getattr(limits, attr) for name, attr in _LIMITER_SETTINGS.items()}
    body.update({name: getattr(switches, name) for name in _BEHAVIOUR_SETTINGS})
    return Response(200, body)


def patch_config(request: Request, sandbox: Sandbox) -> Response:
    """Change rate-limit and behaviour settings while running, e.g. ``{"rate_limits": false}``."""
    body = json_body(request)
    unknown = set(body) - set(_LIMITER_SETTINGS) - set(_BEHAVIOUR_SETTINGS)
    if unknown:
        raise HubSpotError(400, "VALIDATION_ERROR", f"unknown settings: {', '.join(sorted(unknown))}")
    switches = objects.behaviour(sandbox.state)
    for name, value in body.items():
        if name in _LIMITER_SETTINGS:
            setattr(sandbox.limiter.config, _LIMITER_SETTINGS[name], value)
        else:
            setattr(switches, name, value)
    return get_config(request, sandbox)


def restore(request: Request, sandbox: Sandbox) -> Response:
    """Bring a record back from the recycling bin, as a user can in HubSpot's UI."""
    rec = objects.restore_record(
        sandbox.state, request.params["objectType"], request.params["objectId"], source="CRM_UI"
    )
    with sandbox.state.lock:
        return Response(200, record_json(rec, None))


def health(request: Request, sandbox: Sandbox) -> Response:
    with sandbox.state.lock:
        counts = {name: sum(1 for _ in sandbox.state.live(name)) for name in sandbox.state.records}
    return Response(200, {"ok": True, "records": counts})


def register(router: Router) -> None:
    router.add("GET", f"{PREFIX}/health", health)
    router.add("GET", f"{PREFIX}/faults", get_faults)
    router.add("PUT", f"{PREFIX}/faults", put_faults)
    router.add("POST", f"{PREFIX}/faults", post_fault)
    router.add("DELETE", f"{PREFIX}/faults", delete_faults)
    router.add("POST", f"{PREFIX}/reset", reset)
    router.add("POST", f"{PREFIX}/seed", seed)
    router.add("GET", f"{PREFIX}/stats", get_stats)
    router.add("DELETE", f"{PREFIX}/stats", delete_stats)
    router.add("GET", f"{PREFIX}/webhook", get_webhook)
    router.add("PUT", f"{PREFIX}/webhook", put_webhook)
    router.add("PUT", f"{PREFIX}/live", put_live)
    router.add("GET", f"{PREFIX}/config", get_config)
    router.add("PATCH", f"{PREFIX}/config", patch_config)
    router.add("POST", f"{PREFIX}/restore/{{objectType}}/{{objectId}}", restore)
