"""Fixtures for the carts tests: a real SMTP server (the demo's aiosmtpd mail server on a free port), a
HubSpot sandbox whose carts are cached here, and the default recovery template."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from carts.mailbox import Mailbox, MailServer
from carts.models import Cart, RecoveryTemplate
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import client, ratelimit, sync
from hubspot_sync.models import Contact, SyncKind, SyncStatus

_DEFAULT = importlib.import_module("carts.migrations.0004_default_recovery_template")


def _set(settings: Any, monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """Set a setting here and in the environment, so a worker process started by the test has it too."""
    for name, value in values.items():
        monkeypatch.setenv(name, value)
        current = getattr(settings, name, None)
        if isinstance(current, bool):
            setattr(settings, name, value.lower() in {"1", "true", "yes", "on"})
        elif isinstance(current, (int, float)):
            setattr(settings, name, type(current)(value))
        elif isinstance(current, Path):
            setattr(settings, name, Path(value))
        else:
            setattr(settings, name, value)


class SmtpServer:
    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.mailbox = Mailbox(server.folder)

    def restart(self) -> None:
        """A new server on the same port and folder (aiosmtpd's controller does not start twice)."""
        self.server = MailServer(self.server.folder, port=self.server.port)
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
def smtp_server(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server on a free port; Django's SMTP backend (here and in worker processes) sends to it."""
    server = MailServer(tmp_path / "mailbox", port=0)
    server.start()
    _set(
        settings,
        monkeypatch,
        {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(server.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": "5",
            "MAILBOX_DIR": str(server.folder),
            "SITE_URL": "https://deck.example.com",
            "RECOVERY_FROM_EMAIL": "Shop Team <team@shop.example>",
        },
    )
    wrapper = SmtpServer(server)
    try:
        yield wrapper
    finally:
        wrapper.server.stop()


@pytest.fixture
def default_template(db: None) -> RecoveryTemplate:
    """The default template the data migration makes (a transactional test's flush removes it)."""
    template, _ = RecoveryTemplate.objects.get_or_create(
        is_default=True,
        defaults={
            "name": "Default reminder",
            "step": 1,
            "subject": _DEFAULT.SUBJECT,
            "html_body": _DEFAULT.HTML,
            "text_body": _DEFAULT.TEXT,
        },
    )
    return template


class Portal:
    """A sandbox whose contacts, carts and line items are cached here, with HTTP helpers to change it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {sandbox.config.token}"

    def url(self, path: str) -> str:
        return self.sandbox.url.rstrip("/") + path

    def patch_cart(self, cart_id: str, properties: dict[str, str]) -> None:
        response = self.http.patch(
            self.url(f"/crm/v3/objects/carts/{cart_id}"), json={"properties": properties}, timeout=10
        )
        assert response.status_code == 200, response.text

    def patch_contact(self, contact_id: str, properties: dict[str, str]) -> None:
        response = self.http.patch(
            self.url(f"/crm/v3/objects/contacts/{contact_id}"), json={"properties": properties}, timeout=10
        )
        assert response.status_code == 200, response.text

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        response = self.http.put(
            self.url(f"/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}"),
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text

    def dissociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        response = self.http.delete(
            self.url(f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}"), timeout=10
        )
        assert response.status_code in (200, 204), response.text

    def create_contact(self, email: str, first_name: str, **properties: str) -> str:
        body = {"properties": {"email": email, "firstname": first_name, "lastname": "Tester", **properties}}
        response = self.http.post(self.url("/crm/v3/objects/contacts"), json=body, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def any_order_id(self) -> str:
        return str(next(iter(self.sandbox.state.live("orders"))).id)

    def sync(self) -> None:
        run = sync.run_sync(SyncKind.FULL, manual=True)
        assert run.status == SyncStatus.SUCCEEDED, run.error_detail


@pytest.fixture
def portal(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, transactional_db: None
) -> Iterator[Portal]:
    """A seeded sandbox, fully synced here; settings and environment (for workers) point at it."""
    sandbox = start_sandbox(seed_contacts=8, seed_orders=6, seed_carts=10, rate_limits=False)
    _set(
        settings,
        monkeypatch,
        {
            "HUBSPOT_API_BASE": sandbox.url,
            "HUBSPOT_ACCESS_TOKEN": str(sandbox.config.token),
            "HUBSPOT_LIMITER_URL": f"sqlite:///{tmp_path / 'hubspot-ratelimit.sqlite3'}",
            "HUBSPOT_RETRY_BASE_S": "0.01",
            "HUBSPOT_RETRY_CAP_S": "0.05",
            "HUBSPOT_RETRY_429_WAIT_S": "0.05",
        },
    )
    client.reset_stats()
    portal = Portal(sandbox)
    try:
        portal.sync()
        yield portal
    finally:
        sandbox.stop(save_snapshot=False)
        ratelimit.close_limiters()


def emailable_cart(
    portal: Portal, email: str, first_name: str = "Ada", contact_id: str | None = None
) -> Cart:
    """A cached cart that may be emailed: a fresh contact of its own in HubSpot (or the one named), a recovery
    link, no order. Returns it after a refresh."""
    cart = (
        Cart.objects.filter(order_hubspot_id="", archived=False)
        .exclude(hubspot_id__in=_taken)
        .order_by("hubspot_id")
        .first()
    )
    assert cart is not None, "the sandbox has no cart left for this test"
    _taken.add(cart.hubspot_id)
    contact_id = contact_id or portal.create_contact(email, first_name)
    if cart.contact_hubspot_id:
        portal.dissociate("carts", cart.hubspot_id, "contacts", cart.contact_hubspot_id)
    portal.associate("carts", cart.hubspot_id, "contacts", contact_id)
    portal.patch_cart(
        cart.hubspot_id,
        {
            "hs_cart_url": f"https://shop.example.com/cart/recover/{cart.hubspot_id}",
            "hs_external_status": "abandoned",
        },
    )
    sync.refresh_records("contacts", [contact_id])
    sync.refresh_records("carts", [cart.hubspot_id])
    cart.refresh_from_db()
    assert Contact.objects.filter(hubspot_id=contact_id).exists()
    assert cart.customer_email == email, (cart.customer_email, email)
    return cart


_taken: set[str] = set()


@pytest.fixture(autouse=True)
def _fresh_carts() -> Iterator[None]:
    _taken.clear()
    yield
    _taken.clear()


@pytest.fixture(autouse=True)
def queued_tasks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Tasks the code under test queues, recorded instead of sent to the broker (tests call the task
    functions themselves); a test with a real worker sends them for real."""
    queued: list[tuple[str, Any]] = []
    if "celery_worker_process" in request.fixturenames:
        return queued
    from carts import tasks

    for task in (
        tasks.recovery_send_task,
        tasks.recovery_send_batch_task,
        tasks.bulk_send_dispatch_task,
        tasks.bulk_send_resume_task,
        tasks.template_test_send_task,
    ):
        monkeypatch.setattr(task, "delay", lambda *a, _n=task.name, **k: queued.append((_n, a)))
        monkeypatch.setattr(
            task, "apply_async", lambda args=(), _n=task.name, **k: queued.append((_n, tuple(args or ())))
        )
    return queued
