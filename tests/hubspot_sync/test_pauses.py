"""Pauses end: a daily-limit 429 without Retry-After pauses sync and push until the account's next midnight,
a successful probe, or a Pipeline admin's "Resume now"; tasks never die on HubSpot's errors; errors read in
plain words. Against the sandbox over HTTP (fault injection for the 429s and 5xx)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from hubspot_sandbox.faults import FaultRule
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import pauses, push, sync, tasks
from hubspot_sync.models import (
    Change,
    ChangeKind,
    ChangeStatus,
    ConnectionProblem,
    SyncKind,
    SyncLease,
    SyncRun,
)
from orders.models import Order
from tests import factories
from tests.hubspot_sync.test_sync import point_client_at

pytestmark = pytest.mark.django_db(transaction=True)

DAILY = FaultRule(kind="storm", policy="DAILY")  # the documented body: no Retry-After


@pytest.fixture
def portal(settings: Any) -> Iterator[Sandbox]:
    sandbox = start_sandbox(seed_contacts=8, seed_orders=12, seed_carts=4)
    point_client_at(settings, sandbox)
    settings.HUBSPOT_SYNC_DELETION_CHECK_EVERY = 1000
    settings.HUBSPOT_MAX_RETRIES = 2
    settings.HUBSPOT_RETRY_BASE_S = 0.01
    settings.HUBSPOT_RETRY_CAP_S = 0.02
    settings.HUBSPOT_RETRY_429_WAIT_S = 0.02
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tasks the code queued (recorded, not sent: no worker runs in these tests)."""
    sent: list[str] = []
    monkeypatch.setattr(tasks.sync_incremental_task, "delay", lambda *a, **k: sent.append("sync"))
    monkeypatch.setattr(tasks.push_changes_task, "delay", lambda *a, **k: sent.append("push"))
    monkeypatch.setattr(tasks.push_changes_task, "apply_async", lambda *a, **k: sent.append("push later"))
    return sent


def next_midnight(zone: str) -> datetime:
    local = datetime.now(ZoneInfo(zone))
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZoneInfo(zone))


def daily_pause(until: datetime | None = None) -> ConnectionProblem:
    return ConnectionProblem.objects.create(
        kind=ConnectionProblem.Kind.DAILY_LIMIT,
        message="HubSpot's daily API limit is spent until 00:00 UTC.",
        until=until if until is not None else timezone.now() + timedelta(hours=3),
    )


# --- the end of a daily-limit pause -------------------------------------------------------------------------


def test_a_daily_429_without_retry_after_pauses_until_midnight_in_the_account_zone(
    portal: Sandbox, settings: Any, queued: list[str]
) -> None:
    settings.HUBSPOT_ACCOUNT_TIMEZONE = "America/New_York"
    portal.faults.set([DAILY])

    run = sync.run_sync(SyncKind.FULL)

    problem = ConnectionProblem.objects.get(kind=ConnectionProblem.Kind.DAILY_LIMIT)
    assert problem.until == next_midnight("America/New_York")
    assert run.error_message.startswith("HubSpot's daily API limit is spent until 00:00 America/New_York")
    assert "daily limit" in run.error_detail  # HubSpot's own words, on demand
    # Sync and push both stop until then.
    with pytest.raises(sync.SyncHalted):
        sync.run_sync(SyncKind.INCREMENTAL, manual=True)
    assert push.paused() == problem


def test_a_push_that_meets_the_daily_limit_waits_for_the_reset_in_the_account_zone(
    portal: Sandbox, settings: Any, queued: list[str]
) -> None:
    settings.HUBSPOT_ACCOUNT_TIMEZONE = "Asia/Tokyo"
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    order = Order.objects.first()
    assert order is not None
    change = Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id=order.hubspot_id,
        base={"hs_order_name": order.name},
        new={"hs_order_name": "After the limit"},
    )
    portal.faults.set([DAILY])

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.PENDING
    assert change.next_attempt_at == next_midnight("Asia/Tokyo")
    assert "00:00 Asia/Tokyo" in change.error
    assert ConnectionProblem.objects.get().until == next_midnight("Asia/Tokyo")


def test_the_next_reset_is_computed_in_the_configured_zone(settings: Any) -> None:
    settings.HUBSPOT_ACCOUNT_TIMEZONE = "Europe/Berlin"
    # 22:30 UTC on 1 June is 00:30 in Berlin (summer time): the next reset is midnight of 2 to 3 June.
    after = datetime(2026, 6, 1, 22, 30, tzinfo=ZoneInfo("UTC"))
    assert pauses.next_daily_reset(after) == datetime(2026, 6, 2, 22, 0, tzinfo=ZoneInfo("UTC"))
    settings.HUBSPOT_ACCOUNT_TIMEZONE = "UTC"
    assert pauses.next_daily_reset(after) == datetime(2026, 6, 2, 0, 0, tzinfo=ZoneInfo("UTC"))
    settings.HUBSPOT_ACCOUNT_TIMEZONE = "Not/AZone"
    assert pauses.next_daily_reset(after) == datetime(2026, 6, 2, 0, 0, tzinfo=ZoneInfo("UTC"))


def test_the_pause_ends_when_its_reset_passes(portal: Sandbox, queued: list[str]) -> None:
    daily_pause(until=timezone.now() - timedelta(seconds=1))
    assert sync.run_sync(SyncKind.INCREMENTAL).status == "succeeded"
    assert not ConnectionProblem.objects.exists()


def test_a_pause_stored_without_an_end_ends_at_the_first_reset_after_it_began(queued: list[str]) -> None:
    stuck = ConnectionProblem.objects.create(
        kind=ConnectionProblem.Kind.DAILY_LIMIT, message="Stuck", until=None
    )
    assert sync.halted() == stuck  # still today's
    ConnectionProblem.objects.filter(pk=stuck.pk).update(since=timezone.now() - timedelta(days=1, minutes=1))
    assert sync.halted() is None
    assert push.paused() is None
    assert not ConnectionProblem.objects.exists()


def test_a_successful_probe_ends_the_pause_and_queues_a_sync_and_a_push(
    portal: Sandbox, settings: Any, queued: list[str]
) -> None:
    settings.HUBSPOT_DAILY_LIMIT_PROBE_S = 600
    daily_pause()
    portal.faults.set([DAILY])

    tasks.push_sweep_task()  # the sweep probes: HubSpot still refuses
    assert ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).exists()
    assert "sync" not in queued

    portal.faults.clear()
    tasks.push_sweep_task()  # not due yet: one probe per HUBSPOT_DAILY_LIMIT_PROBE_S
    assert ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).exists()

    SyncLease.objects.filter(name=pauses.PROBE_LEASE).update(expires_at=timezone.now() - timedelta(seconds=1))
    tasks.push_sweep_task()
    assert not ConnectionProblem.objects.exists()
    assert "sync" in queued and "push" in queued


def test_a_probe_leaves_a_rejected_token_alone(portal: Sandbox, queued: list[str]) -> None:
    ConnectionProblem.objects.create(kind=ConnectionProblem.Kind.AUTH, message="Fix the token")
    assert pauses.probe_daily_limit(force=True) is None
    assert ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.AUTH).exists()


# --- Resume now ---------------------------------------------------------------------------------------------


def test_resume_now_is_offered_to_pipeline_admins_and_ends_the_pause(queued: list[str]) -> None:
    daily_pause()
    admin = Client(enforce_csrf_checks=True)
    admin.force_login(factories.pipeline_admin())

    page = admin.get("/sync/").content.decode()
    assert "Resume now" in page and 'action="/sync/resume/"' in page
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]

    assert admin.post("/sync/resume/").status_code == 403  # no CSRF token
    assert ConnectionProblem.objects.exists()
    assert admin.get("/sync/resume/").status_code == 405
    response = admin.post("/sync/resume/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 302 and response["Location"] == "/sync/"
    assert not ConnectionProblem.objects.exists()
    assert queued == ["sync", "push"]


def test_resume_now_is_refused_to_support(support_client: Any, queued: list[str]) -> None:
    daily_pause()
    page = support_client.get("/sync/").content.decode()
    assert "Resume now" not in page

    assert support_client.post("/sync/resume/").status_code == 403

    assert ConnectionProblem.objects.exists() and queued == []


# --- tasks never die on HubSpot's errors --------------------------------------------------------------------


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_tasks_return_normally_on_a_rejected_token(
    portal: Sandbox, settings: Any, caplog: pytest.LogCaptureFixture, queued: list[str]
) -> None:
    caplog.set_level(logging.INFO)
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-00000000-0000-0000-0000-00000000dead"
    assert tasks.refresh_records_task("orders", ["1", "2"]) == 0
    problem = ConnectionProblem.objects.get()
    assert problem.kind == ConnectionProblem.Kind.AUTH and "HubSpot refused the" in problem.message
    assert tasks.sync_incremental_task() is None  # halted, logged, no run
    _no_tracebacks(caplog)


def test_tasks_return_normally_on_the_daily_limit(
    portal: Sandbox, caplog: pytest.LogCaptureFixture, queued: list[str]
) -> None:
    caplog.set_level(logging.INFO)
    portal.faults.set([DAILY])
    assert tasks.refresh_records_task("orders", ["1", "2"]) == 0
    problem = ConnectionProblem.objects.get()
    assert problem.kind == ConnectionProblem.Kind.DAILY_LIMIT and problem.until is not None
    assert tasks.refresh_records_task("orders", ["1"]) == 0  # paused: not even tried
    assert tasks.process_webhook_events_task() == 0
    _no_tracebacks(caplog)


def test_tasks_return_normally_when_hubspot_keeps_failing(
    portal: Sandbox, caplog: pytest.LogCaptureFixture, queued: list[str]
) -> None:
    caplog.set_level(logging.INFO)
    portal.faults.set([FaultRule(kind="error", status=503)])

    assert tasks.refresh_records_task("orders", ["1", "2"]) == 0
    run_id = tasks.sync_incremental_task()

    run = SyncRun.objects.get(pk=run_id)
    assert run.status == "failed"
    assert run.error_message.startswith("HubSpot had a server error (HTTP 503) for 3 tries")
    assert not ConnectionProblem.objects.exists()  # nothing to pause for: the next run tries again
    _no_tracebacks(caplog)


# --- plain words --------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_run_says_in_plain_words_what_happened(portal: Sandbox, settings: Any) -> None:
    token = settings.HUBSPOT_ACCESS_TOKEN
    settings.HUBSPOT_API_BASE = f"http://127.0.0.1:{_closed_port()}"
    unreachable = sync.run_sync(SyncKind.INCREMENTAL)
    assert unreachable.error_message.startswith("HubSpot was unreachable for 3 tries")
    assert "Retryable" not in unreachable.error_message

    settings.HUBSPOT_API_BASE = portal.url
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-00000000-0000-0000-0000-00000000dead"
    refused = sync.run_sync(SyncKind.INCREMENTAL)
    assert refused.error_message.startswith("HubSpot refused the token.")
    assert "HUBSPOT_ACCESS_TOKEN" in refused.error_message

    settings.HUBSPOT_ACCESS_TOKEN = token
    ConnectionProblem.objects.all().delete()
    portal.faults.set([DAILY])
    spent = sync.run_sync(SyncKind.INCREMENTAL)
    assert spent.error_message.startswith("HubSpot's daily API limit is spent until 00:00 UTC")


def test_a_failed_push_shows_hubspots_message_and_its_raw_answer_on_demand(support_client: Any) -> None:
    body = {
        "status": "error",
        "message": 'Property values were not valid: "abc" is not a number <script>',
        "category": "VALIDATION_ERROR",
        "correlationId": "3f0c",
    }
    Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id="301",
        new={"hs_total_price": "abc"},
        status=ChangeStatus.FAILED,
        error=f"HubSpot refused this change: {body['message']}",
        response={"status": 400, "message": body["message"], "category": "VALIDATION_ERROR", "body": body},
    )

    html = support_client.get("/sync/").content.decode()

    assert "HubSpot refused this change: Property values were not valid" in html
    assert "<details><summary>HubSpot&#x27;s answer</summary>" in html or (
        "<details><summary>HubSpot's answer</summary>" in html
    )
    assert "&quot;correlationId&quot;: &quot;3f0c&quot;" in html  # the raw JSON, escaped
    assert "<script>" not in html.split("<main", 1)[-1].split("</main>")[0]


def test_a_push_refused_by_hubspot_keeps_its_raw_answer(portal: Sandbox, queued: list[str]) -> None:
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    order = Order.objects.first()
    assert order is not None
    change = Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id=order.hubspot_id,
        base={"no_such_property": ""},
        new={"no_such_property": "x"},
    )

    push.push_outbox()

    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED, change.error
    # A batch's answer names each input's error: its fields, as HubSpot sent them, are what the page shows.
    assert '"category": "VALIDATION_ERROR"' in change.response_json
    assert "does not exist" in change.response_json and "objectWriteTraceId" in change.response_json
    assert change.error.startswith("HubSpot refused this change: Property values were not valid")
