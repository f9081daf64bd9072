"""The Sync page: runs with live progress, errors in plain words, "Sync now", the webhook log."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from hubspot_sync.models import ConnectionProblem, SyncKind, SyncRun, SyncStatus, WebhookEvent

pytestmark = pytest.mark.django_db


def test_lists_runs_problems_and_the_webhook_log(support_client: Any) -> None:
    SyncRun.objects.create(
        kind=SyncKind.FULL,
        object_types="orders",
        status=SyncStatus.SUCCEEDED,
        objects_written=1234,
        api_calls=17,
        finished_at=timezone.now(),
    )
    SyncRun.objects.create(
        kind=SyncKind.INCREMENTAL,
        object_types="orders",
        status=SyncStatus.FAILED,
        error_message="HubSpot rejected the access token.",
        error_detail='{"category":"INVALID_AUTHENTICATION"} <b>raw</b>',
    )
    ConnectionProblem.objects.create(kind=ConnectionProblem.Kind.AUTH, message="Fix the token, then sync.")
    WebhookEvent.objects.create(
        event_id="1",
        subscription_type="object.propertyChange",
        object_type="orders",
        object_id="301",
        payload={},
    )

    html = support_client.get("/sync/").content.decode()

    assert "1,234" in html and "Succeeded" in html
    assert "HubSpot rejected the access token." in html
    # HubSpot's raw message is shown on demand, and escaped.
    assert "<details><summary>HubSpot's message</summary>" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "<b>raw</b>" not in html
    assert "Fix the token, then sync." in html  # on the page and in the banner
    assert "object.propertyChange" in html and "301" in html


def test_a_running_run_polls_for_its_progress_and_a_finished_one_stops(support_client: Any) -> None:
    run = SyncRun.objects.create(
        kind=SyncKind.FULL, object_types="orders", progress_done=50, progress_total=200
    )
    response = support_client.get(f"/sync/runs/{run.pk}/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'hx-trigger="every 1s"' in html
    assert 'value="50"' in html and 'max="200"' in html
    assert "<html" not in html  # the row alone

    run.status = SyncStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.save()
    html = support_client.get(f"/sync/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html


def test_sync_now_queues_a_run_and_says_so(support_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[dict[str, Any]] = []
    from hubspot_sync import tasks

    monkeypatch.setattr(tasks.sync_incremental_task, "delay", lambda **kw: queued.append(kw))
    response = support_client.post("/sync/now/", {"kind": "incremental"}, follow=True)
    assert queued == [{"manual": True}]
    assert "A sync has been queued" in response.content.decode()


def test_sync_now_refuses_an_unknown_kind(support_client: Any) -> None:
    response = support_client.post("/sync/now/", {"kind": "everything"}, follow=True)
    assert "Unknown kind of sync" in response.content.decode()


def test_sync_now_needs_csrf_and_the_support_group(support_user: Any) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(support_user)
    assert strict.post("/sync/now/", {"kind": "incremental"}).status_code == 403

    from tests import factories

    outsider = Client()
    outsider.force_login(factories.UserFactory())
    assert outsider.post("/sync/now/", {"kind": "incremental"}).status_code == 403
