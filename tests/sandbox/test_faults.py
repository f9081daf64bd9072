"""Fault injection: 5xx, hangs, dropped connections, 429 storms, 423 locks, latency (DESIGN §8)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.testing import start_sandbox
from tests.sandbox.helpers import assert_error

pytestmark = pytest.mark.sandbox(empty=True)

LIST = "/crm/v3/objects/orders"


def set_faults(api: Any, *rules: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"rules": list(rules)}
    if seed is not None:
        body["seed"] = seed
    response = api.put("/_sandbox/faults", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_an_error_rule_answers_5xx_in_hubspots_shape_on_its_path_and_method_only(sandbox_api):
    set_faults(sandbox_api, {"kind": "error", "path": "/objects/orders", "method": "GET", "status": 503})
    assert_error(sandbox_api.get(LIST), 503, "INTERNAL_ERROR")
    assert sandbox_api.get("/crm/v3/objects/contacts").status_code == 200
    assert sandbox_api.post(LIST, json={"properties": {"hs_order_name": "x"}}).status_code == 201


def test_without_a_status_errors_are_hubspots_common_5xx(sandbox_api):
    set_faults(sandbox_api, {"kind": "error"})
    statuses = {sandbox_api.get(LIST).status_code for _ in range(30)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) > 1


def test_probabilities_are_seeded_so_runs_repeat(sandbox_api):
    def run() -> list[int]:
        set_faults(sandbox_api, {"kind": "error", "probability": 0.5, "status": 500}, seed=7)
        return [sandbox_api.get(LIST).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 200 in first and 500 in first


def test_a_storm_answers_429s_then_passes(sandbox_api):
    set_faults(sandbox_api, {"kind": "storm", "count": 2})
    responses = [sandbox_api.get(LIST) for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 200]
    body = assert_error(responses[0], 429, None)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert responses[0].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in responses[0].headers
    stats = sandbox_api.get("/_sandbox/stats").json()
    assert stats["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 2}
    assert stats["faults"] == {"storm": 2}


@pytest.mark.sandbox(empty=True, retry_after=True)
def test_a_storm_sends_retry_after_when_switched_on(sandbox_api):
    set_faults(sandbox_api, {"kind": "storm"})
    assert sandbox_api.get(LIST).headers["Retry-After"] == "10"


def test_a_storm_can_use_the_daily_policy(sandbox_api):
    set_faults(sandbox_api, {"kind": "storm", "policy": "DAILY"})
    assert assert_error(sandbox_api.get(LIST), 429, None)["policyName"] == "DAILY"


def test_a_periodic_storm_is_over_outside_its_duration(sandbox_api):
    set_faults(sandbox_api, {"kind": "storm", "period_s": 3600, "duration_s": 0})
    assert sandbox_api.get(LIST).status_code == 200


def test_a_lock_answers_423(sandbox_api):
    set_faults(sandbox_api, {"kind": "lock", "method": "PATCH"})
    created = sandbox_api.post(LIST, json={"properties": {"hs_order_name": "x"}}).json()
    response = sandbox_api.patch(f"{LIST}/{created['id']}", json={"properties": {"hs_order_name": "y"}})
    assert_error(response, 423, "LOCKED")


def test_a_dropped_connection_is_a_network_error(sandbox_api):
    set_faults(sandbox_api, {"kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        sandbox_api.get(LIST)
    assert sandbox_api.get(LIST).status_code == 200
    assert sandbox_api.get("/_sandbox/stats").json()["dropped"] == 1


def test_a_hung_write_times_the_client_out_and_still_happens(sandbox_api):
    set_faults(sandbox_api, {"kind": "hang", "hang_s": 0.3, "method": "POST", "count": 1})
    with pytest.raises(requests.Timeout):
        sandbox_api.post(LIST, json={"properties": {"hs_order_name": "late"}}, timeout=0.05)
    deadline = time.monotonic() + 10
    while not sandbox_api.get(LIST).json()["results"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["id"] for r in sandbox_api.get(LIST).json()["results"]]


def test_a_hung_request_can_be_dropped_instead(sandbox, sandbox_api):
    set_faults(sandbox_api, {"kind": "hang", "hang_s": 0.1, "apply": False, "method": "POST", "count": 1})
    with pytest.raises(requests.ConnectionError):
        sandbox_api.post(LIST, json={"properties": {"hs_order_name": "never"}})
    assert sandbox.state.records["orders"] == {}


def test_stopping_the_sandbox_cuts_hung_requests_short():
    sandbox = start_sandbox(empty=True, faults=[FaultRule("hang", hang_s=600)])
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(
                requests.get(
                    f"{sandbox.url}{LIST}", headers={"Authorization": "Bearer sandbox-token"}, timeout=60
                ).status_code
            )
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 10
    while sandbox.stats.json()["requests"] == 0 and not sandbox.faults.fired and time.monotonic() < deadline:
        time.sleep(0.01)
    sandbox.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)


def test_latency_is_applied_and_counted(sandbox_api):
    set_faults(sandbox_api, {"kind": "latency", "latency_ms": 5, "jitter_ms": 5})
    assert sandbox_api.get(LIST).status_code == 200
    assert sandbox_api.get("/_sandbox/stats").json()["faults"] == {"latency": 1}


def test_admin_endpoint_adds_lists_and_clears_rules(sandbox_api):
    assert sandbox_api.get("/_sandbox/faults").json()["rules"] == []
    sandbox_api.post("/_sandbox/faults", json={"kind": "error", "probability": 0.25, "path": "search"})
    [rule] = sandbox_api.get("/_sandbox/faults").json()["rules"]
    assert (rule["kind"], rule["probability"], rule["path"]) == ("error", 0.25, "search")
    assert sandbox_api.delete("/_sandbox/faults").status_code == 204
    assert sandbox_api.get("/_sandbox/faults").json()["rules"] == []


@pytest.mark.parametrize(
    "rule", [{"kind": "meteor"}, {"kind": "error", "probability": 2}, {"kind": "error", "colour": 1}]
)
def test_bad_rules_are_refused(sandbox_api, rule):
    assert sandbox_api.put("/_sandbox/faults", json={"rules": [rule]}).status_code == 400


def test_faults_come_after_auth(sandbox):
    sandbox.faults.set([FaultRule("error", status=500)])
    assert requests.get(f"{sandbox.url}{LIST}", timeout=10).status_code == 401
