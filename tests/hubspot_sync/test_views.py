"""The start page, /healthz and the Sync page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sync.models import WorkerHeartbeat
from hubspot_sync.services import worker_heartbeat_record
from tests import factories

pytestmark = pytest.mark.django_db


class TestHealthz:
    def test_answers_json_without_a_login(self, client: Any) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}  # the details are for staff

    def test_gives_staff_the_details(self, support_client: Any) -> None:
        body = support_client.get("/healthz").json()
        assert body["status"] == "ok"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["broker"]["ok"] is True

    def test_reports_a_stale_worker_but_stays_up(self, support_client: Any) -> None:
        WorkerHeartbeat.objects.create(hostname="w1", beat_at=timezone.now() - timedelta(hours=1))
        body = support_client.get("/healthz").json()
        assert body["status"] == "ok"
        assert body["checks"]["worker"]["ok"] is False
        assert body["checks"]["worker"]["last_heartbeat"] is not None

    def test_reports_a_live_worker(self, support_client: Any) -> None:
        worker_heartbeat_record(hostname="w1")
        assert support_client.get("/healthz").json()["checks"]["worker"]["ok"] is True

    def test_an_unreachable_broker_is_503(self, support_client: Any, settings: Any) -> None:
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        response = support_client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["checks"]["broker"]["ok"] is False

    def test_is_never_cached(self, client: Any) -> None:
        assert "no-cache" in client.get("/healthz")["Cache-Control"]


class TestPages:
    def test_home_goes_to_the_boards(self, support_client: Any) -> None:
        response = support_client.get("/")
        assert response.status_code == 302
        assert response["Location"] == "/boards/"

    @pytest.mark.parametrize("url", ["/boards/", "/carts/", "/sync/"])
    def test_support_pages_render_with_the_navigation(self, support_client: Any, url: str) -> None:
        response = support_client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        for label in ("Boards", "Abandoned carts", "Sync"):
            assert f">{label}</a>" in html
        assert ">Pipelines</a>" in html  # Support reads the pipelines (Pipeline admins edit them)
        assert 'aria-current="page"' in html
        assert "hx-headers" in html and "X-CSRFToken" in html

    def test_support_reads_the_pipelines_and_may_not_edit_them(self, support_client: Any) -> None:
        response = support_client.get("/pipelines/")
        assert response.status_code == 200
        assert "hx-post" not in response.content.decode()
        refused = support_client.post("/pipelines/new/", {"label": "X", "stage_label": "A"})
        assert refused.status_code == 403
        assert "Pipeline admin" in refused.content.decode()

    def test_pipeline_admin_opens_pipelines(self, client: Any) -> None:
        client.force_login(factories.pipeline_admin())
        assert client.get("/pipelines/").status_code == 200

    def test_a_user_in_no_group_is_refused_support_pages(self, client: Any) -> None:
        client.force_login(factories.UserFactory())
        assert client.get("/boards/").status_code == 403

    def test_the_worker_banner_shows_only_when_no_worker_reports(self, support_client: Any) -> None:
        assert "No background worker" in support_client.get("/boards/").content.decode()
        worker_heartbeat_record(hostname="w1")
        assert "No background worker" not in support_client.get("/boards/").content.decode()


class TestLogin:
    def test_sign_in_and_out(self, client: Any, support_user: Any) -> None:
        response = client.post("/login/", {"username": support_user.username, "password": factories.PASSWORD})
        assert response.status_code == 302
        assert client.get("/boards/").status_code == 200
        client.post("/logout/")
        assert client.get("/boards/").status_code == 302

    def test_a_wrong_password_says_so_in_the_page(self, client: Any, support_user: Any) -> None:
        response = client.post("/login/", {"username": support_user.username, "password": "nope"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    def test_login_post_needs_the_csrf_token(self, support_user: Any) -> None:
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        response = strict.post("/login/", {"username": support_user.username, "password": factories.PASSWORD})
        assert response.status_code == 403
