"""Rate limits: the 10-second window per token, the daily budget, search's own limit (reference §3)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.sandbox.helpers import assert_error

LIST = "/crm/v3/objects/orders"
SEARCH = "/crm/v3/objects/orders/search"


def get_as(sandbox, token: str) -> requests.Response:
    return requests.get(f"{sandbox.url}{LIST}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.sandbox(empty=True)
def test_non_search_responses_carry_the_rate_limit_headers(sandbox_api):
    first = sandbox_api.get(LIST)
    second = sandbox_api.get(LIST)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "625000"
    assert (
        int(first.headers["X-HubSpot-RateLimit-Remaining"])
        == int(second.headers["X-HubSpot-RateLimit-Remaining"]) + 1
    )
    assert int(second.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 625_000 - 2
    assert first.headers["X-HubSpot-RateLimit-Secondly"] == "19"
    assert "X-HubSpot-RateLimit-Secondly-Remaining" in first.headers
    assert "Retry-After" not in first.headers


@pytest.mark.parametrize(
    ("tier", "window", "daily"), [("starter", "100", "250000"), ("enterprise", "190", "1000000")]
)
def test_tiers_set_the_limits(tier, window, daily):
    from hubspot_sandbox.testing import start_sandbox

    sandbox = start_sandbox(empty=True, tier=tier)
    try:
        response = get_as(sandbox, "sandbox-token")
        assert response.headers["X-HubSpot-RateLimit-Max"] == window
        assert response.headers["X-HubSpot-RateLimit-Daily"] == daily
    finally:
        sandbox.stop()


@pytest.mark.sandbox(empty=True, ten_second_limit=3, window_ms=60_000)
def test_the_window_answers_429_ten_secondly_rolling_when_used_up(sandbox, sandbox_api):
    remaining = [sandbox_api.get(LIST).headers["X-HubSpot-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    response = sandbox_api.get(LIST)
    body = assert_error(response, 429, None)
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["groupName"].startswith("publicapi:")
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in response.headers  # UNCONFIRMED; off by default
    stats = sandbox_api.get("/_sandbox/stats").json()
    assert stats["rate_limited"] == 1 and stats["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 1}


@pytest.mark.sandbox(empty=True, ten_second_limit=2, window_ms=60_000, retry_after=True)
def test_retry_after_can_be_switched_on(sandbox_api):
    sandbox_api.get(LIST)
    sandbox_api.get(LIST)
    response = sandbox_api.get(LIST)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60


@pytest.mark.sandbox(empty=True, ten_second_limit=2, window_ms=300)
def test_the_window_rolls(sandbox_api):
    assert [sandbox_api.get(LIST).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.35)
    assert sandbox_api.get(LIST).status_code == 200


@pytest.mark.sandbox(empty=True, token=None, ten_second_limit=2, window_ms=60_000)
def test_each_token_has_its_own_window(sandbox):
    a, b = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    assert [get_as(sandbox, a).status_code for _ in range(3)] == [200, 200, 429]
    assert get_as(sandbox, b).status_code == 200


@pytest.mark.sandbox(empty=True, token=None, daily_limit=3)
def test_the_daily_budget_is_per_account_and_answers_429_daily(sandbox):
    statuses = [get_as(sandbox, f"token-{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 200]
    response = get_as(sandbox, "token-new")
    body = assert_error(response, 429, None)
    assert body["policyName"] == "DAILY"
    assert body["message"] == "You have reached your daily limit."
    uuid.UUID(body["requestId"])
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


@pytest.mark.sandbox(
    empty=True, search_per_s=2, search_window_ms=60_000, ten_second_limit=2, window_ms=60_000
)
def test_search_has_its_own_limit_and_429(sandbox_api):
    assert [sandbox_api.post(SEARCH, json={}).status_code for _ in range(2)] == [200, 200]
    response = sandbox_api.post(SEARCH, json={})
    body = assert_error(response, 429, None)
    assert body["message"] == "You have reached your secondly limit."
    assert body["policyName"] == "SECONDLY"
    assert not [h for h in response.headers if h.lower().startswith("x-hubspot-ratelimit")]
    # searches did not use up the 10-second window
    assert [sandbox_api.get(LIST).status_code for _ in range(2)] == [200, 200]


@pytest.mark.sandbox(empty=True, ten_second_limit=1, window_ms=60_000, rate_limits=False)
def test_with_limits_off_headers_are_sent_and_nothing_refused(sandbox_api):
    responses = [sandbox_api.get(LIST) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[-1].headers["X-HubSpot-RateLimit-Remaining"] == "0"


@pytest.mark.sandbox(empty=True, ten_second_limit=1, window_ms=60_000)
def test_limits_can_be_changed_while_running(sandbox_api):
    assert [sandbox_api.get(LIST).status_code for _ in range(2)] == [200, 429]
    assert sandbox_api.patch("/_sandbox/config", json={"ten_second_limit": 50}).status_code == 200
    assert sandbox_api.get(LIST).status_code == 200
