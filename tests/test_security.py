"""Security headers, the sign-in throttle, production's refusal to start half-configured, /healthz, and
navigation that never leads to a refusal."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from config.permissions import PIPELINE_ADMIN
from pipelines.models import Pipeline
from tests import factories, urlwalk
from tests.urlwalk import Dataset

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
ROUTES = urlwalk.routes()


@pytest.fixture(scope="module")
def shared_world(django_db_setup: None, django_db_blocker: Any) -> Iterator[Dataset]:
    """Built once for the module; each test runs in a transaction that is rolled back."""
    with django_db_blocker.unblock():
        data = urlwalk.build_dataset()
    yield data
    with django_db_blocker.unblock():
        urlwalk.remove_dataset()


@pytest.fixture
def world(shared_world: Dataset, db: None) -> Dataset:
    return shared_world


def signed_in(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- the sign-in throttle ---------------------------------------------------------------------------------


def sign_in(client: Client, username: str, password: str, url: str = "/login/", **extra: Any) -> Any:
    return client.post(url, {"username": username, "password": password}, **extra)


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


class TestSignInThrottle:
    @pytest.fixture(autouse=True)
    def fast_hashing(self, settings: Any) -> None:
        # Dozens of sign-ins per test: a fast hasher (the throttle does not depend on which).
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    def test_an_account_is_locked_after_its_failures_even_with_the_right_password(self) -> None:
        user = factories.support_user()
        client = Client()
        for _ in range(5):
            assert sign_in(client, user.username, "wrong").status_code == 200
        response = sign_in(client, user.username, factories.PASSWORD)
        assert response.status_code == 200
        assert "Too many failed sign-ins; try again in 15 minutes." in response.content.decode()
        assert not is_signed_in(client)
        # The lock is the account's, whatever the case it is typed in.
        assert "Too many failed" in sign_in(client, user.username.upper(), "wrong").content.decode()

    def test_fewer_failures_than_the_limit_do_not_lock(self) -> None:
        user = factories.support_user()
        client = Client()
        for _ in range(4):
            sign_in(client, user.username, "wrong")
        assert sign_in(client, user.username, factories.PASSWORD).status_code == 302
        assert is_signed_in(client)

    def test_a_successful_sign_in_clears_the_account_count(self) -> None:
        user = factories.support_user()
        for _ in range(2):
            client = Client()
            for _ in range(4):
                sign_in(client, user.username, "wrong")
            assert sign_in(client, user.username, factories.PASSWORD).status_code == 302

    def test_the_admin_sign_in_is_throttled_too(self) -> None:
        user = factories.pipeline_admin(is_staff=True, is_superuser=True)
        client = Client()
        for _ in range(5):
            assert sign_in(client, user.username, "wrong", "/admin/login/").status_code == 200
        response = sign_in(client, user.username, factories.PASSWORD, "/admin/login/")
        assert "Too many failed sign-ins; try again in 15 minutes." in response.content.decode()
        assert not is_signed_in(client)
        # It is one count: /login/ refuses the account as well.
        assert "Too many failed" in sign_in(client, user.username, factories.PASSWORD).content.decode()

    def test_an_address_is_locked_across_accounts(self) -> None:
        user = factories.support_user()
        attacker = Client(REMOTE_ADDR="203.0.113.7")
        for n in range(20):
            # A forged X-Forwarded-For changes nothing: no proxy is trusted by default.
            sign_in(attacker, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        response = sign_in(attacker, user.username, factories.PASSWORD)
        assert "Too many failed sign-ins" in response.content.decode()
        assert not is_signed_in(attacker)
        # The same account from another address is not locked (it failed nowhere).
        assert sign_in(Client(REMOTE_ADDR="192.0.2.10"), user.username, factories.PASSWORD).status_code == 302

    def test_the_address_behind_trusted_proxies_is_the_clients(self, settings: Any) -> None:
        settings.LOGIN_THROTTLE_PROXY_COUNT = 1
        user = factories.support_user()
        proxy = Client(REMOTE_ADDR="10.0.0.2")
        for n in range(20):
            sign_in(proxy, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.7")
        assert (
            "Too many failed"
            in sign_in(
                proxy, user.username, factories.PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7"
            ).content.decode()
        )
        # Another client behind the same proxy still signs in.
        response = sign_in(proxy, user.username, factories.PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.10")
        assert response.status_code == 302

    def test_the_lock_ends_after_the_lockout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        user = factories.support_user()
        client = Client()
        for _ in range(5):
            sign_in(client, user.username, "wrong")
        assert "Too many failed" in sign_in(client, user.username, factories.PASSWORD).content.decode()
        later = time.time() + 15 * 60 + 1
        monkeypatch.setattr(time, "time", lambda: later)
        assert sign_in(client, user.username, factories.PASSWORD).status_code == 302

    def test_failures_and_the_lock_are_logged_without_the_password(self, caplog: Any) -> None:
        user = factories.support_user()
        with caplog.at_level(logging.WARNING, logger="orderdeck.signin"):
            for _ in range(6):
                sign_in(Client(), user.username, "hunter2-secret")
        text = "\n".join(record.getMessage() for record in caplog.records)
        assert f"sign-in failed: account '{user.username}' from address 127.0.0.1" in text
        assert "sign-in locked for 900 s: 5 failed sign-ins for the account" in text
        assert "sign-in refused while locked" in text
        assert "hunter2-secret" not in text
        assert all(record.levelno == logging.WARNING for record in caplog.records)


# --- Content-Security-Policy and caching ------------------------------------------------------------------

GET_PAGES = [r for r in ROUTES if r.name not in urlwalk.NOT_PAGES]


def test_the_policy_is_strict(client: Any) -> None:
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "unsafe" not in policy


# Documents of mail HTML, shown only in sandboxed frames, with a policy of their own.
MAIL_HTML = {"carts:preview-html", "carts:mailbox-html", "carts:template-preview-html"}


@pytest.mark.parametrize("route", GET_PAGES, ids=[r.name for r in GET_PAGES])
def test_every_page_has_the_policy_and_no_inline_script(route: urlwalk.Route, world: Dataset) -> None:
    """Every page, as a person in both groups and the admin (so admin pages too), and signed out."""
    policy = Client().get("/login/")["Content-Security-Policy"]
    for client in (signed_in(world.users["both"]), Client()):
        for path in [urlwalk.fill(route, combo) for combo in urlwalk.real_values(route, world)]:
            response = client.get(path)
            if route.name in MAIL_HTML and response.status_code == 200:
                # A mail's HTML (a preview, a Mailbox message) is its own sandboxed document: no script.
                mail_policy = response["Content-Security-Policy"]
                assert mail_policy.startswith("sandbox "), path
                assert "default-src 'none'" in mail_policy and "script-src" not in mail_policy, path
                continue
            assert response["Content-Security-Policy"] == policy, path
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            page = urlwalk.parse(response.content.decode())
            assert page.inline_scripts == 0, f"{path}: an inline <script>"
            assert page.inline_handlers == [], f"{path}: {page.inline_handlers}"
            if not route.name.startswith("admin:"):
                # Django's admin adds a <style> to a changelist without actions (a column width only).
                assert page.inline_styles == 0, f"{path}: an inline <style>"
                assert page.style_attributes == [], f"{path}: {page.style_attributes}"


def test_pages_include_htmx_without_its_inline_styles(world: Dataset) -> None:
    html = signed_in(world.users["support"]).get(f"/boards/{world.pipeline.pk}/").content.decode()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles":false}'>""" in html
    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert ".htmx-request .htmx-indicator" in css


@pytest.mark.parametrize(
    "path",
    [
        "/boards/{pk}/",
        "/boards/{pk}/table/",
        "/boards/{pk}/export.csv",
        "/boards/orders/{order}/",
        "/carts/",
        "/sync/",
        "/healthz",
    ],
)
def test_what_staff_see_is_never_stored(world: Dataset, path: str) -> None:
    client = signed_in(world.users["support"])
    response = client.get(path.format(pk=world.pipeline.pk, order=world.orders[0].hubspot_id))
    assert response.status_code == 200
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= cache_control


def test_static_files_keep_their_caching(world: Dataset) -> None:
    response = signed_in(world.users["support"]).get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


# --- production refuses to start half-configured --------------------------------------------------------

PRODUCTION = {
    "ORDERDECK_MODE": "production",
    "SECRET_KEY": "x7#kq2!vT9zLr4@pWm8$eN3^bYc6&hJd1*sFg5(uA0)oXi-Q+Rt7Lm2Vz",
    "ALLOWED_HOSTS": "orders.shop.example",
    "DATABASE_URL": "postgres://orderdeck:secret@db.internal:5432/orderdeck",
    "CELERY_BROKER_URL": "redis://cache.internal:6379/0",
    "HUBSPOT_ACCESS_TOKEN": "pat-eu1-00000000-0000-0000-0000-000000000000",
    "HUBSPOT_CLIENT_SECRET": "0000aaaa-1111-bbbb-2222-cccc3333dddd",
}
REQUIRED = [
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_CLIENT_SECRET",
]


def import_settings(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Import config.settings in a fresh interpreter that sees only these variables (and the path)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "ORDERDECK_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DATABASES['default']['ENGINE'])"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_names_everything_that_is_missing_at_once(tmp_path: Path) -> None:
    result = import_settings({"ORDERDECK_MODE": "production"}, tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert "not set: " + ", ".join(REQUIRED) in last


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_each_missing_setting(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = import_settings(env, tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith(f"which are not set: {missing}. See .env.example.")


def test_production_with_everything_set_starts(tmp_path: Path) -> None:
    result = import_settings(PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_an_empty_value_counts_as_missing(tmp_path: Path) -> None:
    result = import_settings({**PRODUCTION, "HUBSPOT_ACCESS_TOKEN": " "}, tmp_path)
    assert "not set: HUBSPOT_ACCESS_TOKEN." in result.stderr


# --- /healthz ---------------------------------------------------------------------------------------------


class TestHealthz:
    def test_anonymous_callers_get_the_status_alone(self, client: Any) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_anonymous_callers_learn_nothing_of_a_failure(self, client: Any, settings: Any) -> None:
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "error"}

    def test_staff_get_the_details(self, support_client: Any) -> None:
        body = support_client.get("/healthz").json()
        assert set(body["checks"]) == {"database", "broker", "worker"}


# --- navigation: no link leads to a refusal ----------------------------------------------------------------


def _links(html: str) -> list[str]:
    return [href for href in urlwalk.parse(html).links if href.startswith("/")]


@pytest.mark.parametrize("role", ["support", "pipeline_admin", "both", "no_group"])
def test_no_link_leads_to_a_refusal(world: Dataset, role: str) -> None:
    """From the start page, every link a person is shown (two clicks deep) opens without a 403."""
    user = factories.UserFactory() if role == "no_group" else world.users[role]
    client = signed_in(user)
    start = client.get("/", follow=True)
    assert start.status_code == 200
    seen: set[str] = set()
    frontier = [(start.redirect_chain[-1][0] if start.redirect_chain else "/", start.content.decode())]
    for _depth in range(2):
        found = []
        for page, html in frontier:
            for href in _links(html):
                path = urlsplit(href).path
                if path in seen or path.startswith(("/static/", "/logout")):
                    continue
                seen.add(path)
                response = client.get(href)
                assert response.status_code != 403, f"{page} links to {href}, which refuses a {role} user"
                if response.status_code == 200 and "html" in response.get("Content-Type", ""):
                    found.append((href, response.content.decode()))
        frontier = found
    assert seen  # the start page had links to follow


def test_a_pipeline_admin_alone_sees_pipelines_but_no_boards(world: Dataset) -> None:
    client = signed_in(world.users["pipeline_admin"])
    response = client.get("/")
    assert response["Location"] == "/pipelines/"
    html = client.get("/pipelines/").content.decode()
    assert ">Pipelines</a>" in html
    for text in (">Boards</a>", ">Abandoned carts</a>", ">Sync</a>", "Open the board"):
        assert text not in html


def test_support_alone_sees_the_pipelines_link_to_the_read_only_editor(world: Dataset) -> None:
    client = signed_in(world.users["support"])
    html = client.get("/carts/").content.decode()
    assert ">Boards</a>" in html and ">Sync</a>" in html
    assert ">Pipelines</a>" in html
    page = client.get("/pipelines/")
    assert page.status_code == 200
    assert "hx-post" not in page.content.decode()


def test_a_user_in_no_group_is_told_so(world: Dataset) -> None:
    response = signed_in(factories.UserFactory()).get("/")
    assert response.status_code == 200
    assert "Your account has no access yet" in response.content.decode()


def test_the_favicon_is_linked_and_answers(client: Any) -> None:
    html = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)


# --- Django admin -------------------------------------------------------------------------------------------


class TestAdmin:
    def test_pipelines_are_neither_added_nor_deleted(self, world: Dataset) -> None:
        client = signed_in(world.users["both"])
        before = Pipeline.objects.count()
        assert client.get("/admin/pipelines/pipeline/add/").status_code == 403
        assert client.post("/admin/pipelines/pipeline/add/", {"label": ""}).status_code == 403
        assert Pipeline.objects.count() == before
        delete = f"/admin/pipelines/pipeline/{world.pipeline.pk}/delete/"
        assert client.post(delete, {"post": "yes"}).status_code == 403
        assert Pipeline.objects.filter(pk=world.pipeline.pk).exists()
        changelist = client.get("/admin/pipelines/pipeline/").content.decode()
        assert "/admin/pipelines/pipeline/add/" not in changelist

    def test_pipelines_are_read_only_there_the_editor_changes_them(self, world: Dataset) -> None:
        client = signed_in(world.users["both"])
        change = f"/admin/pipelines/pipeline/{world.pipeline.pk}/change/"
        page = client.get(change)
        assert page.status_code == 200  # shown, to read
        html = page.content.decode()
        assert 'name="stale_after_days"' not in html and 'name="card_properties"' not in html
        assert 'name="stages-0-required_properties"' not in html
        before = world.pipeline.stale_after_days
        assert client.post(change, {"stale_after_days": "99"}).status_code == 403
        world.pipeline.refresh_from_db()
        assert world.pipeline.stale_after_days == before


def test_a_pipeline_admin_who_is_staff_without_admin_rights_gets_no_admin_link(world: Dataset) -> None:
    user = factories.UserFactory(groups=[PIPELINE_ADMIN], is_staff=True)
    html = signed_in(user).get("/pipelines/").content.decode()
    assert "Board settings and stage rules" not in html


# --- in Chromium: the admin and the sign-in page run under the policy ---------------------------------------


@pytest.fixture
def violations(page: Any) -> Iterator[list[str]]:
    """CSP violations the browser reports while the test runs."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: found.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield found


@pytest.mark.browser
def test_the_admin_works_under_the_policy(
    live_server: Any, page: Any, violations: list[str], transactional_db: None
) -> None:
    user = factories.pipeline_admin(is_staff=True, is_superuser=True)
    other = factories.support_user()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/auth/user/{other.pk}/change/")
    page.fill("input[name=first_name]", "Robin")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/auth/user/")
    other.refresh_from_db()
    assert other.first_name == "Robin"
    # The admin's own scripts run: actions.js counts the rows "select all" ticks.
    page.goto(f"{live_server.url}/admin/auth/user/")
    page.check("#action-toggle")
    counted = re.match(r"(\d+) of (\d+) selected", page.locator(".action-counter").inner_text())
    assert counted and counted[1] == counted[2] != "0"
    assert [v for v in violations if "script-src" in v] == []
