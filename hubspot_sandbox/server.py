"""The sandbox server: a local stand-in for api.hubapi.com on the stdlib's threading HTTP server.

Dispatch of one request: admin routes (no token) → request stats → auth → faults → rate limit →
router → JSON response. Every API handler runs under the state's lock, so handlers never see a
half-written state; keep-alive connections and daemon threads keep clients that hold a session fast.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hubspot_sandbox import associations, objects
from hubspot_sandbox.faults import FaultRule, Faults, fault_error
from hubspot_sandbox.http import HubSpotError, Request, Response, Router
from hubspot_sandbox.ratelimit import RateLimitConfig, RateLimiter
from hubspot_sandbox.state import SandboxState, resolve_type

logger = logging.getLogger("hubspot_sandbox")

# HubSpot's 401 for a missing or unknown token, as integrations record it (reference §2: 401
# INVALID_AUTHENTICATION [3P]).
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    # The one Bearer token accepted (a local, made-up one); None accepts any token.
    token: str | None = "sandbox-token"  # noqa: S105
    portal_id: int = 62515
    # rate limits (reference §3)
    tier: str = "professional"
    ten_second_limit: int | None = None
    daily_limit: int | None = None
    window_ms: int = 10_000
    search_per_s: int = 5
    search_window_ms: int = 1_000
    search_counts_in_window: bool = False  # UNCONFIRMED (sync-performance §8 item 1)
    rate_limits: bool = True  # off: headers are still sent, nothing is refused
    retry_after: bool = False  # Retry-After on 429s is UNCONFIRMED (reference §11 item 4)
    # behaviour HubSpot leaves open (reference §11)
    search_lag_s: float = 0.0
    association_changes_bump_modified: bool = False  # UNCONFIRMED (sync-performance §8 item 4)
    # HubSpot sits behind Cloudflare (the 52x codes of reference §2), whose URL limit is 16 KB; third
    # parties chunk ``properties=`` at 15,000 characters to stay under it (reference §9 item 5).
    max_uri_length: int = 16_384
    # webhooks, live activity, persistence, seed data
    webhook_url: str | None = None
    webhook_secret: str = ""
    webhook_app_id: int = 1_160_452  # the app the seeded records say they came from
    live_activity_s: float | None = None  # seconds between live changes; None: off
    snapshot_path: str | None = None
    install_defaults: bool = True
    seed_contacts: int = 0
    seed_orders: int = 0
    seed_carts: int = 0
    # HubSpot's other standard objects (standard.py): a few companies and deals tied to the seeded
    # contacts. Off by default so the commerce seed's sizes and ids stay what tests and benchmarks expect.
    seed_companies: int = 0
    seed_deals: int = 0
    seed: int = 1
    hostile: bool = False
    # fault injection
    faults: list[FaultRule] = field(default_factory=list)
    fault_seed: int = 1

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(
            tier=self.tier,
            ten_second_limit=self.ten_second_limit,
            daily_limit=self.daily_limit,
            window_ms=self.window_ms,
            search_per_s=self.search_per_s,
            search_window_ms=self.search_window_ms,
            search_counts_in_window=self.search_counts_in_window,
            enforce=self.rate_limits,
            retry_after=self.retry_after,
        )


class RequestStats:
    """What the sandbox answered: counts by method, route template, status and object type, and the
    429s it sent by policy. Benchmarks count API calls with it; admin requests are not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_method: dict[str, int] = {}
            self.by_route: dict[str, int] = {}
            self.by_status: dict[str, int] = {}
            self.by_object_type: dict[str, int] = {}
            self.rate_limited = 0
            self.rate_limited_by_policy: dict[str, int] = {}
            self.faults: dict[str, int] = {}
            self.dropped = 0

    def record(
        self,
        method: str,
        route: str,
        status: int | None,
        *,
        object_type: str | None = None,
        policy: str | None = None,
        fault: str | None = None,
    ) -> None:
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1
            key = f"{method} {route}"
            self.by_route[key] = self.by_route.get(key, 0) + 1
            if status is None:
                self.dropped += 1
            else:
                self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            if object_type:
                self.by_object_type[object_type] = self.by_object_type.get(object_type, 0) + 1
            if status == 429:
                self.rate_limited += 1
                name = policy or "UNKNOWN"
                self.rate_limited_by_policy[name] = self.rate_limited_by_policy.get(name, 0) + 1
            if fault:
                self.faults[fault] = self.faults.get(fault, 0) + 1

    def json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_method": dict(self.by_method),
                "by_route": dict(self.by_route),
                "by_status": dict(self.by_status),
                "by_object_type": dict(self.by_object_type),
                "rate_limited": self.rate_limited,
                "rate_limited_by_policy": dict(self.rate_limited_by_policy),
                "faults": dict(self.faults),
                "dropped": self.dropped,
            }


def _object_type_of(request: Request) -> str | None:
    params = request.params
    name = params.get("objectType") or params.get("fromObjectType")
    found = resolve_type(name) if name else None
    return found.name if found else None


class Sandbox:
    """One sandbox portal served over HTTP. ``start()`` serves from a background thread."""

    def __init__(self, config: SandboxConfig | None = None, *, state: SandboxState | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = state or SandboxState(portal_id=self.config.portal_id)
        self.faults = Faults(list(self.config.faults), seed=self.config.fault_seed)
        self.stats = RequestStats()
        self.limiter = RateLimiter(self.config.rate_limit_config(), portal_id=self.config.portal_id)
        self.router = build_router()
        self.admin_router = Router()
        self.webhooks: Any = None
        self.live: Any = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = False
        self._prepared = False
        from hubspot_sandbox import admin  # admin builds on this module

        admin.register(self.admin_router)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def prepare(self) -> None:
        """Install defaults, then load the snapshot or seed; apply behaviour switches. Runs once."""
        if self._prepared:
            return
        self._prepared = True
        self.apply_behaviour()
        if self.config.install_defaults:
            self.install_defaults()
        loaded = False
        if self.config.snapshot_path:
            from hubspot_sandbox import snapshot

            loaded = snapshot.load(self.state, self.config.snapshot_path)
            if loaded:
                gc.freeze()  # as after seeding: keep a big loaded state out of collector passes
        if not loaded and (self.config.seed_contacts or self.config.seed_orders or self.config.seed_carts):
            self.seed(
                contacts=self.config.seed_contacts,
                orders=self.config.seed_orders,
                carts=self.config.seed_carts,
                seed=self.config.seed,
                hostile=self.config.hostile,
            )
            if self.config.seed_companies or self.config.seed_deals:
                self.seed_standard(companies=self.config.seed_companies, deals=self.config.seed_deals)

    def apply_behaviour(self) -> None:
        switches = objects.behaviour(self.state)
        switches.search_lag_s = self.config.search_lag_s
        switches.association_changes_bump_modified = self.config.association_changes_bump_modified

    def install_defaults(self) -> None:
        from hubspot_sandbox import defaults

        defaults.install_defaults(self.state)

    def seed(
        self, *, contacts: int, orders: int, carts: int, seed: int = 1, hostile: bool = False
    ) -> dict[str, int]:
        from hubspot_sandbox import seed as seeding

        counts: dict[str, int] = seeding.seed(
            self.state, contacts=contacts, orders=orders, carts=carts, seed=seed, hostile=hostile
        )
        # A full garbage-collector pass over 100,000 seeded records takes over a second and would stall
        # whichever request triggered it; the seeded state lives as long as the sandbox, so leave it out.
        gc.freeze()
        return counts

    def seed_standard(self, *, companies: int, deals: int, seed: int | None = None) -> dict[str, int]:
        """A few companies and deals tied to the seeded contacts (see ``seed.seed_standard``)."""
        from hubspot_sandbox import seed as seeding

        return seeding.seed_standard(
            self.state, companies=companies, deals=deals, seed=self.config.seed if seed is None else seed
        )

    def start(self) -> str:
        """Serve in a background thread; returns the base URL."""
        self.prepare()
        self.stopping = False
        self.faults.restart()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="hubspot-sandbox",
            daemon=True,
        )
        self._thread.start()
        if self.config.webhook_url:
            self.set_webhook(self.config.webhook_url, self.config.webhook_secret, self.config.webhook_app_id)
        if self.config.live_activity_s:
            self.set_live(True, interval_s=self.config.live_activity_s)
        return self.url

    def serve_forever(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM alike), then stop and save the snapshot (starting
        first if need be). Process managers, and the demo, stop the sandbox with SIGTERM: without a
        handler Python dies on it at once, and the snapshot the console promised was never written."""
        if self._server is None:
            self.start()
        previous: Any = None
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            if ready is not None:
                ready()  # e.g. announce the URL: from here on a SIGTERM is handled
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                self.stop()
            finally:
                if in_main_thread:
                    signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    def stop(self, *, save_snapshot: bool = True) -> None:
        """Stop serving: hung requests are cut short, open connections closed, the snapshot saved."""
        if self._server is None:
            return
        self.stopping = True
        self.faults.stop()
        self.set_live(False)
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        server, self._server = self._server, None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if save_snapshot and self.config.snapshot_path:
            from hubspot_sandbox import snapshot

            snapshot.save(self.state, self.config.snapshot_path)

    # --- webhooks and live activity ----------------------------------------------------------------

    def set_webhook(self, url: str | None, secret: str = "", app_id: int | None = None) -> None:
        """Send signed webhooks to ``url`` from now on (None: stop sending)."""
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        self.config.webhook_url, self.config.webhook_secret = url, secret
        if app_id is not None:
            self.config.webhook_app_id = app_id
        if not url:
            return
        from hubspot_sandbox.webhooks import WebhookSender

        self.webhooks = WebhookSender(
            self.state, url=url, client_secret=secret, app_id=self.config.webhook_app_id
        )
        self.webhooks.start()

    def set_live(self, enabled: bool, *, interval_s: float | None = None, seed: int | None = None) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if not enabled:
            return
        from hubspot_sandbox.live import LiveActivity

        interval = interval_s or self.config.live_activity_s or 5.0
        self.config.live_activity_s = interval
        self.live = LiveActivity(
            self.state, interval_s=interval, seed=seed if seed is not None else self.config.seed
        )
        self.live.start()

    def reset(self) -> None:
        """Clear every record, association and definition, and install the defaults again."""
        state = self.state
        with state.lock:
            for type_name in state.records:
                state.records[type_name].clear()
                state.properties[type_name].clear()
                state.property_groups[type_name].clear()
                state.pipelines[type_name].clear()
            state.associations.clear()
            state.association_labels.clear()
            state.pipeline_audit.clear()
            state.write_traces.clear()
            if self.config.install_defaults:
                self.install_defaults()
        self.limiter.reset()

    # --- dispatch ------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response | None:
        """Answer one request; None means: drop the connection without an answer."""
        request = Request.build(method, target, headers, body)
        if request.path.startswith("/_sandbox/"):
            return self._admin(request)
        template = "(unrouted)"
        handler = None
        route_error: HubSpotError | None = None
        try:
            handler, template = self.router.match(request)
        except HubSpotError as exc:
            route_error = exc
        outcome = self._api(request, handler, route_error, target)
        response, policy, fault = outcome
        self.stats.record(
            request.method,
            template,
            response.status if response is not None else None,
            object_type=_object_type_of(request),
            policy=policy,
            fault=fault,
        )
        return response

    def _api(
        self, request: Request, handler: Any, route_error: HubSpotError | None, target: str
    ) -> tuple[Response | None, str | None, str | None]:
        if len(target) > self.config.max_uri_length:
            # 414 for long ``properties=`` lists (reference §2 status table, §9 item 5).
            error = HubSpotError(414, "URI_TOO_LONG", "URI Too Long")
            return error.response(), None, None
        token = _bearer(request.headers.get("authorization", ""))
        if token is None or (self.config.token is not None and token != self.config.token):
            return HubSpotError(401, "INVALID_AUTHENTICATION", AUTH_MESSAGE).response(), None, None

        decision = self.faults.decide(request.method, request.path)
        if decision.latency_s and not self.faults.sleep(decision.latency_s):
            return None, None, "latency"
        rule = decision.rule
        fault = rule.kind if rule is not None else ("latency" if decision.latency_s else None)
        is_search = request.method == "POST" and request.path.rstrip("/").endswith("/search")
        if rule is not None:
            if rule.kind == "drop":
                return None, None, fault
            if rule.kind == "hang":
                # Sleep past the client's timeout; the stop of the sandbox cuts it short.
                if not self.faults.sleep(rule.hang_s) or not rule.apply:
                    return None, None, fault
            else:
                error = fault_error(rule, self.faults.error_status(rule), self.config.portal_id)
                if rule.kind == "storm":
                    error.headers.update(self.limiter.storm_headers(rule.policy, search=is_search))
                return error.response(), error.extra.get("policyName"), fault

        try:
            limit_headers = self.limiter.check(token, search=is_search)
        except HubSpotError as exc:
            return exc.response(), exc.extra.get("policyName"), fault

        try:
            if route_error is not None:
                raise route_error
            with self.state.lock:
                response = handler(request, self.state)
        except HubSpotError as exc:
            response = exc.response()
        except Exception:
            logger.exception("sandbox handler failed: %s %s", request.method, request.path)
            response = HubSpotError(500, "INTERNAL_ERROR", "internal error").response()
        if limit_headers:
            response.headers.update(limit_headers)
        return response, None, fault

    def _admin(self, request: Request) -> Response:
        try:
            handler, _template = self.admin_router.match(request)
            return handler(request, self)
        except HubSpotError as exc:
            return exc.response()
        except (ValueError, TypeError) as exc:
            return HubSpotError(400, "VALIDATION_ERROR", str(exc)).response()


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends ``serve_forever`` as Ctrl-C does."""
    raise KeyboardInterrupt


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def build_router() -> Router:
    """Every HubSpot route the sandbox answers. Object routes first: they are the hot path."""
    router = Router()
    objects.register(router)
    associations.register(router)
    from hubspot_sandbox import pipelines, properties

    properties.register(router)
    pipelines.register(router)
    router.add("GET", "/account-info/v3/details", account_details)
    return router


def account_details(request: Request, state: SandboxState) -> Response:
    """``GET /account-info/v3/details``: the portal id clients tell portals apart by. The other fields
    are HubSpot's documented names with a sandbox's values (a UTC portal in US dollars)."""
    return Response(
        200,
        {
            "portalId": state.portal_id,
            "accountType": "STANDARD",
            "timeZone": "UTC",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        },
    )


# --- HTTP plumbing -----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: Sandbox
    ) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close keep-alive connections so no thread serves a stopped sandbox."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # one write per response; no 40 ms delayed-ACK stalls
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        if sandbox.stopping:
            self.close_connection = True
            return
        body = self._read_body()
        response = sandbox.handle(self.command, self.path, dict(self.headers.items()), body)
        if response is None or sandbox.stopping:
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        payload = response.encode()
        reason = (
            HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        )
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        if payload or response.status != 204:
            lines.append("Content-Type: application/json;charset=utf-8")
        lines.append(f"Content-Length: {len(payload)}")
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + payload)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. timed out on a hung request)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, over-long URI) in HubSpot's JSON error shape."""
        self.close_connection = True
        category = "URI_TOO_LONG" if code == 414 else "VALIDATION_ERROR"
        self._send(HubSpotError(code, category, message or HTTPStatus(code).phrase).response())

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)
