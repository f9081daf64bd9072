"""The server around the API: keep-alive, request stats, admin endpoints, config, lifecycle."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from hubspot_sandbox.cli import fault_rules
from hubspot_sandbox.server import Sandbox, SandboxConfig
from tests.sandbox.helpers import DEFAULT_PIPELINE, order

LIST = "/crm/v3/objects/orders"


def test_starts_on_a_free_port_with_defaults_and_a_small_seed(sandbox, sandbox_api):
    assert sandbox.url.startswith("http://127.0.0.1:")
    body = sandbox_api.get(LIST, params={"properties": "hs_order_name,hs_pipeline"}).json()
    assert len(body["results"]) == 10 and "paging" in body
    assert all(r["properties"]["hs_order_name"] for r in body["results"])


@pytest.mark.sandbox(empty=True)
def test_connections_are_kept_alive_across_answers_and_errors(sandbox, sandbox_api):
    for path in (LIST, "/crm/v3/objects/orders/1", "/crm/v3/nothing", LIST):
        sandbox_api.get(path)
    sandbox_api.post(LIST, json={"properties": {}})
    pools = sandbox_api.get_adapter(sandbox.url).poolmanager.pools
    # urllib3's pool container refuses plain iteration; keys() is its way
    assert [pools[key].num_connections for key in pools.keys()] == [1]  # noqa: SIM118


@pytest.mark.sandbox(empty=True)
def test_stats_count_api_calls_by_method_route_status_and_type(sandbox_api):
    created = order(sandbox_api)
    sandbox_api.get(f"{LIST}/{created['id']}")
    sandbox_api.get(f"/crm/v3/objects/0-123/{created['id']}")
    sandbox_api.post("/crm/v3/objects/contacts/search", json={})
    sandbox_api.get("/_sandbox/health")
    stats = sandbox_api.get("/_sandbox/stats").json()
    assert stats["requests"] == 4
    assert stats["by_method"] == {"POST": 2, "GET": 2}
    assert stats["by_route"] == {
        "POST /crm/v3/objects/{objectType}": 1,
        "GET /crm/v3/objects/{objectType}/{objectId}": 2,
        "POST /crm/v3/objects/{objectType}/search": 1,
    }
    assert stats["by_status"] == {"201": 1, "200": 3}
    assert stats["by_object_type"] == {"orders": 3, "contacts": 1}
    assert stats["rate_limited"] == 0
    assert sandbox_api.delete("/_sandbox/stats").status_code == 204
    assert sandbox_api.get("/_sandbox/stats").json()["requests"] == 0


def test_reset_clears_data_and_keeps_the_defaults(sandbox, sandbox_api):
    assert sandbox_api.post("/_sandbox/reset").json() == {"reset": True}
    assert sandbox_api.get(LIST).json()["results"] == []
    created = order(sandbox_api)
    assert created["properties"]["hs_pipeline"] == DEFAULT_PIPELINE
    assert sandbox_api.get("/crm/v3/pipelines/orders").status_code == 200


@pytest.mark.sandbox(empty=True)
def test_seed_endpoint_makes_records(sandbox_api):
    counts = sandbox_api.post("/_sandbox/seed", json={"contacts": 3, "orders": 4, "carts": 2}).json()
    assert (counts["contacts"], counts["orders"], counts["carts"]) == (3, 4, 2)
    assert len(sandbox_api.get(LIST).json()["results"]) == 4


@pytest.mark.sandbox(empty=True)
def test_config_can_be_read_and_changed(sandbox, sandbox_api):
    config = sandbox_api.get("/_sandbox/config").json()
    assert config["rate_limits"] is True and config["search_lag_s"] == 0.0
    changed = sandbox_api.patch("/_sandbox/config", json={"search_lag_s": 5, "retry_after": True}).json()
    assert changed["search_lag_s"] == 5 and changed["retry_after"] is True
    assert sandbox_api.patch("/_sandbox/config", json={"colour": "red"}).status_code == 400


@pytest.mark.sandbox(empty=True)
def test_restore_brings_a_record_back(sandbox_api):
    created = order(sandbox_api)
    sandbox_api.delete(f"{LIST}/{created['id']}")
    restored = sandbox_api.post(f"/_sandbox/restore/orders/{created['id']}").json()
    assert restored["archived"] is False
    assert sandbox_api.get(f"{LIST}/{created['id']}").status_code == 200


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.sandbox(empty=True)
def test_a_webhook_target_set_over_admin_receives_signed_events(sandbox_api):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
        body = sandbox_api.put("/_sandbox/webhook", json={"url": url, "secret": "s3cret"}).json()
        assert body["url"] == url and body["hasSecret"] is True
        created = order(sandbox_api, "Hooked")
        deadline = time.monotonic() + 10
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        headers, events = _Receiver.received[0]
        assert "X-HubSpot-Signature-v3" in headers
        assert any(e["objectId"] == int(created["id"]) for e in events)
        sandbox_api.put("/_sandbox/webhook", json={"url": None})
        assert sandbox_api.get("/_sandbox/webhook").json()["url"] is None
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_stop_closes_kept_alive_connections():
    sandbox = Sandbox(SandboxConfig())
    sandbox.start()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer sandbox-token"
    url = sandbox.url
    assert session.get(f"{url}{LIST}", timeout=10).status_code == 200
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}{LIST}", timeout=10)


def test_command_flags_become_fault_rules():
    rules = fault_rules(
        {
            "latency_ms": 150,
            "jitter_ms": 50,
            "error_rate": 0.1,
            "hang_rate": 0.01,
            "hang_s": 45,
            "storm": "60:5",
        }
    )
    assert [(r.kind, r.probability) for r in rules] == [
        ("latency", 1.0),
        ("error", 0.1),
        ("hang", 0.01),
        ("storm", 1.0),
    ]
    assert (rules[0].latency_ms, rules[0].jitter_ms, rules[2].hang_s) == (150, 50, 45)
    assert (rules[3].period_s, rules[3].duration_s) == (60, 5)


def test_a_snapshot_is_saved_on_stop_and_loaded_on_start(tmp_path):
    path = str(tmp_path / "sandbox.snapshot")
    first = Sandbox(SandboxConfig(snapshot_path=path))
    first.start()
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer sandbox-token"
        created = session.post(
            f"{first.url}{LIST}", json={"properties": {"hs_order_name": "Kept"}}, timeout=10
        )
        order_id = created.json()["id"]
    first.stop()
    second = Sandbox(SandboxConfig(snapshot_path=path, seed_orders=5, seed_contacts=5))
    second.start()
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = "Bearer sandbox-token"
            again = session.get(
                f"{second.url}{LIST}/{order_id}", params={"properties": "hs_order_name"}, timeout=10
            )
            assert again.json()["properties"]["hs_order_name"] == "Kept"
            # loaded, so not seeded on top
            assert len(session.get(f"{second.url}{LIST}", timeout=10).json()["results"]) == 1
    finally:
        second.stop(save_snapshot=False)


def test_live_activity_can_be_switched_on_and_off(sandbox, sandbox_api):
    before = sandbox_api.get("/_sandbox/health").json()["records"]
    events: list[Any] = []
    sandbox.state.subscribe(events.append)
    body = sandbox_api.put("/_sandbox/live", json={"enabled": True, "interval_s": 0.02}).json()
    assert body == {"enabled": True, "interval_s": 0.02}
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox_api.put("/_sandbox/live", json={"enabled": False}).json()["enabled"] is False
    assert events, f"no live change within 10 s (records before: {before})"
